"""Forked processes are recorded into the recording, each its own, and replay their own part (DESIGN.md §0).

Each program of ``fixtures/programs/processes/`` forks (``os.fork`` with a grandchild, a multiprocessing
``Pool``, a ``ProcessPoolExecutor``); its workers read a data file and the clock. Law 1: run plainly and
recorded it prints the same. Law 2: with the data file changed and what the run wrote gone, the replay prints
the same, faithfully, in both demultiplexer modes, twice, creating no file; the processes it forks replay from
their own recordings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful, program_in, retrace

from pytest_retrace.format.tape import forked_end, read_recording

PROGRAMS_DIR = "processes"
CASES = ("fork_tree", "pool", "executor")


def world(folder: Path) -> None:
    (folder / "numbers.txt").write_text("5 7 9\n")


@pytest.mark.parametrize("purepython", [False, True], ids=["native", "pure"])
@pytest.mark.parametrize("case", CASES)
def test_a_process_tree_replays_each_process_from_its_own_recording(case: str, purepython: bool,
                                                                     tmp_path: Path) -> None:
    world(tmp_path)
    program = f"{PROGRAMS_DIR}/{case}.py"
    plain = subprocess.run([sys.executable, str(PROGRAMS / program)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert plain.returncode == 0, plain.stderr
    for made in tmp_path.glob("out-*"):
        made.unlink()
    recorder = Recorder(tmp_path)
    recorded = recorder.record(program)
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    rec = read_recording(tmp_path / "rec.retrace")
    assert rec.processes, "the forked processes' recordings are inside the recording"
    assert not list(tmp_path.glob("*.proc-*")), "no recording of a forked process is left beside it"

    (tmp_path / "numbers.txt").write_text("1 1 1\n")
    for made in tmp_path.glob("out-*"):
        made.unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    env = {"PYTEST_RETRACE_PUREPYTHON": "1"} if purepython else None
    first = assert_faithful(recorder, recorded, env=env)
    second = assert_faithful(recorder, recorded, env=env)
    assert first.verdict and second.verdict and first.verdict["status"] == second.verdict["status"] == "ok"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "rec.verdict.json") == before


def test_the_fork_tree_holds_every_process_with_its_own_end(tmp_path: Path) -> None:
    world(tmp_path)
    recorded = Recorder(tmp_path).record(f"{PROGRAMS_DIR}/fork_tree.py")
    assert recorded.returncode == 0, recorded.stderr
    rec = read_recording(tmp_path / "rec.retrace")
    assert sorted(rec.processes) == ["1", "1.1", "2"]  # two children, the first with a child of its own
    ends = {label: forked_end(data) for label, data in rec.processes.items()}
    assert ends["1"] is not None and ends["1"]["status"] == 3  # sys.exit(3)
    assert ends["2"] is not None and ends["2"]["status"] == 4
    assert ends["1.1"] is not None and ends["1.1"]["status"] == 0  # os._exit(0)


def test_a_child_that_now_does_otherwise_is_the_divergence(tmp_path: Path) -> None:
    """A forked child's replay follows its own recording: code that makes it call something else diverges,
    and the report names the process."""
    world(tmp_path)
    program = tmp_path / "forker.py"
    program.write_text(
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child', time.time() > 0, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent done')\n")
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.stdout == "child True\nparent done\n", recorded.stderr
    program.write_text(program.read_text().replace("time.time() > 0", "time.monotonic() > 0"))
    replayed = Recorder(tmp_path).replay()
    assert replayed.verdict is not None and replayed.verdict["status"] == "diverged", replayed.verdict
    divergence = replayed.verdict["divergence"]
    assert divergence["thread"] == "1/0"
    assert divergence["expected"]["call"] == "time.time()" and divergence["actual"]["call"] == "time.monotonic()"


def test_a_sealed_recording_seals_its_forked_processes_too(tmp_path: Path) -> None:
    world(tmp_path)
    made = retrace("keygen", "-o", "project.key", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    script = program_in(tmp_path, f"{PROGRAMS_DIR}/fork_tree.py")
    recorded = retrace("record", "--public-key", "project.key.pub", "-o", "rec.retrace", "--", str(script),
                       cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert b"child0" not in (tmp_path / "rec.retrace").read_bytes()  # a name the children print and write
    for made_file in tmp_path.glob("out-*"):
        made_file.unlink()
    refused = retrace("replay", "rec.retrace", cwd=tmp_path)
    assert refused.returncode != 0 and "key" in refused.stderr
    replayed = retrace("replay", "rec.retrace", "--key-file", "project.key", cwd=tmp_path)
    assert (replayed.returncode, replayed.stdout) == (0, recorded.stdout), replayed.stderr
    assert not list(tmp_path.glob("out-*"))


def test_a_spawned_process_is_recorded_and_never_started_on_replay(tmp_path: Path) -> None:
    program = tmp_path / "spawner.py"
    program.write_text(
        "import os\n"
        "pid = os.posix_spawn('/bin/sh', ['sh', '-c', 'echo spawned > marker.txt; exit 7'], dict(os.environ))\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print('exit', os.waitstatus_to_exitcode(status), open('marker.txt').read().strip())\n")
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.stdout == "exit 7 spawned\n", recorded.stderr
    (tmp_path / "marker.txt").unlink()
    replayed = assert_faithful(Recorder(tmp_path), recorded, offline=True)
    assert replayed.stdout == recorded.stdout
    assert not (tmp_path / "marker.txt").exists()
