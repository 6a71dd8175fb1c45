"""Exceptions that reach users of pytest-retrace."""

from __future__ import annotations


class RetraceError(Exception):
    """Base of every error pytest-retrace raises on purpose."""


class RecordingError(RetraceError):
    """A recording file cannot be used: missing, not a recording, or from a newer format."""


class UnrecordedCall(RetraceError):
    """Raised into the program on replay for an external call the recording holds no answer to."""


class ReplayDivergence(BaseException):
    """The replay made a call other than the recorded one (in-process replays only).

    A BaseException so that the program's own ``except Exception`` cannot swallow it.
    """

    def __init__(self, report: dict) -> None:
        self.report = report
        super().__init__(report.get("summary", "replay diverged"))
