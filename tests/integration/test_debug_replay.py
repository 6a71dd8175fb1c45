"""Debugging a replay on a real terminal (a pty): ``retrace debug`` stops at the replayed crash or before event N,
shows the program's frames and locals, travels back and forth between events, and touches nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import retrace

pexpect = pytest.importorskip("pexpect")

PROMPT = "(Pdb) "

# Event #0 seeds random; event #k (k >= 1) is the clock read of step k - 1.
STEPS = """\
import time

def step(i, total):
    now = time.time()
    total += i
    return total

def main():
    total = 0
    for i in range(40):
        total = step(i, total)
    print("total", total)
    ratio = total / (total - total)
    print(ratio)

main()
"""


def record_steps(folder: Path) -> None:
    (folder / "steps.py").write_text(STEPS)
    recorded = retrace("record", "-o", "steps.retrace", "steps.py", cwd=folder)
    assert recorded.returncode == 1 and "ZeroDivisionError" in recorded.stderr


def debug(folder: Path, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_PYTEST_RETRACE")}
    session = pexpect.spawn(sys.executable, ["-m", "pytest_retrace", "debug", *args], cwd=str(folder), env=env,
                            encoding="utf-8", timeout=60, dimensions=(50, 200))
    return session


def ask(session: pexpect.spawn, command: str) -> str:
    """Send a pdb command at the prompt; what it printed up to the next prompt."""
    session.sendline(command)
    session.expect_exact(PROMPT)
    return str(session.before).split("\n", 1)[1] if "\n" in session.before else ""


def test_debug_stops_at_the_replayed_crash_with_the_programs_locals(tmp_path: Path) -> None:
    record_steps(tmp_path)
    session = debug(tmp_path, "steps.retrace")
    session.expect_exact(PROMPT)
    assert "the replay ended by the program's ZeroDivisionError: division by zero" in session.before
    assert "steps.py(13)main()" in session.before
    assert ask(session, "p total").strip() == "780"
    where = ask(session, "where")
    assert "steps.py(16)<module>()" in where and "retrace: at event #41 of 41" in where
    session.sendline("c")
    session.expect(pexpect.EOF)
    assert "retrace debug: the replay ended by ZeroDivisionError: division by zero" in session.before


def test_debug_goes_to_an_event_and_back_and_forward(tmp_path: Path) -> None:
    record_steps(tmp_path)
    session = debug(tmp_path, "steps.retrace", "--at", "30")
    session.expect_exact(PROMPT)
    assert "stopped before event #30: time.time()" in session.before
    assert ask(session, "p i, total").strip() == "(29, 406)"
    assert "retrace: at event #30 of 41; next: #30 time.time()" in ask(session, "where")
    events = ask(session, "events")
    assert "> #30" in events and "  #29" in events and "  #35" in events

    back = ask(session, "back 10")
    assert "stopped before event #20: time.time()" in back
    assert ask(session, "p i, total").strip() == "(19, 171)"
    assert "stopped before event #22" in ask(session, "forward 2")
    assert ask(session, "p i").strip() == "21"
    assert "stopped before event #5" in ask(session, "goto 5")
    assert ask(session, "p i").strip() == "4"
    assert "stopped before event #40" in ask(session, "goto 40")
    assert ask(session, "p i").strip() == "39"
    # The program's output was shown once: replaying forward to an event again prints nothing of it.
    session.sendline("c")
    session.expect_exact(PROMPT)
    assert "ZeroDivisionError" in session.before
    assert ask(session, "p total").strip() == "780"
    assert "stopped before event #1" in ask(session, "goto 1")
    assert ask(session, "p total").strip() == "0"
    session.sendline("q")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0


def test_what_is_typed_at_the_prompt_touches_nothing(tmp_path: Path) -> None:
    record_steps(tmp_path)
    session = debug(tmp_path, "steps.retrace", "--at", "3")
    session.expect_exact(PROMPT)
    printed = ask(session, "p open('written.txt', 'w')")
    assert "PermissionError" in printed and "a replay touches nothing" in printed
    printed = ask(session, "import socket; socket.create_connection(('127.0.0.1', 9))")
    assert "PermissionError" in printed
    assert ask(session, "p i").strip() == "2"  # the replay goes on as before
    session.sendline("c")
    session.expect_exact(PROMPT)
    assert "ZeroDivisionError" in session.before
    session.sendline("q")
    session.expect(pexpect.EOF)
    assert not (tmp_path / "written.txt").exists()


def test_an_event_past_the_last_is_a_usage_error(tmp_path: Path) -> None:
    record_steps(tmp_path)
    session = debug(tmp_path, "steps.retrace", "--at", "41")
    session.expect(pexpect.EOF)
    session.close()
    assert "retrace debug: --at 41: steps.retrace has events #0 to #40 (retrace show lists them)" in session.before
    assert session.exitstatus == 2


def test_debug_needs_a_terminal(tmp_path: Path) -> None:
    record_steps(tmp_path)
    ran = retrace("debug", "steps.retrace", cwd=tmp_path)
    assert ran.returncode == 2
    assert "retrace debug: pdb needs a terminal" in ran.stderr


THREADED = """\
import threading, time

def work(rounds):
    for n in range(rounds):
        time.time()

def main():
    worker = threading.Thread(target=work, args=(5,))
    worker.start()
    total = 0
    for i in range(6):
        time.time()
        total += i
    worker.join()
    print(total / (total - total))

