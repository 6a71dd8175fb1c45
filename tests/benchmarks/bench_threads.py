"""Replay of thread-heavy programs against their original run, and native vs pure demultiplexer.

    python tests/benchmarks/bench_threads.py [--rounds 5]

Two programs from fixtures/programs/threads/:
- ``worker_pool.py``: 8 workers take 400 jobs from a queue, hash 64 KiB each, wait 2 ms
  on "I/O" (time.sleep) and put results back: a service's worker pool.
- ``stress.py``: 16 threads x 1000 lock-guarded increments and queue hand-offs with a
  10 µs switch interval: almost nothing but synchronization, the worst case.

Each round runs, one after the other: the program plainly, recorded, replayed with the
native demultiplexer and replayed with the pure-Python one. Walls include interpreter
start-up, as a user sees them; medians over the rounds are reported with their ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREADS = os.path.join(ROOT, "fixtures", "programs", "threads")


def wall(cmd: list[str], pure: bool = False) -> float:
    env = dict(os.environ, PYTEST_RETRACE_PUREPYTHON="1" if pure else "0")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def bench(program: str, rounds: int) -> None:
    rec = os.path.join(tempfile.mkdtemp(), "bench.retrace")
    path = os.path.join(THREADS, program)
    replay = [sys.executable, "-m", "pytest_retrace", "replay", rec]
    runs: dict[str, tuple[list[str], bool]] = {
        "plain": ([sys.executable, path], False),
        "recorded": ([sys.executable, "-m", "pytest_retrace", "record", "-o", rec, path], False),
        "replayed (native)": (replay, False),
        "replayed (pure)": (replay, True),
    }
    walls: dict[str, list[float]] = {kind: [] for kind in runs}
    for _ in range(rounds):
        for kind, (cmd, pure) in runs.items():
            walls[kind].append(wall(cmd, pure))
    events = subprocess.run([sys.executable, "-m", "pytest_retrace", "show", rec], check=True,
                            capture_output=True, text=True).stdout.count("\n  #")
    median = {kind: statistics.median(w) for kind, w in walls.items()}
    print(f"{program}: {events} events in the last recording; median of {rounds} rounds")
    for kind, value in median.items():
        print(f"  {kind:<18} {value * 1000:8.1f} ms   {value / median['plain']:.2f}x plain")
    print(f"  replay vs original run (native): {median['replayed (native)'] / median['plain']:.2f}x")
    print(f"  pure vs native demultiplexer:    {median['replayed (pure)'] / median['replayed (native)']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for program in ("worker_pool.py", "stress.py"):
        bench(program, args.rounds)


if __name__ == "__main__":
    main()
