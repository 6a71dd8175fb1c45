"""Start-up cost of recording and replaying hello world, beside running it plainly.

    python tests/benchmarks/bench_startup.py [--runs 9] [--python PYTHON ...]

Runs, interleaved (plain, record, replay, plain, record, replay …), ``python hello.py``,
``python -m pytest_retrace record -o x.retrace -- hello.py`` and ``python -m pytest_retrace replay x.retrace``,
and reports for each the wall time and the CPU time (user + system of the whole process tree, from
``getrusage(RUSAGE_CHILDREN)``): min and median, and the extra cost over plain. Issue 16's budget: +50 ms CPU.

``--python`` may name several interpreters (venvs with different checkouts installed): each gets the
same interleaved rounds, so their figures compare side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELLO = 'print("hello world")\n'


def measured(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the child and everything it started) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def commands(python: str) -> dict[str, list[str]]:
    return {
        "plain": [python, "hello.py"],
        "record": [python, "-m", "pytest_retrace", "record", "--force", "-o", "x.retrace", "--", "hello.py"],
        "replay": [python, "-m", "pytest_retrace", "replay", "x.retrace"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--python", action="append", default=[], help="interpreter(s) to compare (default: this one)")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    # Installed code runs from its bytecode cache: compile it first, and let no setting forbid the cache (a
    # PYTHONDONTWRITEBYTECODE in the environment would have every run compile our modules from source).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for python in pythons:
        subprocess.run([python, "-c", "import compileall, os, pytest_retrace; "
                        "compileall.compile_dir(os.path.dirname(pytest_retrace.__file__), quiet=1)"], check=True)
    folders = {}
    for python in pythons:
        folder = Path(tempfile.mkdtemp(prefix="retrace-startup-"))
        (folder / "hello.py").write_text(HELLO)
        subprocess.run(commands(python)["record"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
        folders[python] = folder
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for python in pythons:  # interleaved: load on the machine hits every command alike
            for name, cmd in commands(python).items():
                times.setdefault((python, name), []).append(measured(cmd, folders[python]))
    print(f"hello world, {args.runs} interleaved runs each ({os.cpu_count()} cores); ms, min / median")
    for python in pythons:
        print(python)
        plain_wall = [w for w, _ in times[python, "plain"]]
        plain_cpu = [c for _, c in times[python, "plain"]]
        for name in ("plain", "record", "replay"):
            wall = [w for w, _ in times[python, name]]
            cpu = [c for _, c in times[python, name]]
            line = (f"  {name:<7} wall {min(wall) * 1e3:6.1f} / {statistics.median(wall) * 1e3:6.1f}"
                    f"   cpu {min(cpu) * 1e3:6.1f} / {statistics.median(cpu) * 1e3:6.1f}")
            if name != "plain":
                line += (f"   over plain: wall +{(min(wall) - min(plain_wall)) * 1e3:5.1f} / "
                         f"+{(statistics.median(wall) - statistics.median(plain_wall)) * 1e3:5.1f}"
                         f"   cpu +{(min(cpu) - min(plain_cpu)) * 1e3:5.1f} / "
                         f"+{(statistics.median(cpu) - statistics.median(plain_cpu)) * 1e3:5.1f}")
            print(line)


if __name__ == "__main__":
    main()
