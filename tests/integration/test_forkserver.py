"""The plugin replays request and call recordings in forks of a server that imported the app once
(``forkserver.py``), process recordings in forks of a zygote started as a cold replay starts (``zygote.py``),
and falls back to a cold interpreter per recording when it cannot fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_retrace.format.tape import read_recording
from pytest_retrace.kinds.entry import Project
from pytest_retrace.runner.launcher import replay
from pytest_retrace.runner.protocol import ReplayConfig
from pytest_retrace.runner.verdict import Verdict

MODULE = textwrap.dedent('''
    import os
    import threading

    import pytest_retrace

    HERE = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(HERE, "imports.log"), "a") as log:  # one line per import of this module
        log.write(f"{os.getpid()}\\n")
    if os.environ.get("START_THREAD"):  # an app that starts a thread when imported cannot be forked
        threading.Thread(target=threading.Event().wait, daemon=True).start()


    @pytest_retrace.record_calls(directory=os.path.join(HERE, "recordings"))
    def tally(n):
        print(f"tally {n}")
        return [n, os.urandom(4).hex(), os.getpid()]
''')


def record(folder: Path, **env: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "tally.py").write_text(MODULE)
    subprocess.run([sys.executable, "-c", "import tally\nfor n in range(4): tally.tally(n)"], cwd=folder,
                   env={**os.environ, **env}, check=True)
    (folder / "imports.log").unlink()


def imports(folder: Path) -> int:
    return len((folder / "imports.log").read_text().split())


def test_a_group_of_recordings_imports_the_app_once(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "service"
    record(folder)
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1


def test_determinism_runs_use_the_fork_server_and_the_switch_turns_it_off(pytester: pytest.Pytester) -> None:
    """Replaying every recording twice still imports the app once; with RETRACE_NO_FORKSERVER=1, every replay
    imports it again (a fresh interpreter each)."""
    folder = pytester.path / "service"
    record(folder)
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider",
                                "--retrace-determinism-runs=2")
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1
    os.environ["RETRACE_NO_FORKSERVER"] = "1"
    try:
        result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    finally:
        del os.environ["RETRACE_NO_FORKSERVER"]
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1 + 4


def test_an_app_that_starts_threads_on_import_replays_cold(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "service"
    record(folder, START_THREAD="1")
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1 + 4  # the server's import, given up on, then one per cold replay


def test_a_changed_app_is_imported_again_by_the_next_session(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "service"
    record(folder)
    pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider").assert_outcomes(
        passed=4)
    source = folder / "tally.py"
    source.write_text(source.read_text().replace("return [n,", "return [n + 1,"))
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*returned*"])


# -- process recordings: a zygote per environment forks a replay per recording ---------------------------------

INTROSPECT = textwrap.dedent('''
    import atexit, gc, os, re, signal, sys, threading, warnings
    import __main__


    def print(*values):  # objects' addresses differ from run to run
        sys.stdout.write(re.sub(" at 0x[0-9a-f]+", "", " ".join(map(str, values))) + "\\n")


    print("argv", sys.argv, "orig", sys.orig_argv)
    print("path", sys.path)
    print("flags", sys.flags, sys.dont_write_bytecode, sys.getrecursionlimit(), sys.getswitchinterval())
    print("hash", hash("x"), hash(b"y"), list({"a", "b", "c", "d", "e"}))
    print("environ", sorted(os.environ.items()))
    print("cwd", os.getcwd(), "executable", sys.executable)
    print("main", __name__, __main__.__file__, sorted(vars(__main__)), __main__.__spec__, type(__main__.__loader__))
    print("modules", sorted(sys.modules))
    print("signals", [(s.name, signal.getsignal(s)) for s in signal.valid_signals() if isinstance(s, signal.Signals)
                      and s not in (signal.SIGKILL, signal.SIGSTOP)])
    print("threads", threading.active_count(), [t.name for t in threading.enumerate()])
    print("atexit", atexit._ncallbacks(), "gc", gc.isenabled(), gc.get_threshold())
    print("streams", [(s.encoding, s.errors, s.line_buffering, s.isatty()) for s in (sys.stdout, sys.stderr)])
    print("warnings", warnings.filters)
    print("hooks", sys.excepthook, sys.displayhook, sys.breakpointhook, sys.meta_path, sys.path_hooks)
    if len(sys.argv) > 1 and sys.argv[1] == "crash":
        raise ValueError(os.urandom(4).hex())
''')


def record_program(folder: Path, source: str, *args: str, name: str = "rec", **env: str) -> Path:
    """Record ``source`` (written to ``folder/prog.py``, the project) with the real CLI."""
    (folder / "prog.py").write_text(source)
    output = folder / "recordings" / f"{name}.retrace"
    output.parent.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", str(output), "--", "prog.py", *args],
                   cwd=folder, env={**os.environ, **env}, capture_output=True, check=False, timeout=120)
    assert output.exists()
    return output


@pytest.fixture
def zygotes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The replays sent to a zygote (their recordings); every zygote stops afterwards."""
    from pytest_retrace.runner import zygote

    sent: list[str] = []
    send = zygote.Zygote.send

    def counted(self: zygote.Zygote, config: ReplayConfig, stdout: int, stderr: int) -> bool:
        sent.append(config.recording)
        return send(self, config, stdout, stderr)

    monkeypatch.setattr(zygote.Zygote, "send", counted)
    yield sent
    zygote.close_all()


