"""The program's own frames: stacks and tracebacks without pytest-retrace's, or the launcher's.

A replay's report shows where the program stood; a recorded crash's traceback and fingerprint must
be the same whichever way the program was started (plainly, recorded, replayed).
"""

from __future__ import annotations

import runpy
import traceback
from types import FrameType, TracebackType
from typing import Any

from ..frames import PACKAGE_DIR

_LAUNCHER_FILES = ("<string>", "<frozen runpy>", runpy.__file__)


try:
    from .._native import exec_as_main
except ImportError:  # the extension could not be built: our frames stay beneath the program's
    exec_as_main = exec  # type: ignore[assignment]


def main_module_runs_alone() -> None:
    """The next module code runpy runs (the program's main module) runs at the bottom of the thread's stack,
    as with ``python script.py``: stack walks in the program never show the launcher's frames."""

    def exec_once(code: Any, run_globals: dict[str, Any], *rest: Any) -> None:
        del runpy.exec  # type: ignore[attr-defined]
        exec_as_main(code, run_globals, *rest)

    runpy.exec = exec_once  # type: ignore[attr-defined]  # runpy's _run_code calls exec() by its global name


def launcher_frame(filename: str) -> bool:
    """Frames that run the program rather than belong to it: ours, runpy's, the child's ``-c``."""
    return filename.startswith(PACKAGE_DIR) or filename in _LAUNCHER_FILES


def replay_stack(frame: FrameType | None = None) -> list[list[Any]]:
    """The program's Python stack at this point (or at ``frame``), without pytest-retrace's own frames."""
    frames = traceback.extract_stack(frame)
    while frames and launcher_frame(frames[0].filename):
        frames.pop(0)
    return [
        [f.filename, f.lineno, f.name, f.line or ""]
        for f in frames
        if not f.filename.startswith(PACKAGE_DIR) and "importlib._bootstrap" not in f.filename
    ]


def program_traceback(exc: BaseException) -> TracebackType | None:
    """The exception's traceback from the program's first frame on (the launcher's frames dropped)."""
    tb = exc.__traceback__
    while tb is not None and launcher_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb
