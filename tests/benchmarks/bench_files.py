"""Opening and reading a small data file N times: plain, recorded and replayed.

    python tests/benchmarks/bench_files.py [--opens 10000] [--repeat 5]

The program measures its own loop in CPU time (user + system, from ``resource.getrusage``, which no boundary
answers: wall clocks inside a recorded program are answered from the recording on replay) and writes it to
stderr, so replays of it report an output difference; the figure is the best of ``--repeat`` runs, per open.
CPU time keeps the figures steady on a busy machine, where wall time swings by a factor of two.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

PROGRAM = """\
import resource, sys
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
path, n = sys.argv[1], int(sys.argv[2])
start = cpu()
total = 0
for _ in range(n):
    with open(path) as f:
        total += len(f.read())
print("cpu", cpu() - start, file=sys.stderr)
print(total)
"""


def cpu_of(args: list[str], cwd: str) -> float:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    found = re.search(r"^cpu (\S+)$", proc.stderr, re.M)
    if found is None:
        raise SystemExit(f"no figure from {args}: {proc.stderr}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opens", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "prog.py"), "w") as f:
        f.write(PROGRAM)
    with open(os.path.join(folder, "data.txt"), "w") as f:
        f.write("apple,1\npear,2\n" * 8)
    retrace = [sys.executable, "-m", "pytest_retrace"]
    n = str(args.opens)
    runs = {
        "plain": [sys.executable, "prog.py", "data.txt", n],
        "recorded": [*retrace, "record", "-o", "r.retrace", "--", "prog.py", "data.txt", n],
        "replayed": [*retrace, "replay", "r.retrace"],
    }
    best = {label: min(cpu_of(run, folder) for _ in range(args.repeat)) for label, run in runs.items()}
    for label, seconds in best.items():
        each = seconds / args.opens * 1e6
        print(f"{label:9s} {seconds * 1e3:8.1f} ms CPU for {args.opens} opens ({each:6.1f} µs each)")


if __name__ == "__main__":
    main()
