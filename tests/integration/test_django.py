"""A Django site recorded request by request under gunicorn (``record_django`` in its ``wsgi.py``), on PostgreSQL
(psycopg2) and on sqlite3: its answers are the same recorded as plain; every recording replays ``ok`` with the
database gone, the raising view's as ``crash-reproduced`` with its exception; replaying changes nothing.

PostgreSQL: a browser's visit (CSRF cookie, form POST, redirect), recorded sealed: redaction would replace the CSRF
cookie, and Django would treat the replay as a new visitor. sqlite3: a script's visit (no cookies, JSON POSTs),
recorded redacted. One gunicorn server per run: plain, then recorded, on a fresh database each.
PostgreSQL cases skip when none answers on 127.0.0.1:5432, unless RETRACE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, free_port, retrace

from pytest_retrace.format.tape import read_recording

django = pytest.importorskip("django")
gunicorn = pytest.importorskip("gunicorn")
requests = pytest.importorskip("requests")

POSTGRES = "dbname=test user=postgres host=127.0.0.1 port=5432 connect_timeout=3"
CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+|csrftoken=[^;]+')


@dataclass(frozen=True)
class Answer:
    """What a client saw of one response, with what differs from run to run by design (CSRF tokens) masked."""

    request: str
    status: int
    content_type: str | None
    location: str | None
    body: str

    @classmethod
    def of(cls, request: str, response: Any) -> Answer:
        return cls(request, response.status_code, response.headers.get("Content-Type"),
                   response.headers.get("Location"), CSRF.sub(r"\1<csrf>", response.text))


class Database:
    """The site's database: a PostgreSQL database of its own (``dj_…``), or an sqlite3 file outside the project."""

    def __init__(self, backend: str, data: Path) -> None:
        self.backend = backend
        self.name = f"dj_{uuid.uuid4().hex[:10]}"
        self.file = data / "site.sqlite3"

    def env(self) -> dict[str, str]:
        return {"DJSITE_DB": self.backend, "DJSITE_PG_NAME": self.name, "DJSITE_SQLITE_PATH": str(self.file)}

    def _admin(self, statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(POSTGRES)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()

    def create(self, project: Path) -> None:
        self.drop()
        if self.backend == "postgres":
            self._admin(f"create database {self.name}")
        env = {**os.environ, **self.env(), "DJANGO_SETTINGS_MODULE": "djsite.settings"}
        subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], cwd=project, env=env, check=True,
                       timeout=120)

    def drop(self) -> None:
        if self.backend == "postgres":
            self._admin(f"drop database if exists {self.name} with (force)")
        self.file.unlink(missing_ok=True)

    def exists(self) -> bool:
        if self.backend == "sqlite":
            return self.file.exists()
        import psycopg2

        with psycopg2.connect(POSTGRES) as conn, conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (self.name,))
            found = cur.fetchone() is not None
        conn.close()
        return found


class Gunicorn:
    """The site under gunicorn (one sync worker) on loopback."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        extra = ["--no-control-socket"] if gunicorn.version_info >= (27,) else []  # no socket in $HOME
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}", "-w", "1", *extra,
             "djsite.wsgi:application"], cwd=project, env={**os.environ, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError(f"gunicorn did not start: {self.proc.communicate()[1][-2000:]}") from None
                time.sleep(0.05)

    def stop(self, recordings: Path | None = None, count: int = 0) -> str:
        """Stop once ``count`` recordings are in ``recordings`` (each is written when its response is closed);
        gunicorn's stderr."""
        deadline = time.monotonic() + 10
        while recordings is not None and len(list(recordings.glob("*.retrace"))) < count:
            assert time.monotonic() < deadline, f"{len(list(recordings.glob('*.retrace')))} of {count} recordings"
            time.sleep(0.02)
        self.proc.terminate()
        return self.proc.communicate(timeout=30)[1]


def browser_visit(base: str) -> list[Answer]:
    """A browser: the list, the form (a CSRF cookie), two posts (redirects), pages, a 404, the API, the crash."""
    session = requests.Session()
    answers = [Answer.of("GET /", session.get(f"{base}/"))]
    form = session.get(f"{base}/notes/new")
    answers.append(Answer.of("GET /notes/new", form))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    for title, tags in (("groceries", '["home", "weekly"]'), ("taxes", "[]")):
        posted = session.post(f"{base}/notes/new", data={"csrfmiddlewaretoken": token, "title": title,
                                                         "body": f"{title}\nto do", "tags": tags},
                              allow_redirects=False)
        answers.append(Answer.of(f"POST /notes/new {title}", posted))
    for path in ("/notes/1", "/notes/99", "/api/notes?q=g", "/", "/boom"):
        answers.append(Answer.of(f"GET {path}", session.get(f"{base}{path}")))
    return answers


def script_visit(base: str) -> list[Answer]:
    """A script: JSON posts (one invalid), the API, pages, a 404, the crash; no cookies kept."""
    answers = []
    for payload in ({"title": "groceries", "body": "milk", "tags": ["home"]}, {"title": "", "tags": "[]"},
                    {"title": "taxes", "body": "due", "tags": "[]"}):
        answers.append(Answer.of(f"POST /api/notes {payload['title']}",
                                 requests.post(f"{base}/api/notes", data=json.dumps(payload))))
    for path in ("/api/notes?q=", "/notes/1", "/notes/99", "/", "/boom"):
        answers.append(Answer.of(f"GET {path}", requests.get(f"{base}{path}")))
    return answers