def both_ways(path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Verdict, Verdict]:
    """The verdicts of a replay in a zygote's fork, and of a cold one (what each printed kept whole)."""
    project = Project(folder, False, "--allow")
    forked = replay(str(path), project, forked=True, passthrough=False, keep_output=True)
    with monkeypatch.context() as m:
        m.setenv("RETRACE_NO_FORKSERVER", "1")
        cold = replay(str(path), project, forked=True, passthrough=False, keep_output=True)
    return forked, cold


def assert_same(forked: Verdict, cold: Verdict) -> None:
    assert forked.stdout.decode() == cold.stdout.decode()
    assert forked.stderr.decode() == cold.stderr.decode()
    assert forked.to_json() == cold.to_json()


def test_a_process_replayed_in_a_zygote_sees_what_a_cold_replay_sees(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zygotes: list[str]) -> None:
    """argv, sys.path, flags, hash seed, environment, folder, __main__, modules, signal handlers, threads,
    streams: the program prints them, and both replays print the same, for the same verdict."""
    monkeypatch.chdir(tmp_path)
    path = record_program(tmp_path, INTROSPECT, "--flag", "x", GREETING="hello")
    forked, cold = both_ways(path, tmp_path, monkeypatch)
    assert zygotes == [str(path)]
    assert_same(forked, cold)
    assert b"prog.py', '--flag', 'x'] orig" in forked.stdout
    assert b"('GREETING', 'hello')" in forked.stdout
    assert forked.status == "ok", forked.to_json()  # and as recorded


def test_the_recordings_of_a_project_share_one_seed_and_one_zygote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zygotes: list[str]) -> None:
    """Recorded without PYTHONHASHSEED, a project's recordings hash alike (and so replay in one zygote); with
    PYTHONHASHSEED=random each recording gets a seed of its own; a number is used as given."""
    from pytest_retrace.runner import zygote

    paths = [record_program(tmp_path, INTROSPECT, name=f"r{i}") for i in range(3)]
    seeds = {read_recording(str(p)).header["hash_seed"] for p in paths}
    assert len(seeds) == 1 and 0 not in seeds
    randomised = [record_program(tmp_path, INTROSPECT, name=f"x{i}", PYTHONHASHSEED="random") for i in range(2)]
    assert len({read_recording(str(p)).header["hash_seed"] for p in randomised} | seeds) == 3
    given = record_program(tmp_path, INTROSPECT, name="given", PYTHONHASHSEED="4242")
    assert read_recording(str(given)).header["hash_seed"] == 4242
    monkeypatch.chdir(tmp_path)
    for p in paths:
        assert replay(str(p), Project(tmp_path, False, "--allow"), forked=True, passthrough=False).status == "ok"
    assert len(zygotes) == 3 and len(zygote._zygotes) == 1


