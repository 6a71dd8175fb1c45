"""The DB-API adapter (sqlite3 and psycopg2): recorded against a real database, replayed with it gone.

PostgreSQL tests need the server on 127.0.0.1:5432 (user postgres, trust auth); they are skipped
when it does not answer, unless RETRACE_REQUIRE_SERVICES=1 (as in CI) makes that a failure.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PG_SERVER as SERVER
from support import PROGRAMS, Recorder, assert_faithful, drop, fresh_database, retrace

from pytest_retrace.format.tape import read_recording


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database; the test may drop it (replay must not need it)."""
    with fresh_database() as name:
        yield name


@pytest.mark.postgres
def test_postgres_session_replays_with_the_database_gone(recorder: Recorder, database: str) -> None:
    # The password comes as libpq reads it from the environment, whose secrets are redacted.
    recorded = recorder.record("db_calls.py", "postgres", f"{SERVER} dbname={database}", env={"PGPASSWORD": "hunter2"})
    assert recorded.returncode == 0, recorded.stderr
    for expected in ("('Decimal', Decimal('9.99'))", "tzinfo=datetime.timezone.utc", "('memoryview', b'\\x00\\xff')",
                     "('timedelta', datetime.timedelta(days=1, seconds=7200))", "('dict', {'a': [1, 2]})",
                     "('list', ['x', 'y'])", "('date', datetime.date(2026, 1, 2))", "('NoneType', None)",
                     "mogrify select 1, 'it''s'", "unique violation 23505 UniqueViolation True",
                     "named cursor 2 True", "dict rows [['name', 'price'], ['name', 'price']]", "callproc (6,)",
                     "composed (1,)", "dict cursor DictRow True ['name', 'price']",
                     "namedtuple cursor Record ('name', 'unit_price') True",
                     "copy in 2", "copy out b'1,one\\n2,two\\n'"):
        assert expected in recorded.stdout
    drop(database)
    assert_faithful(recorder, recorded)

    data = (recorder.folder / "rec.retrace").read_bytes()
    assert b"hunter2" not in data
    names = [e.name for e in read_recording(recorder.folder / "rec.retrace").events()]
    for name in ("psycopg2.connect", "psycopg2.cursor.execute", "psycopg2.cursor.mogrify", "psycopg2.cursor.callproc",
                 "psycopg2.cursor.copy_expert", "psycopg2.commit", "psycopg2.rollback", "psycopg2.autocommit",
                 "psycopg2.close"):
        assert name in names
    assert not [n for n in names if n.startswith("socket.")]


def test_sqlite_session_replays_with_the_file_gone(recorder: Recorder, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    recorded = recorder.record("db_calls.py", "sqlite", str(db))
    assert recorded.returncode == 0, recorded.stderr
    assert "integrity IntegrityError UNIQUE constraint failed: item.name" in recorded.stdout
    assert "one ('n" in recorded.stdout and "b'\\x00\\x01')" in recorded.stdout
    assert "in transaction True changes 2" in recorded.stdout  # read from the live connection, not a snapshot
    assert "row factory Row ['name', 'price'] 1.5" in recorded.stdout
    assert "cursor row factory [{'drink': b'tea'}]" in recorded.stdout  # text_factory reached the driver
    db.unlink()
    assert_faithful(recorder, recorded)
    names = {e.name for e in read_recording(recorder.folder / "rec.retrace").events()}
    assert {"sqlite3.connect", "sqlite3.cursor.execute", "sqlite3.cursor.executemany", "sqlite3.commit",
            "sqlite3.rollback", "sqlite3.connection.set", "sqlite3.close"} <= names


def run_plain(*args: str) -> str:
    return subprocess.run([sys.executable, str(PROGRAMS / "db_calls.py"), *args], capture_output=True, text=True,
                          check=True).stdout


def without_random_values(output: str) -> str:
    """Program output with what differs run to run (random names, uuid4 refs, now()) hidden."""
    output = re.sub(r"\b[nv][0-9a-f]{6}\b", "<name>", output)
    output = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", output)
    return re.sub(r"datetime\.datetime\([^)]*\)", "<now>", output)


@pytest.mark.postgres
def test_recording_does_not_change_what_a_postgres_program_does(recorder: Recorder, database: str) -> None:
    """The recorded run does what the plain run does: row types of every cursor class, COPY, settings."""
    with fresh_database() as other:
        plain = run_plain("postgres", f"{SERVER} dbname={other}")
    recorded = recorder.record("db_calls.py", "postgres", f"{SERVER} dbname={database}")
    assert recorded.returncode == 0, recorded.stderr
    assert "<uuid>" in without_random_values(plain) and "<now>" in without_random_values(plain)
    assert without_random_values(recorded.stdout) == without_random_values(plain)


def test_recording_does_not_change_what_a_sqlite_program_does(recorder: Recorder, tmp_path: Path) -> None:
    """Replay agreeing with the recording is not enough: the recorded run must do what the plain run
    does (row factories, settings, cursor chaining all pass through the proxy). Names are random."""
    plain = run_plain("sqlite", str(tmp_path / "plain.db"))
    recorded = recorder.record("db_calls.py", "sqlite", str(tmp_path / "recorded.db"))
    assert recorded.returncode == 0, recorded.stderr
    assert without_random_values(recorded.stdout) == without_random_values(plain)


def test_a_changed_query_is_reported_with_its_text(tmp_path: Path) -> None:
    program = tmp_path / "report.py"
    program.write_text(f"import sqlite3\nconn = sqlite3.connect({str(tmp_path / 'r.db')!r})\n"
                       "print(conn.execute('select 1 + ?', (41,)).fetchone())\n")
    assert retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path).returncode == 0
    program.write_text(program.read_text().replace("(41,)", "(42,)"))
    replayed = retrace("replay", "rec.retrace", cwd=tmp_path)
    assert replayed.returncode == 70
    assert "expected  sqlite3.cursor.execute('select 1 + ?', (41,))" in replayed.stderr
    assert "actual    sqlite3.cursor.execute('select 1 + ?', (42,))" in replayed.stderr


