"""Exceptions that reach users of pytest-retrace (see also ``ReplayDivergence``, which the engine raises)."""

from __future__ import annotations


class RetraceError(Exception):
    """Base of every error pytest-retrace raises on purpose."""


class RecordingError(RetraceError):
    """A recording file cannot be used: missing, not a recording, or from a newer format."""


class UnrecordedCall(RetraceError):
    """Raised into the program on replay for an external call the recording holds no answer to."""
