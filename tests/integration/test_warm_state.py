"""Request recordings replay whatever earlier requests warmed: a Jinja template cached by an earlier request, a
pooled connection an earlier request opened. A Flask app on a real threaded werkzeug server, SQLAlchemy's pool on
a real PostgreSQL; every recording replays ok with the database dropped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PG_SERVER, PROGRAMS, drop, fresh_database, retrace

from pytest_retrace.format.tape import read_recording

pytestmark = pytest.mark.postgres


class Server:
    """``serve.py`` on a free port, for ``target`` (``module:app``), with recording on when ``recordings``."""

    def __init__(self, folder: Path, target: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "serve.py", "0", target], cwd=folder, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("serving "), line + self.proc.stderr.read()  # type: ignore[union-attr]
        self.port = int(line.split()[1])

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=20)


@pytest.fixture
def shop(pytester: pytest.Pytester) -> Iterator[tuple[Path, dict[str, str], str]]:
    """The app inside the project the plugin replays in, a fresh database with a table, and the environment."""
    folder = pytester.path / "warmapp"
    shutil.copytree(PROGRAMS / "warmapp", folder)
    with fresh_database() as name:
        import psycopg2

        conn = psycopg2.connect(f"{PG_SERVER} dbname={name}")
        with conn, conn.cursor() as cur:
            cur.execute("create table items (id int primary key, name text, price numeric)")
            cur.executemany("insert into items values (%s, %s, %s)", [(1, "apple", "0.50"), (2, "pear", "0.75")])
        conn.close()
        env = dict(os.environ, WARM_DSN=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
                   WARM_TABLE="items")
        env.pop("WARM_RECORDINGS", None)
        yield folder, env, name


def serve_and_ask(folder: Path, target: str, env: dict[str, str], paths: list[str]) -> list[tuple[int, str]]:
    server = Server(folder, target, env)
    try:
        answers = [server.get(path) for path in paths]
        if "WARM_RECORDINGS" in env:  # each recording is written once its response is out: wait for the last
            deadline = time.monotonic() + 10
            while len(list(Path(env["WARM_RECORDINGS"]).glob("*.retrace"))) < len(paths) and (
                    time.monotonic() < deadline):
                time.sleep(0.02)
        return answers
    finally:
        server.stop()


PAGES = ["/plain", "/", "/item/1", "/item/2", "/item/99", "/"]


def test_requests_on_warm_templates_and_pooled_connections_replay_ok(
        shop: tuple[Path, dict[str, str], str], pytester: pytest.Pytester) -> None:
    folder, env, database = shop
    plain = serve_and_ask(folder, "shop:app", env, PAGES)
    recordings = folder / "recordings"
    recorded = serve_and_ask(folder, "shop:app", dict(env, WARM_RECORDINGS=str(recordings)), PAGES)
    assert recorded == plain  # recording is invisible
    assert [status for status, _ in plain] == [200, 200, 200, 200, 404, 200]
    assert "apple" in plain[1][1] and "pear costs 0.75" in plain[3][1]

    files = list(recordings.glob("*.retrace"))
    assert len(files) == len(PAGES)
    names = [read_recording(p).events() for p in files]
    # Templates and SQL files inside the package are code: no request's recording reads them.
    for events in names:
        assert not [e for e in events if "templates" in repr(e.args) or ".sql" in repr(e.args)]
    # Only the request that found the pool cold holds a connect.
    connects = [sum(e.name == "psycopg2.connect" for e in events) for events in names]
    assert sum(connects) == 1, connects

    cold = next(p for p, events in zip(files, names, strict=True) if any(e.name == "psycopg2.connect" for e in events))
    shown = retrace("show", str(cold), cwd=folder)
    assert shown.returncode == 0 and "* sets a connection up" in shown.stdout, shown.stdout
    assert "*#" in shown.stdout and "connection set-up log" in shown.stdout

    drop(database)  # replay needs no database
    result = pytester.runpytest(f"--retrace-recordings={recordings}", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=len(PAGES))

    # A request served on the pooled connection: its replay opened the connection afresh, set up from the log.
    warm = next(p for p, events in zip(files, names, strict=True)
                if any(e.name == "psycopg2.cursor.execute" for e in events)
                and not any(e.name == "psycopg2.connect" for e in events))
    verdict = folder / "verdict.json"
    run = retrace("replay", str(warm), "--verdict", str(verdict), cwd=folder)
    assert run.returncode == 0, run.stderr
    data = json.loads(verdict.read_text())
    assert data["status"] == "ok"
    assert any(call.startswith("psycopg2.connect") for call in data["setup"]["answered"]), data


def test_a_template_first_rendered_by_an_earlier_request_replays_ok(
        shop: tuple[Path, dict[str, str], str], pytester: pytest.Pytester) -> None:
    """A one-module app (no package): its template folder is declared code by record_flask."""
    folder, env, _ = shop
    paths = ["/bye", "/hello/zoe"]  # hello.html extends page.html, which /bye loaded
    plain = serve_and_ask(folder, "single:app", env, paths)
    recordings = folder / "single-recordings"
    recorded = serve_and_ask(folder, "single:app", dict(env, WARM_RECORDINGS=str(recordings)), paths)
    assert recorded == plain and plain[1] == (200, "<html><body>hello zoe</body></html>")
    files = list(recordings.glob("*.retrace"))
    assert len(files) == 2
    for path in files:
        assert not [e for e in read_recording(path).events() if ".html" in repr(e.args)]
    result = pytester.runpytest(f"--retrace-recordings={recordings}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
