"""A long replay's progress line on pytest's terminal (``runner/progress.py`` draws it).

The line goes after what pytest's current line holds (the recording's path, in the test's progress line) and
is erased from it again, so pytest's own bookkeeping of that line stays true. It is written while capture is
suspended (``global_and_fixture_disabled``, as live logging writes), to the stream pytest's terminal writes
to. Nothing is drawn when that is no terminal, nor in an xdist worker (the controller draws the terminal).
"""

from __future__ import annotations

import contextlib
import sys
from contextlib import AbstractContextManager

import pytest

from ..runner.progress import ProgressLine

_LINE = pytest.StashKey["ProgressLine | None"]()


class PytestTerminal:
    def __init__(self, config: pytest.Config) -> None:
        self._writer = config.get_terminal_writer()
        self._capture = config.pluginmanager.get_plugin("capturemanager")

    def room(self) -> int:
        with self._suspended():  # the writer asks stdout for the terminal's width: captured, it is none
            return self._writer.fullwidth - self._writer.width_of_current_line

    def write(self, text: str) -> None:
        with self._suspended():
            sys.stdout.write(text)
            sys.stdout.flush()

    def _suspended(self) -> AbstractContextManager[None]:
        return self._capture.global_and_fixture_disabled() if self._capture else contextlib.nullcontext()


def progress_line(config: pytest.Config) -> ProgressLine | None:
    """The session's progress line for long replays, or None where none is drawn."""
    if _LINE not in config.stash:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        isatty = getattr(reporter, "isatty", False)  # a method since pytest 9, a plain bool before
        on_terminal = (isatty() if callable(isatty) else bool(isatty)) and not hasattr(config, "workerinput")
        config.stash[_LINE] = ProgressLine(PytestTerminal(config)) if on_terminal else None
    return config.stash[_LINE]
