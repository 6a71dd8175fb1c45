"""The launcher's progress line (runner/progress.py) against a terminal that keeps what it is sent: what it draws
from the count the child keeps in its file, where it leaves the program's output alone, how it fits a narrow
line. (The real child and a real pseudo-terminal: tests/integration/test_progress.py.)"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable

import pytest

from pytest_retrace.engine.watchdog import PROGRESS
from pytest_retrace.runner import progress
from pytest_retrace.runner.progress import ProgressLine


class Kept:
    """A terminal ``columns`` wide that keeps everything written to it."""

    def __init__(self, columns: int = 80) -> None:
        self.columns = columns
        self.written: list[str] = []

    def room(self) -> int:
        return self.columns

    def write(self, text: str) -> None:
        self.written.append(text)

    def drawn(self) -> list[str]:
        return [text.rpartition("\x1b[K")[2] for text in self.written if "replaying" in text]


@pytest.fixture(autouse=True)
def _at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "PERIOD", 0.01)


def count(path: str, events: int) -> None:
    """What the replaying child does (ProgressFile): the count at the file's start."""
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, PROGRESS.pack(events), 0)
    os.close(fd)


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "the line was never drawn"
        time.sleep(0.01)


def test_the_count_is_drawn_with_the_total_and_erased_at_the_end() -> None:
    terminal = Kept()
    line = ProgressLine(terminal)
    with line.watching("recs/long.retrace", 80000) as path:
        time.sleep(0.05)
        assert terminal.drawn() == [], "drawn before the child said how far it is"
        count(path, 12345)
        until(lambda: bool(terminal.drawn()))
    assert set(terminal.drawn()) == {"replaying recs/long.retrace: 12,345 / 80,000 events"}
    width = len("replaying recs/long.retrace: 12,345 / 80,000 events")
    assert terminal.written[-1] == f"\x1b[{width}D\x1b[K", "the line is erased when the replay ends"
    assert not os.path.exists(path)


def test_the_programs_output_erases_the_line_and_an_open_line_is_left_alone() -> None:
    terminal = Kept()
    line = ProgressLine(terminal)
    sink = io.BytesIO()
    with line.watching("r.retrace", 10) as path:
        count(path, 3)
        until(lambda: bool(terminal.drawn()))
        line.beneath(sink).write(b"Name? ")  # a prompt: the line is the program's until it ends it
        erased = len(terminal.written)
        assert terminal.written[-1].endswith("\x1b[K") and "replaying" not in terminal.written[-1]
        count(path, 5)
        time.sleep(0.1)
        assert len(terminal.written) == erased, "drawn over the program's unfinished line"
        line.beneath(sink).write(b"bob\n")
        until(lambda: terminal.drawn()[-1].endswith(": 5 / 10 events"))
    assert sink.getvalue() == b"Name? bob\n"


@pytest.mark.parametrize(("columns", "shown"), [
    (80, "replaying recordings/requests/GET_price_kiwi.retrace: 1,000 / 2,000 events"),
    (61, "replaying …ests/GET_price_kiwi.retrace: 1,000 / 2,000 events"),  # the last column left free
    (44, "replaying 1,000 / 2,000 events"),  # a path's last few letters say little: left out
    (30, None),
])
def test_a_narrow_line_shortens_the_path_from_its_start_or_leaves_it_out(columns: int, shown: str | None) -> None:
    terminal = Kept(columns)
    line = ProgressLine(terminal)
    with line.watching("recordings/requests/GET_price_kiwi.retrace", 2000) as path:
        count(path, 1000)
        if shown is None:
            time.sleep(0.1)
        else:
            until(lambda: bool(terminal.drawn()))
    assert terminal.drawn() == ([] if shown is None else [shown] * len(terminal.drawn()))
