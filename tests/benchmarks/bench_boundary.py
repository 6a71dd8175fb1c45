"""Recording and replay cost of one boundary call, and bytes per event on disk.

    python tests/benchmarks/bench_boundary.py [--calls 1000000]

Measures side by side in one run: a million ``time.time()`` calls plain, recorded
(through the real tape writer and its background thread, to a real file) and
replayed (from that file); then the same for ``os.urandom(16)``, a boundary with
arguments that goes through the engine's generic ``call``.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time

from pytest_retrace.engine import demux
from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.replayer import Replayer
from pytest_retrace.engine.state import start_main_thread
from pytest_retrace.format.tape import TapeWriter, read_recording

clock = time.perf_counter


def loop(fn, calls: int) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.calls
    start_main_thread()
    folder = tempfile.mkdtemp()
    plain, recorded, replayed = [], [], []
    size = 0
    for i in range(args.repeat):
        plain.append(loop(time.time, n))
        path = os.path.join(folder, f"bench{i}.retrace")
        writer = TapeWriter(path, {"kind": "bench"})
        wrapped = Recorder(writer).wrap_noarg("time.time", time.time)
        start = clock()
        for _ in range(n):
            wrapped()
        writer.close({"status": 0})  # the writer must have caught up: part of the recording cost
        recorded.append(clock() - start)
        empty = os.path.join(folder, "empty.retrace")
        TapeWriter(empty, {"kind": "bench"}).close({"status": 0, "events": 0})
        size = (os.path.getsize(path) - os.path.getsize(empty)) / n
        engine = Replayer(read_recording(path).events())
        replayed.append(loop(engine.wrap_noarg("time.time", time.time), n))
    best = {name: min(v) / n * 1e9 for name, v in (("plain", plain), ("recorded", recorded), ("replayed", replayed))}
    print(f"time.time() x {n:,} (best of {args.repeat}; demultiplexer: {'native' if demux.NATIVE else 'pure'})")
    print(f"  plain      {best['plain']:7.1f} ns/call")
    print(f"  recorded   {best['recorded']:7.1f} ns/call   (+{best['recorded'] - best['plain']:.1f} ns)")
    print(f"  replayed   {best['replayed']:7.1f} ns/call")
    print(f"  on disk    {size:7.2f} bytes/event")
    generic(n // 5, args.repeat, folder)


def generic(n: int, repeat: int, folder: str) -> None:
    urandom = os.urandom
    plain, recorded, replayed = [], [], []
    for i in range(repeat):
        plain.append(loop(lambda: urandom(16), n))
        path = os.path.join(folder, f"generic{i}.retrace")
        writer = TapeWriter(path, {"kind": "bench"})
        engine = Recorder(writer)
        start = clock()
        for _ in range(n):
            engine.call("os.urandom", (16,), urandom, 16)
        writer.close({"status": 0})
        recorded.append(clock() - start)
        replay_call = Replayer(read_recording(path).events()).call
        replayed.append(loop(functools.partial(replay_call, "os.urandom", (16,), urandom, 16), n))
    best = {name: min(v) / n * 1e9 for name, v in (("plain", plain), ("recorded", recorded), ("replayed", replayed))}
    print(f"os.urandom(16) x {n:,} through engine.call (best of {repeat})")
    print(f"  plain      {best['plain']:7.1f} ns/call")
    print(f"  recorded   {best['recorded']:7.1f} ns/call   (+{best['recorded'] - best['plain']:.1f} ns)")
    print(f"  replayed   {best['replayed']:7.1f} ns/call")


if __name__ == "__main__":
    main()
