"""Recordings as pytest items: replay, verdict, failure report, accept, determinism."""

from __future__ import annotations

import bdb
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..errors import RecordingError, RetraceError
from ..format.sealing import KeyNeeded
from ..format.tape import Kind, TapeStatus, read_header, read_recording, rewrite_end
from ..kinds.entry import EntryGone, OutsideProject, Project
from ..kinds.outcome import Outcome
from ..kinds.subject import Subject
from ..paths import project_root_of
from ..runner import forkserver, zygote
from ..runner.launcher import check_kind, check_program, replay
from ..runner.rerecord import record_again
from ..runner.verdict import Status, Verdict
from .debugging import PDB, TRACE, debug_in_session, debugging
from .progress import progress_line
from .report import format_verdict
from .summary import OBSOLETE, Counter, ReplayInfo

_CLOSES_SERVERS = pytest.StashKey[bool]()
MISSING_PROGRAM = "missing-program"  # a test's status (not a verdict's): the recorded program is not here
NEEDS_KEY = "needs-key"  # a test's status: the recording is sealed and no key here opens it
OUTSIDE_PROJECT = "outside-project"  # a test's status: the recording would run code that is not the project's


def _replay_in_session(config: pytest.Config, path: str, **options: Any) -> Verdict:
    """Replay in this session's fork servers and zygotes; they stop with the session, as they hold the code as
    it was when they imported it."""
    if not config.stash.get(_CLOSES_SERVERS, False):
        config.add_cleanup(forkserver.close_all)
        config.add_cleanup(zygote.close_all)
        config.stash[_CLOSES_SERVERS] = True
    sandbox = config.getoption("retrace_sandbox")
    sandbox = config.getini("retrace_sandbox") if sandbox is None else sandbox
    return replay(path, project(config), forked=True, sandbox=bool(sandbox), progress=progress_line(config), **options)


def project(config: pytest.Config) -> Project:
    """The project whose code replays run: the rootdir, or with no ini file (pytest's rootdir is then the common
    folder of its arguments) the project root found upwards from it; code outside it only when the user allows
    it."""
    allowed = config.getoption("retrace_allow_outside_project")
    allowed = config.getini("retrace_allow_outside_project") if allowed is None else allowed
    root = config.rootpath if config.inipath is not None else project_root_of(config.rootpath)
    return Project(root, bool(allowed), "--retrace-allow-outside-project")


class RetraceFailure(Exception):
    """A replay that is not a pass; its text is the verdict's report."""

    def __init__(self, verdict: Verdict, text: str | None = None) -> None:
        self.verdict = verdict
        super().__init__(text or format_verdict(verdict, detailed=True))


class DebuggedFailure(RetraceFailure, bdb.BdbQuit):
    """A failure debugged already (``--pdb``, ``--trace``): pytest does not debug a BdbQuit again."""


class RecordingUnusable(Exception):
    """A recording that cannot be replayed at all (truncated, corrupt, newer format)."""


def _int_option(config: pytest.Config, name: str) -> int:
    value = config.getoption(name)
    return int(value if value is not None else config.getini(name))


def _float_option(config: pytest.Config, name: str) -> float:
    value = config.getoption(name)
    return float(value if value is not None else config.getini(name))


class RecordingFile(pytest.File):
    """A ``*.retrace`` file: one test, the replay of the recording."""

    def collect(self) -> list[pytest.Item]:
        item = RecordingItem.from_parent(self, name="replay")
        header = read_header(self.path)  # None: not readable; the item's set-up says why
        if header is not None:
            item.describe(Subject.of(header))
        return [item]


