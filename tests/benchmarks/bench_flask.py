"""Whole-process recording and replay of a Flask workload, side by side with plain runs.

    python tests/benchmarks/bench_flask.py [--requests 3000] [--rounds 5]

Each round runs, one after the other: the program plainly, recorded (``retrace
record``), and replayed (``retrace replay``). Walls include interpreter start-up, as
a user sees them. Medians over the rounds are reported with their ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "flask_workload.py")


def wall(cmd: list[str]) -> tuple[float, float]:
    """Wall of the whole command, and of the request loop as the program timed it."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    loop = float(proc.stderr.split("loop ")[1].split()[0])
    return time.perf_counter() - start, loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rec = os.path.join(tempfile.mkdtemp(), "flask.retrace")
    n = str(args.requests)
    walls: dict[str, list[float]] = {"plain": [], "recorded": [], "replayed": []}
    loops: dict[str, list[float]] = {"plain": [], "recorded": []}
    commands = {
        "plain": [sys.executable, PROGRAM, n],
        "recorded": [sys.executable, "-m", "pytest_retrace", "record", "-o", rec, PROGRAM, n],
        "replayed": [sys.executable, "-m", "pytest_retrace", "replay", rec],
    }
    for _ in range(args.rounds):
        for kind, cmd in commands.items():
            total, loop = wall(cmd)
            walls[kind].append(total)
            if kind in loops:
                loops[kind].append(loop)
    med = {k: statistics.median(v) for k, v in walls.items()}
    loop_med = {k: statistics.median(v) for k, v in loops.items()}
    events = subprocess.run([sys.executable, "-m", "pytest_retrace", "show", rec, "--limit", "0"],
                            capture_output=True, text=True, check=True).stdout
    count = next(line for line in events.splitlines() if line.startswith("events ("))
    print(f"Flask workload, {args.requests} requests, median of {args.rounds} rounds; {count.rstrip(':')}, "
          f"{os.path.getsize(rec):,} bytes on disk")
    for k in walls:
        print(f"  {k:<9} {med[k]:6.3f} s")
    print(f"  recorded / plain  {med['recorded'] / med['plain']:.3f}x  (whole process, start-up included)")
    print(f"  replayed / plain  {med['replayed'] / med['plain']:.3f}x  (whole process, start-up included)")
    print(f"  request loop: plain {loop_med['plain']:.3f} s, recorded {loop_med['recorded']:.3f} s, "
          f"{loop_med['recorded'] / loop_med['plain']:.3f}x (steady state)")
    per_request = (loop_med["recorded"] - loop_med["plain"]) / args.requests * 1e6
    print(f"  recording cost per request (2 events): {per_request:.1f} µs")


if __name__ == "__main__":
    main()
