"""asyncio's subprocesses, recorded and replayed: ``create_subprocess_exec/shell`` with their streams, and
``loop.subprocess_exec`` with a protocol of the program's own.

Each program of ``fixtures/programs/aio_subprocess`` runs real children (``child.py`` beside it, and a shell with
``tr``). It runs plainly and recorded in the same folder: the same output, error output and exit status (law 1).
Then ``child.py`` is deleted and ``PATH`` emptied, and the replay, with no network at all, prints exactly what
the recorded run printed, faithfully with every event consumed (law 2): a replay that started anything would
fail to run the child. It replays twice, with the same verdict, with the native demultiplexer and with the
pure-Python one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, Run, assert_faithful

FOLDER = "aio_subprocess"

CASES: dict[str, Callable[[str], bool]] = {
    # stdout read line by line as the child writes it, stderr after it, the exit status; stdin written with
    # write + drain and read back, a line longer than a pipe holds among them
    "lines.py": lambda out: "stdout: line 3 of 4\nstderr: done on stderr\nreturncode 0 0\n" in out
    and "read back echo: gamma\nbig line back 100007\nlast stdin closed\necho returncode 0\n" in out,
    # a shell pipeline fed by communicate(input=…); a shell's own exit status
    "shell.py": lambda out: "out b'THE_QUICK_BROWN_FOX\\nJUMPS_OVER_THE_LAZY_DOG\\n'" in out
    and "shell exit 7" in out,
    # two children at once with gather, reported in the order they completed, a ticking task between them
    "gather.py": lambda out: out.index("completed fast fast 0 order 1") < out.index("tick 0")
    < out.index("completed slow slow 0 order 2") and "gather ['slow', 'fast', None]" in out,
    # a child that fails (exit 3, stderr), one that cannot start, one terminated; the program exits 1
    "failing.py": lambda out: "returncode 3\nstdout partial output\nstderr child: something broke\n" in out
    and "cannot start FileNotFoundError 2" in out and "terminated -15" in out,
    # a SubprocessProtocol's callbacks in the order they came
    "protocol.py": lambda out: out == (
        "connection_made pid known True\npipe_connection_lost 2 None\npipe_data_received 1 b'echo: one\\n'\n"
        "pipe_data_received 1 b'echo: two\\n'\npipe_connection_lost 0 None\n"
        "pipe_data_received 1 b'stdin closed\\n'\npipe_connection_lost 1 None\nprocess_exited\n"
        "connection_lost None\nreturncode 0\n"),
    # wait_for(proc.wait(), timeout) times out, the child is killed
    "timeout.py": lambda out: "timed out; killing\nreturncode -9\nrest of stdout b''\n" in out,
}
EXIT_STATUS = {"failing.py": 1}


def prepare(folder: Path, program: str) -> Path:
    """The program's folder (the project the replay runs in) with the child its program runs."""
    shutil.copyfile(PROGRAMS / FOLDER / "child.py", folder / "child.py")
    shutil.copyfile(PROGRAMS / FOLDER / program, folder / program)
    return folder / program


def run_plain(program: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, str(program)], cwd=program.parent, capture_output=True, text=True,
                          timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def nothing_to_run(folder: Path, tmp_path: Path) -> dict[str, str]:
    """The world the replay runs in: the child gone, and nothing on PATH (no ``tr``, no ``sh`` by name) but
    ``unshare``, which takes the network away from the replay (see ``offline_prefix``)."""
    (folder / "child.py").unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    unshare = shutil.which("unshare")
    if unshare is not None:
        (bin_dir / "unshare").symlink_to(unshare)
    return {"PATH": str(bin_dir)}


DEMUX = {"native": {}, "pure-python": {"PYTEST_RETRACE_PUREPYTHON": "1"}}


@pytest.mark.parametrize("demux", sorted(DEMUX))
@pytest.mark.parametrize("program", sorted(CASES))
def test_asyncio_subprocesses_record_invisibly_and_replay_starting_nothing(tmp_path: Path, program: str,
                                                                            demux: str) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    recorder = Recorder(folder)
    plain = run_plain(prepare(folder, program))
    recorded = recorder.record(f"{FOLDER}/{program}")
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == plain, "recording changed what the program does"
    assert recorded.returncode == EXIT_STATUS.get(program, 0), recorded.stderr
    assert CASES[program](recorded.stdout), recorded.stdout

    env = {**nothing_to_run(folder, tmp_path), **DEMUX[demux]}
    verdicts = []
    for _ in range(2):
        replayed = assert_faithful(recorder, recorded, env=env, offline=True)
        assert replayed.verdict is not None
        verdicts.append({k: replayed.verdict[k] for k in ("status", "faithful", "events_recorded", "events_consumed")})
    assert verdicts[0] == verdicts[1]
    assert verdicts[0]["status"] == ("crash-reproduced" if program in EXIT_STATUS else "ok")


def test_asyncio_subprocess_events_are_the_child_s_streams_and_end(tmp_path: Path) -> None:
    """What the recording holds: the pipes' data chunk by chunk, what was written to stdin, the exit status."""
    folder = tmp_path / "project"
    folder.mkdir()
    prepare(folder, "lines.py")
    recorded = Recorder(folder).record(f"{FOLDER}/lines.py")
    assert recorded.returncode == 0, recorded.stderr
    shown = subprocess.run([sys.executable, "-m", "pytest_retrace", "show", "rec.retrace"], cwd=folder,
                           capture_output=True, text=True, check=True).stdout
    assert "subprocess.pipe.read('stdout', " in shown and ", 262144) -> b'line 0 of 4\\n'" in shown
    assert "subprocess.pipe.read('stderr', " in shown and "-> b'done on stderr\\n'" in shown
    assert "subprocess.pipe.write('stdin', " in shown and ", b'beta\\n') -> 5" in shown
    assert "subprocess.waitpid(" in shown


def diverged(run: Run) -> dict[str, object]:
    assert run.verdict is not None, run.stderr
    assert run.verdict["status"] == "diverged" and run.verdict["faithful"] is False, run.verdict
    divergence = run.verdict["divergence"]
    assert isinstance(divergence, dict)
    return divergence


@pytest.mark.parametrize(("program", "before", "after"), [
    ("shell.py", "the quick brown fox", "the quick brown cat"),  # communicate(input=…)
    ("lines.py", '"alpha", "beta"', '"alpha", "delta"'),  # stdin.write + drain
])
def test_a_replay_that_sends_the_child_other_input_diverges(tmp_path: Path, program: str, before: str,
                                                             after: str) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    path = prepare(folder, program)
    recorder = Recorder(folder)
    recorded = recorder.record(f"{FOLDER}/{program}")
    assert recorded.returncode == 0, recorded.stderr
    source = path.read_text()
    assert before in source
    path.write_text(source.replace(before, after))
    replayed = recorder.replay(env=nothing_to_run(folder, tmp_path), offline=True)
    assert replayed.returncode == 70, replayed.stderr
    divergence = diverged(replayed)
    text = str(divergence)
    assert "subprocess.pipe.write" in text, text
    assert before.split()[-1].strip('"') in text and after.split()[-1].strip('"') in text, text
