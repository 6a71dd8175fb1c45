"""What both DB adapters share: the plain form of an execute's result, and the classes a connection is made of."""

from __future__ import annotations

import pathlib
import sqlite3

from pytest_retrace.adapters.dbapi import Executed, combined, connect_key
from pytest_retrace.format import codec
from pytest_retrace.redaction import PLACEHOLDER


def test_an_execute_result_travels_as_plain_values_and_comes_back_with_its_memoryviews() -> None:
    executed = Executed([("data", 17, None, None, None, None, None, 0, 0)], 2, 0, "SELECT 2", b"select",
                        [(memoryview(b"\x00\xff"), 1), (None, 2)], [["notice", "NOTICE:  hi\n"]])
    plain = executed.encode()
    assert isinstance(plain, dict) and plain["rows"] == [(b"\x00\xff", 1), (None, 2)]  # readable in `retrace show`
    back = Executed.decode(codec.unpackb(codec.packb(plain)))
    assert type(back.rows[0][0]) is memoryview and bytes(back.rows[0][0]) == b"\x00\xff"
    assert back.rows[1] == (None, 2) and back.side == [["notice", "NOTICE:  hi\n"]] and back.statusmessage == "SELECT 2"
    dict_rows = Executed(None, 1, rows=[{"blob": memoryview(b"x"), "n": 1}]).encode()
    assert type(Executed.decode(codec.unpackb(codec.packb(dict_rows))).rows[0]["blob"]) is memoryview


def test_the_programs_class_runs_first_and_reaches_ours_before_the_drivers() -> None:
    class Ours(sqlite3.Connection):
        def cursor(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return ("ours", super().cursor(*args, **kwargs))

    class Theirs(sqlite3.Connection):
        def cursor(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return ("theirs", super().cursor(*args, **kwargs))

    cache: dict = {}
    made = combined(Theirs, Ours, sqlite3.Connection, cache)
    assert made.__mro__[:4] == (made, Theirs, Ours, sqlite3.Connection)
    assert made.__name__ == "Theirs" and combined(Theirs, Ours, sqlite3.Connection, cache) is made
    plain = combined(sqlite3.Connection, Ours, sqlite3.Connection, cache)
    assert plain.__name__ == "Connection" and plain.__module__ == "sqlite3" and plain.__mro__[1] is Ours
    conn = made(":memory:")
    outer, (inner, cursor) = conn.cursor()
    assert (outer, inner, type(cursor)) == ("theirs", "ours", sqlite3.Cursor)
    conn.close()


def test_a_connect_key_redacts_passwords_and_names_paths() -> None:
    args, named = connect_key(("host=db password=hunter2 user=me",), {"password": "s3cret", "port": 5432})
    assert args == (f"host=db password={PLACEHOLDER} user=me",) and named == {"password": PLACEHOLDER, "port": 5432}
    assert connect_key(("postgresql://me:hunter2@db/x",), {})[0] == (f"postgresql://me:{PLACEHOLDER}@db/x",)
    assert connect_key((pathlib.Path("/data/shop.db"),), {})[0] == ("/data/shop.db",)
