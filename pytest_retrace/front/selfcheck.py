"""``--retrace-self-check``: record each ordinary test while it runs, replay it at once.

A test whose replay is not faithful fails with the divergence report: this is how a
team proves in CI that its code stays replayable before production relies on it.
Only the test function itself is recorded (fixtures run once, outside); its replay
runs the same function again, with the same fixture values, against the recording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

import pytest

from ..boundaries import Options, install
from ..engine.divergence import ReplayDivergence
from ..engine.patch import Patcher
from ..engine.recorder import Recorder
from ..engine.replayer import Replayer
from ..engine.state import end_main_thread, start_main_thread
from ..format import codec
from ..format.tape import MemoryTape
from ..redaction import Redaction
from ..runner.verdict import Status, Verdict
from .report import format_verdict


def _run_under(engine: Any, call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    patcher = Patcher()
    start_main_thread()
    try:
        install(engine, patcher, Options())
        try:
            return call(), None
        except BaseException as exc:  # the test's own failure is an outcome to compare
            return None, exc
    finally:
        patcher.undo()
        end_main_thread()


def _outcome(exc: BaseException | None) -> str:
    """How the test ended. Memory addresses are masked: the two runs share one process, so objects
    made anew for the replay (our own wrappers among them) sit elsewhere, and nothing else differs."""
    if exc is None:
        return "passed"
    return f"{type(exc).__module__}.{type(exc).__qualname__}: " + re.sub(r"0x[0-9a-f]+", "0x…", str(exc))


def check(item: pytest.Function, redaction: Redaction) -> Generator[None, Any, Any]:
    """The body of the pytest_pyfunc_call wrapper for one test, recorded with the project's ``redaction``
    (what production recordings redact must replay faithfully redacted)."""
    tape = MemoryTape()
    recorder = Recorder(tape)
    recorder.redaction = redaction
    patcher = Patcher()
    start_main_thread()
    install(recorder, patcher, Options())
    try:
        result = yield
        recorded_exc = None
    except BaseException as exc:
        result, recorded_exc = None, exc
    finally:
        patcher.undo()
        end_main_thread()
    try:
        events = tape.events()
    except (codec.UnencodableValue, TypeError, ValueError, OverflowError) as exc:
        pytest.fail(f"retrace self-check: {item.nodeid} cannot be recorded: {exc}", pytrace=False)
    args = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    replayer = Replayer(events)
    replayer.redaction = redaction
    try:
        _, replayed_exc = _run_under(replayer, lambda: item.obj(**args))
    finally:
        replayer.finish()
    problem = None
    if isinstance(replayed_exc, ReplayDivergence):
        divergence = replayed_exc.divergence
        problem = format_verdict(Verdict(f"self-check of {item.nodeid}", Status.DIVERGED, divergence,
                                         events_recorded=len(events), events_consumed=divergence.index))
    elif _outcome(replayed_exc) != _outcome(recorded_exc):
        problem = (f"retrace self-check: {item.nodeid}: the replay ended otherwise than the run\n"
                   f"  run:    {_outcome(recorded_exc)}\n  replay: {_outcome(replayed_exc)}")
    elif replayer.consumed < len(events):
        nxt = events[replayer.consumed]
        problem = (f"retrace self-check: {item.nodeid}: the replay ended without making the recorded call "
                   f"#{nxt.index} {nxt.describe()}")
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    if recorded_exc is not None:
        raise recorded_exc
    return result
