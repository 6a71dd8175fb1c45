"""The one switch between the native module (``pytest_retrace._native``, built from ``native/``) and its
pure-Python twins.

``PYTEST_RETRACE_PUREPYTHON=1`` forces the twins (the demultiplexer, the event reader); otherwise the extension
is used when it was built. The stand-ins of boundaries use the extension whenever it is there (their twin keeps
pytest-retrace's frames in tracebacks). At the bottom of the package: every layer may ask.
"""

from __future__ import annotations

import os
from types import ModuleType

PURE_ENV = "PYTEST_RETRACE_PUREPYTHON"


def _native() -> ModuleType | None:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None
    try:
        import pytest_retrace._native as extension
    except ImportError:  # the extension could not be built on this platform
        return None
    return extension


NATIVE: ModuleType | None = _native()  # the extension, when it is the one in use