class RecordingItem(pytest.Item):
    """Replays one recording in a fresh interpreter and turns the verdict into an outcome."""

    subject: Subject | None = None

    def describe(self, subject: Subject) -> None:
        """Make what the recording is of selectable: markers (``-m retrace_kind_wsgi``, ``-m "retrace_tag(team=
        'billing')"``, ``-m retrace_pinned``), keywords (``-k billing``, ``-k /orders``) and junitxml properties."""
        self.subject = subject
        if subject.kind:
            self.add_marker(f"retrace_kind_{subject.kind}")
        if subject.tags:
            self.add_marker(pytest.mark.retrace_tag(**subject.tags))
        if subject.pinned:
            self.add_marker("retrace_pinned")
        self.extra_keyword_matches.update(subject.keywords)
        self.user_properties.extend(subject.properties())

    @property
    def shown_path(self) -> str:
        """The recording's path as reports show it: relative to where pytest was started."""
        return os.path.relpath(self.path, self.config.invocation_params.dir)

    def setup(self) -> None:
        try:
            rec = read_recording(self.shown_path, events=False)  # the replay reads them
            check_kind(rec)
        except KeyNeeded as exc:
            self._unusable(str(exc), NEEDS_KEY)
        except RecordingError as exc:
            self._unusable(str(exc), TapeStatus.CORRUPT)
        if rec.status != TapeStatus.COMPLETE:
            self._unusable(f"{rec.problem}" if rec.problem and rec.problem.startswith(self.shown_path)
                           else f"{self.shown_path}: {rec.status} recording: {rec.problem}", rec.status)
        try:
            check_program(rec.header, project(self.config), str(self.path))
        except EntryGone as exc:
            self._obsolete(f"{self.shown_path}: {exc}", bool(rec.header.get("pin")))
        except OutsideProject as exc:
            self._unusable(f"{self.shown_path}: {exc}", OUTSIDE_PROJECT)
        except RetraceError as exc:
            self._unusable(f"{self.shown_path}: {exc}", MISSING_PROGRAM)
        self.recording = rec
        self.pinned = bool(rec.header.get("pin"))

    def _unusable(self, problem: str, status: str, pinned: bool = False) -> None:
        info = ReplayInfo(str(self.path), str(status), pinned=pinned, problem=problem, counter=Counter.ERRORS,
                          subject=self.subject)
        self.user_properties.append(("retrace", info.to_json()))
        raise RecordingUnusable(problem)

    def _obsolete(self, problem: str, pinned: bool) -> None:
        """What the recording ran is gone from the code: an error listed in the summary, or with ``--retrace-prune``
        a pinned one inside the project is deleted and its test skipped."""
        config = self.config
        if pinned and config.getoption("retrace_prune") and self.path.resolve().is_relative_to(project(config).root):
            self.path.unlink(missing_ok=True)
            info = ReplayInfo(str(self.path), OBSOLETE, pinned=True, problem=problem, counter=Counter.PRUNED,
                              subject=self.subject)
            self.user_properties.append(("retrace", info.to_json()))
            pytest.skip(f"pruned (deleted): {problem}")
        self._unusable(problem, OBSOLETE, pinned)

    def runtest(self) -> None:
        config = self.config
        stuck = _float_option(config, "retrace_stuck_timeout")
        mode = debugging(config)
        if mode == TRACE:  # the replay itself runs under pdb, from the program's first line
            verdict = debug_in_session(config, self.shown_path, self.recording, project(config), trace=True)
        else:
            verdict = _replay_in_session(config, self.shown_path, stuck_timeout=stuck, passthrough=False,
                                         recording=self.recording)
        if mode == PDB and not verdict.status.passes and verdict.status != Status.CORRUPT:
            debug_in_session(config, self.shown_path, self.recording, project(config), trace=False)
        if verdict.status == Status.CORRUPT:  # a value inside an event does not decode: the replay found it
            self._unusable(verdict.problem or f"{self.shown_path}: corrupt recording", TapeStatus.CORRUPT)
        info = ReplayInfo(str(self.path), str(verdict.status), pinned=self.pinned,
                          events_recorded=verdict.events_recorded, events_consumed=verdict.events_consumed,
                          outcome_only=verdict.outcome_only, subject=self.subject)
        try:
            self._conclude(verdict, info, stuck)
        except RetraceFailure as failure:
            if mode is None:
                raise
            raise DebuggedFailure(failure.verdict, str(failure)) from None
        finally:  # what the summary hears of this replay, however it ends
            self.user_properties.append(("retrace", info.to_json()))

    def _conclude(self, verdict: Verdict, info: ReplayInfo, stuck: float) -> None:
        config = self.config
        if verdict.outcome_only and config.getoption("retrace_accept"):
            assert verdict.replayed_end is not None
            rewrite_end(self.path, verdict.replayed_end)
            info.counter = Counter.ACCEPTED
            return
        if verdict.status in (Status.DIVERGED, Status.NEW_CRASH) and self._rewrites():
            self._record_again(verdict, info, stuck)
            return
        for _ in range(_int_option(config, "retrace_determinism_runs") - 1):
            # A process recording's runs after the first start cold: the forks of one zygote share its memory
            # layout (addresses are randomised per interpreter started), so a program whose output depends on
            # them (id(), default reprs) would replay alike in every fork.
            again = _replay_in_session(config, self.shown_path, stuck_timeout=stuck, passthrough=False,
                                       recording=self.recording, zygote=False)
            difference = _difference(verdict, again)
            if difference is not None:
                info.counter = Counter.NONDETERMINISTIC
                raise RetraceFailure(verdict, difference)
        if not verdict.status.passes:
            raise RetraceFailure(verdict)

    def _rewrites(self) -> bool:
        """Whether this run records a diverged recording of this kind again (``--retrace-record-mode``)."""
        mode = self.config.getoption("retrace_record_mode")
        in_process = self.subject is not None and self.subject.kind in (Kind.WSGI, Kind.CALL)
        return mode == "rewrite-all" or (mode == "rewrite" and in_process)

    def _record_again(self, verdict: Verdict, info: ReplayInfo, stuck: float) -> None:
        """Record what the diverged recording ran again, live; put the new recording in place (the old one kept as
        ``.orig``) once it replays faithfully."""
        try:
            made = record_again(str(self.path), self.recording, project(self.config))
        except RetraceError as exc:
            raise RetraceFailure(verdict, f"{format_verdict(verdict, detailed=True)}\n"
                                          f"--- recording it again (--retrace-record-mode) failed ---\n{exc}") from None
        check = _replay_in_session(self.config, os.path.relpath(made.path), stuck_timeout=stuck, passthrough=False)
        if not check.faithful:
            made.discard()
            raise RetraceFailure(verdict, f"{format_verdict(verdict, detailed=True)}\n--- recorded again, but the new "
                                          "recording does not replay faithfully; the original is left in place ---\n"
                                          f"{format_verdict(check, detailed=True)}")
        recorded = check.recorded
        if recorded is not None and recorded.crashed and not Outcome.from_json(self.recording.end or {}).crashed:
            made.discard()  # a service that is down is no deliberate change
            raise RetraceFailure(verdict, f"{format_verdict(verdict, detailed=True)}\n--- recorded again, but the live "
                                          f"run crashed where the recording did not ({_crash_text(recorded)}): is "
                                          "the live world (database, services) up? The original is left in place ---")
        info.original = made.put_in_place(str(self.path))
        info.counter = Counter.RERECORDED
        diverged = verdict.divergence
        at = diverged.index if diverged is not None else None  # none for a divergence of the outcome only
        info.problem = f"{verdict.status}" + (f" at event #{at}" if at is not None else "")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (RetraceFailure, RecordingUnusable)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[return-value]

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"retrace replay of {self.path.name}"


