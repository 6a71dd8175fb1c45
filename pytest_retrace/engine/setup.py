"""Connection set-up: what a driver, a pool or a framework does to a connection as it opens it.

A service records each request on its own, and a request served on a connection an earlier request opened
holds none of that connection's set-up: the connect, and what the pool or framework does to a new connection
(SQLAlchemy asks the server's version and settings, Django sets the time zone, psycopg2 registers types). Its
replay starts cold and opens the connection again. So while a connection is set up (``state.setting_up``, which
the adapters enter for the connect and for a pool's or framework's opening and upkeep of a connection) every
call is also remembered for the whole process (:data:`PROCESS_LOG`, each call key with its first answers), and every
in-process recording carries that log and which of its own events were set-up ones (:class:`Setup`).

On replay (:class:`SetupAnswers`), a call made while setting up a connection that is not the recording's next
event is answered from the log, by call key; set-up events the recording holds next that the replay does not
make (its connection was open already) are passed over. Both are counted and reported, not divergences, and
only set-up is ever answered this way: a call of the program's own work on its data answers from the
recording's events in order, or diverges.
"""

from __future__ import annotations

import _thread
from typing import Any

from ..format import codec
from ..format.events import (
    ANSWERS_PER_KEY,
    MAIN,
    MAX_SETUP_KEYS,
    DeferredEvent,
    Event,
    Setup,
    call_key,
    describe_call,
)
from ..record import Record
from .keyed import Answers


class SetupLog:
    """The set-up calls this process made (record side): each call key with its first answers."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bytes], list[Any]] = {}
        self._lock = _thread.allocate_lock()  # not threading.Lock: boundaries replace that one

    def add(self, name: str, args: Any, result: Any) -> None:
        try:
            key = call_key(name, args)
            # A copy of its own, taken now: the program may change the result it was handed before a recording
            # that carries the log is written.
            result = codec.unpackb(codec.packb(result))
        except Exception:  # a value the trace cannot hold: the recording marks it, the log leaves it out
            return
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) < MAX_SETUP_KEYS:
                    # Arguments as the sink holds them (a list packs as the recording's events do).
                    self._entries[key] = [name, list(args) if type(args) is tuple else args, [result]]
            elif len(entry[2]) < ANSWERS_PER_KEY:
                entry[2].append(result)

    def snapshot(self) -> list[list[Any]]:
        with self._lock:
            return [[name, args, list(results)] for name, args, results in self._entries.values()]


PROCESS_LOG = SetupLog()


class SetupSummary(Record):
    """How a replay met connection set-up (part of the verdict): calls answered from the recording's set-up log
    (its connection was open before the recorded request began), and recorded set-up events passed over."""

    __slots__ = ("answered", "passed_over")

    def __init__(self, answered: list[str] | None = None, passed_over: list[str] | None = None) -> None:
        self.answered: list[str] = answered or []
        self.passed_over: list[str] = passed_over or []

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SetupSummary:
        return cls(data["answered"], data["passed_over"])


class SetupAnswers:
    """Replay side: a recording's set-up, to answer the set-up it does not hold next and pass over what it holds
    that the replay does not make."""

    def __init__(self, setup: Setup) -> None:
        self.marked = frozenset(setup.marked)
        self._by_key: dict[tuple[str, bytes], Answers] = {}
        for name, args, results in setup.log:
            answers = Answers()
            # (a value whose type was not importable when read is resolved when handed out, as in the events)
            answers.events = [(DeferredEvent if codec.has_deferred(result) or codec.has_deferred(args) else Event)(
                -1, name, args, result, MAIN) for result in results]
            try:
                self._by_key[call_key(name, args)] = answers
            except Exception:
                continue  # a value nothing can encode again: that call is not answered from the log
        self.summary = SetupSummary()

    def answer(self, name: str, args: Any) -> Event | None:
        """The log's answer to this set-up call, or None when it has none."""
        try:
            answers = self._by_key.get(call_key(name, args))
        except Exception:
            return None
        if answers is None:
            return None
        self.summary.answered.append(describe_call(name, args))
        return answers.next()

    def passes_over(self, event: Event) -> bool:
        """Whether ``event`` is a recorded set-up event the replay may pass over (and note that it did)."""
        if event.index not in self.marked:
            return False
        self.summary.passed_over.append(event.describe())
        return True
