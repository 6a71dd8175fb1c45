"""What ``--retrace-self-check`` costs a test suite: wall time with self-check / without, side by side.

    python tests/benchmarks/bench_self_check.py [--tests 300] [--rounds 3]     # a synthetic suite
    python tests/benchmarks/bench_self_check.py --real [--packages jinja2 …]  # real projects' suites

The synthetic suite has four kinds of test in equal numbers: pure computation (about 1 ms), one that writes and
reads a file in ``tmp_path``, one that draws entropy and reads the clock, one that sleeps 20 ms. Each round runs
it plainly, then under ``--retrace-self-check``; the medians are compared, and the fixed cost per test (the fork,
the recording's hand-over, the replay's start and exit) is the difference spread over the tests.

``--real`` runs ``tests/realsuites/run_suites.py`` (sdists from the package index, each suite plainly and under
self-check in one run), whose table holds the wall times and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = {
    "compute": "def test_compute_{n}():\n    assert sum(i * i for i in range(20000)) > 0\n",
    "files": "def test_files_{n}(tmp_path):\n    (tmp_path / 'x').write_text('{n}')\n"
             "    assert (tmp_path / 'x').read_text() == '{n}'\n",
    "entropy": "def test_entropy_{n}():\n    assert uuid.uuid4() != uuid.uuid4() and time.time() > 0\n",
    "sleep": "def test_sleep_{n}():\n    time.sleep(0.02)\n",
}


def write_suite(folder: Path, tests: int) -> None:
    per_kind = max(1, tests // len(KINDS))
    for kind, template in KINDS.items():
        body = "import time, uuid\n\n" + "\n".join(template.format(n=n) for n in range(per_kind))
        (folder / f"test_{kind}.py").write_text(body)


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}")
    return elapsed


def synthetic(tests: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-self-check-"))
    write_suite(folder, tests)
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    plain, checked = [], []
    for _ in range(rounds):
        plain.append(timed(base, folder))
        checked.append(timed([*base, "--retrace-self-check"], folder))
    p, c = statistics.median(plain), statistics.median(checked)
    count = (tests // len(KINDS)) * len(KINDS)
    print(f"{count} tests ({', '.join(KINDS)}), median of {rounds} rounds")
    print(f"  plain        {p:7.2f} s")
    print(f"  self-check   {c:7.2f} s   ratio {c / p:.2f}x   {(c - p) / count * 1000:.1f} ms more per test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real", action="store_true", help="run real projects' suites (run_suites.py)")
    args, rest = parser.parse_known_args()
    if args.real:
        script = Path(__file__).resolve().parents[1] / "realsuites" / "run_suites.py"
        sys.exit(subprocess.call([sys.executable, str(script), *rest]))
    synthetic(args.tests, args.rounds)


if __name__ == "__main__":
    main()
