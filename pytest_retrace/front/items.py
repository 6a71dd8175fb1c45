"""Recordings as pytest items: replay, verdict, failure report, accept, determinism."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..errors import RecordingError, RetraceError
from ..format.sealing import KeyNeeded
from ..format.tape import TapeStatus, read_recording, rewrite_end
from ..kinds.entry import OutsideProject, Project
from ..paths import project_root_of
from ..runner import forkserver, zygote
from ..runner.launcher import check_kind, check_program, replay
from ..runner.verdict import Status, Verdict
from .progress import progress_line
from .report import format_verdict
from .summary import Counter, ReplayInfo

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
        return [RecordingItem.from_parent(self, name="replay")]


class RecordingItem(pytest.Item):
    """Replays one recording in a fresh interpreter and turns the verdict into an outcome."""

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
        except OutsideProject as exc:
            self._unusable(f"{self.shown_path}: {exc}", OUTSIDE_PROJECT)
        except RetraceError as exc:
            self._unusable(f"{self.shown_path}: {exc}", MISSING_PROGRAM)
        self.recording = rec
        self.pinned = bool(rec.header.get("pin"))

    def _unusable(self, problem: str, status: str) -> None:
        info = ReplayInfo(str(self.path), str(status), problem=problem, counter=Counter.ERRORS)
        self.user_properties.append(("retrace", info.to_json()))
        raise RecordingUnusable(problem)

    def runtest(self) -> None:
        config = self.config
        stuck = _float_option(config, "retrace_stuck_timeout")
        verdict = _replay_in_session(config, self.shown_path, stuck_timeout=stuck, passthrough=False,
                                     recording=self.recording)
        if verdict.status == Status.CORRUPT:  # a value inside an event does not decode: the replay found it
            self._unusable(verdict.problem or f"{self.shown_path}: corrupt recording", TapeStatus.CORRUPT)
        info = ReplayInfo(str(self.path), str(verdict.status), pinned=self.pinned,
                          events_recorded=verdict.events_recorded, events_consumed=verdict.events_consumed,
                          outcome_only=verdict.outcome_only)
        try:
            self._conclude(verdict, info, stuck)
        finally:  # what the summary hears of this replay, however it ends
            self.user_properties.append(("retrace", info.to_json()))

    def _conclude(self, verdict: Verdict, info: ReplayInfo, stuck: float) -> None:
        config = self.config
        if verdict.outcome_only and config.getoption("retrace_accept"):
            assert verdict.replayed_end is not None
            rewrite_end(self.path, verdict.replayed_end)
            info.counter = Counter.ACCEPTED
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

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (RetraceFailure, RecordingUnusable)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[return-value]

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"retrace replay of {self.path.name}"


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
