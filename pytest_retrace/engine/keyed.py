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
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnrecordedCall
from ..format.events import MAIN, Event, call_key, describe_call
from .divergence import Divergence

LIVE_WHEN_UNRECORDED = ("time.", "datetime.", "date.", "os.urandom", "os.getrandom", "random.")
LIVE = object()  # an event result that says: run the real call
_LIVE_EVENT = Event(-1, "(live)", None, LIVE, MAIN)
_NONE_EVENT = Event(-1, "(assumed to succeed)", None, None, MAIN)


@dataclass
class KeyedSummary:
    """How a crash recording's replay was answered once the code took a new path (part of the verdict)."""

    first_divergence: Divergence
    answered_by_key: int = 0
    unanswered: list[str] = field(default_factory=list)
    answered_live: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"first_divergence": self.first_divergence.to_json(), "answered_by_key": self.answered_by_key,
                "unanswered": self.unanswered, "answered_live": self.answered_live}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyedSummary:
        return cls(Divergence.from_json(data["first_divergence"]), data["answered_by_key"], data["unanswered"],
                   data["answered_live"])


class KeyedAnswers:
    """The events not consumed at the first divergence, by call key."""

    def __init__(self, events: Iterable[Event], first_divergence: Divergence, succeed: set[str]) -> None:
        self._by_key: dict[tuple[str, bytes], list[Any]] = {}
        for event in events:
            self._by_key.setdefault(call_key(event.name, event.args), [0]).append(event)
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
        position = answers[0]
        if position < len(answers) - 2:
            answers[0] = position + 1
        self.summary.answered_by_key += 1
        return answers[1 + position]  # type: ignore[no-any-return]
