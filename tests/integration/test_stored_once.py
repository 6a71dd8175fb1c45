"""Values stored once, end to end: a program's queries and HTTP requests recorded against a real PostgreSQL and
a real HTTP server on loopback hold each query text, description and unchanging header once, the recorded program
sees the driver's own types as it does plainly, and the replay (with the database or server gone) is faithful."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from support import PG_SERVER, LiveServer, Recorder, Run, assert_faithful, drop, fresh_database, retrace

from pytest_retrace.format import codec, sealing, tape

QUERIES = '''\
import sys
import psycopg2

conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("CREATE TEMP TABLE items (id serial PRIMARY KEY, label_of_item text NOT NULL)")
for i in range(int(sys.argv[2])):
    cur.execute("INSERT INTO items VALUES (DEFAULT, %s) RETURNING id", (f"item {i}",))
    new = cur.fetchone()[0]
    cur.execute("SELECT * FROM items WHERE id = %s", (new,))
    row, sent = cur.fetchone(), cur.query
    cur.execute("SELECT count(*) FROM items")
    print(row, sent, cur.fetchone(), cur.statusmessage, cur.rowcount, [c.name for c in cur.description])
print(type(cur.statusmessage).__name__, type(cur.query).__name__, type(cur.description).__name__,
      type(cur.description[0]).__name__, cur.query)
conn.commit()
'''

REQUESTS = '''\
import sys
import requests

session = requests.Session()
for i in range(int(sys.argv[2])):
    response = session.get(f"http://127.0.0.1:{sys.argv[1]}/quote?item={i % 3}")
    print(response.status_code, len(response.headers), sorted(response.json()))
'''


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as name:
        yield name


def record(recorder: Recorder, program: str, *args: str) -> tuple[subprocess.CompletedProcess[str], Run]:
    (recorder.folder / "prog.py").write_text(program)
    plain = subprocess.run([sys.executable, "prog.py", *args], cwd=recorder.folder, capture_output=True, text=True)
    recorded = retrace("record", "-o", "rec.retrace", "--", "prog.py", *args, cwd=recorder.folder)
    assert recorded.returncode == 0, recorded.stderr
    return plain, recorded


@pytest.mark.postgres
def test_query_texts_and_descriptions_are_stored_once_and_replay(recorder: Recorder, database: str) -> None:
    dsn = f"{PG_SERVER} dbname={database}"
    plain, recorded = record(recorder, QUERIES, dsn, "30")
    assert plain.returncode == 0, plain.stderr
    # The recorded program sees what it sees plainly: the driver's own types, not marked ones.
    assert recorded.stdout.splitlines()[-1] == "str bytes tuple Column b'SELECT count(*) FROM items'"
    assert recorded.stdout.count("\n") == plain.stdout.count("\n") == 31
    assert "b'SELECT * FROM items WHERE id = 30'" in recorded.stdout  # the query sent, rebuilt on replay
    data = (recorder.folder / "rec.retrace").read_bytes()
    # A value is written in place the first time, stored the second, and referred to from then on.
    assert data.count(b"SELECT * FROM items WHERE id = %s") == 2
    assert data.count(b"label_of_item") == 4  # the CREATE text and the CREATE as sent (once), the description
    # the text and the query as sent (no parameters: the same every time), and in the output END holds
    assert data.count(b"SELECT count(*) FROM items") == 5
    events = [e for e in tape.read_recording(recorder.folder / "rec.retrace").events()
              if e.name == "psycopg2.cursor.execute"]
    assert len(events) == 91 and events[-1].result["statusmessage"] == "SELECT 1"
    assert type(events[-2].result["description"]) is tuple
    drop(database)
    assert_faithful(recorder, recorded)


def test_unchanging_headers_are_stored_once_and_replay(recorder: Recorder, http_server: LiveServer) -> None:
    plain, recorded = record(recorder, REQUESTS, str(http_server.port), "20")
    assert recorded.stdout == plain.stdout
    data = (recorder.folder / "rec.retrace").read_bytes()
    # In place the first time, stored the second, referred to from then on:
    assert data.count(b"application/json") == 2  # the response's Content-Type value
    assert data.count(b"gzip, deflate") == 2  # the request's Accept-Encoding value, in the call key
    assert data.count(b"Content-Length") == 2  # a header's name; its value changes and stays in place
    http_server.stop()
    assert_faithful(recorder, recorded, offline=True)


def test_a_sealed_recording_with_stored_values_replays(recorder: Recorder, http_server: LiveServer) -> None:
    key = sealing.PrivateKey.generate()
    (recorder.folder / "prog.py").write_text(REQUESTS)
    recorded = retrace("record", "-o", "rec.retrace", "--public-key", key.public.text(), "--", "prog.py",
                       str(http_server.port), "5", cwd=recorder.folder)
    assert recorded.returncode == 0, recorded.stderr
    data = (recorder.folder / "rec.retrace").read_bytes()
    assert b"gzip, deflate" not in data and b"No such file" not in data
    sealing.add_private_key(key.text())
    stored = tape.read_recording(recorder.folder / "rec.retrace").decoding.values
    assert "gzip, deflate" in stored and any(isinstance(value, codec.Raised) for value in stored)
    http_server.stop()
    assert_faithful(recorder, recorded, env={"RETRACE_PRIVATE_KEY": key.text()}, offline=True)
