"""Answering by call key: a crash recording replayed on the fixed code's new path.

After a fix the code usually takes a new path, so the first divergence of a crash recording's
replay does not end it: from there on every call is answered by its call key from the events not
yet consumed (in order, the last one repeating). Clocks and entropy the recording never read are
read live (they change nothing in the world); calls an adapter declared to return nothing the
program reads (transaction control) are assumed to succeed; any other call with no answer raises
:class:`~pytest_retrace.UnrecordedCall` into the program.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import UnrecordedCall
from ..format.events import MAIN, Event, call_key, describe_call
from ..record import Record
from .divergence import Divergence

LIVE_WHEN_UNRECORDED = ("time.", "datetime.", "date.", "os.urandom", "os.getrandom", "random.")
LIVE = object()  # an event result that says: run the real call
_LIVE_EVENT = Event(-1, "(live)", None, LIVE, MAIN)
_NONE_EVENT = Event(-1, "(assumed to succeed)", None, None, MAIN)


class KeyedSummary(Record):
    """How a crash recording's replay was answered once the code took a new path (part of the verdict)."""

    __slots__ = ("first_divergence", "answered_by_key", "unanswered", "answered_live")

    def __init__(self, first_divergence: Divergence, answered_by_key: int = 0, unanswered: list[str] | None = None,
                 answered_live: list[str] | None = None) -> None:
        self.first_divergence = first_divergence
        self.answered_by_key = answered_by_key
        self.unanswered: list[str] = unanswered or []  # calls that raised UnrecordedCall
        self.answered_live: list[str] = answered_live or []  # read live (clocks, entropy) or assumed to succeed

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyedSummary:
        return cls(Divergence.from_json(data["first_divergence"]), data["answered_by_key"], data["unanswered"],
                   data["answered_live"])


class Answers:
    """The recorded answers to one call key, handed out in order, the last one repeating."""

    __slots__ = ("events", "taken")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.taken = 0

    def next(self) -> Event:
        event = self.events[self.taken]
        if self.taken < len(self.events) - 1:
            self.taken += 1
        return event


class KeyedAnswers:
    """The events not consumed at the first divergence, by call key."""

    def __init__(self, events: Iterable[Event], first_divergence: Divergence, succeed: set[str]) -> None:
        self._by_key: dict[tuple[str, bytes], Answers] = {}
        for event in events:
            self._by_key.setdefault(call_key(event.name, event.args), Answers()).events.append(event)
        self._succeed = succeed
        self.summary = KeyedSummary(first_divergence)

    def answer(self, name: str, args: Any) -> Event:
        """The recorded answer to this call (or a live or assumed one); raises UnrecordedCall when none."""
        answers = self._by_key.get(call_key(name, args))
        if answers is None:
            summary = self.summary
            if name in self._succeed:
                summary.answered_live.append(describe_call(name, args))
                return _NONE_EVENT
            if name.startswith(LIVE_WHEN_UNRECORDED):
                summary.answered_live.append(describe_call(name, args))
                return _LIVE_EVENT
            call = describe_call(name, args)
            summary.unanswered.append(call)
            raise UnrecordedCall(
                f"{call}: the recording holds no answer for this call (the replay answers by call key "
                "since the code took a new path); catch pytest_retrace.UnrecordedCall, or record again"
            )
        self.summary.answered_by_key += 1
        return answers.next()
