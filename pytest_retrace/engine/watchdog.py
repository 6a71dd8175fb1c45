"""A multi-threaded replay's watch: where each replaying thread stands, and whether any still moves.

A replay where for ``stuck_timeout`` seconds no event was handed out and no thread of the program
moved is stuck, whatever the threads are blocked in: the :class:`Watchdog` says so once, and the
report lists every thread (:meth:`ThreadBook.report`).
"""

from __future__ import annotations

import _thread
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..format.events import Event, describe_call
from .divergence import ThreadReport
from .stack import replay_stack
from .state import mark_outside

# Taken before boundaries patch them: the watch runs on real time and a raw thread.
_sleep = time.sleep
_monotonic = time.monotonic
_start_raw_thread = _thread.start_new_thread


class ThreadBook:
    """Each logical thread of the replay: its OS thread, and what it waits for while it waits in the engine."""

    def __init__(self, main: str) -> None:
        self.idents: dict[str, int] = {main: _thread.get_ident()}
        # thread -> what it does now: (doing, name, args) while in the engine, or "finished"
        self.states: dict[str, Any] = {}

    def started(self, tid: str) -> None:
        self.idents[tid] = _thread.get_ident()

    def moving(self) -> list[tuple[int, int, int]]:
        """The current instruction of each thread that runs program code (not one waiting in the engine,
        which may poll)."""
        frames = sys._current_frames()
        return [(ident, id(f), f.f_lasti) for tid, ident in list(self.idents.items())
                if tid not in self.states and (f := frames.get(ident)) is not None]

    def report(self, events: Sequence[Event], position: int) -> list[ThreadReport]:
        """For a stuck replay: each logical thread, what it waits for, its next recorded event, its stack."""
        frames = sys._current_frames()
        known = list(self.idents)
        upcoming = events[position] if position < len(events) else None
        if upcoming is not None and upcoming.tid not in self.idents:
            known.append(upcoming.tid)
        reports = []
        for tid in known:
            frame = frames.get(self.idents[tid]) if tid in self.idents else None
            state = self.states.get(tid)
            if isinstance(state, tuple):
                state = f"{state[0]} {describe_call(state[1], state[2])}"
            if tid not in self.idents:
                state = "not started in the replay"
            elif state is None:
                state = "running, or blocked outside any recorded call" if frame is not None else "finished"
            following = next((e for e in events[position:] if e.tid == tid), None)
            reports.append(ThreadReport(tid, state, None if following is None else following.index,
                                        None if following is None else following.describe(),
                                        replay_stack(frame) if frame is not None else []))
        return reports


class Watchdog:
    """Watches ``progress()`` from a raw thread of its own; calls ``on_stuck()`` once when it has not changed
    for ``timeout`` seconds, unless :meth:`finish` came first."""

    def __init__(self, timeout: float, progress: Callable[[], Any], on_stuck: Callable[[], None]) -> None:
        self.timeout = timeout
        self.finished = False
        self._progress = progress
        self._on_stuck = on_stuck
        _start_raw_thread(self._watch, ())

    def finish(self) -> None:
        self.finished = True

    def _watch(self) -> None:
        mark_outside()
        period = min(1.0, self.timeout / 4)
        last, since = None, _monotonic()
        while not self.finished:
            _sleep(period)
            snapshot = self._progress()
            now = _monotonic()
            if snapshot != last:
                last, since = snapshot, now
            elif now - since >= self.timeout and not self.finished:
                self._on_stuck()
                return
