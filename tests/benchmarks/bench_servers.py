"""Per-request recording under gunicorn's gthread workers: throughput plain, with keep="errors" and keep="all".

    python tests/benchmarks/bench_servers.py [--requests 2000] [--rounds 5] [--clients 8]

The service is wsgi_app.py (a small Flask app: the clock, a draw, a JSON body) under
``gunicorn -k gthread -w 2 --threads 4``, loaded by ``--clients`` threads of this process over loopback, one
connection per request, after a warm-up. Each round starts the server once per mode, in turn (plain,
keep=0.0, errors, all: interleaved, so a machine that slows down slows every mode), and the medians over the rounds are
reported, with the workers' CPU time per request (on a two-core machine the client competes for the CPU, and
throughput alone is noisy). None of these requests fails: keep="errors" records each one and drops it (the
cost every production request pays); keep="all" writes every one, off the request path; keep=0.0 records
none but has the boundaries installed, which the server's own calls (clocks, sockets, locks) then pass
through: what recording costs the requests it does not record.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from bench_wsgi import cpu_seconds, free_port  # run as a script: this folder is on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("none", "0.0", "errors", "all")  # 0.0: the boundaries installed, no request recorded


def workers(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as f:
        return [int(pid) for pid in f.read().split()]


def get(port: int, i: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/price?item=i{i % 7}")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
    finally:
        connection.close()


def measure(keep: str, requests: int, clients: int) -> tuple[float, float, int]:
    """Requests per second, the workers' CPU microseconds per request, and how many recordings were written."""
    folder = tempfile.mkdtemp(prefix="bench-servers-")
    port = free_port()
    env = dict(os.environ, BENCH_KEEP=keep, BENCH_RECORDINGS=folder)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "4",
                               "-b", f"127.0.0.1:{port}", "--pythonpath", HERE, "--log-level", "warning",
                               "wsgi_app:app"], env=env, cwd=HERE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
                time.sleep(0.05)
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda i: get(port, i), range(100)))  # warm-up: both workers import and serve
            pids = workers(server.pid)
            cpu = sum(cpu_seconds(pid) for pid in pids)
            start = time.perf_counter()
            list(pool.map(lambda i: get(port, i), range(requests)))
            elapsed = time.perf_counter() - start
            used = sum(cpu_seconds(pid) for pid in pids) - cpu
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    written = len([name for name in os.listdir(folder) if name.endswith(".retrace")])
    shutil.rmtree(folder)
    return requests / elapsed, 1e6 * used / requests, written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            rate, per_request, written = measure(mode, args.requests, args.clients)
            expected = args.requests + 100 if mode == "all" else 0
            assert written == expected, f"keep={mode}: {written} recordings written, {expected} expected"
            rates[mode].append(rate)
            cpu[mode].append(per_request)
    print(f"gunicorn gthread (2 workers x 4 threads), {args.requests} requests from {args.clients} clients, "
          f"median of {args.rounds} interleaved rounds")
    plain = statistics.median(rates["none"])
    for mode in MODES:
        rate = statistics.median(rates[mode])
        label = "plain" if mode == "none" else f"keep={mode}" if mode[0].isdigit() else f'keep="{mode}"'
        print(f"  {label:<15} {rate:8.0f} req/s  ({(rate / plain - 1) * 100:+5.1f} %)   "
              f"workers' CPU {statistics.median(cpu[mode]):6.0f} µs/request   "
              f"rounds: {', '.join(f'{r:.0f}' for r in rates[mode])}")


if __name__ == "__main__":
    main()
