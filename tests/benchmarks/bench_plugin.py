"""Replay throughput of the plugin: ``pytest --retrace-recordings`` over many process recordings.

    python tests/benchmarks/bench_plugin.py [--count 100] [--rounds 5]

Records COUNT runs of a small program (clock, entropy, a data file, a subprocess), then measures, side by
side and interleaved round after round: the program run COUNT times without recording; pytest replaying
all recordings, serially and with ``-n 2``, through zygotes (the default) and cold (one fresh interpreter per
recording, ``RETRACE_NO_FORKSERVER=1``). Wall time and CPU time (of every process each run started) per
recording, min and median over the rounds, and ratios to the plain runs.

Bytecode caches are allowed (``PYTHONDONTWRITEBYTECODE`` unset): a cold replay that compiles
pytest-retrace's sources every time measures the machine's set-up, not the replay.
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

PROGRAM = """\
import datetime, pathlib, random, subprocess, uuid
names = pathlib.Path("names.txt").read_text().split()
print(datetime.datetime.now(), uuid.uuid4(), random.choice(names))
print(subprocess.run(["echo", "done"], capture_output=True, text=True).stdout.strip())
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmds: list[list[str]], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (every process started, waited for) to run ``cmds`` one after the other."""
    start, cpu = time.perf_counter(), children_cpu()
    for cmd in cmds:
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONHASHSEED", None)  # the project's seed: what `retrace record` picks when the user sets none
    folder = Path(tempfile.mkdtemp())
    (folder / "names.txt").write_text("ada grace edsger barbara\n")
    (folder / "program.py").write_text(PROGRAM)
    (folder / "recordings").mkdir()
    for i in range(args.count):
        subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", f"recordings/r{i:04d}.retrace",
                        "program.py"], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--retrace-recordings=recordings"]
    cold = dict(env, RETRACE_NO_FORKSERVER="1")
    runs = {
        "plain runs": ([[sys.executable, "program.py"]] * args.count, env),
        "pytest, zygote": ([pytest], env),
        "pytest, cold": ([pytest], cold),
        "pytest -n 2, zygote": ([[*pytest, "-n", "2"]], env),
        "pytest -n 2, cold": ([[*pytest, "-n", "2"]], cold),
    }
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    timed(runs["pytest, zygote"][0], folder, env)  # warm: bytecode caches written, files in the page cache
    for _ in range(args.rounds):
        for name, (cmds, run_env) in runs.items():
            wall, cpu = timed(cmds, folder, run_env)
            walls[name].append(wall / args.count)
            cpus[name].append(cpu / args.count)
    n = args.count
    plain_wall, plain_cpu = statistics.median(walls["plain runs"]), statistics.median(cpus["plain runs"])
    print(f"{n} recordings of a small program, {args.rounds} rounds interleaved ({os.cpu_count()} cores); "
          "per recording, ms: min / median (ratio of medians to plain)")
    for name in runs:
        wall, cpu = walls[name], cpus[name]
        print(f"  {name:<20} wall {min(wall) * 1000:6.1f} / {statistics.median(wall) * 1000:6.1f} "
              f"({statistics.median(wall) / plain_wall:5.2f}x)   "
              f"cpu {min(cpu) * 1000:6.1f} / {statistics.median(cpu) * 1000:6.1f} "
              f"({statistics.median(cpu) / plain_cpu:5.2f}x)")


if __name__ == "__main__":
    main()
