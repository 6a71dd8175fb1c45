"""Issue 16's workloads side by side: plain, recorded and replayed, in interleaved rounds, in one table.

    python tests/benchmarks/bench_speed.py [--rounds 5] [--quick] [--only clock,urandom,hello,...]

What it measures: whole processes, through the stable public interfaces only (the CLI
``python -m pytest_retrace record -o F -- prog.py`` and ``replay F``, ``pytest --retrace-recordings=DIR
[-n 2]``, the WSGI middleware ``pytest_retrace.wsgi.record_flask``), so a figure means what a user pays.
CPU is user + system time of the children (``getrusage(RUSAGE_CHILDREN)`` deltas around each run, which
include the grandchildren they waited for: the recorded program under the launcher, pytest's workers);
wall is ``perf_counter`` around the run. For the ``request`` workload the server is the measured process:
its CPU (``/proc/PID/stat``) and the wall over the load phase, after a warm-up.

How: each round runs every mode of a workload in turn (plain, recorded, replayed, plain, …), so a
machine that slows down slows every mode alike. The table shows min and median over the rounds; "x plain"
is the median of the per-round ratios to that round's plain run. Every replay is checked: ``replay``
must exit 0 with a faithful verdict of status ``ok``, and pytest must report every recording passed (its
junit XML) — a fast wrong replay is not a figure, and the script exits 1 naming the workload that failed.

Workloads:
  hello           ``print("hello")``: the fixed start-up cost of record and replay (target: <= +50 ms CPU each).
  clock           1 000 000 ``time.time()`` calls; urandom: 200 000 ``os.urandom(16)`` calls. The cost per event
  urandom         over plain is ((mode - plain) - (hello's mode - hello's plain)) / calls in CPU, per round:
                  hello world's fixed cost measured in the same round is subtracted (median over the rounds).
  pytest-process  K (40) recordings of a small program (clock, entropy, a small data file; ~30 ms of CPU plainly,
                  the interpreter's start-up most of it): K plain runs against ``pytest --retrace-recordings``
                  serially and with ``-n 2``, pytest's own start-up included (target: serial <= 1.5x plain).
  request         a Flask app under werkzeug's threaded server on loopback, loaded by client threads: requests/s
                  and server CPU per request plain and with ``keep="errors"`` (target <= 2 % loss); then pytest
                  with ``-n 2`` replaying up to 200 request recordings made with ``keep="all"`` (target >= 200/s).
  sql             psycopg2 against the PostgreSQL on 127.0.0.1:5432 (user postgres, db test): 2 000 parameterised
                  INSERT … RETURNING / SELECT queries with fetches; bytes per query = recording size / queries
                  (header included; target <= 262).
                  The events column is the count in one recording (of one request, for ``request``).
  http            ``requests`` (one Session) against a stdlib HTTP server on loopback in a separate process:
                  1 000 GETs of small JSON bodies; bytes per request = recording size / requests (target <= 633).

Bytecode caches are on for every child (``PYTHONDONTWRITEBYTECODE`` is removed from their environment, as
it is on a user's machine; with it set, every start compiles the whole package again and start-up costs
double), and each workload runs once untimed first, so that the caches are written before the rounds.

``--quick`` (about 2 minutes) runs 3 rounds of smaller sizes; the ratios and per-event figures stay
comparable, the absolute ones do not. Everything runs in a temporary folder that is removed at the end,
with the servers it started.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WORKLOADS = ("hello", "clock", "urandom", "pytest-process", "request", "sql", "http")
PG_HOST, PG_PORT = "127.0.0.1", 5432  # user postgres, database test, trust: the machine's PostgreSQL

HELLO = 'print("hello")\n'
CLOCK = """\
import sys, time
for _ in range(int(sys.argv[1])):
    time.time()
"""
URANDOM = """\
import os, sys
for _ in range(int(sys.argv[1])):
    os.urandom(16)
