"""Pure-Python twin of the native demultiplexer (``pytest_retrace._native``).

Same interface and semantics; used where the extension cannot build, or when
``PYTEST_RETRACE_PUREPYTHON=1`` forces it.
"""

from __future__ import annotations

import threading
import time

TIMED_OUT = -1
EXHAUSTED = -2
ABORTED = -3


class Demux:
    """Hands recorded events to replaying threads in the recorded order."""

    __slots__ = ("_order", "_pos", "_cond", "_aborted")

    def __init__(self, order: list[int]) -> None:
        self._order = list(order)
        self._pos = 0
        self._cond = threading.Condition(threading.Lock())
        self._aborted = False

    def _take_if_turn(self, tid: int) -> int:
        if self._aborted:
            return ABORTED
        if self._pos >= len(self._order):
            return EXHAUSTED
        if self._order[self._pos] != tid:
            return TIMED_OUT
        index = self._pos
        self._pos += 1
        self._cond.notify_all()
        return index

    def claim(self, tid: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (result := self._take_if_turn(tid)) == TIMED_OUT:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    return self._take_if_turn(tid)
            return result

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    @property
    def position(self) -> int:
        return self._pos

    def expected(self) -> int:
        with self._cond:
            return self._order[self._pos] if self._pos < len(self._order) else -1

    def __len__(self) -> int:
        return len(self._order)
