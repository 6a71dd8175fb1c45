"""Re-recording after a deliberate change (``--retrace-record-mode=rewrite``): a Flask app on a real PostgreSQL and a
job calling a real HTTP service are recorded; the code's queries change on purpose, so their replays diverge; a
rewrite run records them again against the live world, keeps the old ones as ``.orig``, and says so; the next
plain run replays the new ones. A process recording is re-recorded only with ``rewrite-all``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import PG_SERVER, LiveServer, fresh_database, retrace

from pytest_retrace.format.tape import read_recording

SHOP = '''\
import json, os, threading, urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psycopg2
from flask import Flask, jsonify

from pytest_retrace.wsgi import record_flask

app = Flask(__name__)
record_flask(app, "recordings/web", tags={"team": "shop"})
QUERY = "select name, price from items order by name"


@app.get("/items")
def items():
    with psycopg2.connect(os.environ["SHOP_DSN"]) as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        return jsonify([[name, str(price)] for name, price in cur.fetchall()])


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/items") as answer:
        print(answer.read().decode())
    server.shutdown()
'''
JOBS = '''\
import json, os, sys, urllib.request

import pytest_retrace

UPSTREAM = os.environ.get("UPSTREAM", "")


@pytest_retrace.record_calls("recordings/jobs")
def quote(item):
    with urllib.request.urlopen(f"{UPSTREAM}/quote?item={item}") as answer:
        return json.loads(answer.read())["path"]


if __name__ == "__main__":
    print(quote(sys.argv[1]))
'''
CLOCK = "import time\nprint('stamp', time.time() > 0)\n"


def run_pytest(root: Path, *args: str, env: dict[str, str] | None = None,
               recordings: tuple[str, ...] = ("recordings",)) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           *(f"--retrace-recordings={path}" for path in recordings), *args], cwd=root,
                          capture_output=True, text=True, timeout=300, env=env)


def table(dsn: str, rows: list[tuple[str, str]]) -> None:
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("drop table if exists items; create table items (name text, price numeric(8, 2))")
        cur.executemany("insert into items values (%s, %s)", rows)


@pytest.fixture
def world(tmp_path: Path, http_server: LiveServer):
    """A project with one request recording (Flask on PostgreSQL), one call recording (an HTTP upstream) and one
    process recording; the database and the upstream stay up for the re-recording."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "shop.py").write_text(SHOP)
    (root / "jobs.py").write_text(JOBS)
    (root / "stamp.py").write_text(CLOCK)
    with fresh_database() as name:
        dsn = f"{PG_SERVER} dbname={name}"
        table(dsn, [("pear", "1.50"), ("apple", "100.00")])
        env = dict(os.environ, SHOP_DSN=dsn, UPSTREAM=f"http://127.0.0.1:{http_server.port}")
        for program, args in (("shop.py", []), ("jobs.py", ["tea"])):
            ran = subprocess.run([sys.executable, program, *args], cwd=root, env=env, capture_output=True, text=True,
                                 timeout=60)
            assert ran.returncode == 0, ran.stderr
        (root / "recordings").mkdir(exist_ok=True)
        assert retrace("record", "-o", "recordings/stamp.retrace", "stamp.py", cwd=root).returncode == 0
        yield root, dsn, env


def test_a_deliberate_change_is_recorded_again_live_and_the_old_recordings_kept(world) -> None:
    root, dsn, env = world
    [request] = (root / "recordings/web").glob("*.retrace")
    [call] = (root / "recordings/jobs").glob("*.retrace")
    olds = {p: p.read_bytes() for p in (request, call, root / "recordings/stamp.retrace")}
    assert "3 passed" in run_pytest(root, env=env).stdout
    # Deliberate changes: the shop's query asks for the cheap items only, the job asks the upstream another path,
    # the process prints through another call.
    (root / "shop.py").write_text(SHOP.replace("from items order", "from items where price < 50 order"))
    (root / "jobs.py").write_text(JOBS.replace("/quote?item=", "/quote?v=2&item="))
    (root / "stamp.py").write_text("import time\nprint('stamp', time.monotonic() > 0)\n")
    diverged = run_pytest(root, env=env)
    assert "3 failed" in diverged.stdout and "3 diverged" in diverged.stdout
    table(dsn, [("pear", "1.75"), ("fig", "2.00")])  # the live world moved on too

    rewritten = run_pytest(root, "--retrace-record-mode=rewrite", env=env)
    assert "1 failed, 2 passed" in rewritten.stdout, rewritten.stdout  # not the process recording
    summary = rewritten.stdout.partition("retrace summary")[2]
    assert "3 replayed, 1 diverged, 2 re-recorded" in summary, summary
    assert "re-recorded against the live world: 2 (each old recording kept beside it as .orig" in summary
    assert f"  {request.relative_to(root)}: was diverged at event #" in summary
    assert f"  {call.relative_to(root)}: was diverged at event #" in summary
    for path in (request, call):
        assert Path(f"{path}.orig").read_bytes() == olds[path] and path.read_bytes() != olds[path]
    assert not list(root.glob("recordings/**/.rerecord-*"))  # no temporary folder left behind
    new = read_recording(request)
    assert new.header["tags"] == {"team": "shop"} and new.header["entry"]["environ"]["PATH_INFO"] == "/items"
    held = repr([(e.name, e.args, e.result) for e in new.events()])
    assert "price < 50" in held and "fig" in held  # the new query, today's rows
    assert "v=2&item=tea" in repr([(e.name, e.args) for e in read_recording(call).events()])

    # The new recordings replay with the world gone; the process one is re-recorded only when asked.
    offline = dict(env, SHOP_DSN="host=127.0.0.1 port=1 dbname=nothing", UPSTREAM="http://127.0.0.1:1")
    after = run_pytest(root, env=offline, recordings=("recordings/web", "recordings/jobs"))
    assert "2 passed" in after.stdout and "failed" not in after.stdout, after.stdout
    everything = run_pytest(root, "--retrace-record-mode=rewrite-all", env=env)
    assert "3 passed" in everything.stdout and "1 re-recorded" in everything.stdout, everything.stdout
    assert (root / "recordings/stamp.retrace.orig").read_bytes() == olds[root / "recordings/stamp.retrace"]


