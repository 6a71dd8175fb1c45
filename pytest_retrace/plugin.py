"""The pytest plugin (entry point ``retrace``): every recording a test case.

Options, hooks and the summary live here; the replay machinery (``collect.py`` and
what it uses) is imported only when a recording is actually collected, so loading
the plugin costs a project nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .collect import RecordingFile

SUFFIX = ".retrace"
COUNTED = ("replayed", "ok", "diverged", "crash reproduced", "crash fixed", "regressed", "nondeterministic",
           "accepted", "errors")
_STATUS_COUNTER = {"ok": "ok", "diverged": "diverged", "crash-reproduced": "crash reproduced",
                   "crash-fixed": "crash fixed", "new-crash": "diverged", "truncated": "errors", "corrupt": "errors",
                   "missing-program": "errors"}


# -- options ---------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("retrace", "pytest-retrace: replay recorded executions as tests")
    group.addoption("--retrace-recordings", action="append", dest="retrace_recordings", default=[], metavar="PATH",
                    help="replay every *.retrace recording in PATH (a file or a folder) as a test; repeatable")
    group.addoption("--retrace-determinism-runs", dest="retrace_determinism_runs", type=int, default=None,
                    metavar="N", help="replay each recording N times and fail when two replays differ")
    group.addoption("--retrace-accept", dest="retrace_accept", action="store_true", default=False,
                    help="rewrite a recording's outcome when only the outcome changed and every call matched")
    group.addoption("--retrace-report", dest="retrace_report", metavar="FILE", default=None,
                    help="write the replay verdicts and counts as JSON to FILE")
    group.addoption("--retrace-self-check", dest="retrace_self_check", action="store_true", default=False,
                    help="record each ordinary test while it runs and replay it at once; fail when the replay "
                         "is not faithful")
    group.addoption("--retrace-stuck-timeout", dest="retrace_stuck_timeout", type=float, default=None,
                    metavar="SECONDS", help="how long a replay may make no progress before it counts as stuck")
    parser.addini("retrace_recordings", type="paths", default=[],
                  help="recordings (files or folders) replayed when pytest runs without explicit paths")
    parser.addini("retrace_determinism_runs", default="1", help="default for --retrace-determinism-runs")
    parser.addini("retrace_stuck_timeout", default="10", help="default for --retrace-stuck-timeout (seconds)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "retrace(recordings): parametrize the test over recordings (files or folders); the retrace_replay "
        "fixture replays each one and returns its outcome",
    )
    paths = [Path(p) for p in config.getoption("retrace_recordings")]
    from_ini = not paths
    if from_ini and config.args_source != pytest.Config.ArgsSource.ARGS:
        paths = list(config.getini("retrace_recordings"))
    if paths:
        for path in paths:
            _check_recordings_path(path, "retrace_recordings (ini)" if from_ini else "--retrace-recordings")
        if not from_ini and config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = []  # `pytest --retrace-recordings=DIR` replays DIR, not the default test paths too
        config.args.extend(str(p) for p in paths)
    config.pluginmanager.register(RetraceSummary(config), "retrace-summary")


def _check_recordings_path(path: Path, option: str) -> None:
    if not path.exists():
        raise pytest.UsageError(f"{option}: {path} does not exist; give a .retrace file or a folder of them")
    if path.is_file():
        if path.suffix != SUFFIX:
            raise pytest.UsageError(f"{option}: {path} is not a recording (recordings end in {SUFFIX})")
        return
    if not any(path.rglob(f"*{SUFFIX}")):
        raise pytest.UsageError(
            f"{option}: no *{SUFFIX} recordings in {path}; record some first "
            "(retrace record -o REC.retrace script.py), or point at the folder that holds them"
        )


# -- collection ------------------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> RecordingFile | None:
    if file_path.suffix != SUFFIX:
        return None
    from .collect import RecordingFile

    return RecordingFile.from_parent(parent, path=file_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("retrace")
    if marker is None or "retrace_replay" not in metafunc.fixturenames:
        return
    recordings = marker.kwargs.get("recordings", marker.args[0] if marker.args else None)
    if recordings is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.retrace needs recordings=PATH")
    base = Path(metafunc.definition.fspath).parent
    found: list[Path] = []
    for entry in [recordings] if isinstance(recordings, (str, os.PathLike)) else recordings:
        path = Path(entry) if Path(entry).is_absolute() else base / entry
        _check_recordings_path(path, f"{metafunc.definition.nodeid}: @pytest.mark.retrace")
        found += [path] if path.is_file() else sorted(path.rglob(f"*{SUFFIX}"))
    metafunc.parametrize("retrace_replay", found, indirect=True,
                         ids=[str(p.relative_to(base)) if p.is_relative_to(base) else p.name for p in found])


@pytest.fixture
def retrace_replay(request: pytest.FixtureRequest) -> Any:
    """Replays the recording this test is parametrized with and returns what happened."""
    if not hasattr(request, "param"):
        raise pytest.UsageError("retrace_replay: mark the test with @pytest.mark.retrace(recordings=PATH)")
    from .collect import replay_outcome

    return replay_outcome(Path(request.param), request.config)


# -- running ---------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if not pyfuncitem.config.getoption("retrace_self_check"):
        return (yield)
    from .selfcheck import check

    return (yield from check(pyfuncitem))


# -- reporting -------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and type(call.excinfo.value).__name__ == "RecordingUnusable":
        report.longrepr = str(call.excinfo.value)  # a plain message, not a traceback into pytest-retrace
    return report


class RetraceSummary:
    """Counts verdicts as reports arrive (from xdist workers too) and writes the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts = dict.fromkeys(COUNTED, 0)
        self.verdicts: list[dict[str, Any]] = []
        self.cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
        self.last = self.cache.get("retrace/last_status", {}) if self.cache is not None else {}
        self.now: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info: dict[str, Any] | None = dict(report.user_properties).get("retrace")  # type: ignore[assignment]
        if info is None or (report.when != "call" and not (report.when == "setup" and report.failed)):
            return
        status = info["status"]
        if report.when == "call":
            self.counts["replayed"] += 1
        counter = info.get("counter") or _STATUS_COUNTER.get(status)
        if counter:
            self.counts[counter] += 1
        if status == "crash-reproduced" and info.get("pinned") and self.last.get(report.nodeid) == "crash-fixed":
            self.counts["regressed"] += 1
            info["regressed"] = True
        self.now[report.nodeid] = status
        self.verdicts.append(dict(info, nodeid=report.nodeid, outcome=report.outcome))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller sees every report
            return
        if self.cache is not None and self.now:
            self.cache.set("retrace/last_status", {**self.last, **self.now})
        path = self.config.getoption("retrace_report")
        if path:
            with open(path, "w") as f:
                json.dump({"counts": self.counts, "recordings": self.verdicts}, f, indent=2, default=repr)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.counts["replayed"]:
            return
        terminalreporter.write_sep("=", "retrace summary")
        terminalreporter.write_line(", ".join(f"{n} {k}" for k, n in self.counts.items() if n or k == "replayed"))
        for hint in self._next_steps():
            terminalreporter.write_line(hint)

    def _next_steps(self) -> list[str]:
        hints = []
        statuses = {v["status"] for v in self.verdicts}
        crashes = [v for v in self.verdicts if v["status"] == "crash-reproduced"]
        if crashes:
            hints.append("recorded crashes still happen: fix them, then run again")
        unpinned = [v["recording"] for v in crashes if not v.get("pinned")]
        if unpinned:
            hints.append(f"keep a crash as a regression case: retrace pin {os.path.relpath(unpinned[0])}")
        if any(v.get("outcome_only") for v in self.verdicts):
            hints.append("only the outcome changed for some recordings: if that is intended, run again with "
                         "--retrace-accept")
        if "diverged" in statuses or "new-crash" in statuses:
            hints.append("diverged replays: the report names the first differing call; `retrace show REC` lists "
                         "the recorded calls")
        if self.counts["errors"]:
            hints.append("unusable recordings (truncated or corrupt): record them again")
        return hints