main()
"""


def test_a_multi_threaded_replay_goes_back_by_replaying_from_the_start(tmp_path: Path) -> None:
    (tmp_path / "threaded.py").write_text(THREADED)
    assert retrace("record", "-o", "threaded.retrace", "threaded.py", cwd=tmp_path).returncode == 1
    shown = retrace("show", "threaded.retrace", cwd=tmp_path).stdout
    clock_reads = {tid: [int(line.split()[0][1:]) for line in shown.splitlines()
                         if line.strip().startswith("#") and f"[{tid}] time.time()" in line]
                   for tid in ("0", "0.1")}
    worker_second, worker_third, main_fourth = clock_reads["0.1"][1], clock_reads["0.1"][2], clock_reads["0"][3]
    session = debug(tmp_path, "threaded.retrace", "--at", str(worker_third))
    session.expect_exact(PROMPT)
    assert f"stopped before event #{worker_third}: time.time() (thread 0.1)" in session.before
    assert ask(session, "p n").strip() == "2"
    assert f"retrace: at event #{worker_third} of" in ask(session, "where")
    back = ask(session, f"back {worker_third - worker_second}")
    assert "going back replays from the start" in back and "(thread 0.1)" in back
    assert ask(session, "p n").strip() == "1"
    assert f"stopped before event #{main_fourth}" in ask(session, f"goto {main_fourth}")
    assert ask(session, "p i, total").strip() == "(3, 3)"
    session.sendline("c")
    session.expect_exact(PROMPT)
    assert "ZeroDivisionError" in session.before
    session.sendline("c")
    session.expect(pexpect.EOF)


def readme_session() -> tuple[str, list[str]]:
    """The README's "Debugging a replay" walk-through: its program, and its terminal session's lines."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Debugging a replay\n", 1)[1].split("\n## ", 1)[0]
    program = section.split("```python\n", 1)[1].split("```", 1)[0]
    session = section.split("```console\n", 1)[1].split("```", 1)[0]
    return program, session.splitlines()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the README shows Python 3.11's traceback, with its ^ marks")
def test_the_readme_session_runs_as_written(tmp_path: Path) -> None:
    program, lines = readme_session()
    (tmp_path / "steps.py").write_text(program)
    assert retrace("record", "-o", "steps.retrace", "steps.py", cwd=tmp_path).returncode == 1
    assert lines[0] == "$ retrace debug steps.retrace"
    session = debug(tmp_path, "steps.retrace")
    expected: list[str] = []
    for line in lines[1:]:
        if not line.startswith(PROMPT):
            expected.append(line.replace("/home/me/demo", str(tmp_path)))
            continue
        session.expect_exact(PROMPT)
        shown = [text.rstrip("\r") for text in str(session.before).split("\n")]
        shown = shown[1:] if shown[:1] and expected[:1] and shown[0] != expected[0] else shown  # the echoed command
        assert [text for text in shown if text] == expected
        expected = []
        session.sendline(line[len(PROMPT):])
    session.expect(pexpect.EOF)
    assert not (tmp_path / "notes.txt").exists()


DRAWS = """\
import random
import time
from pathlib import Path


def main():
    draw = random.random()
    stamp = time.time()
    data = Path("data.txt").read_text().strip()
    print("draw", draw, "data", data, stamp > 0)


main()
"""


def record_draws(folder: Path) -> str:
    """The program, recorded; the draw it printed."""
    (folder / "draws.py").write_text(DRAWS)
    (folder / "data.txt").write_text("recorded\n")
    recorded = retrace("record", "-o", "draws.retrace", "draws.py", cwd=folder)
    assert recorded.returncode == 0, recorded.stderr
    return recorded.stdout.split()[1]


def test_the_programs_random_draws_are_the_recorded_ones_after_a_checkpoint(tmp_path: Path) -> None:
    """Each checkpoint is a fork, and random reseeds its generator in every fork: the replay goes on with the
    recorded draws, so a stop shows the recorded value and the replay ends faithfully."""
    draw = record_draws(tmp_path)
    session = debug(tmp_path, "draws.retrace", "--at", "1")
    session.expect_exact(PROMPT)
    assert "stopped before event #1: time.time()" in session.before
    assert ask(session, "p draw").strip() == draw
    ended = ask(session, "c")
    assert f"draw {draw} data recorded True" in ended and "the program ended (exit status 0)" in ended, ended
    session.sendline("q")
    session.expect(pexpect.EOF)
    session.close()
    assert "diverged" not in session.before and session.exitstatus == 0, session.before


@pytest.mark.parametrize("command", ["c", "n", "q"])
def test_a_divergence_ends_the_session_with_its_report_however_the_stop_is_left(tmp_path: Path,
                                                                                command: str) -> None:
    record_draws(tmp_path)
    (tmp_path / "draws.py").write_text(DRAWS.replace('"data.txt"', '"other.txt"'))
    session = debug(tmp_path, "draws.retrace")
    session.expect_exact(PROMPT)
    assert "the replay diverged at event #2: the program called open('other.txt', 'r')" in session.before
    session.sendline(command)
    session.expect(pexpect.EOF, timeout=30)
    session.close()
    assert "retrace: draws.retrace: diverged" in session.before, session.before
    assert "actual    open('other.txt', 'r')" in session.before, session.before
    assert session.exitstatus == 70