def test_divergence_crash_and_truncation_conclude_alike_in_a_zygote_and_cold(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zygotes: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    crash = record_program(tmp_path, INTROSPECT, "crash", name="crash")
    forked, cold = both_ways(crash, tmp_path, monkeypatch)
    assert forked.status == "crash-reproduced", forked.to_json()
    assert b"ValueError" in forked.stderr
    assert_same(forked, cold)

    clocks = "import time\nprint(time.time())\n"
    diverging = record_program(tmp_path, clocks, name="diverging")
    (tmp_path / "prog.py").write_text("import os, time\nprint(os.urandom(2), time.time())\n")
    forked, cold = both_ways(diverging, tmp_path, monkeypatch)
    assert forked.status == "diverged" and forked.divergence is not None, forked.to_json()
    assert_same(forked, cold)

    (tmp_path / "prog.py").write_text(clocks)
    truncated = tmp_path / "recordings" / "truncated.retrace"
    data = diverging.read_bytes()
    truncated.write_bytes(data[:data.rindex(b"time.time") + 16])
    forked, cold = both_ways(truncated, tmp_path, monkeypatch)
    assert forked.status in ("truncated", "corrupt"), forked.to_json()
    assert_same(forked, cold)
    assert len(zygotes) == 3  # the truncated one too: its replay says how far it got


def test_a_dead_zygote_falls_back_to_cold_replays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zygotes: list[str]) -> None:
    from pytest_retrace.runner import zygote

    monkeypatch.chdir(tmp_path)
    path = record_program(tmp_path, INTROSPECT)
    project = Project(tmp_path, False, "--allow")
    first = replay(str(path), project, forked=True, passthrough=False, keep_output=True)
    (server,) = zygote._zygotes.values()
    assert server is not None
    server.proc.kill()
    server.proc.wait()
    second = replay(str(path), project, forked=True, passthrough=False, keep_output=True)
    assert_same(second, first)
    assert list(zygote._zygotes.values()) == [None]  # this environment replays cold from now on
    third = replay(str(path), project, forked=True, passthrough=False, keep_output=True)
    assert_same(third, first)
    assert len(zygotes) == 2  # the third went cold at once


def test_the_switch_turns_zygotes_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zygotes: list[str]) -> None:
    from pytest_retrace.runner import zygote

    monkeypatch.chdir(tmp_path)
    path = record_program(tmp_path, INTROSPECT)
    monkeypatch.setenv("RETRACE_NO_FORKSERVER", "1")
    verdict = replay(str(path), Project(tmp_path, False, "--allow"), forked=True, passthrough=False)
    assert verdict.status == "ok"
    assert zygotes == [] and zygote._zygotes == {}


SESSION_PROBE = textwrap.dedent('''
    import os

    def pytest_sessionfinish(session):
        from pytest_retrace.runner import zygote
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"zygotes-{worker}.txt", "w") as f:
            f.write(str(sum(z is not None for z in zygote._zygotes.values())))
''')


SMALL = textwrap.dedent('''
    import os, sys, time
    print(sys.argv[1:], hash("x"), list({"a", "b", "c"}), time.time(), os.urandom(4).hex())
    if sys.argv[1:] == ["crash"]:
        raise ValueError("crashed")
''')


def test_process_recordings_replay_in_a_zygote_per_xdist_worker(pytester: pytest.Pytester) -> None:
    for i in range(6):
        record_program(pytester.path, SMALL, name=f"r{i}")
    crash = record_program(pytester.path, SMALL, "crash", name="crash")
    pytester.makeconftest(SESSION_PROBE)
    result = pytester.runpytest_subprocess(f"--retrace-recordings={pytester.path / 'recordings'}", "-p",
                                           "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines([f"*{crash.name}*crash-reproduced*"])
    counts = {p.name: p.read_text() for p in pytester.path.glob("zygotes-gw*.txt")}
    assert counts == {"zygotes-gw0.txt": "1", "zygotes-gw1.txt": "1"}
