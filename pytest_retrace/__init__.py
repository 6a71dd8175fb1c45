"""pytest-retrace: record real executions of Python programs and replay them as regression tests.

The package is a house whose floors import only the floors below them:

    front ends     plugin.py (pytest), cli.py (retrace), front/ (items, self-check, reports, pinning)
    runner         runner/ (launcher, child entry, fork server, protocol, verdict)
    kinds          kinds/ (process, call, request: each with its record and replay side)
    boundaries     boundaries/ (stdlib areas, custom boundaries), adapters/ (requests, DB-API)
    hooks          hooks/ (our pluggy hooks and their plugin manager)
    engine         engine/ (thread state, recorder, replayer, divergence, demultiplexer)
    format         format/ (codec, event form, the *.retrace file); errors, enums, record, frames, paths, redaction,
                   _version

``wsgi.py`` is the public face of request recordings. Public names are re-exported here, loaded on
first use: the plugin module imports this package, and a replay should not pay for what it does
not use.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .errors import RecordingError, RetraceError, UnrecordedCall

__all__ = ["Redaction", "RecordingError", "ReplayDivergence", "RetraceError", "UnrecordedCall", "__version__",
           "boundary", "hookimpl", "record_calls"]


def __getattr__(name: str) -> Any:
    if name == "boundary":
        from .boundaries.custom import boundary

        return boundary
    if name == "record_calls":
        from .kinds.call import record_calls

        return record_calls
    if name == "hookimpl":
        from .hooks.specs import hookimpl

        return hookimpl
    if name == "Redaction":
        from .redaction import Redaction

        return Redaction
    if name == "ReplayDivergence":
        from .engine.divergence import ReplayDivergence

        return ReplayDivergence
    raise AttributeError(f"module 'pytest_retrace' has no attribute {name!r}")
