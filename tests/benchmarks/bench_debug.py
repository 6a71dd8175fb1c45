"""Time travel in ``retrace debug``: reaching event N by resuming a checkpoint vs by replaying from the start.

    python tests/benchmarks/bench_debug.py [--events 1000000] [--rounds 3]

A program that reads the clock ``--events`` times is recorded as a whole process (one event per read). Then,
on a pty as a user would:

- *from the start*: ``retrace debug REC --at N`` until its first prompt (the replay's start-up included), for N at
  90 % of the recording;
- *checkpoints*: in a session stopped near the end, ``goto N`` to the same event (the replay resumes the nearest
  checkpoint before N and replays forward from there), and ``back 1`` from there.

Both arrive at the same state: the benchmark checks the program's loop counter at the prompt. It prints the
median seconds of each and the checkpoint interval the session chose.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time

import pexpect

from pytest_retrace.runner.debugging import MAX_CHECKPOINTS, MIN_INTERVAL

PROGRAM = textwrap.dedent("""
    import sys, time
    n = int(sys.argv[1])
    for i in range(n):
        now = time.time()
    print("read the clock", n, "times")
""")
PROMPT = "(Pdb) "


def spawn(folder: str, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_PYTEST_RETRACE")}
    return pexpect.spawn(sys.executable, ["-m", "pytest_retrace", "debug", *args], cwd=folder, env=env,
                         encoding="utf-8", timeout=600, dimensions=(50, 200))


def ask(session: pexpect.spawn, command: str) -> tuple[float, str]:
    started = time.perf_counter()
    session.sendline(command)
    session.expect_exact(PROMPT)
    return time.perf_counter() - started, str(session.before)


def loop_counter(session: pexpect.spawn) -> int:
    return int(ask(session, "p i")[1].splitlines()[-1].strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "clock.py"), "w") as f:
            f.write(PROGRAM)
        started = time.perf_counter()
        recorded = pexpect.run(f"{sys.executable} -m pytest_retrace record -o clock.retrace clock.py "
                               f"{options.events}", cwd=folder, timeout=900, withexitstatus=True)
        print(f"recorded {options.events} clock reads in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        assert recorded[1] == 0, recorded[0]
        events = options.events + 1  # the first is random's seeding
        target, near_end = events * 9 // 10, events - 2
        from_start, resumed, stepped_back = [], [], []
        for _ in range(options.rounds):
            started = time.perf_counter()
            session = spawn(folder, "clock.retrace", "--at", str(target))
            session.expect_exact(PROMPT)
            from_start.append(time.perf_counter() - started)
            assert loop_counter(session) == target - 1
            session.sendline("q")
            session.expect(pexpect.EOF)

            session = spawn(folder, "clock.retrace", "--at", str(near_end))
            session.expect_exact(PROMPT)
            took, _ = ask(session, f"goto {target}")
            resumed.append(took)
            assert loop_counter(session) == target - 1
            took, _ = ask(session, "back 1")
            stepped_back.append(took)
            assert loop_counter(session) == target - 2
            session.sendline("q")
            session.expect(pexpect.EOF)
    interval = max(MIN_INTERVAL, -(-events // MAX_CHECKPOINTS))
    print(f"reach event #{target} of {events}: from the start {statistics.median(from_start):.2f} s "
          f"(start-up included); by checkpoint (goto from #{near_end}) {statistics.median(resumed):.3f} s; "
          f"back 1 {statistics.median(stepped_back):.3f} s; checkpoint every {interval} events, "
          f"at most {MAX_CHECKPOINTS}")


if __name__ == "__main__":
    main()
