"""Verdicts: what a replay proved, as a typed record whose JSON form is the verdict file's contract.

``status`` is one of ok, diverged, crash-reproduced, crash-fixed, new-crash, truncated, corrupt;
``faithful`` is true for ok and crash-reproduced (the replay made the recorded calls and ended as
the recording did).
"""

from __future__ import annotations

from typing import Any

from ..engine.divergence import Divergence, DivergenceKind
from ..engine.keyed import KeyedSummary
from ..engine.setup import SetupSummary
from ..enums import StrEnum
from ..format.tape import Recording, TapeStatus, forked_end, process_order
from ..kinds.outcome import Outcome, Stream
from ..record import Record, read_field, to_json
from .protocol import ChildResult


class Status(StrEnum):
    OK = "ok"
    DIVERGED = "diverged"
    CRASH_REPRODUCED = "crash-reproduced"
    CRASH_FIXED = "crash-fixed"
    NEW_CRASH = "new-crash"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"

    @property
    def faithful(self) -> bool:
        """The replay made the recorded calls and ended as the recording did."""
        return self in (Status.OK, Status.CRASH_REPRODUCED)

    @property
    def passes(self) -> bool:
        """A test of this recording passes."""
        return self in (Status.OK, Status.CRASH_FIXED)

    @property
    def unusable(self) -> bool:
        """The recording cannot be replayed whole: an error, not a failure."""
        return self in (Status.TRUNCATED, Status.CORRUPT)


class Verdict(Record):
    """What a replay proved."""

    __slots__ = ("recording", "status", "divergence", "recorded", "replayed", "events_recorded", "events_consumed",
                 "problem", "keyed", "offset", "replayed_end", "stdout", "stderr", "setup")

    def __init__(self, recording: str, status: Status, divergence: Divergence | None = None,
                 recorded: Outcome | None = None, replayed: Outcome | None = None, events_recorded: int | None = None,
                 events_consumed: int | None = None, problem: str | None = None, keyed: KeyedSummary | None = None,
                 offset: int | None = None, replayed_end: dict[str, Any] | None = None, stdout: bytes = b"",
                 stderr: bytes = b"", setup: SetupSummary | None = None) -> None:
        self.recording = recording
        self.status = status
        self.divergence = divergence
        self.recorded = recorded
        self.replayed = replayed
        self.events_recorded = events_recorded
        self.events_consumed = events_consumed
        self.problem = problem
        self.keyed = keyed  # a crash recording whose replay took a new path: how calls were answered from there on
        self.offset = offset  # corrupt: the byte offset of the bad frame
        # Connection set-up the replay made or skipped where the recorded request found its connection open (or
        # not): answered from the recording's set-up log, or passed over; never part of a divergence.
        self.setup = setup
        # Not in the JSON: what END would say of this replay (--retrace-accept writes it), and what the replay
        # printed (whole when the launcher was asked to keep it).
        self.replayed_end = replayed_end
        self.stdout = stdout
        self.stderr = stderr

    @property
    def faithful(self) -> bool:
        return self.status.faithful

    @property
    def outcome_only(self) -> bool:
        """Every call matched; only how the run ended differs (what --retrace-accept may take)."""
        return self.divergence is not None and self.divergence.kind == DivergenceKind.OUTCOME

    def to_json(self) -> dict[str, Any]:
        """The verdict file: the contract's keys in its order (the offset of a corrupt one last)."""
        data = {"recording": self.recording, "faithful": self.faithful}
        data.update({name: to_json(getattr(self, name)) for name in _CONTRACT})
        if self.status == Status.CORRUPT:
            data["offset"] = self.offset
        if self.setup is not None:
            data["setup"] = self.setup.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(data["recording"], Status(data["status"]), read_field(data, "divergence", Divergence),
                   read_field(data, "recorded", Outcome), read_field(data, "replayed", Outcome),
                   data.get("events_recorded"), data.get("events_consumed"), data.get("problem"),
                   read_field(data, "keyed", KeyedSummary), data.get("offset"),
                   setup=read_field(data, "setup", SetupSummary))


# The fields of the verdict file after ``recording`` and ``faithful``.
_CONTRACT = ("status", "divergence", "recorded", "replayed", "events_recorded", "events_consumed", "problem", "keyed")


def unreadable(path: str, problem: str, offset: int | None = None) -> Verdict:
    """The verdict on a recording that cannot be replayed at all."""
    return Verdict(path, Status.CORRUPT, problem=problem, offset=offset)


