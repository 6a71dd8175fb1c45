"""pytest-retrace: record real executions of Python programs and replay them as regression tests."""

from __future__ import annotations

from .errors import RecordingError, ReplayDivergence, RetraceError, UnrecordedCall

__version__ = "0.1.0"

__all__ = ["RecordingError", "ReplayDivergence", "RetraceError", "UnrecordedCall", "__version__"]
