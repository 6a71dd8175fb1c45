"""The retrace summary: verdicts counted as test reports arrive (from xdist workers too), the next steps to
take, the JSON report (``--retrace-report``), and the incidents the pinned cases moved on (``front/incidents``:
fixed, regressed)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from ..enums import StrEnum
from ..kinds.subject import Subject
from ..record import Record, read_field

OBSOLETE = "obsolete"  # a test's status (not a verdict's): what the recording runs is gone from the code
_LISTED = 10  # obsolete recordings the summary names one by one


class Counter(StrEnum):
    """The counts the summary line shows, in its order."""

    REPLAYED = "replayed"
    OK = "ok"
    DIVERGED = "diverged"
    CRASH_REPRODUCED = "crash reproduced"
    CRASH_FIXED = "crash fixed"
    REGRESSED = "regressed"  # a pinned crash whose incident was fixed and that happens again
    NONDETERMINISTIC = "nondeterministic"
    ACCEPTED = "accepted"
    RERECORDED = "re-recorded"  # diverged, recorded again live (--retrace-record-mode)
    PRUNED = "pruned"  # obsolete pinned recordings deleted (--retrace-prune)
    ERRORS = "errors"



class ReplayInfo(Record):
    """What a recording's test tells the summary, through the report's user properties (plain JSON, so that
    it travels from xdist workers and into junitxml)."""

    __slots__ = ("recording", "status", "pinned", "events_recorded", "events_consumed", "outcome_only", "counter",
                 "problem", "regressed", "subject", "original")

    def __init__(self, recording: str, status: str, pinned: bool = False, events_recorded: int | None = None,
                 events_consumed: int | None = None, outcome_only: bool = False, counter: Counter | None = None,
                 problem: str | None = None, regressed: bool = False, subject: Subject | None = None,
                 original: str | None = None) -> None:
        self.recording = recording
        # A verdict's Status, or why the recording could not be replayed (truncated, corrupt, missing-program).
        self.status = status
        self.pinned = pinned
        self.events_recorded = events_recorded
        self.events_consumed = events_consumed
        self.outcome_only = outcome_only
        self.counter = counter  # where it is counted when not where its status says (accepted …)
        self.problem = problem
        self.regressed = regressed
        self.subject = subject  # its kind, entry point, route and tags (None: not a readable recording)
        self.original = original  # re-recorded: where the old recording is kept

    @property
    def counted_as(self) -> Counter:
        if self.counter is not None:
            return self.counter
        return _counter_of(self.status)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplayInfo:
        counter = data.get("counter")
        return cls(**dict(data, counter=None if counter is None else Counter(counter),
                          subject=read_field(data, "subject", Subject)))


def _counter_of(status: str) -> Counter:
    """Where a verdict's status is counted (not imported at the top: loading the plugin must stay cheap)."""
    from ..runner.verdict import Status

    counters = {Status.OK: Counter.OK, Status.DIVERGED: Counter.DIVERGED, Status.NEW_CRASH: Counter.DIVERGED,
                Status.CRASH_REPRODUCED: Counter.CRASH_REPRODUCED, Status.CRASH_FIXED: Counter.CRASH_FIXED}
    try:
        return counters.get(Status(status), Counter.ERRORS)  # truncated, corrupt: errors
    except ValueError:  # not a verdict's status: the recording could not be replayed at all
        return Counter.ERRORS


