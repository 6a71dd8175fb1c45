"""Signal handlers run at the recorded place: a handler's start is an event (``signal.handler``), timers and
waits for signals are events, and a replay runs the program's handler where the recording has it, with no
timer armed and nothing sending (law 2), while a recorded program gets its signals as it does plainly (law 1).

Each program of ``fixtures/programs/signals`` runs plainly, then recorded (the same stable output), then is
replayed twice, with the native and the pure-Python demultiplexer: the same output, every event consumed, the
same verdict both times.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import Recorder, assert_faithful, plain, retrace

PROGRAMS = {
    # an interval timer's handler reads the clock while the main loop reads the clock and a data file, and the
    # loop ends on the fifth tick: where each tick landed between the loop's steps is printed (stderr)
    "ticker": "ticks 5 in order True words 3 timer off True\n",
    # alarm, then pause until it rings; sigpending and alarm(0) are events too
    "alarm_pause": "no alarm before: True\nwoken by [('SIGALRM', True)] pending [] left 0\n",
    # the timer interrupts time.sleep: once resumed after the handler (PEP 475), once ended by its exception
    "sleep_interrupted": "slept through 1 tick\nhandler is ours: True\n",
    # a child the program starts sends it SIGUSR1 (a recorded subprocess; on replay nothing sends)
    "usr1_from_child": "child status 0 got 1 signal(s)\n",
    # a second thread works under a lock while the ticks land on the main thread (demultiplexer replay)
    "threaded_ticker": "ticks 4 in order True worked True\n",
}
DEMUX = {"native": {}, "pure-python": {"PYTEST_RETRACE_PUREPYTHON": "1"}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_text("one two three\n")
    return tmp_path


@pytest.mark.parametrize("demux", DEMUX)
@pytest.mark.parametrize("program", PROGRAMS)
def test_handlers_run_at_their_recorded_place(project: Path, program: str, demux: str) -> None:
    script = f"signals/{program}.py"
    assert plain(script, cwd=project) == PROGRAMS[program]
    recorder = Recorder(project)
    recorded = recorder.record(script)
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout == PROGRAMS[program]  # law 1: as plainly
    shown = retrace("show", "rec.retrace", cwd=project).stdout
    assert "signal.handler(" in shown
    first = assert_faithful(recorder, recorded, env=DEMUX[demux])  # law 2
    second = assert_faithful(recorder, recorded, env=DEMUX[demux])
    assert first.verdict is not None and second.verdict is not None
    assert first.verdict["status"] == second.verdict["status"] == "ok"
    assert first.verdict["events_consumed"] == second.verdict["events_consumed"]


def test_ticks_land_where_recorded_run_after_run(project: Path) -> None:
    """The place of each tick between the loop's steps differs from run to run; every recording replays its own."""
    recorder = Recorder(project)
    for run in range(4):
        recorded = recorder.record("signals/ticker.py", name=f"run{run}")
        assert recorded.returncode == 0, recorded.stderr
        assert_faithful(recorder, recorded, name=f"run{run}", env=DEMUX["native" if run % 2 else "pure-python"])


def test_a_handler_the_replay_cannot_run_is_a_divergence(project: Path) -> None:
    """A recorded handler event where the program (changed since) has no handler installed diverges, naming it."""
    recorder = Recorder(project)
    recorded = recorder.record("signals/alarm_pause.py")
    assert recorded.returncode == 0, recorded.stderr
    copy = project / "alarm_pause.py"
    copy.write_text(copy.read_text().replace("signal.signal(signal.SIGALRM, on_alarm)\n", ""))
    replayed = recorder.replay()
    assert replayed.returncode == 70
    assert replayed.verdict is not None and replayed.verdict["status"] == "diverged"
    assert "signal.handler" in replayed.stderr
