"""The DB-API adapter (sqlite3 and psycopg2): recorded against a real database, replayed with it gone.

PostgreSQL tests need the server on 127.0.0.1:5432 (user postgres, trust auth); they are skipped
when it does not answer, unless RETRACE_REQUIRE_SERVICES=1 (as in CI) makes that a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful, retrace

from pytest_retrace.format.tape import read_recording

SERVER = "host=127.0.0.1 port=5432 user=postgres"


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database; the test may drop it (replay must not need it)."""
    with fresh_database() as name:
        yield name


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(f"{SERVER} dbname=test connect_timeout=3")
    except psycopg2.OperationalError as exc:
        if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (RETRACE_REQUIRE_SERVICES=1) but does not answer: {exc}")
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")
    admin.autocommit = True
    name = f"retrace_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    yield name
    with admin.cursor() as cur:
        cur.execute(f"drop database if exists {name}")
    admin.close()


def drop(name: str) -> None:
    import psycopg2

    admin = psycopg2.connect(f"{SERVER} dbname=test")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"drop database {name}")
    admin.close()


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
