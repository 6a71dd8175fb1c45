"""The replay guard: what a replay cannot answer from the recording it refuses, below every boundary.

A recorded crash is fixed by code that takes a new path, and the new path reaches the world in ways no boundary
intercepts: a connection through ``_socket``, a file through ``posix.open``, a process through ``posix_spawn`` or
multiprocessing's spawn, a signal to a process group, a change given a ``dir_fd``. The replay refuses each one
(the program gets ``UnrecordedCall``), and the world shows nothing happened: the listener accepted nothing, no file
or process was made, the other process lives. A replay that follows its recording reports the same effect as its
divergence.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import LiveServer, Recorder, assert_faithful, retrace

from pytest_retrace.errors import RetraceError
from pytest_retrace.runner.launcher import sandbox_prefix

CRASH = "import time\nprint('start', time.time() > 0)\nraise ValueError('recorded crash')\n"

EFFECTS = {
    "socket": "import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', PORT))",
    "posix_open": "import posix\nposix.open('made.txt', posix.O_WRONLY | posix.O_CREAT, 0o644)",
    "posix_spawn": "import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'touch spawned.txt'], {})",
    "spawnv_passfds": ("from multiprocessing import util\n"
                       "util.spawnv_passfds(b'/bin/sh', [b'sh', b'-c', b'touch spawned.txt'], [])"),
    "killpg": "import os, signal\nos.killpg(VICTIM, signal.SIGTERM)",
    "dir_fd": "import os, posix\nos.mkdir('made', dir_fd=posix.open('.', posix.O_RDONLY))",
    "rename_code": "import os\nos.rename('program.py', 'renamed.py')",
}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def new_path(effect: str, **values: int) -> str:
    """The fixed program: the crash gone, the effect tried instead, what the program got printed."""
    code = EFFECTS[effect]
    for name, value in values.items():
        code = code.replace(name, str(value))
    return ("import time\nprint('start', time.time() > 0)\ntry:\n" + textwrap.indent(code, "    ") +
            "\nexcept Exception as exc:\n    print('refused:', type(exc).__name__)\nelse:\n    print('done')\n")


@pytest.mark.parametrize("effect", sorted(EFFECTS))
def test_a_fixed_crash_on_a_new_path_touches_nothing(effect: str, tmp_path: Path, listener: socket.socket,
                                                      victim: subprocess.Popen[bytes]) -> None:
    program = tmp_path / "program.py"
    program.write_text(CRASH)
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.returncode == 1 and "ValueError: recorded crash" in recorded.stderr
    program.write_text(new_path(effect, PORT=listener.getsockname()[1], VICTIM=victim.pid))
    before = sorted(p.name for p in tmp_path.iterdir())

    replayed = Recorder(tmp_path).replay()

    assert replayed.stdout == "start True\nrefused: UnrecordedCall\n", replayed.stderr
    assert replayed.verdict is not None and replayed.verdict["status"] == "crash-fixed", replayed.verdict
    unanswered = replayed.stderr.partition("(pytest_retrace.UnrecordedCall was raised):\n")[2]
    assert f"\n    {effect_event(effect)}" in f"\n{unanswered}", replayed.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "rec.verdict.json") == before
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected
    assert victim.poll() is None, "the replay signalled another process"


def effect_event(effect: str) -> str:
    """How the report names the refused effect: what the guard saw, or the call of the boundary that answers it
    (renames, even of the program's own code; signals to process groups; posix_spawn)."""
    return {"socket": "unrecorded socket.connect", "posix_open": "unrecorded open",
            "posix_spawn": "os.posix_spawn('/bin/sh', ", "spawnv_passfds": "unrecorded subprocess.fork_exec",
            "killpg": "os.killpg(", "dir_fd": "unrecorded os.mkdir",
            "rename_code": "os.rename('program.py', 'renamed.py')"}[effect]


def test_a_replay_that_meets_an_effect_diverges_there_and_performs_nothing(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text("import time\nprint('start', time.time() > 0)\nprint('end', time.time() > 0)\n")
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    program.write_text("import posix, time\nprint('start', time.time() > 0)\n"
                       "posix.open('made.txt', posix.O_WRONLY | posix.O_CREAT, 0o644)\n"
                       "print('end', time.time() > 0)\n")

    replayed = Recorder(tmp_path).replay()

    assert replayed.verdict is not None and replayed.verdict["status"] == "diverged", replayed.verdict
    divergence = replayed.verdict["divergence"]
    assert divergence["expected"]["call"] == "time.time()"
    assert divergence["actual"]["call"].startswith("unrecorded open('made.txt', ")
    assert "program.py\", line 3" in replayed.stderr
    assert not (tmp_path / "made.txt").exists()


def test_the_program_signals_itself_and_its_own_children_on_replay(tmp_path: Path) -> None:
    """Signals to the process itself stay the program's own doing, on both sides."""
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent("""\
        import os, signal
        got = []
        signal.signal(signal.SIGUSR1, lambda *a: got.append("usr1"))
        os.kill(os.getpid(), signal.SIGUSR1)
        print("handled", got)
        """))
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.stdout == "handled ['usr1']\n", recorded.stderr
    replayed = Recorder(tmp_path).replay()
    assert replayed.stdout == recorded.stdout, replayed.stderr
    assert replayed.verdict is not None and replayed.verdict["faithful"] is True


def test_the_sandbox_replays_with_no_network_at_all(tmp_path: Path, http_server: LiveServer) -> None:
    """``--sandbox``: the replay runs in a network namespace with no interface (beneath the guard), faithfully;
    where namespaces are not given it says so and what to do."""
    recorder = Recorder(tmp_path)
    recorded = recorder.record("http_clients.py", str(http_server.port))
    assert recorded.returncode == 0, recorded.stderr
    try:
        sandbox_prefix()
    except RetraceError as exc:
        run = retrace("replay", "rec.retrace", "--sandbox", cwd=tmp_path)
        assert run.returncode == 2 and str(exc) in run.stderr
        pytest.skip(f"no network namespaces here: {exc}")
    http_server.stop()
    replayed = retrace("replay", "rec.retrace", "--sandbox", "--verdict", "v.json", cwd=tmp_path)
    assert (replayed.returncode, replayed.stdout) == (0, recorded.stdout), replayed.stderr
    probe = subprocess.run([*sandbox_prefix(), sys.executable, "-c",
                            "import socket; socket.create_connection(('127.0.0.1', 9), timeout=2)"],
                           capture_output=True, text=True)
    assert "Network is unreachable" in probe.stderr or "Errno 101" in probe.stderr, probe.stderr


def test_finalizers_run_unrecorded_and_may_not_change_the_world_on_replay(recorder: Recorder) -> None:
    """Finalizers run when the collector decides (or the last reference goes), which is not the recording's moment:
    unrecorded in both runs. A TemporaryDirectory's finds nothing to remove on replay and the replay is faithful; a
    __del__ that writes a file may not change the world on replay: its write is refused and reported, with the
    finalizer on the stack."""
    recorded = recorder.record("finalizers.py")
    assert recorded.stdout == "made True True\ngone True\nfinalized [True]\n", recorded.stderr
    assert_faithful(recorder, recorded)

    cyclic = recorder.record("finalizers.py", env={"CYCLE": "1"}, name="cyclic")
    assert cyclic.stdout.endswith("collected\n") and (recorder.folder / "from_del.txt").exists()
    (recorder.folder / "from_del.txt").unlink()
    replayed = recorder.replay(name="cyclic")
    assert replayed.verdict is not None and replayed.verdict["status"] == "diverged", replayed.verdict
    assert replayed.verdict["divergence"]["actual"]["call"].startswith("unrecorded open('from_del.txt'")
    assert "in __del__" in replayed.stderr
    assert not (recorder.folder / "from_del.txt").exists()
