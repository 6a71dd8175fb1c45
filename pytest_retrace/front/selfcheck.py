"""``--retrace-self-check``: record each ordinary test while it runs, and replay it from the state it began in.

A test whose replay is not faithful fails with the divergence report: this is how a team proves in CI that its
code stays replayable before production relies on it. Fixtures are set up once, outside the recording; the test's
call is recorded. Just before the call the process forks (``runner/checkfork.py``): the parent runs the test for
real (its outcome, its side effects, are the test's), the child replays the recording from exactly the memory state
the run began in and reports back. Where there is no fork, the replay runs the test function again in this
process, after the run, with the same fixture values (said once: a test that changes its fixtures may then
diverge).

Each checked test tells the summary how it went through its report's user properties (from xdist workers too):
faithful, diverged, error (pytest-retrace failed: a bug to report) or not checkable, with the reason.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from ..boundaries import collector, entropy, env
from ..boundaries.files import classifier_for
from ..engine.divergence import Call, Divergence, DivergenceKind, ReplayDivergence
from ..engine.recorder import Recorder
from ..engine.replayer import Replayer
from ..engine.setup import PROCESS_LOG
from ..engine.state import end_call_thread, start_call_thread
from ..enums import StrEnum
from ..format import codec
from ..format.events import Setup
from ..format.tape import Kind, MemoryTape
from ..kinds.entry import entry_point, use_project_of
from ..kinds.inprocess import install_for_session, write_recording
from ..kinds.outcome import ExceptionInfo, Outcome, returned_summary
from ..record import Record
from ..redaction import Redaction
from ..runner.checkfork import CheckResult, ReplayFork, fork_unavailable, outcome_text, reap
from ..runner.verdict import Status, Verdict
from .report import format_verdict

PROPERTY = "retrace_self_check"  # the user property a checked test's report carries
_UNRECORDABLE = (codec.UnencodableValue, TypeError, ValueError, OverflowError)
# How long the parent waits for a replay's report beyond the stuck timeout and three times the run's duration.
REPORT_GRACE = 30.0


class Checked(StrEnum):
    """How a test's self-check went."""

    FAITHFUL = "faithful"
    DIVERGED = "diverged"
    ERROR = "error"  # pytest-retrace itself failed
    NOT_CHECKABLE = "not checkable"


class SelfCheckInfo(Record):
    """What a checked test's report tells the summary (plain JSON: it travels from xdist workers)."""

    __slots__ = ("status", "reason", "saved", "in_process")

    def __init__(self, status: Checked | str, reason: str | None = None, saved: str | None = None,
                 in_process: str | None = None) -> None:
        self.status = Checked(status)
        self.reason = reason  # not checkable, or not saved: why
        self.saved = saved  # --retrace-self-check-save: the recording written, or None (reason says why not)
        self.in_process = in_process  # replayed in this process, not a fork: why

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SelfCheckInfo:
        return cls(**data)


class Settings(Record):
    """The session's self-check settings."""

    __slots__ = ("redaction", "save", "stuck_timeout", "modules")

    def __init__(self, redaction: Redaction, save: Path | None, stuck_timeout: float) -> None:
        self.redaction = redaction  # what production recordings redact must replay faithfully redacted
        self.save = save  # the folder each faithful test's recording is written to
        self.stuck_timeout = stuck_timeout
        self.modules: set[str] = set()  # test modules whose project root keys paths already


def opted_out(item: pytest.Function) -> str | None:
    """Why the test is not to be checked (``@pytest.mark.retrace_self_check(False, reason=…)``), or None."""
    marker = item.get_closest_marker("retrace_self_check")
    if marker is None:
        return None
    enabled = marker.kwargs.get("enabled", marker.args[0] if marker.args else True)
    if enabled:
        return None
    reason = marker.kwargs.get("reason") or (marker.args[1] if len(marker.args) > 1 else None)
    return f"opted out: {reason}" if reason else "opted out by @pytest.mark.retrace_self_check(False)"


def _key_paths_for(item: pytest.Function, settings: Settings) -> None:
    """Paths under the test's project key as ``<project>/…``, as a saved recording's replay keys them (the
    project root found from the test's module, as for any recorded function; once per module)."""
    module = item.obj.__module__
    if module not in settings.modules:
        settings.modules.add(module)
        use_project_of(lambda: entry_point(item.obj))


