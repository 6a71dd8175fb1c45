"""Recording and replay cost of one boundary call, and bytes per event on disk.

    python tests/benchmarks/bench_boundary.py [--calls 1000000]

Measures side by side in one run what a program pays: a million ``time.time()`` calls plain,
recorded (the boundaries installed as a recording installs them, through the real tape writer and
its background thread, to a real file) and replayed (from that file); then the same for
``os.urandom(16)``, a boundary with arguments that goes through the engine's generic ``call``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from pytest_retrace import boundaries
from pytest_retrace.engine import demux
from pytest_retrace.engine.patch import Patcher
from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.replayer import Replayer
from pytest_retrace.engine.state import end_main_thread, start_main_thread
from pytest_retrace.format.tape import TapeWriter, read_recording

clock = time.perf_counter


# The least a header holds (the reader refuses less: see pytest_retrace/format/shapes.py)
BENCH_HEADER = {"kind": "process", "hash_seed": 0, "entry": {}, "argv": [], "cwd": os.getcwd(), "environ": {}}

def loop(fn: Callable[[], Any], calls: int) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return clock() - start


def installed(engine: Any, work: Callable[[], float]) -> float:
    """``work()`` with the boundaries installed for ``engine``, as a recording or a replay has them."""
    patcher = Patcher()
    start_main_thread()
    try:
        boundaries.install(engine, patcher, boundaries.Options())
        return work()
    finally:
        patcher.undo()
        end_main_thread()


def measure(label: str, call: Callable[[], Any], n: int, repeat: int, folder: str) -> None:
    plain, recorded, replayed = [], [], []
    size = 0.0
    for i in range(repeat):
        plain.append(loop(call, n))
        path = os.path.join(folder, f"{label}{i}.retrace")
        writer = TapeWriter(path, BENCH_HEADER)

        def record(writer: TapeWriter = writer) -> float:
            start = clock()
            loop(call, n)
            writer.close({"status": 0})  # the writer must have caught up: part of the recording cost
            return clock() - start

        recorded.append(installed(Recorder(writer), record))
        empty = os.path.join(folder, "empty.retrace")
        TapeWriter(empty, BENCH_HEADER).close({"status": 0, "events": 0})
        size = (os.path.getsize(path) - os.path.getsize(empty)) / n
        replayed.append(installed(Replayer(read_recording(path).events()), lambda: loop(call, n)))
    best = {name: min(v) / n * 1e9 for name, v in (("plain", plain), ("recorded", recorded), ("replayed", replayed))}
    print(f"{label} x {n:,} (best of {repeat}; demultiplexer: {'native' if demux.NATIVE else 'pure'})")
    print(f"  plain      {best['plain']:7.1f} ns/call")
    print(f"  recorded   {best['recorded']:7.1f} ns/call   (+{best['recorded'] - best['plain']:.1f} ns)")
    print(f"  replayed   {best['replayed']:7.1f} ns/call")
    print(f"  on disk    {size:7.2f} bytes/event")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    measure("time.time()", lambda: time.time(), args.calls, args.repeat, folder)
    measure("os.urandom(16)", lambda: os.urandom(16), args.calls // 5, args.repeat, folder)


if __name__ == "__main__":
    main()
