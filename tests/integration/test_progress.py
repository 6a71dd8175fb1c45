"""A long replay shows ``replaying REC: n / total events`` on a terminal (issue 17, part 6).

A program that computes for about four seconds, reading the clock as it goes and printing a line each second,
is recorded once; its replay takes as long as its run. On a real pseudo-terminal (``os.openpty``) ``retrace
replay`` draws the line on stderr after two seconds, a few times a second, with counts that grow towards the
recorded count, and erases it: once the terminal has interpreted what was written, the screen holds the
program's output exactly. pytest draws it on its own terminal after the test's path, and leaves its line as it
would be without. With stderr no terminal, or under xdist, nothing of it is written.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import retrace

from pytest_retrace.format.tape import read_recording

LONG = """\
import time

start = time.monotonic()
rounds = 0
shown = start
while time.monotonic() - start < 4:
    sum(range(20000))
    rounds += 1
    if time.monotonic() - shown > 1:
        shown = time.monotonic()
        print("tick", rounds, flush=True)
print("done", rounds)
"""
COLUMNS = 100
LINE = re.compile(rb"replaying (\S+): ([\d,]+) / ([\d,]+) events")


@dataclass
class Long:
    root: Path  # the project; the recording is recordings/long.retrace
    stdout: str  # what the program printed when it was recorded
    count: int  # the recording's events


@pytest.fixture(scope="module")
def long(tmp_path_factory: pytest.TempPathFactory) -> Long:
    root = tmp_path_factory.mktemp("progress")
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "long.py").write_text(LONG)
    (root / "recordings").mkdir()
    run = retrace("record", "-o", "recordings/long.retrace", "--", "long.py", cwd=root)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("tick ") and "\ndone " in run.stdout, run.stdout
    return Long(root, run.stdout, read_recording(root / "recordings" / "long.retrace").count)


def run_on_terminal(cwd: Path, *command: str, stderr_too: bool = True) -> tuple[int, bytes, float]:
    """Run ``command`` with its stdout (and stderr, with ``stderr_too``; else a pipe) on a fresh pseudo-terminal
    COLUMNS wide: its exit status, all it wrote there, and how long it ran."""
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHASHSEED", "PYTEST_ADDOPTS")}
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=side,
                            stderr=side if stderr_too else subprocess.PIPE)
    os.close(side)
    written = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not chunk:
            break
        written += chunk
    os.close(main)
    if proc.stderr is not None:
        written += b"\n<stderr>" + proc.stderr.read()
        proc.stderr.close()
    return proc.wait(timeout=60), written, time.monotonic() - started


def screen(written: bytes) -> list[str]:
    """The lines a terminal shows after interpreting ``written``: text, CR, LF, cursor back (CSI n D), erase to
    the end of the line (CSI K); colours (CSI … m) change no text."""
    lines, column = [""], 0
    for token in re.split(r"(\x1b\[[\d;]*[A-Za-z]|\r|\n)", written.decode()):
        if token == "\n":
            lines.append("")
            column = 0
        elif token == "\r":
            column = 0
        elif token.startswith("\x1b["):
            command, count = token[-1], int(token[2:-1].split(";")[0] or 1)
            if command == "D":
                column = max(0, column - count)
            elif command == "K":
                lines[-1] = lines[-1][:column]
            else:
                assert command == "m", f"a control sequence no test expects: {token!r}"
        elif token:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + token + line[column + len(token):]
            column += len(token)
    return lines


def retrace_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_retrace", *args]


def test_a_long_replay_shows_its_progress_on_the_terminal_and_leaves_the_output_intact(long: Long) -> None:
    status, written, took = run_on_terminal(long.root, *retrace_command("replay", "recordings/long.retrace"))
    assert status == 0, written
    draws = LINE.findall(written)
    assert draws, f"no progress line in {took:.1f} s:\n{written!r}"
    assert {(name, total) for name, _, total in draws} == {(b"recordings/long.retrace", f"{long.count:,}".encode())}
    counts = [int(count.replace(b",", b"")) for _, count, _ in draws]
    assert counts == sorted(counts) and counts[-1] <= long.count, counts
    # Not before two seconds (of about four), then at most four draws a second.
    assert counts[0] > long.count * 0.2, "drawn before the replay ran two seconds"
    assert len(draws) <= (took - 2) * 4 + 1, (len(draws), took)
    assert [line for line in screen(written) if line] == long.stdout.splitlines(), written


def test_nothing_is_drawn_when_stderr_is_no_terminal(long: Long) -> None:
    status, written, took = run_on_terminal(long.root, *retrace_command("replay", "recordings/long.retrace"),
                                            stderr_too=False)
    assert status == 0 and took > 3, (status, took, written)
    assert written.decode().replace("\r\n", "\n") == long.stdout + "\n<stderr>", written


def test_pytest_draws_it_on_its_terminal_and_not_under_xdist(long: Long) -> None:
    pytest_command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recordings"]
    status, written, _ = run_on_terminal(long.root, *pytest_command)
    assert status == 0, written
    # The whole path: the room is measured on the terminal (captured, pytest's writer would guess 80 columns).
    assert {name for name, _, _ in LINE.findall(written)} == {b"recordings/long.retrace"}, written
    shown = screen(written)
    # The test's line is pytest's own: its path, its outcome, its progress at the right edge.
    line = next(line for line in shown if line.startswith("recordings/long.retrace"))
    assert re.fullmatch(r"recordings/long\.retrace \. +\[100%\]", line), shown
    assert len(line) in (COLUMNS - 1, COLUMNS), line
    assert not any("replaying" in line for line in shown), shown

    status, written, _ = run_on_terminal(long.root, *pytest_command, "-n", "2")
    assert status == 0, written
    assert b"replaying" not in written, written