def _crash_text(outcome: Outcome) -> str:
    exception = outcome.exception
    return f"{exception.type}: {exception.message}" if exception is not None else f"exit status {outcome.status}"


_COMPARED: tuple[tuple[str, Callable[[Verdict], Any]], ...] = (
    ("status", lambda v: v.status),
    ("events consumed", lambda v: v.events_consumed),
    ("exit status", lambda v: v.replayed.status if v.replayed else None),
    ("exception", lambda v: v.replayed.exception.fingerprint if v.replayed and v.replayed.exception else None),
    ("stdout", lambda v: v.replayed.stdout.digest if v.replayed and v.replayed.stdout else None),
    ("stderr", lambda v: v.replayed.stderr.digest if v.replayed and v.replayed.stderr else None),
    ("divergence", lambda v: v.divergence.index if v.divergence else None),
)


def _difference(first: Verdict, second: Verdict) -> str | None:
    """The report for two replays of one recording that differ, or None."""
    for label, part in _COMPARED:
        a, b = part(first), part(second)
        if a != b:
            return (
                f"retrace: {first.recording}: nondeterministic replay: two replays differ in {label}\n"
                f"  first replay:  {a!r}\n  second replay: {b!r}\n"
                f"--- first replay ---\n{format_verdict(first, detailed=True)}\n"
                f"--- second replay ---\n{format_verdict(second, detailed=True)}"
            )
    return None


class ReplayOutcome:
    """What the ``retrace_replay`` fixture hands a test: the replay's outcome, to assert on."""

    def __init__(self, path: Path, verdict: Verdict) -> None:
        self.path = path
        self.verdict = verdict.to_json()  # the verdict file's form
        self.status: str = str(verdict.status)
        replayed = verdict.replayed
        self.exit_status: int | None = replayed.status if replayed else None
        exception = replayed.exception if replayed else None
        self.exception: dict[str, Any] | None = exception.to_json() if exception else None
        self.stdout = verdict.stdout.decode("utf-8", "replace")
        self.stderr = verdict.stderr.decode("utf-8", "replace")
        self.events = read_recording(path).events()

    def __repr__(self) -> str:
        return f"<ReplayOutcome {self.path.name}: {self.status}, exit {self.exit_status}>"


def replay_outcome(path: Path, config: pytest.Config) -> ReplayOutcome:
    verdict = _replay_in_session(config, str(path), stuck_timeout=_float_option(config, "retrace_stuck_timeout"),
                      passthrough=False, keep_output=True)
    return ReplayOutcome(path, verdict)
