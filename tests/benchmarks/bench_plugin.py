"""Replay throughput of the plugin: ``pytest --retrace-recordings`` over many recordings.

    python tests/benchmarks/bench_plugin.py [--count 200]

Records COUNT runs of a small program (clock, entropy, a data file, a subprocess), then
measures side by side: the program run COUNT times without recording, pytest replaying
all recordings, and the same with ``-n 2``. Reports per-recording costs and ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRAM = """\
import datetime, pathlib, random, subprocess, uuid
names = pathlib.Path("names.txt").read_text().split()
print(datetime.datetime.now(), uuid.uuid4(), random.choice(names))
print(subprocess.run(["echo", "done"], capture_output=True, text=True).stdout.strip())
"""


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    (folder / "names.txt").write_text("ada grace edsger barbara\n")
    (folder / "program.py").write_text(PROGRAM)
    (folder / "recordings").mkdir()
    for i in range(args.count):
        subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", f"recordings/r{i:04d}.retrace",
                        "program.py"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    for _ in range(args.count):
        subprocess.run([sys.executable, "program.py"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    plain = time.perf_counter() - start
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--retrace-recordings=recordings"]
    serial = timed(pytest, folder)
    parallel = timed([*pytest, "-n", "2"], folder)
    n = args.count
    print(f"{n} recordings of a small program ({os.cpu_count()} cores)")
    print(f"  plain runs        {plain:6.2f} s   {plain / n * 1000:6.1f} ms each")
    print(f"  pytest replay     {serial:6.2f} s   {serial / n * 1000:6.1f} ms each   {serial / plain:.2f}x plain")
    print(f"  pytest -n 2       {parallel:6.2f} s   {parallel / n * 1000:6.1f} ms each   {parallel / plain:.2f}x plain"
          f"   ({serial / parallel:.2f}x faster than one worker)")


if __name__ == "__main__":
    main()
