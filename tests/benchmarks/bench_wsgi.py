"""Per-request recording: throughput of a Flask service with and without the middleware, and replay speed.

    python tests/benchmarks/bench_wsgi.py [--requests 2000] [--rounds 3]

The service (wsgi_app.py, werkzeug's WSGI server, one process) is loaded from this process, a
second one, request after request over loopback. Each round measures it plainly, with keep="all"
and with keep="errors" (none of these requests fails, so nothing is kept: the cost of recording
each request and dropping it). The server's CPU time per request is reported too: on a
two-core machine the client competes for the CPU, and throughput alone is noisy. Then the
recordings of one keep="all" round (capped at 200) are
replayed with ``pytest --retrace-recordings -n 2`` and the recordings per second reported (the rootdir is
the checkout, where the service runs: replay runs only the code of the project that holds the app).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the checkout: the project whose code a replay runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(keep: str, requests: int, folder: str) -> tuple[float, float]:
    """Requests per second, and the server's CPU microseconds per request."""
    port = free_port()
    env = dict(os.environ, BENCH_KEEP=keep, BENCH_RECORDINGS=folder)
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "wsgi_app.py"), str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        start, cpu = time.perf_counter(), cpu_seconds(server.pid)
        for i in range(requests):
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request("GET", f"/price?item=i{i % 7}")
            assert conn.getresponse().read()
            conn.close()
        elapsed, used = time.perf_counter() - start, cpu_seconds(server.pid) - cpu
        return requests / elapsed, 1e6 * used / requests
    finally:
        server.terminate()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"none": [], "all": [], "errors": []}
    cpu: dict[str, list[float]] = {keep: [] for keep in rates}
    kept = ""
    for _ in range(args.rounds):
        for keep in rates:
            folder = tempfile.mkdtemp()
            rate, used = throughput(keep, args.requests, folder)
            rates[keep].append(rate)
            cpu[keep].append(used)
            if keep == "all":
                shutil.rmtree(kept, ignore_errors=True)
                kept = folder
            else:
                shutil.rmtree(folder, ignore_errors=True)
    plain, plain_cpu = statistics.median(rates["none"]), statistics.median(cpu["none"])
    print(f"{args.requests} requests per round, median of {args.rounds} rounds:")
    for keep, values in rates.items():
        rate, used = statistics.median(values), statistics.median(cpu[keep])
        print(f"  keep={keep:<7} {rate:8.1f} requests/s {100 * (1 - rate / plain):5.1f}% below plain;   "
              f"server CPU {used:6.0f} us/request, {used - plain_cpu:+5.0f} us")
    recordings = sorted(os.listdir(kept))[:200]
    replay = tempfile.mkdtemp()
    for name in recordings:
        shutil.copy(os.path.join(kept, name), replay)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                    f"--retrace-recordings={replay}", "--rootdir", ROOT], cwd=replay, check=True,
                   stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    print(f"replayed {len(recordings)} request recordings with -n 2 in {elapsed:.1f} s: "
          f"{len(recordings) / elapsed:.1f} recordings/s (pytest start-up included)")


if __name__ == "__main__":
    main()
