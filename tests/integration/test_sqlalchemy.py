"""SQLAlchemy 2, Core and ORM, on PostgreSQL through psycopg2 and on sqlite3: recording changes nothing the
program does, and the replay — the database gone, no network at all — prints the same and is faithful.

The program (fixtures/programs/sa_orm.py) uses the pool with pool_pre_ping, Numeric/Decimal, tz-aware
datetimes, UUID, JSON(B), arrays, insertmanyvalues, server-side cursors (stream_results, yield_per),
transactions and a savepoint rolled back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful
from test_dbapi import drop, fresh_database

from pytest_retrace.format.tape import read_recording

pytest.importorskip("sqlalchemy")
EXPECTED = ("customer 1 00000000-0000-0000-0000-000000000001 10 33.75",
            "first 0.00 datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc) {'n': 0, 'odd': False} "
            "['t0', 'x'] customer 1", "after 165.00 3", "streamed [7, 7, 7, 7, 2]", "yield_per [10, 10, 10]",
            "text 17", "again 14.50")


def plain_run(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROGRAMS / "sa_orm.py"), url], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.postgres
def test_sqlalchemy_orm_on_postgres_records_and_replays(recorder: Recorder, tmp_path: Path) -> None:
    # Used to crash at the first connect: register_uuid(None, conn) refused the proxy connection.
    with fresh_database() as other:
        plain = plain_run(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{other}", tmp_path)
    assert plain.returncode == 0, plain.stderr
    with fresh_database() as name:
        recorded = recorder.record("sa_orm.py", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}")
        assert (recorded.returncode, recorded.stdout, recorded.stderr) == (0, plain.stdout, plain.stderr)
        drop(name)
        assert_faithful(recorder, recorded, offline=True)
    for expected in EXPECTED:
        assert expected in recorded.stdout
    events = read_recording(recorder.folder / "rec.retrace").events()
    assert sum(e.name == "psycopg2.connect" for e in events) >= 2  # the pool reconnected after dispose()
    assert not [e.name for e in events if e.name.startswith("socket.")]


def test_sqlalchemy_orm_on_sqlite_records_and_replays(recorder: Recorder, tmp_path: Path) -> None:
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = plain_run("sqlite:///shop.db", plain_dir)
    assert plain.returncode == 0, plain.stderr
    recorded = recorder.record("sa_orm.py", "sqlite:///shop.db")
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == (0, plain.stdout, plain.stderr)
    for expected in EXPECTED:
        assert expected in recorded.stdout
    (tmp_path / "shop.db").unlink()
    assert_faithful(recorder, recorded, offline=True)
    assert not (tmp_path / "shop.db").exists()  # sqlite3.dbapi2.connect, SQLAlchemy's way in, is recorded too
    names = {e.name for e in read_recording(recorder.folder / "rec.retrace").events()}
    assert {"sqlite3.connect", "sqlite3.cursor.execute", "sqlite3.commit", "sqlite3.rollback"} <= names