"""
SMALL = """\
import datetime, pathlib, random, time, uuid
names = pathlib.Path("names.txt").read_text().split()
print(datetime.datetime.now(), time.monotonic(), uuid.uuid4(), random.choice(names))
"""
SQL = f"""\
import sys
import psycopg2
queries = int(sys.argv[1])
connection = psycopg2.connect(host="{PG_HOST}", port={PG_PORT}, user="postgres", dbname="test")
cursor = connection.cursor()
cursor.execute("CREATE TEMP TABLE speed_items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10, 2))")
total = 0
for i in range(queries // 2):
    cursor.execute("INSERT INTO speed_items (name, price) VALUES (%s, %s) RETURNING id", (f"item-{{i}}", i % 97 + 0.25))
    (key,) = cursor.fetchone()
    cursor.execute("SELECT id, name, price FROM speed_items WHERE id = %s", (key,))
    total += cursor.fetchone()[2]
connection.commit()
connection.close()
print(queries, total)
"""
HTTP_SERVER = """\
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's Session reuses its connection
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall each

    def do_GET(self):
        body = json.dumps({"path": self.path, "items": [{"n": n, "in_stock": n % 2 == 0} for n in range(5)]}).encode()
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
"""
HTTP_CLIENT = """\
import sys
import requests
port, count = int(sys.argv[1]), int(sys.argv[2])
total = 0
with requests.Session() as session:
    for i in range(count):
        response = session.get(f"http://127.0.0.1:{port}/items/{i % 10}", params={"page": i}, timeout=30)
        response.raise_for_status()
        total += len(response.json()["items"])
print(total)
"""
FLASK_APP = """\
import os
import random
import time

from flask import Flask, jsonify, request

import pytest_retrace.wsgi

app = Flask(__name__)
KEEP = os.environ.get("SPEED_KEEP", "none")
if KEEP != "none":  # configured through the environment, which a replay restores
    pytest_retrace.wsgi.record_flask(app, os.environ["SPEED_RECORDINGS"], keep=KEEP)


@app.get("/price")
def price():
    item = request.args.get("item", "apple")
    return jsonify(item=item, total=round(random.random() * 100, 2), at=time.time(),
                   lines=[{"n": n, "sku": f"{item}-{n}"} for n in range(20)])


if __name__ == "__main__":
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
"""


class WorkloadFailed(Exception):
    """A run failed or a replay was not faithful: the workload has no figures."""


@dataclass(frozen=True)
class Sizes:
    clock: int
    urandom: int
    recordings: int  # pytest-process: K
    requests: int  # per request round
    replays: int  # request recordings replayed by pytest
    queries: int
    gets: int


FULL = Sizes(clock=1_000_000, urandom=200_000, recordings=40, requests=2000, replays=200, queries=2000, gets=1000)
QUICK = Sizes(clock=200_000, urandom=50_000, recordings=16, requests=600, replays=100, queries=600, gets=300)


@dataclass(frozen=True)
class Sample:
    cpu: float  # seconds
    wall: float  # seconds


@dataclass
class Row:
    """One line of the table: a workload in one mode, one sample per round."""

    workload: str
    mode: str
    samples: list[Sample] = field(default_factory=list)
    plain: Row | None = None  # the row this one's ratios are taken against
    unit: str = ""  # what bytes are counted per: event, query, request, recording
    size: float | None = None  # bytes per unit
    events: int | None = None

    def cpu(self) -> list[float]:
        return [s.cpu for s in self.samples]

    def wall(self) -> list[float]:
        return [s.wall for s in self.samples]

    def ratio(self, which: Callable[[Sample], float]) -> float | None:
        if self.plain is None:
            return None
        return statistics.median(which(a) / which(b) for a, b in zip(self.samples, self.plain.samples, strict=True))


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def row(self, workload: str, mode: str, plain: Row | None = None, unit: str = "") -> Row:
        row = Row(workload, mode, plain=plain, unit=unit)
        self.rows.append(row)
        return row


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_env(**extra: str) -> dict[str, str]:
    """The children's environment: ours, with bytecode caches allowed (see the docstring), plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return env | extra


def run(cmd: Sequence[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> Sample:
    """Run one whole process to its end; its CPU (and its waited-for descendants') and wall."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env or child_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    sample = Sample(children_cpu() - cpu, time.perf_counter() - start)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise WorkloadFailed(f"{what}: `{shlex.join(cmd)}` (in {cwd}) exited with status {done.returncode}:\n"
                             f"{textwrap.indent(tail, '    ')}")
    return sample


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


# --- process recordings through the CLI: plain, record, replay ---------------------------------------------


@dataclass
class Program:
    """A script run plainly, recorded and replayed; ``units`` of work in it (calls, queries, requests)."""

    name: str
    source: str
    args: list[str]  # the last one is the count of units, where there is one
    units: int
    unit: str

    def commands(self, recording: str, verdict: str, args: list[str]) -> list[tuple[str, list[str]]]:
        script = f"bench_{self.name}.py"
        return [("plain", python(script, *args)),
                ("record", python("-m", "pytest_retrace", "record", "-o", recording, "--", script, *args)),
                ("replay", python("-m", "pytest_retrace", "replay", recording, "--verdict", verdict))]


def verdict_events(path: Path, what: str) -> int:
    """The recording's event count, after checking the replay's verdict says faithful and ok."""
    verdict = json.loads(path.read_text())
    if not verdict["faithful"] or verdict["status"] != "ok":
        raise WorkloadFailed(f"{what}: the replay was not faithful (status {verdict['status']!r}, divergence "
                             f"{verdict['divergence']!r}, problem {verdict['problem']!r}); verdict {path}")
    return int(verdict["events_recorded"])


def recorded_events(recording: Path, what: str) -> int:
    """How many events a recording holds, from ``retrace show --json`` (its END frame's count)."""
    cmd = python("-m", "pytest_retrace", "show", "--json", "--limit", "0", str(recording))
    done = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise WorkloadFailed(f"{what}: `{shlex.join(cmd)}` exited with status {done.returncode}: {done.stderr}")
    return int(json.loads(done.stdout)["end"]["events"])


def process_rounds(programs: list[Program], rounds: int, folder: Path, report: Report) -> dict[str, dict[str, Row]]:
    """Each round: for each program, plain, record, replay, interleaved; every replay checked faithful."""
    rows: dict[str, dict[str, Row]] = {}
    for program in programs:
        (folder / f"bench_{program.name}.py").write_text(program.source)  # "http.py" would hide the stdlib's
        plain = report.row(program.name, "plain")
        rows[program.name] = {"plain": plain,
                              "record": report.row(program.name, "record", plain, program.unit),
                              "replay": report.row(program.name, "replay", plain)}
    progress("  warm-up: every program plain, recorded and replayed once, 10 units")
    for program in programs:
        args = [*program.args[:-1], "10"] if program.args else []
        for mode, cmd in program.commands("warm-up.retrace", "warm-up.json", args):
            run(cmd, folder, f"{program.name} warm-up, {mode}")
        verdict_events(folder / "warm-up.json", f"{program.name} warm-up, replay")
        (folder / "warm-up.retrace").unlink()
        (folder / "warm-up.json").unlink()
    for r in range(rounds):
        for program in programs:
            progress(f"  {program.name}: round {r + 1}/{rounds}")
            row = rows[program.name]
            recording = folder / f"{program.name}-{r}.retrace"
            verdict = folder / f"{program.name}-{r}.json"
            what = f"{program.name} round {r + 1}"
            for mode, cmd in program.commands(recording.name, verdict.name, program.args):
                row[mode].samples.append(run(cmd, folder, f"{what}, {mode}"))
            events = verdict_events(verdict, f"{what}, replay")
            row["record"].events = row["replay"].events = events
            row["record"].size = recording.stat().st_size / program.units
            recording.unlink()
            verdict.unlink()
    return rows


def per_event_note(rows: dict[str, dict[str, Row]], program: Program) -> str:
    """CPU per event over plain, hello's fixed cost in the same round subtracted."""
    hello, own = rows["hello"], rows[program.name]
    parts = []
    for mode in ("record", "replay"):
        extra = [((own[mode].samples[i].cpu - own["plain"].samples[i].cpu)
                  - (hello[mode].samples[i].cpu - hello["plain"].samples[i].cpu)) / program.units * 1e9
                 for i in range(len(own["plain"].samples))]
        parts.append(f"{mode} {statistics.median(extra):+.0f} ns/call (min {min(extra):+.0f})")
    return f"{program.name}: CPU per call over plain, hello's fixed cost subtracted: {', '.join(parts)}"


def fixed_cost_note(rows: dict[str, Row]) -> str:
    parts = []
    for mode in ("record", "replay"):
        extra = [1000 * (a.cpu - b.cpu) for a, b in zip(rows[mode].samples, rows["plain"].samples, strict=True)]
        median = statistics.median(extra)
        parts.append(f"{mode} {median:+.0f} ms CPU (min {min(extra):+.0f}) {verdict_word(median <= 50)}")
    return "hello: start-up over plain (target <= +50 ms CPU): " + ", ".join(parts)


def verdict_word(met: bool) -> str:
    return "[meets]" if met else "[misses]"


@contextmanager
def server(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """A server process that prints its port on its first line: (pid, port); stopped and reaped on exit.

    Its stderr (werkzeug logs every request there) goes to a file: a pipe nobody reads fills up and stalls it.
    """
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(cmd, cwd=cwd, env=env or child_env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.strip().isdigit():
                process.kill()
                process.wait()
                log.seek(0)
                raise WorkloadFailed(f"server `{shlex.join(cmd)}` (in {cwd}) did not start: {line.strip()!r}\n"
                                     f"{textwrap.indent(log.read().strip()[-2000:], '    ')}")
            yield process.pid, int(line)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()


def process_workloads(selected: set[str], sizes: Sizes, rounds: int, folder: Path, report: Report) -> None:
    programs = [Program("hello", HELLO, [], 1, "recording")]  # always: the fixed cost the per-call figures subtract
    if "clock" in selected:
        programs.append(Program("clock", CLOCK, [str(sizes.clock)], sizes.clock, "event"))
    if "urandom" in selected:
        programs.append(Program("urandom", URANDOM, [str(sizes.urandom)], sizes.urandom, "event"))
    with (server(python("-c", HTTP_SERVER), folder) if "http" in selected else nullserver()) as (_, port):
        if "http" in selected:
            programs.append(Program("http", HTTP_CLIENT, [str(port), str(sizes.gets)], sizes.gets, "request"))
        if "sql" in selected:
            check_postgres()
            programs.append(Program("sql", SQL, [str(sizes.queries)], sizes.queries, "query"))
        progress(f"process recordings: {', '.join(p.name for p in programs)}")
        rows = process_rounds(programs, rounds, folder, report)
    report.notes.append(fixed_cost_note(rows["hello"]))
    for program in programs:
        if program.name in ("clock", "urandom"):
            report.notes.append(per_event_note(rows, program))
    for name, target in (("sql", 262), ("http", 633)):
        if name in rows:
            size = rows[name]["record"].size
            assert size is not None
            report.notes.append(f"{name}: {size:.0f} bytes per {rows[name]['record'].unit} on disk "
                                f"(target <= {target}) {verdict_word(size <= target)}")


@contextmanager
def nullserver() -> Iterator[tuple[int, int]]:
    yield 0, 0


def check_postgres() -> None:
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=5).close()
    except OSError as error:
        raise WorkloadFailed(f"sql: PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} ({error}); start it, "
                             f"or leave sql out with --only") from None


# --- pytest over process recordings ------------------------------------------------------------------------


def pytest_replay(recordings: Path, cwd: Path, rootdir: Path, count: int, what: str, *extra: str) -> Sample:
    """``pytest --retrace-recordings``, checked: every one of ``count`` recordings collected and passed."""
    junit = cwd / "junit.xml"
    sample = run(python("-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(rootdir),
                        f"--retrace-recordings={recordings}", f"--junitxml={junit}", *extra), cwd, what)
    suite = ElementTree.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    passed = int(suite.get("tests", 0)) - sum(int(suite.get(k, 0)) for k in ("failures", "errors", "skipped"))
    junit.unlink()
    if passed != count:
        raise WorkloadFailed(f"{what}: {passed} of {count} recordings replayed and passed ({suite.attrib})")
    return sample


def pytest_process(sizes: Sizes, rounds: int, folder: Path, report: Report) -> None:
    count = sizes.recordings
    work = folder / "pytest-process"
    (work / "recordings").mkdir(parents=True)
    (work / "names.txt").write_text("ada grace edsger barbara\n")
    (work / "small.py").write_text(SMALL)
    progress(f"pytest-process: recording {count} runs of a small program")
    for i in range(count):
        run(python("-m", "pytest_retrace", "record", "-o", f"recordings/r{i:03d}.retrace", "--", "small.py"), work,
            f"pytest-process, record {i}")
    plain = report.row("pytest-process", f"plain x{count}")
    serial = report.row("pytest-process", "pytest", plain)
    parallel = report.row("pytest-process", "pytest -n 2", plain)
    size = sum(p.stat().st_size for p in (work / "recordings").iterdir()) / count
    serial.unit, serial.size = "recording", size
    serial.events = recorded_events(work / "recordings" / "r000.retrace", "pytest-process")
    progress("  warm-up: pytest replaying one recording")
    pytest_replay(work / "recordings" / "r000.retrace", work, work, 1, "pytest-process warm-up", "-n", "2")
    for r in range(rounds):
        progress(f"  pytest-process: round {r + 1}/{rounds}")
        samples = [run(python("small.py"), work, f"pytest-process round {r + 1}, plain") for _ in range(count)]
        plain.samples.append(Sample(sum(s.cpu for s in samples), sum(s.wall for s in samples)))
        serial.samples.append(pytest_replay(work / "recordings", work, work, count,
                                            f"pytest-process round {r + 1}, pytest"))
        parallel.samples.append(pytest_replay(work / "recordings", work, work, count,
                                              f"pytest-process round {r + 1}, pytest -n 2", "-n", "2"))
    parts = []
    for row in (plain, serial, parallel):
        ratio = row.ratio(lambda s: s.wall)
        parts.append(f"{row.mode} {1000 * statistics.median(row.wall()) / count:.1f} ms wall, "
                     f"{1000 * statistics.median(row.cpu()) / count:.1f} ms CPU"
                     + ("" if ratio is None else f" ({ratio:.2f}x plain wall)"))
    ratio = serial.ratio(lambda s: s.wall)
    assert ratio is not None
    report.notes.append(f"pytest-process: per recording: {'; '.join(parts)}; target serial <= 1.5x plain "
                        f"{verdict_word(ratio <= 1.5)}")


# --- per-request recording under werkzeug's threaded server ------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU time a live process has used (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, requests: int, clients: int) -> None:
    """``requests`` GETs from ``clients`` threads, one connection each (werkzeug's server speaks HTTP/1.0)."""
    failures: list[str] = []

    def client(share: range) -> None:
        for i in share:
            if failures:
                return  # one is enough to fail the workload: don't wait out the timeouts of the rest
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("GET", f"/price?item=i{i % 7}")
                response = connection.getresponse()
                if response.status != 200 or not response.read():
                    failures.append(f"GET /price answered {response.status}")
            except OSError as error:
                failures.append(f"GET /price: {error}")
            finally:
                connection.close()

    threads = [threading.Thread(target=client, args=(range(c, requests, clients),)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise WorkloadFailed(f"request: {len(failures)} of {requests} requests failed, first: {failures[0]}")


def serve(folder: Path, keep: str, recordings: Path, requests: int, clients: int) -> tuple[Sample, int]:
    """The server's CPU and the wall over ``requests`` requests after a warm-up; recordings written."""
    recordings.mkdir(exist_ok=True)
    env = child_env(SPEED_KEEP=keep, SPEED_RECORDINGS=str(recordings))
    with server(python("speed_app.py"), folder, env) as (pid, port):
        load(port, 50, clients)  # warm-up: imports, first-request set-up
        cpu, start = proc_cpu(pid), time.perf_counter()
        load(port, requests, clients)
        sample = Sample(proc_cpu(pid) - cpu, time.perf_counter() - start)
    return sample, sum(1 for p in recordings.iterdir() if p.suffix == ".retrace")


def request_workload(sizes: Sizes, rounds: int, clients: int, folder: Path, report: Report) -> None:
    work = folder / "request"
    work.mkdir()
    (work / "speed_app.py").write_text(FLASK_APP)
    progress(f"request: making {sizes.replays} request recordings with keep='all'")
    kept = work / "kept"
    _, written = serve(work, "all", kept, sizes.replays, clients)
    if written != sizes.replays + 50:
        raise WorkloadFailed(f"request: keep='all' wrote {written} recordings for {sizes.replays + 50} requests")
    for path in sorted(kept.iterdir())[: written - sizes.replays]:
        path.unlink()  # the warm-up's: replay the measured ones, up to the count asked for
    size = sum(p.stat().st_size for p in kept.iterdir()) / sizes.replays
    plain = report.row("request", f"plain x{sizes.requests}")
    errors = report.row("request", 'keep="errors"', plain)
    replay = report.row("request", f"pytest -n 2 x{sizes.replays}", unit="request")
    replay.size = size
    replay.events = recorded_events(next(kept.iterdir()), "request")
    progress("  warm-up: pytest replaying one request recording")
    pytest_replay(next(kept.iterdir()), folder, work, 1, "request warm-up, pytest -n 2", "-n", "2")
    for r in range(rounds):
        progress(f"  request: round {r + 1}/{rounds}")
        for row, keep in ((plain, "none"), (errors, "errors")):
            dropped = work / f"dropped-{r}-{keep}"
            sample, written = serve(work, keep, dropped, sizes.requests, clients)
            if written:
                raise WorkloadFailed(f'request: keep="{keep}" wrote {written} recordings of requests that all '
                                     f"answered 200; none expected")
            row.samples.append(sample)
        replay.samples.append(pytest_replay(kept, folder, work, sizes.replays,
                                            f"request round {r + 1}, pytest -n 2", "-n", "2"))
    rate = {row.mode: [sizes.requests / s.wall for s in row.samples] for row in (plain, errors)}
    loss = statistics.median(1 - e / p for e, p in zip(rate[errors.mode], rate[plain.mode], strict=True))
    per_request = {row.mode: statistics.median(1e6 * s.cpu / sizes.requests for s in row.samples)
                   for row in (plain, errors)}
    report.notes.append(
        f"request: {statistics.median(rate[plain.mode]):.0f} requests/s plain, "
        f"{statistics.median(rate[errors.mode]):.0f} with keep=\"errors\": {100 * loss:.1f} % lost "
        f"(median of the per-round losses; target <= 2 %) {verdict_word(loss <= 0.02)}; "
        f"server CPU {per_request[plain.mode]:.0f} µs/request plain, "
        f"{per_request[errors.mode]:.0f} recorded ({per_request[errors.mode] - per_request[plain.mode]:+.0f} µs); "
        f"{clients} client threads")
    replays = [sizes.replays / s.wall for s in replay.samples]
    report.notes.append(f"request: pytest -n 2 replays {statistics.median(replays):.0f} request recordings/s "
                        f"(best {max(replays):.0f}; pytest's start-up included; target >= 200) "
                        f"{verdict_word(statistics.median(replays) >= 200)}")


# --- the table ---------------------------------------------------------------------------------------------


def seconds(values: list[float]) -> str:
    return f"{min(values):7.3f} / {statistics.median(values):7.3f}" if values else "-"


def table(report: Report, rounds: int) -> str:
    header = ("workload", "mode", "CPU s min / median", "wall s min / median", "x plain CPU", "x plain wall",
              "bytes per", "events")
    lines = []
    for row in report.rows:
        if not row.samples:
            continue
        cpu_ratio, wall_ratio = row.ratio(lambda s: s.cpu), row.ratio(lambda s: s.wall)
        lines.append((row.workload, row.mode, seconds(row.cpu()), seconds(row.wall()),
                      "-" if cpu_ratio is None else f"{cpu_ratio:.2f}",
                      "-" if wall_ratio is None else f"{wall_ratio:.2f}",
                      "-" if row.size is None else f"{row.size:.1f} {row.unit}".rstrip(),
                      "-" if row.events is None else f"{row.events:,}"))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    out = [" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
           for line in [header, *lines]]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join([f"{rounds} interleaved rounds, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", *out])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and 3 rounds: about 2 minutes")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    parser.add_argument("--clients", type=int, default=4, help="client threads loading the request workload's server")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still stop the servers, remove the folder
    selected = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = selected - set(WORKLOADS)
    if unknown or not selected:
        parser.error(f"--only: unknown workload(s) {', '.join(sorted(unknown)) or '(none given)'}; "
                     f"choose from {', '.join(WORKLOADS)}")
    rounds = args.rounds or (3 if args.quick else 5)
    sizes = QUICK if args.quick else FULL
    report = Report()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as temp:
        folder = Path(temp)
        groups: list[tuple[str, Callable[[], None]]] = []
        if selected & {"hello", "clock", "urandom", "sql", "http"}:
            processes = folder / "processes"
            processes.mkdir()
            groups.append(("processes", lambda: process_workloads(selected, sizes, rounds, processes, report)))
        if "pytest-process" in selected:
            groups.append(("pytest-process", lambda: pytest_process(sizes, rounds, folder, report)))
        if "request" in selected:
            groups.append(("request", lambda: request_workload(sizes, rounds, args.clients, folder, report)))
        for name, group in groups:
            mark = len(report.rows)
            try:
                group()
            except WorkloadFailed as failure:
                del report.rows[mark:]  # a workload that failed has no figures
                report.failures.append(str(failure))
                progress(f"FAILED {name} (the reason is printed at the end)")
    print(table(report, rounds))
    print()
    for note in report.notes:
        print(note)
    print(f"(whole run: {time.perf_counter() - started:.0f} s)")
    if report.failures:
        print(f"\n{len(report.failures)} workload group(s) failed:", file=sys.stderr)
        for reason in report.failures:
            print(f"  {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