def test_a_re_recording_that_fails_changes_nothing(world, http_server: LiveServer) -> None:
    root, _dsn, env = world
    [call] = (root / "recordings/jobs").glob("*.retrace")
    old = call.read_bytes()
    (root / "jobs.py").write_text(JOBS.replace("/quote?item=", "/quote?v=2&item="))
    http_server.stop()  # the live world is down: the job crashes when run again
    ran = run_pytest(root, "--retrace-record-mode=rewrite", env=env, recordings=("recordings/jobs",))
    assert "1 failed" in ran.stdout, ran.stdout
    assert "--- recorded again, but the live run crashed where the recording did not (urllib.error.URLError: " \
           in ran.stdout, ran.stdout
    assert "is the live world (database, services) up? The original is left in place" in ran.stdout
    assert call.read_bytes() == old and not Path(f"{call}.orig").exists()
    assert not list(root.glob("recordings/**/.rerecord-*"))


def test_rewrite_leaves_faithful_and_crashing_recordings_alone(world) -> None:
    root, _dsn, env = world
    before = {p: p.stat().st_mtime_ns for p in root.glob("recordings/**/*.retrace")}
    ran = run_pytest(root, "--retrace-record-mode=rewrite-all", env=env)
    assert "3 passed" in ran.stdout and "re-recorded" not in ran.stdout
    assert {p: p.stat().st_mtime_ns for p in root.glob("recordings/**/*.retrace")} == before
    assert not list(root.glob("recordings/**/*.orig"))


def test_a_sealed_recording_is_recorded_again_sealed_with_its_secrets(tmp_path: Path, http_server: LiveServer) -> None:
    """Sealed, a recording holds the real values of its secrets: the live re-run gets them, and the new recording
    is sealed for the same project key."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pay.py").write_text(
        "import json, os, sys, urllib.request\nimport pytest_retrace\n\n"
        "@pytest_retrace.record_calls('recordings')\n"
        "def charge(amount, api_key):\n"
        "    url = f\"{os.environ['UPSTREAM']}/charge?amount={amount}&key={api_key}\"\n"
        "    with urllib.request.urlopen(url) as answer:\n"
        "        return json.loads(answer.read())['path']\n\n"
        "if __name__ == '__main__':\n    print(charge(5, api_key='sk-live-7Qx'))\n")
    assert retrace("keygen", "-o", "project.key", cwd=root).returncode == 0
    env = dict(os.environ, UPSTREAM=f"http://127.0.0.1:{http_server.port}", RETRACE_PUBLIC_KEY="project.key.pub",
               RETRACE_PRIVATE_KEY=str(root / "project.key"))
    subprocess.run([sys.executable, "pay.py"], cwd=root, env=env, check=True, capture_output=True, timeout=60)
    [recording] = (root / "recordings").glob("*.retrace")
    (root / "pay.py").write_text((root / "pay.py").read_text().replace("/charge?", "/v2/charge?"))
    ran = run_pytest(root, "--retrace-record-mode=rewrite", env=env)
    assert "1 passed" in ran.stdout and "1 re-recorded" in ran.stdout, ran.stdout
    assert b"sk-live-7Qx" not in recording.read_bytes()  # sealed: nothing readable without the key
    no_key = {k: v for k, v in env.items() if k != "RETRACE_PRIVATE_KEY"}
    assert "needs the recording key" in run_pytest(root, env=no_key).stdout
    calls = subprocess.run([sys.executable, "-c", "import sys; from pytest_retrace.format.tape import read_recording; "
                            "print([(e.name, e.args) for e in read_recording(sys.argv[1]).events()])", str(recording)],
                           env=env, capture_output=True, text=True, check=True).stdout  # a key held by a process
    assert "/v2/charge?amount=5&key=sk-live-7Qx" in calls  # the real key went to the live upstream
