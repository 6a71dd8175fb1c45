"""The one switch between the native demultiplexer and its pure-Python twin.

``PYTEST_RETRACE_PUREPYTHON=1`` forces the twin; otherwise the extension is
used when it was built. ``NATIVE`` says which one is in use.
"""

from __future__ import annotations

import os

PURE_ENV = "PYTEST_RETRACE_PUREPYTHON"

if os.environ.get(PURE_ENV, "") not in ("", "0"):
    from ._demux_py import ABORTED, EXHAUSTED, TIMED_OUT, Demux

    NATIVE = False
else:
    try:
        from ._native import ABORTED, EXHAUSTED, TIMED_OUT, Demux  # type: ignore[assignment]

        NATIVE = True
    except ImportError:  # the extension could not be built on this platform
        from ._demux_py import ABORTED, EXHAUSTED, TIMED_OUT, Demux

        NATIVE = False

__all__ = ["ABORTED", "EXHAUSTED", "NATIVE", "TIMED_OUT", "Demux"]