def conclude(rec: Recording, returncode: int, stdout: Stream, stderr: Stream, result: ChildResult | None,
             processes: dict[str, ChildResult | None] | None = None) -> Verdict:
    """The verdict on a replay of ``rec``: the child's exit status, the output it printed (as it passed by),
    and what it reported (None when it died before it could); ``processes``: what the processes it forked
    reported, by logical id."""
    if result is not None and result.corrupt is not None:
        return unreadable(rec.path, result.corrupt, result.offset)
    recorded = Outcome.from_json(rec.end or {}).as_text()
    child = result.outcome if result is not None else None
    replayed_raw = Outcome(returncode if child is None else child.status, None if child is None else child.exception,
                           stdout, stderr, None if child is None else child.returned)
    replayed = replayed_raw.as_text()

    def verdict(status: Status, **fields: Any) -> Verdict:
        return Verdict(rec.path, status, recorded=recorded, replayed=replayed, events_recorded=rec.count,
                       events_consumed=None if result is None else result.events_consumed,
                       keyed=None if result is None else result.keyed,
                       setup=None if result is None else result.setup,
                       replayed_end=replayed_raw.to_end((rec.end or {}).get("events")), **fields)

    if result is not None and result.divergence is not None:
        if result.divergence.kind == DivergenceKind.TRUNCATED:
            return verdict(Status.TRUNCATED, problem=f"{rec.path}: {rec.problem}")
        return verdict(Status.DIVERGED, divergence=result.divergence)
    if result is None:
        head = stderr.as_text().head  # what it printed first says why, as a rule
        said = f":\n{head}" if isinstance(head, str) and head else ""
        return verdict(Status.DIVERGED, divergence=Divergence(
            DivergenceKind.DIED, summary=f"the replay died with exit status {returncode} before reporting{said}"))
    if rec.status == TapeStatus.TRUNCATED:
        return verdict(Status.TRUNCATED, problem=f"{rec.path}: {rec.problem}")
    rec_exc, rep_exc = recorded.exception, replayed.exception
    if rep_exc is not None and not (rec_exc is not None and rec_exc.same_crash(rep_exc)):
        return verdict(Status.NEW_CRASH)
    if recorded.crashed and rep_exc is None and (rec_exc is not None or replayed.status == 0):
        return verdict(Status.CRASH_FIXED)
    if result.keyed is not None:  # the crash happened again on a new path: its output may well differ
        return verdict(Status.CRASH_REPRODUCED)
    if result.unconsumed is not None:
        return verdict(Status.DIVERGED, divergence=result.unconsumed)
    forked = _forked_divergence(rec, processes or {})
    if forked is not None:
        return verdict(Status.DIVERGED, divergence=forked)
    mismatch = _outcome_mismatch(recorded, replayed)
    if mismatch is not None:
        return verdict(Status.DIVERGED, divergence=mismatch)
    return verdict(Status.CRASH_REPRODUCED if recorded.crashed else Status.OK)


def _forked_divergence(rec: Recording, processes: dict[str, ChildResult | None]) -> Divergence | None:
    """The first divergence of a process the program forked (its thread named ``process/thread``): one that
    diverged, left recorded calls unmade, ended otherwise, or ended without reporting. A process whose recording
    stops early (it was killed, or outlived the program) is not expected to report."""
    for label in sorted(rec.processes, key=process_order):
        end = forked_end(rec.processes[label])
        reported = processes.get(label)
        if reported is None:
            if end is None:
                continue
            return Divergence(DivergenceKind.DIED, thread=f"{label}/0",
                              summary=f"process {label}, which the program forked, ended without reporting")
        divergence = reported.divergence or reported.unconsumed
        if divergence is not None and divergence.kind != DivergenceKind.TRUNCATED:
            divergence.thread = f"{label}/{divergence.thread}"
            return divergence
        status = None if reported.outcome is None else reported.outcome.status
        if end is not None and status != end.get("status"):
            return Divergence(DivergenceKind.OUTCOME, thread=f"{label}/0", differs=["status"],
                              expected={"status": end.get("status")}, actual={"status": status})
    return None


def _outcome_mismatch(recorded: Outcome, replayed: Outcome) -> Divergence | None:
    """Every call matched; the end-of-run comparison catches what no boundary intercepted."""

    def compared(outcome: Outcome, part: str) -> Any:
        value = getattr(outcome, part)
        return value.digest if isinstance(value, Stream) else value

    # A call recording holds no process output: only the parts the recording has are compared.
    parts = ["status"] + [p for p in ("stdout", "stderr", "returned") if getattr(recorded, p) is not None]
    differing = [part for part in parts if compared(recorded, part) != compared(replayed, part)]
    if not differing:
        return None
    return Divergence(DivergenceKind.OUTCOME, differs=differing,
                      expected={part: getattr(recorded, part) for part in differing},
                      actual={part: getattr(replayed, part) for part in differing})