def snapshot(*folders: Path) -> dict[str, tuple[str, int]]:
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir", p.stat().st_mtime_ns)
            for folder in folders for p in sorted(folder.rglob("*"))}


@dataclass
class Served:
    backend: str
    project: Path
    data: Path
    recordings: Path
    database: Database
    plain: list[Answer]
    recorded: list[Answer]
    env: dict[str, str]  # what replaying needs (the private key of sealed recordings)


def postgres_answers() -> None:
    try:
        import psycopg2

        psycopg2.connect(POSTGRES).close()
    except Exception as exc:  # ImportError or OperationalError
        if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (RETRACE_REQUIRE_SERVICES=1) but does not answer: {exc}")
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    backend = request.param
    if backend == "postgres":
        postgres_answers()
    root = tmp_path_factory.mktemp(f"django-{backend}")
    project, data, recordings = root / "project", root / "data", root / "recordings"
    shutil.copytree(PROGRAMS / "django_site", project, ignore=shutil.ignore_patterns("__pycache__"))
    data.mkdir()
    database = Database(backend, data)
    env = {**database.env(), "DJANGO_SETTINGS_MODULE": "djsite.settings"}
    replay_env: dict[str, str] = {}
    if backend == "postgres":  # a browser's requests carry the CSRF cookie: recorded sealed (see the docstring)
        made = retrace("keygen", "-o", str(root / "retrace.key"), cwd=root)
        assert made.returncode == 0, made.stderr
        env["RETRACE_PUBLIC_KEY"] = str(root / "retrace.key.pub")
        replay_env["RETRACE_PRIVATE_KEY"] = str(root / "retrace.key")
    visit = browser_visit if backend == "postgres" else script_visit
    try:
        database.create(project)
        server = Gunicorn(project, {k: v for k, v in env.items() if k != "RETRACE_PUBLIC_KEY"})
        plain = visit(server.base)
        server.stop()
        database.create(project)  # the recorded run starts from the same empty tables
        server = Gunicorn(project, {**env, "DJSITE_RECORDINGS": str(recordings)})
        recorded = visit(server.base)
        log = server.stop(recordings, len(recorded))
        assert "pytest-retrace" not in log, log
    finally:
        database.drop()
    yield Served(backend, project, data, recordings, database, plain, recorded, replay_env)


def test_recorded_answers_are_the_plain_answers(site: Served) -> None:
    assert site.recorded == site.plain
    statuses = [a.status for a in site.plain]
    assert 500 in statuses and 404 in statuses and statuses.count(500) == 1
    assert any(a.content_type == "application/json" and a.status == 200 for a in site.plain)


def test_each_request_is_recorded_with_its_django_settings_and_the_crash_with_its_exception(
        site: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    recs = [read_recording(p) for p in sorted(site.recordings.glob("*.retrace"))]
    assert len(recs) == len(site.recorded)
    assert {r.header["entry"]["app"] for r in recs} == {"djsite.wsgi:application"}
    assert {r.header["environ"].get("DJANGO_SETTINGS_MODULE") for r in recs} == {"djsite.settings"}
    crashes = [r.end["exception"] for r in recs if r.end and r.end.get("exception")]
    assert len(crashes) == 1 and crashes[0]["type"] == "ZeroDivisionError", crashes
    events = [e.describe() for r in recs for e in r.events()]
    connect = "psycopg2.connect" if site.backend == "postgres" else "sqlite3.connect"
    assert any(e.startswith(connect) for e in events), events[:20]
    # Templates (the app's, inside its package, and the project's top-level folder) are code: never events, so the
    # cached loader's warm state after the first request changes nothing a recording holds.
    assert not [e for e in events if ".html" in e], [e for e in events if ".html" in e]
    if site.backend == "postgres":  # CONN_MAX_AGE: later requests found the connection open (their replays don't)
        names = [{e.name for e in r.events()} for r in recs]
        assert any("psycopg2.cursor.execute" in n and connect not in n for n in names), names
    assert {"code_folders"} <= recs[0].header["entry"].keys() and recs[0].header["entry"]["code_folders"]


def test_every_request_replays_with_the_database_gone_and_the_crash_is_reproduced(site: Served) -> None:
    assert not site.database.exists()
    before = snapshot(site.project, site.data, site.recordings)
    env = {**os.environ, **site.env}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the replay takes it from the recording
    proc = subprocess.run([sys.executable, "-m", "pytest", f"--retrace-recordings={site.recordings}",
                           "-p", "no:cacheprovider", "-q"], cwd=site.project, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout
    assert f"{len(site.recorded) - 1} passed" in out and "1 failed" in out, out[-4000:]
    assert "crash-reproduced" in out and "ZeroDivisionError: division by zero" in out, out[-4000:]
    assert snapshot(site.project, site.data, site.recordings) == before  # replay touched nothing
    assert not site.database.exists()
