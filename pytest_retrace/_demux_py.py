"""Pure-Python twin of the native demultiplexer (``pytest_retrace._native``).

Same interface and semantics; used where the extension cannot build, or when
``PYTEST_RETRACE_PUREPYTHON=1`` forces it. Built on raw ``_thread`` locks and a
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

    __slots__ = ("_order", "_pos", "_mutex", "_waiters", "_aborted")

    def __init__(self, order: list[int]) -> None:
        self._order = list(order)
        self._pos = 0
        self._mutex = _allocate_lock()
        self._waiters: dict[int, list[_thread.LockType]] = {}  # per thread: locks its waiters sleep on
        self._aborted = False

    def _ready(self, tid: int) -> int:
        if self._aborted:
            return ABORTED
        if self._pos >= len(self._order):
            return EXHAUSTED
        return self._pos if self._order[self._pos] == tid else TIMED_OUT

    def _step(self) -> None:
        self._pos += 1
        if self._pos < len(self._order):
            for waiter in self._waiters.pop(self._order[self._pos], ()):
                waiter.release()

    def _wait_for_turn(self, tid: int, timeout: float, take: bool) -> int:
        deadline = _monotonic() + timeout
        seen = self._pos
        with self._mutex:
            while (result := self._ready(tid)) == TIMED_OUT:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    if self._pos == seen:  # nothing anywhere made progress for `timeout` seconds
                        break
                    seen, deadline = self._pos, _monotonic() + timeout
                    continue
                waiter = _allocate_lock()
                waiter.acquire()
                self._waiters.setdefault(tid, []).append(waiter)
                self._mutex.release()
                try:
                    woken = waiter.acquire(True, remaining)
                finally:
                    self._mutex.acquire()
                if not woken and waiter in self._waiters.get(tid, ()):
                    self._waiters[tid].remove(waiter)
            if result >= 0 and take:
                self._step()
            return result

    def claim(self, tid: int, timeout: float) -> int:
        return self._wait_for_turn(tid, timeout, True)

    def turn(self, tid: int, timeout: float) -> int:
        return self._wait_for_turn(tid, timeout, False)

    def advance(self) -> None:
        with self._mutex:
            if self._pos < len(self._order):
                self._step()

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