def test_a_fixed_crash_may_commit_where_the_crash_rolled_back(tmp_path: Path) -> None:
    program = tmp_path / "job.py"
    program.write_text(f"import sqlite3\nconn = sqlite3.connect({str(tmp_path / 'j.db')!r})\n"
                       "with conn:\n"
                       "    (n,) = conn.execute('select 41').fetchone()\n"
                       "    print(n / 0)\n")
    assert retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path).returncode == 1
    program.write_text(program.read_text().replace("n / 0", "n + 1"))
    replayed = retrace("replay", "rec.retrace", "--verdict", "v.json", cwd=tmp_path)
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["status"] == "crash-fixed", replayed.stderr
    assert verdict["keyed"]["answered_live"] == ["sqlite3.commit()"] and not verdict["keyed"]["unanswered"]
    assert replayed.stdout == "42\n"


def test_sqlite_drop_in_types_callbacks_and_threads_replay_touching_nothing(recorder: Recorder, tmp_path: Path) -> None:
    """sqlite3's own types while recording: the program's connection and cursor classes, create_function (its
    calls seen by the program), aggregates, collations, the trace callback, Row, iterdump, blobopen, backup
    into another connection, one connection shared by threads. The replay, with both files gone, prints the
    same and creates no file."""
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = subprocess.run([sys.executable, str(PROGRAMS / "sqlite_types.py"), "a.db", "b.db"], cwd=plain_dir,
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    recorded = recorder.record("sqlite_types.py", "a.db", "b.db")
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == (0, plain.stdout, plain.stderr)
    for expected in ("types Conn True Cursor Cur", "calls [1, 2, 3]", "row Row ['id', 'label'] a (1, 'a') True",
                     "threads 60", "backup (3, 'a,b,c')", "traced "):
        assert expected in recorded.stdout
    assert sys.version_info < (3, 11) or "blob b'\\x01\\x02\\x00\\x00' 4" in recorded.stdout
    (tmp_path / "a.db").unlink()
    (tmp_path / "b.db").unlink()
    before = {p.name for p in tmp_path.iterdir()}
    assert_faithful(recorder, recorded, offline=True)
    assert {p.name for p in tmp_path.iterdir()} - before == {"rec.verdict.json"}
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


def _serve(folder: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    from test_wsgi import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(folder / "rowapp.py"), str(port), *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # werkzeug logs each request
    assert proc.stdout is not None and proc.stdout.readline() == "serving\n"
    return proc, port


def _hammer(port: int, clients: int = 8, requests: int = 200) -> list[tuple[int, bytes]]:
    """``clients`` threads, each sending ``requests`` GETs (JSON and, keeping the session's cookie, a rendered page in
    turn); every answer, in a fixed order."""
    import http.cookiejar
    import threading
    import urllib.error
    import urllib.request

    answers: list[list[tuple[int, bytes]]] = [[] for _ in range(clients)]

    def client(k: int) -> None:
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        for n in range(requests):
            url = f"http://127.0.0.1:{port}/{('item', 'page')[n % 2]}/{1 + (k + n) % 3}"
            try:
                with browser.open(url, timeout=30) as response:
                    answers[k].append((response.status, response.read()))
            except urllib.error.HTTPError as exc:
                answers[k].append((exc.code, exc.read()))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [answer for per_client in answers for answer in per_client]


def test_a_threaded_wsgi_app_with_sqlite_rows_answers_the_same_recorded(tmp_path: Path) -> None:
    """8 client threads x 200 requests to a threaded werkzeug server whose app reads sqlite3.Row rows, renders a Jinja
    template and counts visits in the session: recorded
    request by request, every answer is the plain one (one in six used to be a 500: the adapter described
    columns on one sqlite3 connection shared by every thread). A sample of the recordings replays faithfully
    with the database gone."""
    import shutil
    import sqlite3

    folder = tmp_path / "rowapp"
    shutil.copytree(PROGRAMS / "rowapp", folder)
    with sqlite3.connect(folder / "rows.db") as conn:
        conn.execute("create table item (id integer primary key, name text, price real)")
        conn.executemany("insert into item (name, price) values (?, ?)", [("tea", 1.5), ("cake", 2.25), ("pie", 3.0)])
    conn.close()
    outcomes = {}
    for mode in ("plain", "record"):
        proc, port = _serve(folder, mode, str(folder / "recordings"), "0.01")
        try:
            outcomes[mode] = _hammer(port)
        finally:
            proc.terminate()
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()
    assert len(outcomes["plain"]) == 1600 and {status for status, _ in outcomes["plain"]} == {200}
    assert sum(b"visit 100</p>" in body for _, body in outcomes["plain"]) == 8  # each client's session, to the end
    assert outcomes["record"] == outcomes["plain"]
    recordings = sorted((folder / "recordings").glob("*.retrace"))
    assert recordings, "a sample of about 1 in 100 requests is kept"
    (folder / "rows.db").unlink()
    replayed = subprocess.run([sys.executable, "-m", "pytest", f"--retrace-recordings={folder / 'recordings'}",
                               "-p", "no:cacheprovider", "-q"], cwd=folder, capture_output=True, text=True,
                              timeout=300)
    assert replayed.returncode == 0, replayed.stdout[-3000:]
    assert f"{len(recordings)} passed" in replayed.stdout
    assert not (folder / "rows.db").exists()
