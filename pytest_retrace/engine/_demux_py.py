"""Pure-Python twin of the native demultiplexer (``pytest_retrace._native``, native/demux.cpp).

Same interface and semantics, the baton included; used where the extension cannot build,
or when ``PYTEST_RETRACE_PUREPYTHON=1`` forces it. Built on raw ``_thread`` locks and a
clock taken at import: replay patches ``threading``'s locks and ``time``'s clocks.
"""

from __future__ import annotations

import _thread
import time

TIMED_OUT = -1
EXHAUSTED = -2
ABORTED = -3

_allocate_lock = _thread.allocate_lock
_monotonic = time.monotonic


class Demux:
    """Hands recorded events to replaying threads in the recorded order."""

    __slots__ = ("_order", "_pos", "_mutex", "_waiters", "_aborted", "_grace", "_runner", "_handed_out")

    def __init__(self, order: list[int], grace: float = 0.05) -> None:
        self._order = list(order)
        self._pos = 0
        self._mutex = _allocate_lock()
        self._waiters: dict[int, list[_thread.LockType]] = {}  # per thread: locks its waiters sleep on
        self._aborted = False
        self._grace = grace
        self._runner = -1  # the thread that took the last event and has not come back since
        self._handed_out = 0.0

    def _ready(self, tid: int) -> int:
        if self._aborted:
            return ABORTED
        if self._pos >= len(self._order):
            return EXHAUSTED
        if self._order[self._pos] != tid:
            return TIMED_OUT
        if self._runner not in (-1, tid) and _monotonic() < self._handed_out + self._grace:
            return TIMED_OUT
        return self._pos

    def _wake_next(self) -> None:
        if self._pos < len(self._order):
            for waiter in self._waiters.pop(self._order[self._pos], ()):
                waiter.release()

    def _come_back(self, tid: int) -> None:
        if self._runner == tid:
            self._runner = -1
            self._wake_next()

    def _take(self, tid: int, advance: bool) -> None:
        self._runner = tid
        self._handed_out = _monotonic()
        if advance:
            self._pos += 1
            self._wake_next()

    def _wait_for_turn(self, tid: int, timeout: float, advance: bool) -> int:
        deadline = _monotonic() + timeout
        seen = self._pos
        with self._mutex:
            self._come_back(tid)
            while (result := self._ready(tid)) == TIMED_OUT:
                now = _monotonic()
                if now >= deadline:
                    if self._pos == seen:  # nothing anywhere made progress for `timeout` seconds
                        break
                    seen, deadline = self._pos, now + timeout
                    continue
                until = deadline
                if self._pos < len(self._order) and self._order[self._pos] == tid:
                    until = min(deadline, self._handed_out + self._grace)  # only the baton holds it back
                waiter = _allocate_lock()
                waiter.acquire()
                self._waiters.setdefault(tid, []).append(waiter)
                self._mutex.release()
                try:
                    woken = waiter.acquire(True, max(until - now, 0.0))
                finally:
                    self._mutex.acquire()
                if not woken and waiter in self._waiters.get(tid, ()):
                    self._waiters[tid].remove(waiter)
            if result >= 0:
                self._take(tid, advance)
            return result

    def claim(self, tid: int, timeout: float) -> int:
        return self._wait_for_turn(tid, timeout, True)

    def turn(self, tid: int, timeout: float) -> int:
        return self._wait_for_turn(tid, timeout, False)

    def advance(self) -> None:
        with self._mutex:
            if self._pos < len(self._order):
                self._pos += 1
                self._wake_next()

    def park(self, tid: int) -> None:
        with self._mutex:
            self._come_back(tid)

    def abort(self) -> None:
        with self._mutex:
            self._aborted = True
            for waiters in self._waiters.values():
                for waiter in waiters:
                    waiter.release()
            self._waiters.clear()

    @property
    def position(self) -> int:
        return self._pos

    def expected(self) -> int:
        with self._mutex:
            return self._order[self._pos] if self._pos < len(self._order) else -1

    def __len__(self) -> int:
        return len(self._order)
