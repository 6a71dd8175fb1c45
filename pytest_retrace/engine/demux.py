"""The one switch between the native demultiplexer and its pure-Python twin (see :mod:`..speedups`).

``NATIVE`` says which one is in use.
"""

from __future__ import annotations

from ..speedups import NATIVE as _EXTENSION
from ..speedups import PURE_ENV

if _EXTENSION is not None:
    from .._native import ABORTED, EXHAUSTED, TIMED_OUT, Demux

    NATIVE = True
else:
    from ._demux_py import ABORTED, EXHAUSTED, TIMED_OUT, Demux  # type: ignore[assignment]

    NATIVE = False

__all__ = ["ABORTED", "EXHAUSTED", "NATIVE", "PURE_ENV", "TIMED_OUT", "Demux"]
