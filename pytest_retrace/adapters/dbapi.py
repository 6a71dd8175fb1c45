"""DB-API drivers — sqlite3 and psycopg2 — at the driver's API: connections and cursors become proxies.

Events (``sqlite3.…`` / ``psycopg2.…``): ``connect`` (its arguments, passwords as digests),
``cursor.execute`` / ``executemany`` / ``callproc`` (query text — or a ``psycopg2.sql``
composition — and parameters in the key), ``cursor.mogrify``, ``cursor.copy_expert`` (psycopg2's
COPY), ``commit``, ``rollback``, ``close``, setting ``autocommit`` or any other connection setting
(``text_factory``, ``isolation_level`` …). An execute's result is everything the program can read
from the cursor afterwards: description, rowcount, lastrowid, status message and *all* its rows,
fetched at once; ``fetchone``/``fetchmany``/``fetchall`` and iteration then read from those rows,
the same way in record and replay, so no database is needed on replay. sqlite3's ``row_factory``
(``sqlite3.Row`` or your own) and psycopg2's ``DictCursor`` and ``NamedTupleCursor`` shape the
recorded rows as they are fetched. Replaying a crash on the fixed code's new path, a commit,
rollback or close the recording never made is assumed to succeed. Errors (``IntegrityError`` …
with ``pgcode``/``pgerror``) are recorded and raised again. Values keep their types (Decimal, dates
and times with time zones, timedelta, UUID, JSON, arrays, None, and ``bytea`` as memoryview).

While a driver call runs, the layers beneath it are not recorded (the phase gate): libpq's own
socket is C code anyway, which is why PostgreSQL needs this adapter to be replayed at all.
"""

from __future__ import annotations

import functools
import io
import re
import sys
from collections import namedtuple
from typing import TYPE_CHECKING, Any

from ..engine.base import dress, payload
from ..engine.state import internal
from ..format.codec import Digest
from ..hooks.specs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

# A cursor description entry: indexable like sqlite3's 7-tuples, with psycopg2's attribute names.
Column = namedtuple("Column", "name type_code display_size internal_size precision scale null_ok")
SECRET_ARGUMENTS = frozenset({"password", "passwd"})
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)")
_URI_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^@\s]*@")
_COPY_OUT = re.compile(r"\bTO\s+STDOUT\b", re.IGNORECASE)


class Bytea:
    """A memoryview in a recorded row (psycopg2's ``bytea``): msgpack would read it back as bytes."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


# Fixed code on a new path commits where the crash rolled back: transaction control is assumed to succeed.
TRANSACTION_CONTROL = tuple(f"{driver}.{call}" for driver in ("sqlite3", "psycopg2")
                            for call in ("commit", "rollback", "close"))


def _row(row: Any) -> Any:
    if isinstance(row, dict):  # RealDictCursor and friends
        return {k: Bytea(bytes(v)) if type(v) is memoryview else v for k, v in row.items()}
    return tuple(Bytea(bytes(v)) if type(v) is memoryview else v for v in row)


def _unrow(row: Any) -> Any:
    if isinstance(row, dict):
        return {k: memoryview(v.data) if type(v) is Bytea else v for k, v in row.items()}
    return tuple(memoryview(v.data) if type(v) is Bytea else v for v in row)


def _param(value: Any) -> Any:
    """A query parameter as the call key holds it: psycopg2's adapters (Json, Binary …) by what they adapt."""
    if hasattr(value, "getquoted") and hasattr(value, "adapted"):
        adapted = value.adapted
        return [type(value).__name__, bytes(adapted) if isinstance(adapted, memoryview) else adapted]
    return value


