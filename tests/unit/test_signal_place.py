"""Where a replay runs a recorded signal handler: the watch for its place (boundaries/signals.Place)."""

from __future__ import annotations

from typing import Any

from pytest_retrace.boundaries.signals import Place
from pytest_retrace.format.events import MAIN, Event


class _Handlers:
    armed: Any = None
    engine: Any = None


class _Watch(Place):
    arrived: list[str]

    def arrive(self) -> None:
        self.arrived.append(STARTED[-1])  # where the program stands when the watch gets there
        self.disarm()


STARTED: list[str] = ["before"]


def _started() -> None:
    STARTED.append("inside")  # the handler's recorded place: this function, as it starts


def _watching(lasti: int) -> list[str]:
    code = _started.__code__
    name = getattr(code, "co_qualname", code.co_name)  # (3.10: no qualified names in code objects)
    handler = Event(1, "signal.handler", (14,), [name, code.co_firstlineno, lasti], MAIN)
    watch = _Watch(_Handlers(), handler)  # type: ignore[arg-type]
    watch.arrived = []
    try:
        _started()
    finally:
        watch.disarm()
    return watch.arrived


def test_a_handler_recorded_as_a_function_started_runs_as_it_starts_again() -> None:
    # A signal that lands as a function called from C starts (a decoder's __init__ that open() calls) is placed at
    # the function's first instruction, for which no opcode event comes (and none at all on 3.13 in a frame whose
    # watch starts at its call): the watch arrives at the call.
    assert _watching(0) == ["before"]  # before the function's first line ran


def test_a_handler_recorded_further_in_does_not_run_as_the_function_starts() -> None:
    assert "before" not in _watching(10_000)
