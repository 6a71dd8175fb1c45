"""psycopg2 at its own C types: what psycopg2's own functions need from a connection works while recording,
and on replay with the database gone and no network at all.

Needs PostgreSQL on 127.0.0.1:5432 (skipped when it does not answer, unless RETRACE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful, retrace
from test_dbapi import SERVER, drop, fresh_database

from pytest_retrace.format.tape import read_recording

pytestmark = pytest.mark.postgres


def plain_run(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(program), *args], capture_output=True, text=True, timeout=60)


def sessions(database: str) -> int:
    """How many sessions PostgreSQL has seen to ``database`` (its statistics, flushed as sessions end)."""
    import psycopg2

    time.sleep(1.0)  # a session's statistics reach shared memory shortly after it ends
    with psycopg2.connect(f"{SERVER} dbname=test") as admin, admin.cursor() as cur:
        cur.execute("select sessions from pg_stat_database where datname = %s", (database,))
        (count,) = cur.fetchone()
    admin.close()
    return int(count)


def test_psycopg2_extras_settings_notify_and_copy_record_and_replay(recorder: Recorder) -> None:
    """register_uuid/json on the connection (it used to raise TypeError: the connection was a proxy),
    composition, quote_ident, info, session settings, notices, LISTEN/NOTIFY with select and poll (refused
    before), the program's own connection and cursor classes, server-side cursors, copy_from/copy_to."""
    with fresh_database() as other:
        plain = plain_run(PROGRAMS / "pg_types.py", f"{SERVER} dbname={other}")
    assert plain.returncode == 0, plain.stderr
    with fresh_database() as name:
        recorded = recorder.record("pg_types.py", f"{SERVER} dbname={name}")
        assert recorded.returncode == 0, recorded.stderr
        assert (recorded.stdout, recorded.stderr) == (plain.stdout, plain.stderr)
        # With the database there and reachable, a replay opens no session to it (the server counts them).
        before = sessions(name)
        assert_faithful(recorder, recorded)
        assert sessions(name) == before
        drop(name)
        for expected in ("types LoggingConnection True LoggingCursor", 'quote_ident "we""ird"',
                         "notifies [('dbh_channel', 'first', True), ('dbh_channel', 'second', True)]",
                         "notices ['NOTICE:  hello 42\\n']", "own cursor Shouting (\"IT'S\",) 2",
                         "rows [(UUID('a0eebc99", "copy_to [\"it's\\t1.50\""):
            assert expected in recorded.stdout
        assert_faithful(recorder, recorded, offline=True)  # the database dropped, no network at all
    names = {e.name for e in read_recording(recorder.folder / "rec.retrace").events()}
    assert {"psycopg2.poll", "psycopg2.cursor.copy_from", "psycopg2.cursor.copy_to", "psycopg2.set_session",
            "psycopg2.sql.Literal.as_string"} <= names
    assert "psycopg2.info" not in names  # what info says of a session is read at connect


FAULTY = """
import psycopg2, psycopg2.extensions as ext

class Money:
    def __init__(self, text):
        self.text = text
    def __repr__(self):
        return "Money(" + self.text + ")"

MONEY = ext.new_type((1700,), "MONEY", lambda value, cur: None if value is None else Money(value))
conn = psycopg2.connect(DSN)
ext.register_type(MONEY, conn)
cur = conn.cursor()
cur.execute("select 1.25::numeric, 'x'")
print(cur.fetchall(), cur.description[0].name, cur.rowcount)
print(type(conn).__name__, type(cur).__name__)
"""


def test_a_value_we_cannot_record_leaves_the_program_untouched(tmp_path: Path) -> None:
    """A typecaster of the program's own makes values the recording cannot hold: the program still gets
    psycopg2's answer, and the recording says it is incomplete."""
    with fresh_database() as name:
        program = tmp_path / "faulty.py"
        program.write_text(FAULTY.replace("DSN", repr(f"{SERVER} dbname={name}")))
        plain = plain_run(program)
        recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "[(Money(1.25), 'x')] numeric 1" in plain.stdout
    assert (recorded.returncode, recorded.stdout) == (0, plain.stdout)
    assert "incomplete" in recorded.stderr and "psycopg2.cursor.execute" in recorded.stderr