def _params(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: _param(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return tuple(_param(v) for v in params)
    return params


def _connect_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    def hide(text: Any) -> Any:  # a DSN, key=value or URI: keep it but for the password
        if not isinstance(text, str):
            return text
        return _URI_PASSWORD.sub(r"\1***@", _DSN_PASSWORD.sub(r"\1***", text))

    named = {k: Digest.secret(str(v).encode()) if k in SECRET_ARGUMENTS else hide(v) for k, v in sorted(kwargs.items())
             if k not in ("connection_factory", "cursor_factory", "factory")}
    return (tuple(hide(a) for a in args), named)


def _query(query: Any) -> Any:
    """A query as its call key holds it: text as it is; a ``psycopg2.sql`` composition by its repr, which
    names every part (rendering it would take a live connection, which replay does not have)."""
    composition = sys.modules.get("psycopg2.sql")
    if composition is not None and isinstance(query, composition.Composable):
        return repr(query)
    return query


def _replayed(*args: Any) -> Any:
    """Stands for a driver method on a replayed connection, where there is no database: never called
    while the replay follows the recording (the engine answers from it)."""
    raise RuntimeError("pytest-retrace: a replayed database connection has no database behind it")


class RecordedCursor:
    """A cursor: execute-like calls are events; fetching reads the rows the event holds."""

    def __init__(self, connection: RecordedConnection, real: Any, dict_rows: bool) -> None:
        self.connection = connection
        self._real = real
        self._dict_rows = dict_rows
        self._rows: list[Any] = []
        self._next = 0
        self.description: tuple[Column, ...] | None = None
        self.rowcount = -1
        self.lastrowid: Any = None
        self.statusmessage: str | None = None
        self.query: Any = None
        self.arraysize = 1
        self.closed = False
        self.row_factory = connection.row_factory  # sqlite3: a cursor starts with its connection's

    def _call(self, method: str, key: tuple[Any, ...], *args: Any) -> Any:
        connection = self.connection

        def run() -> dict[str, Any]:
            getattr(self._real, method)(*args)
            return self._snapshot()

        state = connection._engine.call(f"{connection._driver}.cursor.{method}", key, run)
        self._load(state)
        return state.get("returned")

    def _snapshot(self) -> dict[str, Any]:
        real = self._real
        named = bool(getattr(real, "name", None))  # a server-side cursor describes its rows once fetched
        rows = real.fetchall() if named or real.description is not None else []
        return {
            "description": None if real.description is None else [tuple(c[:7]) for c in real.description],
            "rowcount": real.rowcount,
            "lastrowid": getattr(real, "lastrowid", None),
            "statusmessage": getattr(real, "statusmessage", None),
            "query": getattr(real, "query", None),
            "rows": [_row(r) for r in rows],
        }

    def _load(self, state: dict[str, Any]) -> None:
        """Read what an execute left (recorded rows carry Bytea where the program gets a memoryview)."""
        description = state["description"]
        self.description = None if description is None else tuple(Column(*c) for c in description)
        self.rowcount = state["rowcount"]
        self.lastrowid = state["lastrowid"]
        self.statusmessage = state["statusmessage"]
        self.query = state["query"]
        self._rows = [_unrow(r) for r in state["rows"]]
        self._next = 0

    def _chained(self) -> RecordedCursor | None:
        """What execute returns: sqlite3 the cursor itself (``cur.execute(…).fetchall()``), psycopg2 None."""
        return self if self.connection._driver == "sqlite3" else None

    def execute(self, query: Any, params: Any = None) -> RecordedCursor | None:
        self._call("execute", (_query(query), _params(params)), *((query,) if params is None else (query, params)))
        return self._chained()

    def executemany(self, query: Any, seq_of_params: Any) -> RecordedCursor | None:
        params = list(seq_of_params)
        self._call("executemany", (_query(query), [_params(p) for p in params]), query, params)
        return self._chained()

    def callproc(self, procname: str, params: Any = ()) -> Any:
        self._call("callproc", (procname, _params(params)), procname, params)
        return params

    def mogrify(self, query: Any, params: Any = None) -> bytes:
        connection = self.connection
        fn = self._real.mogrify if self._real is not None else _replayed
        return connection._engine.call(  # type: ignore[no-any-return]
            f"{connection._driver}.cursor.mogrify", (_query(query), _params(params)), fn, query, params)

    def copy_expert(self, sql: str, file: Any, size: int = 8192) -> None:
        """psycopg2's COPY: ``… FROM STDIN`` reads ``file`` (its content is in the call key); ``… TO STDOUT``
        writes to it (what it wrote is the event's result, written again on replay)."""
        connection = self.connection
        text = isinstance(file, io.TextIOBase)
        incoming = None if _COPY_OUT.search(str(_query(sql))) else file.read()

        def run() -> dict[str, Any]:
            if incoming is None:
                out = io.StringIO() if text else io.BytesIO()
                self._real.copy_expert(sql, out, size)
                return {"written": out.getvalue(), "rowcount": self._real.rowcount}
            self._real.copy_expert(sql, io.StringIO(incoming) if text else io.BytesIO(incoming), size)
            return {"written": None, "rowcount": self._real.rowcount}

        key = (_query(sql), None if incoming is None else payload(incoming))
        state = connection._engine.call(f"{connection._driver}.cursor.copy_expert", key, run)
        self.rowcount = state["rowcount"]
        if state["written"] is not None:
            file.write(state["written"])

    def _shaped(self, rows: list[Any]) -> list[Any]:
        """Rows as the program asked for them: through sqlite3's ``row_factory`` when one is set (rows are
        recorded as tuples, and shaped the same way in record and replay)."""
        factory = self.row_factory
        if factory is None:
            return rows
        cursor = _described(self.description) if factory is _sqlite_row() else self
        return [factory(cursor, row) for row in rows]

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._shaped(self._rows[self._next - 1 : self._next])[0]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self.arraysize if size is None else size
        rows = self._rows[self._next : self._next + size]
        self._next += len(rows)
        return self._shaped(rows)

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._next :]
        self._next = len(self._rows)
        return self._shaped(rows)

    def __iter__(self) -> Any:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._real is not None:  # recording; a replayed cursor has nothing to close
                self._real.close()

    def __enter__(self) -> RecordedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass


def _sqlite_row() -> Any:
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3.Row if sqlite3 is not None else None


def _described(description: Any) -> Any:
    """A real sqlite3 cursor whose description names these columns: what ``sqlite3.Row`` insists on (it reads
    the column names from it), on replay too, where there is no database (an in-memory one describes)."""
    names = [column[0] for column in description or ()]
    with internal:
        columns = ", ".join("NULL AS \"{}\"".format(name.replace('"', '""')) for name in names)
        return _describer().execute(f"SELECT {columns}" if names else "SELECT NULL WHERE 0")


@functools.cache
def _describer() -> Any:
    """The in-memory sqlite3 database that describes columns, opened on first use (through the real
    ``connect``: it is no part of the program's work)."""
    return _REAL_CONNECT["sqlite3"](":memory:")


def _psycopg2_row_shaper(factory: Any) -> Any:
    """How rows of a psycopg2 cursor class that makes its own row type are shaped, or None."""
    extras = sys.modules.get("psycopg2.extras")
    if extras is None or not isinstance(factory, type):
        return None
    if issubclass(factory, extras.DictCursor):
        return _dict_row
    if issubclass(factory, extras.NamedTupleCursor):
        return _namedtuple_row
    return None


def _namedtuple_row(cursor: RecordedCursor, values: tuple[Any, ...]) -> Any:
    """psycopg2's NamedTupleCursor row: a ``Record`` namedtuple of the columns (psycopg2's own, cached)."""
    from psycopg2.extras import NamedTupleCursor

    key = tuple(column[0] for column in cursor.description or ())
    return NamedTupleCursor._cached_make_nt(key)._make(values)


def _dict_row(cursor: RecordedCursor, values: tuple[Any, ...]) -> Any:
    """psycopg2's DictCursor row (a list that also indexes by column name), built from a recorded tuple."""
    from psycopg2.extras import DictRow

    row = DictRow.__new__(DictRow)
    row._index = {column[0]: i for i, column in enumerate(cursor.description or ())}
    row[:] = values
    return row


_REAL_CONNECT: dict[str, Any] = {}


def _setting_key(value: Any) -> Any:
    """A setting's value as a call key holds it: plain values as they are, callables and classes by name."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"


class RecordedConnection:
    """A connection: transaction control and settings are events; cursors are :class:`RecordedCursor`."""

    _OWN = frozenset({"closed", "row_factory"})  # attributes of ours; any other that is set is a driver setting
    row_factory: Any = None  # sqlite3: applied by our cursors to the recorded rows, never by the driver

    def __init__(self, engine: Engine, driver: str, real: Any, facts: dict[str, Any], dict_rows: bool,
                 cursor_factory: Any = None) -> None:
        self._cursor_factory = cursor_factory
        self._engine = engine
        self._driver = driver
        self._real = real
        self._facts = facts  # what does not change while connected: encoding, server version …
        self._dict_rows = dict_rows
        self.closed = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name in self._OWN or isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
            return
        # A driver setting (text_factory, isolation_level, readonly …): set on the real connection, as an event.
        fn = setattr if self._real is not None else _replayed
        self._engine.call(f"{self._driver}.connection.set", (name, _setting_key(value)), fn, self._real, name, value)
        self._facts[name] = value

    def _call(self, method: str, args: Any = None, *a: Any) -> Any:
        fn = getattr(self._real, method) if self._real is not None else _replayed
        return self._engine.call(f"{self._driver}.{method}", args, fn, *a)

    def cursor(self, *args: Any, **kwargs: Any) -> RecordedCursor:
        factory = kwargs.get("cursor_factory")
        dict_rows = self._dict_rows or (factory is not None and "Dict" in getattr(factory, "__name__", ""))
        real = self._real.cursor(*args, **kwargs) if self._real is not None else None
        cursor = RecordedCursor(self, real, dict_rows)
        shaper = _psycopg2_row_shaper(factory or self._cursor_factory)
        if shaper is not None:  # rows are recorded as tuples, and shaped as that cursor class shapes them
            cursor._dict_rows = False
            cursor.row_factory = shaper
        return cursor

    def execute(self, query: Any, params: Any = None) -> RecordedCursor:  # sqlite3's shortcuts
        cursor = self.cursor()
        cursor.execute(query, params)
        return cursor

    def executemany(self, query: Any, seq_of_params: Any) -> RecordedCursor:
        cursor = self.cursor()
        cursor.executemany(query, seq_of_params)
        return cursor

    def commit(self) -> None:
        self._call("commit")

    def rollback(self) -> None:
        self._call("rollback")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._call("close")

    @property
    def autocommit(self) -> Any:
        return self._facts.get("autocommit")

    @autocommit.setter
    def autocommit(self, value: Any) -> None:
        if self._real is not None:
            self._engine.call(f"{self._driver}.autocommit", (value,), setattr, self._real, "autocommit", value)
        else:
            self._engine.call(f"{self._driver}.autocommit", (value,), _replayed)
        self._facts["autocommit"] = value

    def __enter__(self) -> RecordedConnection:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        # Both drivers: leaving the block commits, or rolls back on an exception; it does not close.
        self.rollback() if exc_type is not None else self.commit()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._facts:
            return self._facts[name]
        # State that changes as the program works (in_transaction, total_changes, status …): read each time.
        fn = getattr if self._real is not None else _replayed
        return self._engine.call(f"{self._driver}.connection.{name}", None, fn, self._real, name)


# What a connection says of itself that stays as it was at connect time (read once, with the connect event).
FACTS = {"psycopg2": ("encoding", "server_version", "protocol_version", "dsn", "autocommit"),
         "sqlite3": ("isolation_level",)}


def _patch_connect(engine: Engine, patcher: Patcher, module: ModuleType, driver: str) -> None:
    real_connect = module.connect
    _REAL_CONNECT[driver] = real_connect

    def connect(*args: Any, **kwargs: Any) -> RecordedConnection:
        factory = kwargs.get("cursor_factory")
        dict_rows = factory is not None and "Dict" in getattr(factory, "__name__", "")
        opened: list[Any] = []

        def open_and_describe() -> dict[str, Any]:
            opened.append(real_connect(*args, **kwargs))
            return {name: getattr(opened[0], name, None) for name in FACTS[driver]}

        facts = engine.call(f"{driver}.connect", _connect_key(args, kwargs), open_and_describe)
        return RecordedConnection(engine, driver, opened[0] if opened else None, dict(facts), dict_rows, factory)

    patcher.set(module, "connect", dress(connect, real_connect))


@hookimpl
def retrace_register_codecs(register: Callable[[str, type, Callable[[Any], Any], Callable[[Any], Any]], None]) -> None:
    register("dbapi.memoryview", Bytea, lambda b: b.data, memoryview)


@hookimpl
def retrace_install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    engine.assume_success(TRANSACTION_CONTROL)
    patcher.when_imported("sqlite3", lambda m: _patch_connect(engine, patcher, m, "sqlite3"))
    patcher.when_imported("psycopg2", lambda m: _patch_connect(engine, patcher, m, "psycopg2"))
