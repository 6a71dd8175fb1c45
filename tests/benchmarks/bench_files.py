"""Opening and reading a small data file N times: plain, recorded and replayed.

    python tests/benchmarks/bench_files.py [--opens 10000] [--repeat 3]

Each figure is the wall time of the whole program with N opens minus that of the same program with no
opens (the interpreter's start, the recording's header and end), best of ``--repeat``: clocks inside a
recorded program are answered from the recording on replay, so the program cannot time itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

PROGRAM = """\
import sys
path, n = sys.argv[1], int(sys.argv[2])
total = 0
for _ in range(n):
    with open(path) as f:
        total += len(f.read())
print(total)
"""


def wall(args: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opens", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "prog.py"), "w") as f:
        f.write(PROGRAM)
    with open(os.path.join(folder, "data.txt"), "w") as f:
        f.write("apple,1\npear,2\n" * 8)
    retrace = [sys.executable, "-m", "pytest_retrace"]

    def costs(n: int) -> tuple[float, float, float]:
        best = [float("inf")] * 3
        for _ in range(args.repeat):
            runs = (
                [sys.executable, "prog.py", "data.txt", str(n)],
                [*retrace, "record", "-o", f"r{n}.retrace", "--", "prog.py", "data.txt", str(n)],
                [*retrace, "replay", f"r{n}.retrace"],
            )
            for i, run in enumerate(runs):
                best[i] = min(best[i], wall(run, folder))
        return best[0], best[1], best[2]

    base = costs(0)
    full = costs(args.opens)
    for label, b, f in zip(("plain", "recorded", "replayed"), base, full, strict=True):
        print(f"{label:9s} {(f - b) * 1e3:8.1f} ms for {args.opens} opens ({(f - b) / args.opens * 1e6:6.1f} µs each)")


if __name__ == "__main__":
    main()
