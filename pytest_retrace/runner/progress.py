"""A long replay's progress on the terminal: ``replaying REC: 12,345 / 80,000 events``.

The replaying child does nothing per event for it: a thread of its own with nothing else to do copies the
engine's count of consumed events into a small file a few times a second (``engine/watchdog.py``'s
``ProgressFile``, asked for with ``ReplayConfig.progress``). On the launcher's side a :class:`ProgressLine`
has one thread that, while a replay runs, reads that file; once the replay has run :data:`DELAY` seconds it
draws the line after what the terminal's current line holds, redraws it at most every :data:`PERIOD`
seconds, and erases it when the replay ends, or before the program's own output passes on to the terminal
(:meth:`ProgressLine.passed_on`), which is then left as the program wrote it. The line is drawn only on a
:class:`Terminal`: the launcher's stderr when it is one (``retrace replay``, :func:`stderr_line`), pytest's
(``front/progress.py``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from ..engine.watchdog import PROGRESS

DELAY = 2.0  # seconds a replay runs before its progress is shown
PERIOD = 0.25  # seconds between two draws of the line
NARROWEST = 24  # columns the line needs at least; with less room it is not drawn
SHORTEST_PATH = 16  # columns of a recording's path worth showing, shortened; with less room it is left out


class Terminal(Protocol):
    def room(self) -> int:
        """Columns free on the current line, where the progress line is drawn (0: none now)."""

    def write(self, text: str) -> None:
        """Write ``text`` (cursor movements included) where the cursor is, at once."""


class StreamTerminal:
    """A terminal the launcher writes to itself (its stderr, when it is one)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def room(self) -> int:
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError):
            return 0
        return columns or 80  # a terminal that does not say its size (a serial console): the usual width

    def write(self, text: str) -> None:
        self._stream.write(text.encode("utf-8", "replace"))
        self._stream.flush()


class _Watched:
    """The replay being watched: what the line calls it, its count of events, the file its child counts in."""

    def __init__(self, label: str, total: int | None, fd: int) -> None:
        self.label = "".join(c if c.isprintable() else "?" for c in label)
        self.total = total
        self.fd = fd
        self.show_at = time.monotonic() + DELAY

    def count(self) -> int | None:
        """Events the child has consumed, as it last said (None: it has not said yet)."""
        data = os.pread(self.fd, PROGRESS.size, 0)
        return PROGRESS.unpack(data)[0] if len(data) == PROGRESS.size else None

    def text(self, count: int, room: int) -> str | None:
        """The line, in at most ``room`` columns (the recording's path shortened at its start, or left out when
        little of it would fit), or None."""
        figures = f"{count:,} / {self.total:,} events" if self.total else f"{count:,} events"
        whole = f"replaying {self.label}: {figures}"
        if len(whole) <= room:
            return whole
        space = room - len(whole) + len(self.label)
        if space >= SHORTEST_PATH:
            return f"replaying …{self.label[-(space - 1):]}: {figures}"
        bare = f"replaying {figures}"
        return bare if len(bare) <= room else None


class ProgressLine:
    """The progress line of this launcher's replays on ``terminal``: :meth:`watching` each replay."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self._lock = threading.Condition()
        self._watched: _Watched | None = None
        self._drawn = 0  # columns drawn after the cursor's place before the line
        self._line_open = False  # the program's last output to the terminal did not end its line
        self._thread_pid = 0  # the process the drawing thread runs in (a forked launcher starts its own)

    @contextlib.contextmanager
    def watching(self, recording: str, total: int | None) -> Iterator[str]:
        """While a replay of ``recording`` (of ``total`` events) runs: the path of the file its child counts in."""
        fd, path = tempfile.mkstemp(prefix="retrace-progress-")
        try:
            with self._lock:
                self._watched = _Watched(recording, total, fd)
                if self._thread_pid != os.getpid():
                    self._thread_pid = os.getpid()
                    threading.Thread(target=self._draw_while_watched, name="retrace-progress", daemon=True).start()
                self._lock.notify()
            yield path
        finally:
            with self._lock:
                self._watched = None
                self._erase()
            os.close(fd)
            os.unlink(path)

    def passed_on(self, sink: BinaryIO, data: bytes) -> None:
        """Write what the program printed to ``sink``, the terminal the line is on: the line erased first, and
        drawn again only after output that ended its line."""
        with self._lock:
            self._erase()
            sink.write(data)
            sink.flush()
            if data:
                self._line_open = not data.endswith(b"\n")

    def beneath(self, sink: BinaryIO) -> Beneath:
        return Beneath(sink, self)

    def _draw_while_watched(self) -> None:
        with self._lock:
            while True:
                self._lock.wait(PERIOD if self._watched is not None else None)
                watched = self._watched
                if watched is not None and time.monotonic() >= watched.show_at:
                    self._draw(watched)

    def _draw(self, watched: _Watched) -> None:
        count = watched.count()
        room = 0 if self._line_open else self.terminal.room() - 1  # the last column would wrap the line
        text = watched.text(count, room) if count is not None and room >= NARROWEST else None
        if text is None:
            self._erase()
            return
        if self._write(self._undo() + text):
            self._drawn = len(text)

    def _undo(self) -> str:
        """Back over the line drawn, erasing it: the terminal's line as it was before."""
        return f"\x1b[{self._drawn}D\x1b[K" if self._drawn else ""

    def _erase(self) -> None:
        if self._drawn:
            self._write(self._undo())
            self._drawn = 0

    def _write(self, text: str) -> bool:
        """Whether ``text`` reached the terminal (a closed one is no reason to disturb the replay)."""
        try:
            self.terminal.write(text)
        except (OSError, ValueError):
            return False
        return True


class Beneath:
    """The program's output on its way to the terminal the progress line is on (see :meth:`ProgressLine.passed_on`)."""

    def __init__(self, sink: BinaryIO, line: ProgressLine) -> None:
        self._sink = sink
        self._line = line

    def write(self, data: bytes) -> None:
        self._line.passed_on(self._sink, data)

    def flush(self) -> None:
        pass  # passed_on flushes


class _Line:
    on_stderr: ProgressLine | None = None


def stderr_line() -> ProgressLine | None:
    """The progress line on this process's stderr, when that is a terminal (else None: nothing is drawn)."""
    try:
        if not os.isatty(sys.stderr.fileno()):
            return None
    except (AttributeError, OSError, ValueError):  # no stderr, or not a real file
        return None
    if _Line.on_stderr is None:
        _Line.on_stderr = ProgressLine(StreamTerminal(sys.stderr.buffer))
    return _Line.on_stderr


def on_terminal(sink: BinaryIO) -> bool:
    """Whether ``sink`` is a terminal (where the program's output meets the progress line)."""
    try:
        return os.isatty(sink.fileno())
    except (OSError, ValueError):
        return False
