"""A replay's watches: where each replaying thread stands and whether any still moves; how far it has come.

A replay where for ``stuck_timeout`` seconds no event was handed out and no thread of the program
moved is stuck, whatever the threads are blocked in: the :class:`Watchdog` says so once, and the
report lists every thread (:meth:`ThreadBook.report`). :class:`ProgressFile` tells the launcher how many
events the replay has consumed, for the progress line of a long replay (``runner/progress.py``).
"""

from __future__ import annotations

import _thread
import os
import struct
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
_open, _pwrite, _close = os.open, os.pwrite, os.close


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


PROGRESS_PERIOD = 0.2  # seconds between two looks at the count
PROGRESS = struct.Struct("<Q")  # the progress file: the count of events consumed


class ProgressFile:
    """Copies ``consumed()`` into the file at ``path`` (``PROGRESS``, at its start) a few times a second, where the
    launcher reads it. It runs on a thread that has nothing else to do (:meth:`run`): the replay's hot path does
    nothing for it, and reading the count is two lengths (``Replayer.consumed``)."""

    def __init__(self, path: str, consumed: Callable[[], int]) -> None:
        self._path = path
        self._consumed = consumed

    def run(self) -> None:
        """Until the process ends (a replay's process is its own), on the calling thread, which is ours."""
        mark_outside()
        try:
            fd = _open(self._path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return  # the launcher is gone, or stopped watching: nobody reads it
        last = -1
        try:
            while True:
                _sleep(PROGRESS_PERIOD)
                count = self._consumed()
                if count != last:
                    _pwrite(fd, PROGRESS.pack(count), 0)
                    last = count
        except Exception:  # noqa: BLE001 - the progress line is a courtesy: its failure never touches the replay
            _close(fd)

    def start(self) -> None:
        """On a raw thread of its own (for a replay with no idle thread to run it on)."""
        _start_raw_thread(self.run, ())
