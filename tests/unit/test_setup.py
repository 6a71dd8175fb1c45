"""Connection set-up (engine/setup.py): a replay answers the set-up of a connection the recorded request found
open from the recording's set-up log, passes over recorded set-up it does not make, and never answers anything
else that way; the file classifier counts package files and declared folders as code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_retrace.boundaries.files import Classifier
from pytest_retrace.engine.divergence import ReplayDivergence
from pytest_retrace.engine.replayer import Replayer
from pytest_retrace.engine.setup import SetupLog
from pytest_retrace.engine.state import end_main_thread, setting_up, start_main_thread
from pytest_retrace.format.events import MAIN, Event, Setup


@pytest.fixture(autouse=True)
def main_thread() -> Iterator[None]:
    start_main_thread()
    yield
    end_main_thread()


def events(*calls: tuple[str, object, object]) -> list[Event]:
    return [Event(i, name, args, result, MAIN) for i, (name, args, result) in enumerate(calls)]


LOG = [["db.connect", ("shop",), [{"version": 16}]], ["db.execute", ("show time zone",), [["UTC"]]],
       ["time.time", None, [1.0, 2.0]]]


def never(*a: object) -> object:
    raise AssertionError("a replay never runs the real call")


def test_set_up_the_recording_does_not_hold_is_answered_from_its_log() -> None:
    engine = Replayer(events(("db.execute", ("select 1",), [[1]])), setup=Setup([], LOG))
    with setting_up:
        assert engine.call("db.connect", ("shop",), never) == {"version": 16}
        assert engine.call("time.time", None, never) == 1.0
        assert engine.call("time.time", None, never) == 2.0
        assert engine.call("time.time", None, never) == 2.0  # the last answer repeats
        assert engine.call("db.execute", ("show time zone",), never) == ["UTC"]
    assert engine.call("db.execute", ("select 1",), never) == [[1]]
    assert engine.setup is not None and len(engine.setup.answered) == 5 and engine.consumed == 1


def test_set_up_the_recording_holds_next_is_followed_in_order() -> None:
    recorded = events(("db.connect", ("shop",), {"version": 17}), ("db.execute", ("select 1",), [[1]]))
    engine = Replayer(recorded, setup=Setup([0], LOG))
    with setting_up:
        assert engine.call("db.connect", ("shop",), never) == {"version": 17}  # the recording's own, not the log's
    assert engine.call("db.execute", ("select 1",), never) == [[1]]
    assert engine.setup is None  # nothing answered from the log, nothing passed over


def test_recorded_set_up_the_replay_does_not_make_is_passed_over() -> None:
    recorded = events(("db.connect", ("shop",), {"version": 16}), ("db.execute", ("select 1",), [[1]]))
    engine = Replayer(recorded, setup=Setup([0], LOG))
    assert engine.call("db.execute", ("select 1",), never) == [[1]]
    assert engine.setup is not None and engine.setup.passed_over == ["db.connect('shop')"]


def test_only_set_up_is_answered_from_the_log_and_only_set_up_is_passed_over() -> None:
    engine = Replayer(events(("db.execute", ("select 1",), [[1]])), setup=Setup([], LOG))
    with pytest.raises(ReplayDivergence):  # outside set-up, a call the log knows is still a divergence
        engine.call("db.execute", ("show time zone",), never)
    engine = Replayer(events(("db.execute", ("select 1",), [[1]]), ("db.execute", ("select 2",), [[2]])),
                      setup=Setup([], LOG))
    with pytest.raises(ReplayDivergence):  # a recorded call that is not set-up is never passed over
        engine.call("db.execute", ("select 2",), never)


def test_set_up_that_differs_from_the_recorded_set_up_diverges() -> None:
    engine = Replayer(events(("db.connect", ("shop",), {"version": 16}), ("db.execute", ("select 1",), [[1]])),
                      setup=Setup([0], LOG))
    with setting_up, pytest.raises(ReplayDivergence):
        engine.call("db.connect", ("other",), never)


def test_the_log_keeps_each_key_once_with_a_copy_of_its_first_answers() -> None:
    log = SetupLog()
    result = {"rows": [1]}
    for _ in range(10):
        log.add("db.connect", ("shop",), result)
    result["rows"].append(2)  # the program changes what it was handed: the log keeps it as it was
    log.add("db.bad", (object(),), 1)  # nothing can encode it: left out
    assert log.snapshot() == [["db.connect", ["shop"], [{"rows": [1]}] * 8]]


def test_package_files_and_declared_folders_are_code(tmp_path: Path) -> None:
    package = tmp_path / "app" / "shop"
    (package / "templates" / "emails").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (tmp_path / "app" / "data").mkdir()
    (tmp_path / "app" / "templates").mkdir()
    classifier = Classifier([])
    assert classifier.kind(str(package / "templates" / "emails" / "welcome.html")) == "code"
    assert classifier.kind(str(package / "sql" / "q.sql")) == "code"
    assert classifier.kind(str(package)) == "code"
    assert classifier.kind(str(tmp_path / "app" / "data" / "prices.csv")) == "data"
    assert classifier.kind(str(tmp_path / "app" / "templates" / "page.html")) == "data"
    classifier.add_code_folders([str(tmp_path / "app" / "templates")])
    assert classifier.kind(str(tmp_path / "app" / "templates" / "page.html")) == "code"
    assert classifier.kind(str(tmp_path / "app" / "templates-old" / "page.html")) == "data"


def test_a_requests_redaction_is_made_only_when_a_call_asks_for_it() -> None:
    from pytest_retrace.engine.recorder import Recorder
    from pytest_retrace.format.tape import MemoryTape
    from pytest_retrace.redaction import DEFAULT

    made: list[int] = []
    engine = Recorder(MemoryTape())
    engine.redact_later(lambda: made.append(1) or DEFAULT.also_known(["s3cr3t-value"]))
    engine.call("time.time", None, lambda: 1.0)
    assert made == []  # a clock never asks
    assert engine.redaction.known == ("s3cr3t-value",) and engine.redaction.known == ("s3cr3t-value",)
    assert made == [1]


def test_locks_a_service_makes_outside_recordings_are_real_locks() -> None:
    """Its futures and queues cost a service nothing; a lock made by a recorded request's thread is recorded."""
    import _thread

    from pytest_retrace.boundaries import sync
    from pytest_retrace.engine import state
    from pytest_retrace.engine.recorder import Recorder
    from pytest_retrace.engine.router import Router
    from pytest_retrace.format.tape import MemoryTape

    end_main_thread()  # this thread is a service's own: outside every recording
    uninstall = state.install(Router())
    try:
        assert type(sync.RecordedLock()) is _thread.LockType
        assert type(sync.RecordedRLock()) is _thread.RLock
        state.start_call_thread(Recorder(MemoryTape()))
        assert isinstance(sync.RecordedLock(), sync.RecordedLock)
        assert isinstance(sync.RecordedRLock(), sync.RecordedRLock)
    finally:
        state.end_call_thread()
        uninstall()
        start_main_thread()
