"""Divergences: where and how a replay stopped following its recording, as a typed record.

The engine builds one at the first call that differs from the recording (``mismatch``), a call
after the last recorded one (``extra-call``), a call on a thread a single-threaded recording did
not have (``thread``), the end of a truncated recording (``truncated``), or a replay in which
nothing moved for too long (``stuck``). The runner adds the ones it finds after the run
(``missing-calls``, ``outcome``, ``died``). Its JSON form is part of the verdict file's contract.
"""

from __future__ import annotations

from typing import Any

from ..enums import StrEnum
from ..format.events import Event, describe_call, short_repr
from ..record import Record, to_json

DIVERGED_EXIT = 70  # exit status of a replay that is not faithful


class DivergenceKind(StrEnum):
    MISMATCH = "mismatch"  # another call than the recorded one
    EXTRA_CALL = "extra-call"  # a call after the last recorded one
    THREAD = "thread"  # a call from a thread a single-threaded recording does not have
    TRUNCATED = "truncated"  # the recording stops early: not a divergence of the program's
    STUCK = "stuck"  # no thread made progress for the stuck timeout
    MISSING_CALLS = "missing-calls"  # the program ended without making the recorded calls
    OUTCOME = "outcome"  # every call matched, the run ended otherwise
    DIED = "died"  # the replay died before it could report

    @property
    def found_by_engine(self) -> bool:
        """Found at a call, while the program ran (the other kinds are found after the run)."""
        return self not in (DivergenceKind.MISSING_CALLS, DivergenceKind.OUTCOME, DivergenceKind.DIED)


class Call(Record):
    """One side of a divergence at a call: the call's name, its arguments' repr, and the two as one line.
    ``name`` is None for a call known only by its description (the one a program ended without making)."""

    __slots__ = ("call", "name", "args")

    def __init__(self, call: str, name: str | None = None, args: str | None = None) -> None:
        self.call = call
        self.name = name
        self.args = args

    @classmethod
    def of(cls, name: str, args: Any) -> Call:
        return cls(describe_call(name, args), name, None if args is None else repr(args))

    def to_json(self) -> dict[str, Any]:
        if self.name is None:
            return {"call": self.call}
        return {"name": self.name, "args": self.args, "call": self.call}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Call:
        return cls(data["call"], data.get("name"), data.get("args"))


class Preceding(Record):
    """An event that matched just before the divergence."""

    __slots__ = ("index", "thread", "call", "result")

    def __init__(self, index: int, thread: str, call: str, result: str) -> None:
        self.index = index
        self.thread = thread
        self.call = call
        self.result = result

    @classmethod
    def of(cls, event: Event) -> Preceding:
        return cls(event.index, event.tid, event.describe(), short_repr(event.result))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preceding:
        return cls(data["index"], data["thread"], data["call"], data["result"])


class ThreadReport(Record):
    """A thread of a stuck replay: what it does now, its next recorded event, its stack."""

    __slots__ = ("thread", "state", "next_index", "next_call", "stack")

    def __init__(self, thread: str, state: str, next_index: int | None, next_call: str | None,
                 stack: list[list[Any]]) -> None:
        self.thread = thread
        self.state = state
        self.next_index = next_index
        self.next_call = next_call
        self.stack = stack

    def to_json(self) -> dict[str, Any]:
        following = None if self.next_index is None else {"index": self.next_index, "call": self.next_call}
        return {"thread": self.thread, "state": self.state, "next_recorded": following, "stack": self.stack}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThreadReport:
        following = data["next_recorded"] or {}
        return cls(data["thread"], data["state"], following.get("index"), following.get("call"), data["stack"])


class Divergence(Record):
    """The first difference between a replay and its recording.

    ``expected`` and ``actual`` are the recorded and the replayed call (:class:`Call`) for the kinds the
    engine finds; for ``outcome``, the parts of the outcome that differ (``differs``), recorded and
    replayed, as the outcome's JSON has them."""

    __slots__ = ("kind", "index", "thread", "expected", "actual", "stack", "preceding", "threads", "differs",
                 "summary")

    def __init__(self, kind: DivergenceKind, index: int | None = None, thread: str | None = None,
                 expected: Any = None, actual: Any = None, stack: list[list[Any]] | None = None,
                 preceding: list[Preceding] | None = None, threads: list[ThreadReport] | None = None,
                 differs: list[str] | None = None, summary: str | None = None) -> None:
        self.kind = kind
        self.index = index
        self.thread = thread
        self.expected = expected
        self.actual = actual
        self.stack: list[list[Any]] = stack or []  # the program's stack at the call, innermost last
        self.preceding: list[Preceding] = preceding or []  # the events that matched just before
        self.threads = threads  # stuck only: every thread
        self.differs = differs  # outcome only: "status", "stdout", "stderr", "returned"
        self.summary = summary  # died: how; stuck: for how long nothing moved

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": str(self.kind)}
        if self.kind == DivergenceKind.OUTCOME:
            data["differs"] = self.differs
        data.update(index=self.index, thread=self.thread, expected=_side(self.expected), actual=_side(self.actual),
                    stack=self.stack, preceding=to_json(self.preceding))
        if self.kind.found_by_engine:
            data["threads"] = to_json(self.threads)
        if self.kind in (DivergenceKind.DIED, DivergenceKind.STUCK):
            data["summary"] = self.summary
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Divergence:
        kind = DivergenceKind(data["kind"])
        sides = [data.get(side) for side in ("expected", "actual")]
        if kind != DivergenceKind.OUTCOME:
            sides = [None if side is None else Call.from_json(side) for side in sides]
        threads = data.get("threads")
        return cls(kind, data.get("index"), data.get("thread"), sides[0], sides[1], data.get("stack") or [],
                   [Preceding.from_json(p) for p in data.get("preceding") or ()],
                   None if threads is None else [ThreadReport.from_json(t) for t in threads],
                   data.get("differs"), data.get("summary"))


def _side(side: Any) -> Any:
    if isinstance(side, dict):  # an outcome's differing parts
        return {part: to_json(value) for part, value in side.items()}
    return to_json(side)


class ReplayDivergence(BaseException):
    """The replay made a call other than the recorded one (in-process replays only).

    A BaseException so that the program's own ``except Exception`` cannot swallow it.
    """

    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence
        super().__init__(divergence.summary or "replay diverged")
