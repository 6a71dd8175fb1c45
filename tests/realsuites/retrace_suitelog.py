"""A tiny pytest plugin for ``run_suites.py``: writes one JSON line per test report, collection error and internal
error to the file given by ``--retrace-suitelog``, so the runner needs no output parsing to count outcomes.

Loaded with ``-p retrace_suitelog`` (the runner puts this folder on ``PYTHONPATH``). Under xdist only the controller
writes: it receives every worker's reports, user properties included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

TEXT_LIMIT = 40_000  # characters kept of a failure's text
PROPERTY = "retrace_self_check"  # the user property pytest-retrace's self-check sets on a checked test's report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--retrace-suitelog", default=None, help="write one JSON line per report to this file")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("retrace_suitelog")
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Log(path), "retrace-suitelog-writer")


class _Log:
    def __init__(self, path: str) -> None:
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed at session end

    def _write(self, **fields: Any) -> None:
        self.file.write(json.dumps(fields, default=repr) + "\n")
        self.file.flush()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        text = ""
        if report.failed:
            text = report.longreprtext
        elif report.skipped and isinstance(report.longrepr, tuple):
            text = str(report.longrepr[2])
        check = dict(report.user_properties).get(PROPERTY) if report.when == "call" else None
        self._write(kind="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
                    wasxfail=getattr(report, "wasxfail", None), duration=report.duration,
                    text=text[:TEXT_LIMIT], check=check)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(kind="collecterror", nodeid=report.nodeid, text=report.longreprtext[:TEXT_LIMIT])

    def pytest_internalerror(self, excrepr: Any, excinfo: Any) -> None:
        self._write(kind="internalerror", text=str(excrepr)[:TEXT_LIMIT])

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._write(kind="sessionfinish", exitstatus=int(exitstatus))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.file.close()