def check(item: pytest.Function, settings: Settings) -> Generator[None, Any, Any]:
    """The body of the pytest_pyfunc_call wrapper for one test."""
    reason = opted_out(item)
    if reason is not None:
        _tell(item, SelfCheckInfo(Checked.NOT_CHECKABLE, reason))
        return (yield)
    _key_paths_for(item, settings)
    install_for_session()  # a no-op once the session (or a service) installed the boundaries: the fork has them
    no_fork = fork_unavailable()
    if no_fork is not None:
        return (yield from _check_in_process(item, settings, no_fork))
    fork = ReplayFork.start()
    if fork.in_child:
        yield from _replay_in_child(fork, settings)  # never returns: the child ends there
    recording = _Run(settings.redaction, settings.save is not None)
    try:
        result = yield
        exc = None
    except BaseException as raised:  # the test's own failure is an outcome to compare
        result, exc = None, raised
    finally:
        recording.stop()
    if isinstance(exc, (KeyboardInterrupt, pytest.exit.Exception)):
        fork.cancel()
        raise exc
    try:
        unreplayable = recording.unreplayable(item.fixturenames)
        data = fork.pack(recording.tape.table.names, recording.tape.sink, recording.setup, recording.classified())
    except _UNRECORDABLE as problem:
        unreplayable = f"cannot be recorded: {problem}"
    if unreplayable is not None:
        fork.cancel()
        _tell(item, SelfCheckInfo(Checked.NOT_CHECKABLE, unreplayable))
        return _ending(result, exc)
    fork.send(data)
    checked = fork.result(settings.stuck_timeout + REPORT_GRACE + 3 * recording.duration)
    info = _judge(checked, outcome_text(exc), fork.threads_before)
    if info.status == Checked.FAITHFUL and settings.save is not None:
        info.saved, info.reason = _save(item, settings, recording, exc)
    _tell(item, info)
    if info.status in (Checked.DIVERGED, Checked.ERROR):
        pytest.fail(_failure(item, info, checked, outcome_text(exc), recording.events()), pytrace=False)
    return _ending(result, exc)


def _ending(result: Any, exc: BaseException | None) -> Any:
    if exc is not None:
        raise exc
    return result


class _Run:
    """The recording of the test's run in this process: into the session's Router (``install_for_session``),
    on this thread and the threads the test starts, as a service records a call."""

    def __init__(self, redaction: Redaction, keep_environment: bool) -> None:
        self.tape = MemoryTape()
        self.recorder = Recorder(self.tape)
        self.recorder.redaction = redaction
        self.environ = env.capture() if keep_environment else None  # a saved recording's environment
        self.wall_started = time.time()
        self._started = time.monotonic()
        self.duration = 0.0
        self._classifier = classifier_for(())  # the session Router's (installed with Options())
        self._classified = self._classifier.mark()
        collector.outermost()  # the program's own collector callbacks behind the gate (see boundaries/collector)
        start_call_thread(self.recorder)
        # Its first event: the seed of the module-level random functions' generator while it runs (as a replay
        # seeds the module's own).
        self.recorder.generator = entropy.own_generator(self.recorder)

    def stop(self) -> None:
        end_call_thread()
        self.recorder.open = False  # threads the test started that run on are outside it from now on
        self.duration = time.monotonic() - self._started
        self.setup = Setup(self.recorder.setup_marked, PROCESS_LOG.snapshot())

    def events(self) -> int:
        return self.recorder.events_in(len(self.tape.sink))

    def classified(self) -> list[Any]:
        """How the run classified paths it had not met before (code or data), for its replay to classify alike."""
        return self._classifier.since(self._classified)

    def unreplayable(self, fixtures: list[str]) -> str | None:
        """Why no replay can follow this run from where it began, or None. ``fixtures``: the test's."""
        captures = [f for f in ("capfd", "capfdbinary") if f in fixtures]
        if captures and self.recorder.output_shared:
            return (f"it reads back ({captures[0]}) what the processes it starts write to the descriptors it "
                    "captures, which no recording holds")
        if self.recorder.code_changed:
            changed = sorted(set(self.recorder.code_changed))
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            return (f"it changes {changed[0]}{more}, which its replay reads live as the run left it (a file in a "
                    "package counts as code)")
        return None


def _replay_in_child(fork: ReplayFork, settings: Settings) -> Generator[None, Any, None]:
    """In the forked child: replay the test's call once the run's recording arrives. Ends the process."""
    try:
        engine = fork.receive(settings.redaction, settings.stuck_timeout)
    except BaseException:  # noqa: BLE001 - our failure, reported as such
        fork.failed()
    if engine is None:
        os._exit(0)
    try:
        yield  # the test's call, as pytest makes it, replayed
        exc = None
    except BaseException as raised:  # noqa: BLE001 - how the replayed call ended
        exc = raised
    fork.finished(engine, exc)


