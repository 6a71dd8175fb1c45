"""sqlite3 at its own types: connections and cursors are ``sqlite3.Connection``/``Cursor`` subclasses.

``sqlite3.connect`` is given a ``factory=`` (the program's own, combined with :class:`LiveConnection`
just above sqlite3's type) and cursors a factory the same way, so ``create_function``,
``backup(target)``, ``sqlite3.Row``, ``iterdump`` and ``isinstance`` checks get sqlite3's own objects.

On replay the connection is of the same class but opened on a private in-memory database, which
touches nothing outside: every answer the program reads comes from the recording; the in-memory
database only gives ``sqlite3.Row`` a real cursor that describes the recorded columns. Each cursor
describes its own columns, so nothing is shared between threads.

Callbacks: functions registered with ``create_function`` and the trace callback run inside the queries
that call them. While recording, the calls they got during each recorded query are part of its
event; on replay, where the query does not run, they are called again with the same arguments
(their results are not used: the recorded rows already hold them), so side effects the program sees
(a log of statements, a counter) happen the same way. Aggregates, collations, authorizers and
progress handlers are registered on both sides and not called on replay.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Literal

from ..engine.base import wear_library_faces
from ..engine.state import internal, setting_up
from ..hooks.specs import hookimpl
from .dbapi import (
    DriverClasses,
    Executed,
    Unrecordable,
    combined,
    connect_key,
    keyed,
    own_copy,
    params,
    replayed,
    setting_key,
    transaction_control,
)

if TYPE_CHECKING:
    from types import ModuleType

    from ..engine.base import Engine, wear_library_faces
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

_CLASSES: list[DriverClasses] = []  # made once sqlite3 is imported
_COMBINED: dict[tuple[type, type], type] = {}
CALLBACKS = ("function", "trace")


def _build(sqlite3: ModuleType) -> DriverClasses:
    base_connection, base_cursor = sqlite3.Connection, sqlite3.Cursor

    class LiveCursor(base_cursor):  # type: ignore[misc, valid-type]
        """A cursor whose queries are events; fetching reads the rows the event holds."""

        _retrace_executed: Executed | None = None
        _retrace_rows: list[Any] = []
        _retrace_next = 0
        _retrace_closed = False
        _retrace_described: Any = None  # replay: the description the in-memory cursor was given

        def _retrace_call(self, method: str, key: tuple[Any, ...], *args: Any) -> Any:
            conn = self.connection
            real = getattr(base_cursor, method)

            made: list[Executed] = []

            def run() -> Any:
                log = conn._retrace_log_start()
                try:
                    real(self, *args)
                    rows = self._retrace_fetch()  # sqlite3 steps (and calls back) as rows are fetched
                finally:
                    side = conn._retrace_log_end(log)
                try:
                    snapshot = self._retrace_snapshot(rows, side)
                    encoded = snapshot.encode()
                except Exception as exc:  # a fault of ours: the program keeps sqlite3's own answer
                    return Unrecordable(f"{type(exc).__name__}: {exc}")
                made.append(snapshot)
                return encoded

            engine = conn._retrace_engine  # parameters keyed redacted (see the psycopg2 adapter)
            result = engine.call(f"sqlite3.cursor.{method}", keyed(engine.redaction.data(key)),
                                 replayed if conn._retrace_replay else run)
            # Recording, the program reads the snapshot itself: the encoded values wear marks of the recording's.
            executed = made[0] if made and type(result) is dict else Executed.decode(result)
            if not isinstance(executed, Executed):  # not recorded: the rows sqlite3 gave are served as they are
                live = self.__dict__.pop("_retrace_live_rows", None)
                described = base_cursor.description.__get__(self)
                self._retrace_executed = Executed(described, base_cursor.rowcount.__get__(self),
                                                  base_cursor.lastrowid.__get__(self), rows=live)
                self._retrace_rows, self._retrace_next = list(live or ()), 0
            else:
                self._retrace_executed = executed
                live = self.__dict__.pop("_retrace_live_rows", None)
                self._retrace_rows = list(executed.rows or ()) if live is None else live
                self._retrace_next = 0
                conn._retrace_apply(executed.side)
            return self

        def _retrace_fetch(self) -> list[Any] | None:
            """All rows of the query as sqlite3 builds them before any row factory; None for a statement."""
            if base_cursor.description.__get__(self) is None:
                return None
            saved, self.row_factory = self.row_factory, None  # type: ignore[has-type]
            try:
                return base_cursor.fetchall(self)  # type: ignore[no-any-return]
            finally:
                self.row_factory = saved

        def _retrace_snapshot(self, rows: list[Any] | None, side: Any) -> Executed:
            described = base_cursor.description.__get__(self)
            self._retrace_live_rows = rows  # the program reads these; the recording keeps its own copy
            return Executed(None if described is None else [tuple(c) for c in described],
                            base_cursor.rowcount.__get__(self), base_cursor.lastrowid.__get__(self),
                            rows=None if rows is None else own_copy(rows), side=side)

        def execute(self, sql: str, parameters: Any = None) -> Any:
            self._retrace_check_open()
            args = (sql,) if parameters is None else (sql, parameters)
            return self._retrace_call("execute", (sql, params(parameters)), *args)

        def executemany(self, sql: str, seq_of_parameters: Any) -> Any:
            self._retrace_check_open()
            seq = list(seq_of_parameters)  # a generator is read once: for the key and for sqlite3
            return self._retrace_call("executemany", (sql, [params(p) for p in seq]), sql, seq)

        def executescript(self, sql_script: str) -> Any:
            self._retrace_check_open()
            return self._retrace_call("executescript", (sql_script,), sql_script)

        def _retrace_check_open(self) -> None:
            if self._retrace_closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed cursor.")
            if self.connection._retrace_closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")

        def _retrace_shaped(self, rows: list[Any]) -> list[Any]:
            """Rows through the row factory, as sqlite3 applies it: ``factory(cursor, row)``."""
            factory = self.row_factory
            if self._retrace_executed is None or factory is None:
                return rows
            conn = self.connection
            if conn._retrace_replay and self._retrace_described != self._retrace_executed.description:
                self._retrace_describe()
            return [factory(self, row) for row in rows]

        def _retrace_describe(self) -> None:
            """Replay: give this cursor's in-memory twin the recorded columns (what ``sqlite3.Row`` reads)."""
            description = self._retrace_executed.description if self._retrace_executed else None
            names = [column[0] for column in description or ()]
            columns = ", ".join('NULL AS "{}"'.format(str(name).replace('"', '""')) for name in names)
            with internal:
                base_cursor.execute(self, f"SELECT {columns}" if names else "SELECT NULL WHERE 0")
            self._retrace_described = description

        def fetchone(self) -> Any:
            if self._retrace_executed is None:
                return base_cursor.fetchone(self) if not self.connection._retrace_replay else None
            self._retrace_check_open()
            if self._retrace_next >= len(self._retrace_rows):
                return None
            self._retrace_next += 1
            return self._retrace_shaped(self._retrace_rows[self._retrace_next - 1 : self._retrace_next])[0]

        def fetchmany(self, size: int | None = None) -> list[Any]:
            if self._retrace_executed is None:
                if self.connection._retrace_replay:
                    return []
                return base_cursor.fetchmany(self, size) if size is not None else base_cursor.fetchmany(self)
            self._retrace_check_open()
            size = self.arraysize if size is None else size
            rows = self._retrace_rows[self._retrace_next : self._retrace_next + size]
            self._retrace_next += len(rows)
            return self._retrace_shaped(rows)

        def fetchall(self) -> list[Any]:
            if self._retrace_executed is None:
                return base_cursor.fetchall(self) if not self.connection._retrace_replay else []
            self._retrace_check_open()
            rows = self._retrace_rows[self._retrace_next :]
            self._retrace_next = len(self._retrace_rows)
            return self._retrace_shaped(rows)

        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            row = self.fetchone()
            if row is None:
                raise StopIteration
            return row

        def close(self) -> None:
            self._retrace_closed = True
            base_cursor.close(self)

        @property
        def description(self) -> Any:
            executed = self._retrace_executed
            if executed is None:
                return None if self.connection._retrace_replay else base_cursor.description.__get__(self)
            return None if executed.description is None else tuple(tuple(c) for c in executed.description)

        @property
        def rowcount(self) -> int:
            executed = self._retrace_executed
            if executed is None:
                return -1 if self.connection._retrace_replay else base_cursor.rowcount.__get__(self)
            return executed.rowcount  # type: ignore[no-any-return]

        @property
        def lastrowid(self) -> Any:
            executed = self._retrace_executed
            if executed is None:
                return None if self.connection._retrace_replay else base_cursor.lastrowid.__get__(self)
            return executed.lastrowid

    class LiveConnection(base_connection):  # type: ignore[misc, valid-type]
        """A connection whose calls that reach the database are events."""

        _retrace_replay = False
        _retrace_engine: Engine
        _retrace_facts: dict[str, Any]
        _retrace_closed = False
        _retrace_logs: dict[int, list[Any]] | None = None
        _retrace_noting = False  # a callback of the program's is registered (while recording)

        # -- callbacks -------------------------------------------------------------------------------

        def _retrace_log_start(self) -> Any:
            """Start noting the callbacks this thread's call makes (nested calls keep the outer log)."""
            if not self._retrace_noting:
                return None  # no callback of the program's is registered: nothing to note
            if self._retrace_logs is None:
                self._retrace_logs = {}
            ident = threading.get_ident()
            if ident in self._retrace_logs:
                return None
            self._retrace_logs[ident] = []
            return ident

        def _retrace_log_end(self, ident: Any) -> list[Any] | None:
            if ident is None or self._retrace_logs is None:
                return None
            return self._retrace_logs.pop(ident, None) or None

        def _retrace_noted(self, kind: str, name: Any, fn: Any) -> Any:
            """``fn`` as registered with sqlite3 while recording: its calls inside a recorded query are noted."""
            logs_of = self
            self._retrace_noting = True

            def callback(*args: Any) -> Any:
                logs = logs_of._retrace_logs
                if logs:
                    log = logs.get(threading.get_ident())
                    if log is not None:
                        log.append([kind, name, list(args)])
                return fn(*args)

            return callback

        def _retrace_apply(self, side: list[Any] | None) -> None:
            """Replay: the callbacks the recorded call made, called again (their results are recorded already)."""
            if not side or not self._retrace_replay:
                return
            registered = self._retrace_callbacks
            for kind, name, args in side:
                fn = registered.get((kind, name))
                if fn is not None:
                    with internal:
                        try:
                            fn(*args)
                        except Exception:  # sqlite3 swallowed or reported it in the recorded query's result
                            pass

        @property
        def _retrace_callbacks(self) -> dict[tuple[str, Any], Any]:
            found = self.__dict__.get("_retrace_registered")
            if found is None:
                found = self.__dict__["_retrace_registered"] = {}
            return found  # type: ignore[no-any-return]

        def create_function(self, name: str, narg: int, func: Any, *, deterministic: bool = False) -> None:
            self._retrace_callbacks[("function", name)] = func
            noted = func if func is None or self._retrace_replay else self._retrace_noted("function", name, func)
            base_connection.create_function(self, name, narg, noted, deterministic=deterministic)

        def set_trace_callback(self, trace_callback: Any) -> None:
            self._retrace_callbacks[("trace", None)] = trace_callback
            if trace_callback is None or self._retrace_replay:
                base_connection.set_trace_callback(self, None if self._retrace_replay else trace_callback)
            else:
                base_connection.set_trace_callback(self, self._retrace_noted("trace", None, trace_callback))

        # -- calls that reach the database -------------------------------------------------------------

        def _retrace_event(self, name: str, key: Any, real: Any, *args: Any) -> Any:
            def run() -> Any:
                log = self._retrace_log_start()
                try:
                    returned = real(self, *args)
                finally:
                    side = self._retrace_log_end(log)
                # None of these calls returns a list: a list is [result, callbacks made]
                return returned if side is None else [returned, side]

            result = self._retrace_engine.call(f"sqlite3.{name}", key, replayed if self._retrace_replay else run)
            if isinstance(result, list):
                self._retrace_apply(result[1])
                return result[0]
            return result

        def cursor(self, factory: Any = base_cursor) -> Any:
            return base_connection.cursor(self, combined(factory, LiveCursor, base_cursor, _COMBINED))

        def execute(self, sql: str, parameters: Any = None) -> Any:
            cursor = self.cursor()
            return cursor.execute(sql) if parameters is None else cursor.execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any) -> Any:
            return self.cursor().executemany(sql, parameters)

        def executescript(self, sql_script: str) -> Any:
            return self.cursor().executescript(sql_script)

        def commit(self) -> None:
            self._retrace_event("commit", None, base_connection.commit)

        def rollback(self) -> None:
            self._retrace_event("rollback", None, base_connection.rollback)

        def close(self) -> None:
            self._retrace_event("close", None, base_connection.close)
            self._retrace_closed = True
            if self._retrace_replay:
                base_connection.close(self)  # the in-memory twin: later use fails as it did

        def __exit__(self, exc_type: Any, *exc: object) -> Literal[False]:
            # sqlite3: leaving the block commits, or rolls back on an exception; it does not close.
            LiveConnection.rollback(self) if exc_type is not None else LiveConnection.commit(self)
            return False

        def backup(self, target: Any, *, pages: int = -1, progress: Any = None, name: str = "main",
                   sleep: float = 0.250) -> None:
            # The target is written on record; on replay it is a stand-in whose reads come from the recording.
            self._retrace_event("backup", (pages, name), lambda conn: base_connection.backup(
                conn, target, pages=pages, progress=progress, name=name, sleep=sleep))

        def serialize(self, *, name: str = "main") -> bytes:
            return self._retrace_event("serialize", (name,), lambda conn: base_connection.serialize(  # type: ignore[no-any-return]
                conn, name=name))

        def deserialize(self, data: bytes, /, *, name: str = "main") -> None:
            self._retrace_event("deserialize", (name, bytes(data)), lambda conn: base_connection.deserialize(
                conn, data, name=name))

        def load_extension(self, *args: Any, **kwargs: Any) -> None:
            self._retrace_event("load_extension", (args, kwargs), lambda conn: base_connection.load_extension(
                conn, *args, **kwargs))

        def blobopen(self, table: str, column: str, row: int, /, *, readonly: bool = False,
                     name: str = "main") -> Any:
            """The blob's content when opened is the event's result; a replay reads and writes a copy of it."""
            blobs: list[Any] = []

            def run(conn: Any) -> bytes:
                blob = base_connection.blobopen(conn, table, column, row, readonly=readonly, name=name)
                blobs.append(blob)
                content = blob.read()
                blob.seek(0)
                return content  # type: ignore[no-any-return]

            content = self._retrace_event("blobopen", (table, column, row, readonly, name), run)
            return blobs[0] if blobs else _Blob(content, readonly)

        @property
        def in_transaction(self) -> bool:
            return self._retrace_event("connection.in_transaction", None,  # type: ignore[no-any-return]
                                       base_connection.in_transaction.__get__)

        @property
        def total_changes(self) -> int:
            return self._retrace_event("connection.total_changes", None,  # type: ignore[no-any-return]
                                       base_connection.total_changes.__get__)

        def _retrace_setting(name: str) -> Any:  # type: ignore[misc]  # noqa: N805 - builds a property
            descriptor = base_connection.__dict__[name]

            def get(self: Any) -> Any:
                return descriptor.__get__(self) if not self._retrace_replay else self._retrace_facts.get(name)

            def set_(self: Any, value: Any) -> None:
                self._retrace_event("connection.set", (name, setting_key(value)), descriptor.__set__, value)
                self._retrace_facts[name] = value

            return property(get, set_)

        isolation_level = _retrace_setting("isolation_level")
        text_factory = _retrace_setting("text_factory")
        del _retrace_setting

    class StandInConnection(LiveConnection):
        """Replay: the program's connection class on a private in-memory database."""

        _retrace_replay = True

        def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
            base_connection.__init__(self, ":memory:", *args, **kwargs)

    for made in (LiveCursor, LiveConnection, StandInConnection):
        wear_library_faces(made)  # our methods show the driver's faces, in tracebacks too
    return DriverClasses(LiveConnection, StandInConnection)


