"""Bytes per SQL query and per HTTP request on disk, and what recording and replaying them costs in CPU.

    python tests/benchmarks/bench_size.py [--rounds 5] [--ops 200] [--compare PATH-OF-ANOTHER-CHECKOUT]

Two workloads, each recorded as a whole process with the ``retrace`` CLI and replayed:

- ``psycopg2``: a web app's mix against the real PostgreSQL (127.0.0.1:5432, user postgres, db test): per
  iteration a parameterised SELECT by id with fetchone, an INSERT, a SELECT of a few rows with fetchall;
- ``requests``: GETs of a small JSON body from a real HTTP server on loopback (a process of its own, so
  its sockets are not recorded).

Bytes per operation are the difference between a recording of ``2 × ops`` and one of ``ops`` operations,
divided by ``ops``: start-up and the end cancel out. CPU is the recording and replaying children's (user +
system) for whole runs of ``2 × ops`` operations. With ``--compare``, the other checkout (put first on
``PYTHONPATH``) runs interleaved with this one, round by round, and both are printed side by side with the
size ratio and the CPU difference per operation.
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
    server = subprocess.Popen([sys.executable, os.path.join(folder, "json_server.py")], stdout=subprocess.PIPE,
                              text=True)
    try:
        port = server.stdout.readline().strip()  # type: ignore[union-attr]
        n = options.ops
        workloads = {
            "psycopg2 query": ("sql_client.py", lambda k: [str(k)], SQL_PER_ITERATION),
            "requests request": ("web_client.py", lambda k: [port, str(k)], 1),
        }
        # Bytes per operation: the difference between two recordings (start-up and END cancel out), once per tree.
        sizes = {w: {} for w in workloads}  # type: dict[str, dict[str, float]]
        for workload, (script, args, per) in workloads.items():
            for tree_name, tree in trees.items():
                program = os.path.join(folder, script)
                small = record_and_replay(tree, folder, f"{tree_name}-{script[:-3]}-s", program, args(n))
                big = record_and_replay(tree, folder, f"{tree_name}-{script[:-3]}-b", program, args(2 * n))
                sizes[workload][tree_name] = (big[0] - small[0]) / (n * per)
        # CPU: whole runs of 2 × ops operations, interleaved tree by tree, round by round (start-up is the same
        # for both trees, so the difference of their medians is what the operations cost more or less).
        cpu = {w: {t: [] for t in trees} for w in workloads}  # type: dict[str, dict[str, list[tuple[float, float]]]]
        for _ in range(options.rounds):
            for workload, (script, args, _per) in workloads.items():
                for tree_name, tree in trees.items():
                    program = os.path.join(folder, script)
                    _, rec, rep = record_and_replay(tree, folder, f"{tree_name}-{script[:-3]}-b", program, args(2 * n))
                    cpu[workload][tree_name].append((rec, rep))
        for workload, (_, _, per) in workloads.items():
            ops = 2 * n * per
            print(f"{workload}: {options.rounds} rounds, whole runs of {ops} operations, CPU user+system")
            for tree_name in trees:
                rows = cpu[workload][tree_name]
                rec = [r[0] for r in rows]
                rep = [r[1] for r in rows]
                print(f"  {tree_name:6} {sizes[workload][tree_name]:7.1f} bytes/op   record CPU min {min(rec):6.2f} "
                      f"median {statistics.median(rec):6.2f} s   replay CPU min {min(rep):6.2f} "
                      f"median {statistics.median(rep):6.2f} s")
            if len(trees) == 2:
                other, this = (cpu[workload][t] for t in trees)

                def per_op(i: int, this: list[tuple[float, float]] = this,
                           other: list[tuple[float, float]] = other, ops: int = ops) -> str:
                    medians = statistics.median(r[i] for r in this) - statistics.median(r[i] for r in other)
                    minimums = min(r[i] for r in this) - min(r[i] for r in other)
                    return f"{medians / ops * 1e6:+.1f} us/op (medians), {minimums / ops * 1e6:+.1f} (minimums)"

                print(f"  this/other: size {sizes[workload]['this'] / sizes[workload]['other']:.2f}; "
                      f"this - other: record {per_op(0)}; replay {per_op(1)}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
