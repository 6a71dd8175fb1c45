"""The program's frames at a stop of a replay, as data (what ``get_crash_state`` and ``inspect_stack`` answer): each
frame's place and source line, and its locals as bounded reprs with the recording's redaction applied (a local
named like a secret shows the placeholder; secret-shaped text in any value is replaced)."""

from __future__ import annotations

import linecache
from collections.abc import Callable
from types import FrameType, FunctionType, ModuleType, TracebackType
from typing import Any

from ..record import Record
from ..redaction import PLACEHOLDER, Redaction

MAX_LOCALS = 60  # locals a frame's answer holds at most (the first ones, in the order the frame has them)


class FrameState(Record):
    """One frame of the program at a stop: where it stands and its locals."""

    __slots__ = ("file", "line", "function", "source", "locals")

    def __init__(self, file: str, line: int, function: str, source: str, locals: dict[str, str]) -> None:  # noqa: A002
        self.file = file
        self.line = line
        self.function = function
        self.source = source
        self.locals = locals


def _worth_showing(name: str, value: Any, module_level: bool) -> bool:
    """A module's namespace is its locals: what it imported and defined is no state worth showing."""
    if name.startswith("__") and name.endswith("__"):
        return False
    return not module_level or not isinstance(value, (ModuleType, FunctionType, type))


def frame_state(frame: FrameType, line: int, shown: Callable[[Any], str], redaction: Redaction) -> FrameState:
    code = frame.f_code
    module_level = frame.f_locals is frame.f_globals
    values: dict[str, str] = {}
    kept = [(n, v) for n, v in frame.f_locals.items() if _worth_showing(n, v, module_level)]
    for name, value in kept[:MAX_LOCALS]:
        if redaction.matches(name):
            values[name] = PLACEHOLDER
        else:
            values[name] = redaction.text(shown(value))
    return FrameState(code.co_filename, line, code.co_name, linecache.getline(code.co_filename, line).strip(),
                      values)


def stack_of(frame: FrameType | None, program: Callable[[str], bool], shown: Callable[[Any], str],
             redaction: Redaction) -> list[FrameState]:
    """The program's frames from ``frame`` outwards, outermost first (as a traceback lists them); frames of files
    ``program(filename)`` says are not the program's (ours, the standard library's) are left out."""
    frames = []
    while frame is not None:
        if program(frame.f_code.co_filename):
            frames.append(frame_state(frame, frame.f_lineno, shown, redaction))
        frame = frame.f_back
    return frames[::-1]


def crash_stack(tb: TracebackType | None, program: Callable[[str], bool], shown: Callable[[Any], str],
                redaction: Redaction) -> list[FrameState]:
    """The program's frames of an exception's traceback, outermost first, each at the line it stood at when the
    exception passed."""
    frames = []
    while tb is not None:
        if program(tb.tb_frame.f_code.co_filename):
            frames.append(frame_state(tb.tb_frame, tb.tb_lineno, shown, redaction))
        tb = tb.tb_next
    return frames