class _Blob:
    """Replay: an open blob, over a copy of what it held when opened."""

    def __init__(self, content: bytes, readonly: bool) -> None:
        self._data = bytearray(content)
        self._readonly = readonly
        self._at = 0

    def read(self, length: int = -1) -> bytes:
        end = len(self._data) if length < 0 else min(len(self._data), self._at + length)
        data, self._at = bytes(self._data[self._at : end]), end
        return data

    def write(self, data: Any) -> None:
        import sqlite3

        if self._readonly:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        data = bytes(data)
        if self._at + len(data) > len(self._data):
            raise ValueError("data longer than blob length")
        self._data[self._at : self._at + len(data)] = data
        self._at += len(data)

    def seek(self, offset: int, origin: int = 0) -> None:
        self._at = offset if origin == 0 else self._at + offset if origin == 1 else len(self._data) + offset

    def tell(self) -> int:
        return self._at

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Blob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, index: Any) -> Any:
        return self._data[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        self._data[index] = value


@hookimpl
def retrace_install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    engine.assume_success(transaction_control("sqlite3"))
    patcher.when_imported("sqlite3", lambda module: install(engine, patcher, module))


def install(engine: Engine, patcher: Patcher, module: ModuleType) -> None:
    if not _CLASSES:
        _CLASSES.append(_build(module))
    live, standin = _CLASSES[0].live_connection, _CLASSES[0].standin_connection
    real_connect = module.connect
    base = module.Connection

    def connect(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 5:  # factory given by position (database, timeout, detect_types, isolation_level, …)
            args, kwargs["factory"] = args[:5] + args[6:], args[5]
        factory = kwargs.pop("factory", None) or base
        opened: list[Any] = []

        def open_and_describe() -> dict[str, Any]:
            conn = real_connect(*args, factory=combined(factory, live, base, _COMBINED), **kwargs)
            opened.append(conn)
            return {"isolation_level": base.isolation_level.__get__(conn)}

        with setting_up:  # a connect is set-up: a request on a pooled connection has none
            facts = engine.call("sqlite3.connect", connect_key(args, kwargs, engine.redaction), open_and_describe)
        if opened:
            conn = opened[0]
        else:
            with internal:
                conn = real_connect(*args, factory=combined(factory, standin, base, _COMBINED), **kwargs)
        conn._retrace_engine = engine
        conn._retrace_facts = dict(facts)
        return conn

    patcher.set(module, "connect", connect)
    dbapi2 = sys.modules.get("sqlite3.dbapi2")  # SQLAlchemy connects through sqlite3.dbapi2
    if dbapi2 is not None and getattr(dbapi2, "connect", None) is real_connect:
        patcher.set(dbapi2, "connect", connect)
