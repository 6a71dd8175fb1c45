"""Where a local got its value (``trace_provenance``): a traced run of the program's own frames notes, line by
line, which locals each line changed and which recorded events it consumed; the chain of a name is then walked
back through the lines that assigned it and the names those lines read, down to the recorded external calls
(events) and constants it came from.

What it sees: assignments by the program's Python code in the frames traced (``x = …``, ``x += …``, ``for x in …``,
``with … as x``, unpacking), the names an assigning line reads (from the line's source), the events consumed while
that line ran. What it cannot see: what C code or a library's frames did with a value (only the program's own
frames are traced), values that flow through attributes, containers changed in place, or globals, and a value
that came in as a parameter (the chain stops there, naming the parameter).
"""

from __future__ import annotations

import ast
import io
import linecache
import sys
import tokenize
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..record import Record

_MISSING = object()


class Assignment(Record):
    """A line of the program that gave ``name`` a new value: where, the value (a bounded repr), the names the line
    read, and the positions of the events consumed while it ran. ``name`` None: a line that gave no local a new
    value but consumed events, acting on an object it read (``cur.execute(…)``, whose rows ``cur.fetchone()`` then
    hands out)."""

    __slots__ = ("file", "line", "function", "name", "value", "source", "reads", "events")

    def __init__(self, file: str, line: int, function: str, name: str | None, value: str | None, source: str,
                 reads: list[str], events: list[int]) -> None:
        self.file = file
        self.line = line
        self.function = function
        self.name = name
        self.value = value
        self.source = source
        self.reads = reads
        self.events = events


def names_read(source: str) -> list[str]:
    """The names a line of code reads (loads), in order, once each; none when it does not parse alone (a line of
    a statement that spans several: its first line is what the trace reports)."""
    text = _without_comment(source.strip())
    if text.endswith(":"):  # a compound statement's header: `for x in y:`, `with a as b:`, `if c:`
        text += " pass"
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            seen.setdefault(node.id, None)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            seen.setdefault(node.target.id, None)  # `x += y` reads x too
    return list(seen)


def _without_comment(text: str) -> str:
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                return text[: token.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return text


class _FrameLog:
    """One traced frame: its locals after the last line, the line that is running and the events before it."""

    __slots__ = ("before", "line", "position", "assignments")

    def __init__(self, frame: FrameType, position: int) -> None:
        self.before = dict(frame.f_locals)
        self.line = frame.f_lineno
        self.position = position
        self.assignments: list[Assignment] = []


class ProvenanceTracer:
    """Traces the frames of files ``traced(filename)`` says are the program's; ``position()`` is the replay's event
    position (events consumed so far); ``shown(value)`` a value's bounded repr."""

    def __init__(self, traced: Callable[[str], bool], position: Callable[[], int],
                 shown: Callable[[Any], str]) -> None:
        self.traced = traced
        self.position = position
        self.shown = shown
        self.frames: dict[int, _FrameLog] = {}  # by id(frame), while it runs
        self.by_frame: dict[int, list[Assignment]] = {}  # every traced frame's assignments, kept after it returns

    def install(self) -> None:
        sys.settrace(self._call)

    def uninstall(self) -> None:
        sys.settrace(None)

    def _call(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event != "call" or not self.traced(frame.f_code.co_filename):
            return None
        self.frames[id(frame)] = _FrameLog(frame, self.position())
        self.by_frame.setdefault(id(frame), [])
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event in ("line", "return"):
            self._changed(frame)
            if event == "return":
                self.frames.pop(id(frame), None)
        return self._local

    def _changed(self, frame: FrameType) -> None:
        """The line that just ran: note the locals it gave a new value."""
        log = self.frames.get(id(frame))
        if log is None:
            return
        now = frame.f_locals
        position = self.position()
        changed = [name for name, value in now.items() if log.before.get(name, _MISSING) is not value]
        if changed or position > log.position:
            code = frame.f_code
            source = linecache.getline(code.co_filename, log.line).strip()
            reads = names_read(source)
            events = list(range(log.position, position))
            steps = [Assignment(code.co_filename, log.line, code.co_name, name, self.shown(now[name]), source, reads,
                                events) for name in changed]
            if not steps:  # events consumed, no local changed: an object acted on
                steps = [Assignment(code.co_filename, log.line, code.co_name, None, None, source, reads, events)]
            log.assignments += steps
            self.by_frame[id(frame)] += steps
            log.before = dict(now)
        log.line, log.position = frame.f_lineno, position

    def chain(self, frame: FrameType, name: str) -> list[Assignment]:
        """How ``name`` in ``frame`` (a traced frame, running or stopped) got its value: its last assignment, then
        the last assignment before it of each name that line read, and so on back; newest first."""
        self._changed(frame)  # the line it stands at, if it changed anything
        history = self.by_frame.get(id(frame), [])
        found: list[Assignment] = []
        wanted = [(name, len(history))]
        visited: set[int] = set()
        while wanted:
            looked_for, before = wanted.pop(0)
            index = next((i for i in range(before - 1, -1, -1) if history[i].name == looked_for), None)
            # What acted on the object since it was assigned, consuming events (its rows, its answers): the latest.
            acted = next((i for i in range(before - 1, -1 if index is None else index, -1)
                          if history[i].name is None and looked_for in history[i].reads), None)
            if acted is not None and acted not in visited:
                visited.add(acted)
                found.append(history[acted])
            if index is None or index in visited:
                continue
            visited.add(index)
            assignment = history[index]
            found.append(assignment)
            wanted += [(read, index) for read in assignment.reads]
        return found
