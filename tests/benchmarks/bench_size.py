"""Bytes per SQL query and per HTTP request on disk, and what recording and replaying them costs in CPU.

    python tests/benchmarks/bench_size.py [--rounds 5] [--ops 200] [--compare PATH-OF-ANOTHER-CHECKOUT]

Two workloads, each recorded as a whole process with the ``retrace`` CLI and replayed:

- ``psycopg2``: a web app's mix against the real PostgreSQL (127.0.0.1:5432, user postgres, db test): per
  iteration a parameterised SELECT by id with fetchone, an INSERT, a SELECT of a few rows with fetchall;
- ``requests``: GETs of a small JSON body from a real HTTP server on loopback (a process of its own, so
  its sockets are not recorded).

Bytes per operation are the difference between a recording of ``2 × ops`` and one of ``ops`` operations,
divided by ``ops``: start-up and the end cancel out. CPU is the recording and replaying child's
(user + system). With ``--compare``, the other checkout (put first on ``PYTHONPATH``) runs interleaved with
this one, round by round, and both are printed side by side with their ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SQL = textwrap.dedent("""
    import sys, psycopg2
    n = int(sys.argv[1])
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE bench_items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10, 2),"
                " created timestamptz DEFAULT now())")
    cur.execute("INSERT INTO bench_items (name, price) SELECT 'item ' || i, i * 1.5 FROM generate_series(1, 50) i")
    for i in range(n):
        cur.execute("SELECT id, name, price, created FROM bench_items WHERE id = %s", (i % 50 + 1,))
        cur.fetchone()
        cur.execute("INSERT INTO bench_items (name, price) VALUES (%s, %s) RETURNING id", (f"new {i}", i))
        cur.fetchone()
        cur.execute("SELECT id, name, price FROM bench_items WHERE price < %s ORDER BY id LIMIT 3", (10 + i % 7,))
        cur.fetchall()
    conn.commit()
    print("done", n)
""")
SQL_PER_ITERATION = 3

HTTP = textwrap.dedent("""
    import sys, requests
    port, n = int(sys.argv[1]), int(sys.argv[2])
    session = requests.Session()
    for i in range(n):
        response = session.get(f"http://127.0.0.1:{port}/items/{i % 20}", params={"fields": "name,price"})
        response.json()
    print("done", n)
""")

SERVER = textwrap.dedent("""
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            item = self.path.split("/")[-1].split("?")[0]
            body = json.dumps({"id": item, "name": f"item {item}", "price": 12.5, "tags": ["a", "b"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def child_cpu(command: list[str], env: dict[str, str], cwd: str) -> float:
    """Run ``command``; the CPU seconds (user + system) it and its children took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def record_and_replay(tree: str, folder: str, name: str, script: str, args: list[str]) -> tuple[int, float, float]:
    """Size of the recording, CPU of recording it, CPU of replaying it (with the code of ``tree``)."""
    env = dict(os.environ, PYTHONPATH=tree)
    rec = os.path.join(folder, f"{name}.retrace")
    if os.path.exists(rec):
        os.unlink(rec)
    recording = child_cpu([sys.executable, "-m", "pytest_retrace", "record", "-o", rec, "--", script, *args],
                          env, folder)
    verdict = os.path.join(folder, f"{name}.json")
    replaying = child_cpu([sys.executable, "-m", "pytest_retrace", "replay", rec, "--verdict", verdict], env, folder)
    with open(verdict) as f:
        assert '"faithful": true' in f.read(), f"{name}: the replay is not faithful"
    return os.path.getsize(rec), recording, replaying


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--compare", help="another checkout of pytest-retrace, measured interleaved with this one")
    options = parser.parse_args()
    trees = {"this": ROOT}
    if options.compare:
        trees = {"other": os.path.abspath(options.compare), "this": ROOT}
    folder = tempfile.mkdtemp(prefix="bench-size-")
    for name, text in (("sql_client.py", SQL), ("web_client.py", HTTP), ("json_server.py", SERVER)):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    server = subprocess.Popen([sys.executable, os.path.join(folder, "json_server.py")], stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip()  # type: ignore[union-attr]
        n = options.ops
        workloads = {
            "psycopg2 query": ("sql_client.py", lambda k: [str(k)], SQL_PER_ITERATION),
            "requests request": ("web_client.py", lambda k: [port, str(k)], 1),
        }
        # figures[workload][tree] = list of (bytes per op, record CPU per op, replay CPU per op)
        figures: dict[str, dict[str, list[tuple[float, float, float]]]] = {w: {t: [] for t in trees} for w in workloads}
        for _ in range(options.rounds):
            for workload, (script, args, per) in workloads.items():
                for tree_name, tree in trees.items():
                    small = record_and_replay(tree, folder, f"{tree_name}-{script[:-3]}-s", os.path.join(folder, script), args(n))
                    big = record_and_replay(tree, folder, f"{tree_name}-{script[:-3]}-b", os.path.join(folder, script), args(2 * n))
                    ops = n * per
                    figures[workload][tree_name].append(tuple((b - s) / ops for b, s in zip(big, small)))  # type: ignore[arg-type]
        for workload, by_tree in figures.items():
            print(f"{workload} ({options.rounds} rounds, {n * 2 * workloads[workload][2]} ops per big recording)")
            for tree_name, rows in by_tree.items():
                size = statistics.median(r[0] for r in rows)
                rec = [r[1] * 1e6 for r in rows]
                rep = [r[2] * 1e6 for r in rows]
                print(f"  {tree_name:6} {size:7.1f} bytes/op   record CPU min {min(rec):6.1f} median "
                      f"{statistics.median(rec):6.1f} us/op   replay CPU min {min(rep):6.1f} median "
                      f"{statistics.median(rep):6.1f} us/op")
            if len(by_tree) == 2:
                (_, a), (_, b) = by_tree.items()
                print(f"  this/other: size {statistics.median(r[0] for r in b) / statistics.median(r[0] for r in a):.2f}"
                      f"  record CPU {statistics.median(r[1] for r in b) / statistics.median(r[1] for r in a):.2f}"
                      f"  replay CPU {statistics.median(r[2] for r in b) / statistics.median(r[2] for r in a):.2f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
