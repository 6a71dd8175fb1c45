"""Recording with and without a project key: what sealing every frame costs, side by side in one run.

    python tests/benchmarks/bench_sealed.py [--calls 200000] [--repeat 5]

Each round records the same clock-heavy program twice with ``retrace record``, plain and sealed, in turn,
and measures each whole command's CPU time (the launcher's and the child's, from ``resource.getrusage`` of
the children): the figure is the median of ``--repeat`` rounds and their ratio, round by round.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

PROGRAM = """\
import sys, time
total = 0.0
for _ in range(int(sys.argv[1])):
    total += time.time()
print(total > 0)
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], cwd: str) -> float:
    before = children_cpu()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)
    return children_cpu() - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "prog.py"), "w") as f:
        f.write(PROGRAM)
    retrace = [sys.executable, "-m", "pytest_retrace"]
    subprocess.run([*retrace, "keygen", "-o", "k"], cwd=folder, check=True, capture_output=True)
    plain, sealed = [], []
    for _ in range(args.repeat):
        plain.append(timed([*retrace, "record", "--force", "-o", "p.retrace", "prog.py", str(args.calls)], folder))
        sealed.append(timed([*retrace, "record", "--force", "--public-key", "k.pub", "-o", "s.retrace", "prog.py",
                             str(args.calls)], folder))
    ratios = [s / p for s, p in zip(sealed, plain, strict=True)]
    size = os.path.getsize(os.path.join(folder, "s.retrace")) / os.path.getsize(os.path.join(folder, "p.retrace"))
    print(f"{args.calls} clock calls recorded, median CPU of the whole `retrace record`:")
    print(f"  plain   {statistics.median(plain):.3f} s")
    print(f"  sealed  {statistics.median(sealed):.3f} s")
    print(f"  sealed / plain: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"file size ratio {size:.4f}")


if __name__ == "__main__":
    main()
