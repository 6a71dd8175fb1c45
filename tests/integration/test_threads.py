"""Acceptance: programs whose output depends on thread scheduling replay as recorded.

Every program is replayed with the native demultiplexer and with its pure-Python twin;
both must reproduce the recorded run exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful, retrace

NATIVE = {"PYTEST_RETRACE_PUREPYTHON": "0"}
PURE = {"PYTEST_RETRACE_PUREPYTHON": "1"}
MODES = pytest.mark.parametrize("mode", [NATIVE, PURE], ids=["native", "pure"])

SCHEDULED = [
    "lock_append.py",  # threads append under a lock after random sleeps
    "producers_consumers.py",  # Queue, PriorityQueue, LifoQueue, RLock
    "event_wakeup.py",  # Event.set() wakes waiters, each prints as it wakes; a timed wait
    "pool_as_completed.py",  # ThreadPoolExecutor, as_completed, wait(FIRST_COMPLETED), map
    "barrier_semaphore.py",  # Barrier, BoundedSemaphore under load, a timed Semaphore.acquire
    "timer_local.py",  # Timer, a cancelled Timer, threading.local
    "asyncio_gather.py",  # gather with random sleeps, wait_for timeout, streams over a socket
]


def plain_outputs(program: str, runs: int, cwd: Path) -> set[str]:
    return {subprocess.run([sys.executable, str(PROGRAMS / "threads" / program)], cwd=cwd, capture_output=True,
                           text=True, check=True).stdout for _ in range(runs)}


@pytest.mark.parametrize("program", ["lock_append.py", "pool_as_completed.py", "asyncio_gather.py"])
def test_these_outputs_do_depend_on_scheduling(program: str, tmp_path: Path) -> None:
    assert len(plain_outputs(program, 3, tmp_path)) > 1


@pytest.mark.parametrize("program", SCHEDULED)
def test_scheduling_replays_as_recorded(recorder: Recorder, program: str) -> None:
    recorded = recorder.record(f"threads/{program}")
    assert recorded.returncode == 0, recorded.stderr
    for mode in (NATIVE, PURE):
        assert_faithful(recorder, recorded, env=mode)


def test_http_server_thread_and_requests_client_threads_in_one_process(recorder: Recorder) -> None:
    recorded = recorder.record("threads/http_in_process.py")
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.count("('a',") == 3 and recorded.stdout.count("('b',") == 3
    for mode in (NATIVE, PURE):
        assert_faithful(recorder, recorded, env=mode)


# Loaded by every interpreter started with its folder on PYTHONPATH: a replaying child switches threads at the
# interval the test asks for (the program's own setting is ignored) and says so in a log.
SWITCHING = """\
import os, sys
interval = float(os.environ["RETRACE_TEST_SWITCH_INTERVAL"])
if "_PYTEST_RETRACE_CHILD" in os.environ:
    sys.setswitchinterval(interval)
    sys.setswitchinterval = lambda _: None
    with open(os.environ["RETRACE_TEST_SWITCH_LOG"], "a") as log:
        log.write(f"{os.environ.get('PYTEST_RETRACE_PUREPYTHON')} {sys.getswitchinterval():g}\\n")
"""


def test_stress_replays_identically_however_the_threads_are_switched(recorder: Recorder, tmp_path: Path) -> None:
    recorded = recorder.record("threads/stress.py")
    assert recorded.returncode == 0, recorded.stderr
    assert "counter 16000 handoffs 1600" in recorded.stdout
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SWITCHING)
    log = tmp_path / "switching.log"
    # Threads switched at almost every bytecode, and left to run for long slices: the OS schedules the replay's
    # threads as differently from the recording's as it can, and the replay must not notice.
    for mode in (NATIVE, PURE):
        for interval in ("1e-06", "0.05"):
            env = dict(mode, PYTHONPATH=str(site), RETRACE_TEST_SWITCH_INTERVAL=interval,
                       RETRACE_TEST_SWITCH_LOG=str(log))
            verdict = assert_faithful(recorder, recorded, env=env).verdict
            assert verdict is not None and verdict["events_consumed"] > 16000
    assert sorted(log.read_text().splitlines()) == sorted(["0 1e-06", "0 0.05", "1 1e-06", "1 0.05"])


def test_thread_ids_are_logical_and_nested(recorder: Recorder, tmp_path: Path) -> None:
    program = tmp_path / "nested.py"
    program.write_text(
        "import threading, time\n"
        "def child():\n    time.time()\n"
        "def parent():\n"
        "    time.time()\n"
        "    for _ in range(2):\n        t = threading.Thread(target=child); t.start(); t.join()\n"
        "for _ in range(2):\n    t = threading.Thread(target=parent); t.start(); t.join()\n"
    )
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    shown = retrace("show", "rec.retrace", "--json", cwd=tmp_path)
    events = json.loads(shown.stdout)["events"]
    clock_threads = [e["thread"] for e in events if e["name"] == "time.time"]
    assert clock_threads == ["0.1", "0.1.1", "0.1.2", "0.2", "0.2.1", "0.2.2"]
    started = [e["args"] for e in events if e["name"] == "thread.start"]
    assert started == [repr((t,)) for t in clock_threads]
    assert_faithful(Recorder(tmp_path), recorded)


@MODES
def test_a_stuck_replay_lists_every_thread_with_its_next_event_and_stack(tmp_path: Path, mode) -> None:
    program = tmp_path / "prog.py"
    program.write_text(
        "import os, threading, time\n"
        "def worker():\n    time.time()\n    print('worker done')\n"
        "t = threading.Thread(target=worker)\nt.start()\nt.join()\nprint(time.time() > 0)\n"
    )
    assert retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path).returncode == 0
    # The new code blocks the worker in a call nothing records; the main thread waits for its turn.
    program.write_text(program.read_text().replace("    time.time()", "    os.read(os.pipe()[0], 1)\n    time.time()"))
    replayed = retrace("replay", "rec.retrace", "--stuck-timeout", "1", "--verdict", "v.json", cwd=tmp_path,
                       env=mode, timeout=30)
    assert replayed.returncode == 70
    verdict = json.loads((tmp_path / "v.json").read_text())
    d = verdict["divergence"]
    assert verdict["status"] == "diverged" and d["kind"] == "stuck" and d["thread"] == "0.1"
    threads = {t["thread"]: t for t in d["threads"]}
    assert threads["0.1"]["next_recorded"]["call"] == "time.time()"
    assert threads["0.1"]["stack"][-1][3] == "os.read(os.pipe()[0], 1)"
    assert threads["0"]["state"].startswith("waits for its turn to call lock.acquire")
    assert "replay stuck at event" in replayed.stderr and "thread 0.1: running, or blocked outside" in replayed.stderr


def test_a_replay_that_starts_other_threads_diverges_at_the_start(recorder: Recorder, tmp_path: Path) -> None:
    program = tmp_path / "prog.py"
    program.write_text("import threading, time\nts = [threading.Thread(target=time.time) for _ in range(2)]\n"
                       "for t in ts: t.start()\nfor t in ts: t.join()\n")
    assert retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path).returncode == 0
    program.write_text(program.read_text().replace("range(2)", "range(3)"))
    replayed = retrace("replay", "rec.retrace", "--verdict", "v.json", "--stuck-timeout", "2", cwd=tmp_path)
    assert replayed.returncode == 70
    d = json.loads((tmp_path / "v.json").read_text())["divergence"]
    assert d["kind"] in ("mismatch", "extra-call")
    assert d["actual"]["call"] == "thread.start('0.3')"
