"""Steady-state cost of recording and replaying the Flask workload, in CPU instructions.

    python tests/benchmarks/bench_instructions.py [--requests 500]

Wall clocks on a shared 2-core machine vary by ±10% from run to run; instruction counts
(valgrind callgrind) vary far less. Runs plain, recorded and replayed, each with 0 and N
requests, give the instructions per request of each with start-up subtracted, and their
ratios. The recorder's writer thread wakes on a wall-clock interval, so how often it runs
under valgrind's slowdown varies: each count is the least of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


FOLDER = tempfile.mkdtemp()


# The least a header holds (the reader refuses less: see pytest_retrace/format/shapes.py)
BENCH_HEADER = {"kind": "process", "hash_seed": 0, "entry": {}, "argv": [], "cwd": os.getcwd(), "environ": {}}

def child(mode: str, requests: int, recording: str) -> None:
    sys.path.insert(0, HERE)
    writer = None
    if mode != "plain":
        from pytest_retrace import boundaries
        from pytest_retrace.engine.patch import Patcher
        from pytest_retrace.engine.recorder import Recorder
        from pytest_retrace.engine.replayer import Replayer
        from pytest_retrace.engine.state import start_main_thread
        from pytest_retrace.format.tape import TapeWriter, read_recording

        if mode == "recorded":
            writer = TapeWriter(recording, BENCH_HEADER)
            engine: Recorder | Replayer = Recorder(writer)
        else:
            engine = Replayer(read_recording(recording).events())
        start_main_thread()
        boundaries.install(engine, Patcher(), boundaries.Options())
    import flask_workload

    flask_workload.serve(requests)
    if writer is not None:
        writer.close({"status": 0})


def instructions(mode: str, requests: int) -> int:
    recording = os.path.join(FOLDER, f"flask-{requests}.retrace")
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.path.join(FOLDER, 'callgrind.out')}",
         sys.executable, __file__, "--child", mode, "--requests", str(requests), "--recording", recording],
        capture_output=True, text=True, check=True,
    )
    return int(re.search(r"Collected : (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["plain", "recorded", "replayed"])
    parser.add_argument("--recording")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.recording)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench_instructions: valgrind is not installed (apt-get install valgrind)")
    per_request = {}
    for mode in ("plain", "recorded", "replayed"):  # replayed reads what recorded wrote
        counts = {n: min(instructions(mode, n) for _ in range(args.repeat)) for n in (args.requests, 0)}
        per_request[mode] = (counts[args.requests] - counts[0]) / args.requests
    plain = per_request["plain"]
    print(f"Flask workload under callgrind, {args.requests} requests (start-up subtracted, "
          f"least of {args.repeat} runs)")
    for mode, count in per_request.items():
        print(f"  {mode:<9} {count:10,.0f} instructions/request  ({count / plain:.3f}x plain)")


if __name__ == "__main__":
    main()