class RetraceSummary:
    """Counts verdicts as reports arrive (from xdist workers too) and writes the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts = dict.fromkeys(Counter, 0)
        self.infos: list[ReplayInfo] = []
        self.reports: list[tuple[str, str]] = []  # each info's node id and outcome, for the JSON report
        self.changes: list[Any] = []  # the incidents' transitions this run made (incidents.Change)
        self.incident_problems: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data: dict[str, Any] | None = dict(report.user_properties).get("retrace")  # type: ignore[assignment]
        if data is None or (report.when != "call" and not (report.when == "setup" and not report.passed)):
            return
        info = ReplayInfo.from_json(data)
        if report.when == "call":
            self.counts[Counter.REPLAYED] += 1
        self.counts[info.counted_as] += 1
        self.infos.append(info)
        self.reports.append((report.nodeid, report.outcome))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller sees every report
            return
        self._move_incidents(session)
        path = self.config.getoption("retrace_report")
        if path:
            counts = {str(counter): n for counter, n in self.counts.items()}
            verdicts = [dict(info.to_json(), nodeid=nodeid, outcome=outcome)
                        for info, (nodeid, outcome) in zip(self.infos, self.reports, strict=True)]
            incidents = {"changes": [change.to_json() for change in self.changes],
                         "problems": self.incident_problems}
            with open(path, "w") as f:
                json.dump({"counts": counts, "recordings": verdicts, "incidents": incidents}, f, indent=2,
                          default=repr)

    def _move_incidents(self, session: pytest.Session) -> None:
        """The pinned cases' verdicts move their incidents on, in the state file beside them: crash-fixed to
        ``fixed``, crash-reproduced after that to ``regressed``. Only the controller writes (workers returned)."""
        from ..runner.verdict import Status

        happened = {Status.CRASH_FIXED: "passed", Status.CRASH_REPRODUCED: "failed"}
        results = [(info.recording, happened[info.status]) for info in self.infos  # type: ignore[index]
                   if info.pinned and info.status in happened and info.counter is None]
        if not results:
            return
        from .incidents import Happening, IncidentStatus, record_results

        self.changes, self.incident_problems = record_results(
            (recording, Happening(happening)) for recording, happening in results)
        regressed = {change.recording for change in self.changes
                     if change.transition.status == IncidentStatus.REGRESSED}
        for info in self.infos:
            info.regressed = info.recording in regressed
        self.counts[Counter.REGRESSED] += len(regressed)
        if self.incident_problems and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # the lifecycle was not kept: not a green run

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.infos:
            return
        terminalreporter.write_sep("=", "retrace summary")
        terminalreporter.write_line(", ".join(f"{n} {counter}" for counter, n in self.counts.items()
                                              if n or counter == Counter.REPLAYED))
        if self.changes:
            from .incidents import describe

            terminalreporter.write_line(describe(self.changes))
        for problem in self.incident_problems:
            terminalreporter.write_line(f"incidents not updated: {problem}", red=True)
        for hint in self._next_steps():
            terminalreporter.write_line(hint)
        self._list_rerecorded(terminalreporter)
        self._list_obsolete(terminalreporter)

    def _list_rerecorded(self, terminalreporter: Any) -> None:
        rerecorded = [info for info in self.infos if info.counted_as == Counter.RERECORDED]
        if not rerecorded:
            return
        terminalreporter.write_line(f"re-recorded against the live world: {len(rerecorded)} (each old recording kept "
                                    "beside it as .orig; review and commit the new ones):")
        for info in rerecorded:
            terminalreporter.write_line(f"  {os.path.relpath(info.recording)}: was {info.problem}")

    def _list_obsolete(self, terminalreporter: Any) -> None:
        """The recordings whose entry point is gone from the code (like a snapshot tool's unused snapshots)."""
        obsolete = [info for info in self.infos if info.status == OBSOLETE]
        if not obsolete:
            return
        terminalreporter.write_line(f"obsolete recordings: {len(obsolete)} ran code that is no longer in the project "
                                    "(a script, module, function or app removed or renamed):")
        for info in obsolete[:_LISTED]:
            pruned = " (pruned)" if info.counted_as == Counter.PRUNED else " (pinned)" if info.pinned else ""
            terminalreporter.write_line(f"  {os.path.relpath(info.recording)}{pruned}")
        if len(obsolete) > _LISTED:
            terminalreporter.write_line(f"  … and {len(obsolete) - _LISTED} more (--retrace-report lists them all)")
        if any(info.pinned and info.counted_as != Counter.PRUNED for info in obsolete):
            terminalreporter.write_line("delete the obsolete pinned ones with --retrace-prune; the others are yours "
                                        "to delete when the code they recorded is gone for good")

    def _next_steps(self) -> list[str]:
        from ..runner.verdict import Status

        hints = []
        # Accepted and re-recorded ones are settled: no hint is about them.
        open_ones = [info for info in self.infos if info.counted_as not in (Counter.ACCEPTED, Counter.RERECORDED)]
        statuses = {info.status for info in open_ones}
        crashes = [info for info in self.infos if info.status == Status.CRASH_REPRODUCED]
        if crashes:
            hints.append("recorded crashes still happen: fix them, then run again")
        unpinned = [info.recording for info in crashes if not info.pinned]
        if unpinned:
            hints.append(f"keep a crash as a regression case: retrace pin {os.path.relpath(unpinned[0])}")
        if any(info.outcome_only for info in open_ones):
            hints.append("only the outcome changed for some recordings: if that is intended, run again with "
                         "--retrace-accept")
        if Status.DIVERGED in statuses or Status.NEW_CRASH in statuses:
            hints.append("diverged replays: the report names the first differing call; `retrace show REC` lists "
                         "the recorded calls")
        if statuses & {Status.TRUNCATED, Status.CORRUPT}:
            hints.append("unusable recordings (truncated or corrupt): record them again")
        return hints