def _judge(checked: CheckResult, recorded: str, threads_before: list[str]) -> SelfCheckInfo:
    """How the check went; ``threads_before``: the other threads running when the test began."""
    stuck = checked.divergence is not None and checked.divergence.kind == DivergenceKind.STUCK
    if stuck and threads_before:
        return SelfCheckInfo(Checked.NOT_CHECKABLE, "its replay waits for what threads running before the test "
                             f"did for it ({', '.join(threads_before)}): their work is outside its recording")
    if checked.error is not None:
        return SelfCheckInfo(Checked.ERROR, checked.error.strip().splitlines()[-1] if checked.error.strip() else "")
    if checked.divergence is not None or checked.unconsumed is not None or checked.replayed != recorded:
        return SelfCheckInfo(Checked.DIVERGED)
    return SelfCheckInfo(Checked.FAITHFUL)


def _failure(item: pytest.Function, info: SelfCheckInfo, checked: CheckResult, recorded: str, events: int) -> str:
    """The failure text of a test whose self-check did not find its replay faithful."""
    if info.status == Checked.ERROR:
        return (f"retrace self-check error: pytest-retrace failed while replaying {item.nodeid} (a bug in "
                f"pytest-retrace: please report it with this text; mark the test "
                f"@pytest.mark.retrace_self_check(False) meanwhile)\n{checked.error}")
    if checked.divergence is not None:
        return format_verdict(Verdict(f"self-check of {item.nodeid}", Status.DIVERGED, checked.divergence,
                                      events_recorded=events, events_consumed=checked.consumed))
    if checked.replayed != recorded:
        return (f"retrace self-check: {item.nodeid}: the replay ended otherwise than the run\n"
                f"  run:    {recorded}\n  replay: {checked.replayed}")
    assert checked.unconsumed is not None
    expected = checked.unconsumed.expected
    return (f"retrace self-check: {item.nodeid}: the replay ended without making the recorded call "
            f"#{checked.unconsumed.index} {expected.call if expected is not None else ''}")


def _tell(item: pytest.Function, info: SelfCheckInfo) -> None:
    item.user_properties.append((PROPERTY, info.to_json()))


# -- saving each checked test as a recording -------------------------------------------------------------------


def recording_name(nodeid: str) -> Path:
    """Where a test's recording goes in the save folder: its node id as a path (``tests/test_x.py::T::test_y[1]``
    → ``tests/test_x/T/test_y[1].retrace``), every part a safe file name."""
    path, _, rest = nodeid.partition("::")
    parts = [p for p in re.split(r"[/\\]", path.removesuffix(".py")) if p not in ("", ".", "..")]
    parts += [p for p in rest.split("::") if p]
    safe = [re.sub(r"[\x00-\x1f/\\:*?\"<>|]", "_", p)[:200] or "_" for p in parts]
    safe[-1] += ".retrace"
    return Path(*safe)


def _save(item: pytest.Function, settings: Settings, run: _Run,
          exc: BaseException | None) -> tuple[str | None, str | None]:
    """Write the test's recording, a call of the test function with its fixture values as arguments, for
    ``pytest --retrace-recordings`` to replay. The path written, or None and why not."""
    assert settings.save is not None
    if item.cls is not None:
        return None, "a test method (the instance of its class cannot travel in a recording)"
    if exc is not None and not isinstance(exc, Exception):
        return None, f"it ended with {type(exc).__name__}, which no replayed call reproduces"
    redaction = settings.redaction
    kwargs = {}
    for name in item._fixtureinfo.argnames:
        value = item.funcargs[name]
        try:
            kwargs[name] = codec.unpackb(codec.packb(redaction.data(value)))
        except _UNRECORDABLE:
            return None, (f"fixture {name!r} holds a {type(value).__qualname__}, which a recording "
                          "cannot hold")
    entry = dict(entry_point(item.obj), args=[], kwargs=kwargs)
    # The replay calls the test function itself, which returns None (pytest's call of it returned True).
    none = returned_summary(None, redaction)
    outcome = Outcome(1, ExceptionInfo.of(exc)) if exc is not None else Outcome(0, returned=none)
    path = settings.save / recording_name(item.nodeid)
    try:
        write_recording(path, Kind.CALL, entry, run.tape, outcome, run.events(), run.setup, redaction,
                        run.environ or {}, run.wall_started, replace=True)
    except OSError as problem:
        return None, f"{path} cannot be written: {problem}"
    return str(path), None


# -- where there is no fork -------------------------------------------------------------------------------------


class _InProcess:
    said = False  # the fallback is said once a session


