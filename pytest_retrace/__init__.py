"""pytest-retrace: record real executions of Python programs and replay them as regression tests."""

from __future__ import annotations

from typing import Any

from .errors import RecordingError, ReplayDivergence, RetraceError, UnrecordedCall

__version__ = "0.1.0"

__all__ = ["RecordingError", "ReplayDivergence", "RetraceError", "UnrecordedCall", "__version__", "boundary",
           "hookimpl", "record_calls"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the plugin module imports this package, and a replay should not pay for pluggy
    # or inspect unless the program uses them.
    if name == "boundary":
        from .custom import boundary

        return boundary
    if name == "record_calls":
        from .calls import record_calls

        return record_calls
    if name == "hookimpl":
        from .hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'pytest_retrace' has no attribute {name!r}")