def _check_in_process(item: pytest.Function, settings: Settings, why: str) -> Generator[None, Any, Any]:
    """Record the run, then replay the test function again in this process with the same fixture values."""
    if not _InProcess.said:
        _InProcess.said = True
        item.config.issue_config_time_warning(pytest.PytestWarning(
            f"retrace self-check replays each test in this process ({why}): a test that changes its fixtures "
            "or module state may diverge"), stacklevel=2)
    run = _Run(settings.redaction, False)
    try:
        result = yield
        recorded_exc = None
    except BaseException as raised:
        result, recorded_exc = None, raised
    finally:
        run.stop()
    try:
        unreplayable = run.unreplayable(item.fixturenames)
        events = run.tape.events()
    except _UNRECORDABLE as problem:
        unreplayable = f"cannot be recorded: {problem}"
    if unreplayable is not None:
        _tell(item, SelfCheckInfo(Checked.NOT_CHECKABLE, unreplayable, in_process=why))
        return _ending(result, recorded_exc)
    args = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    replayer = Replayer(events)
    replayer.redaction = settings.redaction
    replayed_exc = _run_under(replayer, lambda: item.obj(**args))
    replayer.finish()
    checked = CheckResult(replayed=outcome_text(replayed_exc), consumed=replayer.consumed)
    if isinstance(replayed_exc, ReplayDivergence):
        checked = CheckResult(divergence=replayed_exc.divergence, consumed=replayed_exc.divergence.index or 0)
    elif replayer.consumed < len(events):
        following = events[replayer.consumed]
        checked.unconsumed = Divergence(DivergenceKind.MISSING_CALLS, following.index, following.tid,
                                        expected=Call(following.describe()))
    info = _judge(checked, outcome_text(recorded_exc), [])
    info.in_process = why
    _tell(item, info)
    if info.status in (Checked.DIVERGED, Checked.ERROR):
        pytest.fail(_failure(item, info, checked, outcome_text(recorded_exc), len(events)), pytrace=False)
    return _ending(result, recorded_exc)


def _run_under(engine: Replayer, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` with its calls answered by ``engine``, through the session's Router as the run recorded them."""
    start_call_thread(engine)
    try:
        engine.generator = entropy.own_generator(engine)
        call()
    except BaseException as exc:  # noqa: BLE001 - how the replayed call ended
        return exc
    finally:
        end_call_thread()
    return None


# -- the summary --------------------------------------------------------------------------------------------------

MAX_LISTED = 10  # tests listed under each reason


class SelfCheckSummary:
    """Counts self-checks as reports arrive (from xdist workers too) and writes the summary section."""

    def __init__(self, config: pytest.Config, saving: Path | None) -> None:
        self.config = config
        self.saving = saving
        self.counts = dict.fromkeys(Checked, 0)
        self.reasons: dict[str, list[str]] = {}  # not checkable, by reason: the tests
        self.errors: dict[str, list[str]] = {}  # ours, by the exception that ended them
        self.not_saved: dict[str, list[str]] = {}
        self.saved = 0
        self.in_process: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        data = dict(report.user_properties).get(PROPERTY)
        if data is None:
            return
        info = SelfCheckInfo.from_json(data)  # type: ignore[arg-type]
        self.counts[info.status] += 1
        if info.status == Checked.NOT_CHECKABLE:
            self.reasons.setdefault(_cause(info.reason or ""), []).append(report.nodeid)
        elif info.status == Checked.ERROR:
            self.errors.setdefault(_cause(info.reason or ""), []).append(report.nodeid)
        elif info.reason is not None:
            self.not_saved.setdefault(_cause(info.reason), []).append(report.nodeid)
        self.saved += info.saved is not None
        self.in_process = self.in_process or info.in_process

    def pytest_sessionfinish(self) -> None:
        reap(wait=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller sees every report
            return
        write = terminalreporter.write_line
        checked = self.counts[Checked.FAITHFUL] + self.counts[Checked.DIVERGED] + self.counts[Checked.ERROR]
        terminalreporter.write_sep("=", "retrace self-check")
        parts = [f"{checked} self-checked", f"{self.counts[Checked.FAITHFUL]} faithful",
                 f"{self.counts[Checked.DIVERGED]} diverged"]
        if self.counts[Checked.ERROR]:
            parts.append(f"{self.counts[Checked.ERROR]} errors (pytest-retrace failed: please report)")
        parts.append(f"{self.counts[Checked.NOT_CHECKABLE]} not checkable")
        if self.saving:
            parts.append(f"{self.saved} saved to {self.saving}")
        write(", ".join(parts))
        if self.in_process:
            write(f"replayed in this process, not in a fork: {self.in_process}")
        for title, groups in (("error", self.errors), ("not checkable", self.reasons), ("not saved", self.not_saved)):
            for reason, nodeids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                write(f"{title} ({len(nodeids)}): {reason}")
                for nodeid in nodeids[:MAX_LISTED]:
                    write(f"    {nodeid}")
                if len(nodeids) > MAX_LISTED:
                    write(f"    … {len(nodeids) - MAX_LISTED} more")


def _cause(reason: str) -> str:
    """A reason without what differs from test to test (a value's repr), for grouping."""
    return reason.splitlines()[0] if reason else reason
