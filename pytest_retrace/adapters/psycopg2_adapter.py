"""psycopg2 at its own C types: connections and cursors are ``psycopg2.extensions.connection``/``cursor``.

``psycopg2.connect`` is given a ``connection_factory`` (the program's own — ``LoggingConnection``, a
subclass of its own — combined with :class:`LiveConnection` just above psycopg2's type), and
cursors a ``cursor_factory`` the same way (``DictCursor``, ``RealDictCursor``, ``NamedTupleCursor``
…), so ``register_type``, ``extras.register_uuid/json/hstore``, ``execute_values``,
``sql.Composed.as_string``, ``quote_ident`` and every ``isinstance`` check get what they expect.

On replay the connection and cursor are instances of the same classes that were never connected
(psycopg2's C ``__init__`` is not run): every method and attribute that would reach libpq is ours and
answered from the recording, any other refuses. psycopg2's module-level functions that take a
connection or cursor and read its C insides (``register_type``, ``quote_ident``) are patched while a
replay lasts to work on those (a registered typecaster changes nothing there: recorded rows hold
the values as they were cast).
"""

from __future__ import annotations

import io
import re
import sys
import weakref
from typing import TYPE_CHECKING, Any

from ..engine.base import payload, wear_library_faces
from ..engine.state import internal, setting_up
from ..hooks.specs import hookimpl
from .dbapi import (
    DriverClasses,
    Executed,
    Unrecordable,
    combined,
    connect_key,
    interned,
    keyed,
    own_copy,
    packed_query,
    params,
    replayed,
    transaction_control,
)

if TYPE_CHECKING:
    from types import ModuleType

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

_COPY_OUT = re.compile(r"\bTO\s+STDOUT\b", re.IGNORECASE)
NOTICES_KEPT = 50  # psycopg2 keeps the last 50 notices in a list
SETTINGS = ("autocommit", "isolation_level", "readonly", "deferrable", "encoding")
FACTS = ("dsn", "server_version", "protocol_version", *SETTINGS)
# connection.info: what a session keeps from connect to close (read at connect), and what changes (events).
STATIC_INFO = ("dbname", "user", "host", "port", "options", "dsn_parameters", "protocol_version", "server_version",
               "backend_pid", "needs_password", "used_password", "ssl_in_use", "ssl_attribute_names")
CHANGING_INFO = ("status", "transaction_status", "error_message", "socket")
INFO = ("dbname", "user", "host", "port", "options", "dsn_parameters", "status", "transaction_status",
        "protocol_version", "server_version", "error_message", "socket", "backend_pid", "needs_password",
        "used_password", "ssl_in_use", "ssl_attribute_names")

_CLASSES: list[DriverClasses] = []  # made once psycopg2 is imported
_COMBINED: dict[tuple[type, type], type] = {}
_REPLAY_PATCHED: weakref.WeakSet[Patcher] = weakref.WeakSet()  # the replays whose patches are on


def _query(query: Any) -> Any:
    """A query as its call key holds it: text as it is; a ``psycopg2.sql`` composition by its repr, which
    names every part (rendering it would take a live connection, which replay does not have)."""
    composition = sys.modules.get("psycopg2.sql")
    if composition is not None and isinstance(query, composition.Composable):
        return repr(query)
    return query


def _marks(conn: Any) -> tuple[list[Any], int] | None:
    """What the connection holds before a call: its notices (kept alive, compared by identity, as psycopg2
    trims the list) and how many notifications. None if the program put something there we cannot read."""
    try:
        notices, notifies = conn.notices, conn.notifies
        return (list(notices) if notices else []), (len(notifies) if notifies is not None else 0)
    except Exception:
        return None


def _news(conn: Any, marks: tuple[list[Any], int] | None) -> list[Any] | None:
    """What a call added to the connection's notices and notifications, as ``[kind, value]`` pairs."""
    if marks is None:
        return None
    before, count = marks
    side: list[Any] = []
    try:
        if conn.notices:
            seen = {id(n) for n in before}
            side += [["notice", n] for n in list(conn.notices) if id(n) not in seen]
        notifies = conn.notifies
        if notifies is not None and len(notifies) > count:
            side += [["notify", [n.pid, n.channel, n.payload]] for n in list(notifies)[count:]]
    except Exception:  # a notices object of the program's that we cannot read: they are not recorded
        return None
    return side or None


def _apply(conn: Any, side: list[Any] | None) -> None:
    """Replay: leave on the stand-in connection what the recorded call left on the real one."""
    if not side or not conn._retrace_replay:
        return
    from psycopg2.extensions import Notify

    for kind, value in side:
        if kind == "notice":
            conn.notices.append(value)
            if type(conn.notices) is list and len(conn.notices) > NOTICES_KEPT:
                del conn.notices[:-NOTICES_KEPT]
        elif kind == "notify":
            conn.notifies.append(Notify(*value))


def _build(ext: ModuleType) -> DriverClasses:
    """The classes, made once psycopg2 is imported (they derive from its C types)."""
    import psycopg2

    base_connection, base_cursor = ext.connection, ext.cursor
    c_execute, c_fetchall, c_description = base_cursor.execute, base_cursor.fetchall, base_cursor.description

    class LiveCursor(base_cursor):  # type: ignore[misc, valid-type]
        """A cursor whose calls that reach the server are events; fetching reads the rows the event holds."""

        _retrace_executed: Executed | None = None
        _retrace_rows: list[Any] | None = None  # None: nothing to fetch (or recording failed: read psycopg2's)
        _retrace_next = 0  # the next row to read
        _retrace_served = False  # rows were fetched since the last call
        _retrace_batch = 0  # server-side cursors: rows of the last FETCH, and how many of them were read
        _retrace_row = 0
        _retrace_closed = False

        def _retrace_call(self, method: str, key: tuple[Any, ...], real: Any, *args: Any) -> Any:
            conn = self.connection
            named = bool(self.name)
            made: list[Executed] = []

            def run() -> Any:
                marks = _marks(conn)
                real(self, *args)
                rows = self._retrace_fetch(named)
                try:
                    snapshot = self._retrace_snapshot(rows, _news(conn, marks))
                    encoded = snapshot.encode()
                except Exception as exc:  # a fault of ours: the program keeps psycopg2's own answer
                    return Unrecordable(f"{type(exc).__name__}: {exc}")
                made.append(snapshot)
                if len(key) > 1 and key[1] is None:  # no parameters: the query sent is the same every time
                    encoded["query"] = interned(encoded["query"])
                else:  # the text (stored once) and the parameters as quoted
                    encoded["query"] = packed_query(key[0], encoded["query"])
                return encoded

            engine = conn._retrace_engine
            # Parameters carry secrets a request brought (a password checked against the database): keyed
            # redacted, as the replay, which got the placeholder, passes it.
            result = engine.call(f"psycopg2.cursor.{method}", keyed(engine.redaction.data(key)), run)
            # Recording, the program reads the snapshot itself: the encoded values wear marks of the recording's.
            self._retrace_load(made[0] if made and type(result) is dict else Executed.decode(result), named)

        def _retrace_fetch(self, named: bool) -> list[Any] | None:
            """All rows of the result as psycopg2 casts them, before any row factory; None when there are none."""
            if not named and c_description.__get__(self) is None:
                return None
            saved, self.row_factory = self.row_factory, None  # type: ignore[has-type]
            try:
                return c_fetchall(self)  # type: ignore[no-any-return]
            finally:
                self.row_factory = saved

        def _retrace_snapshot(self, rows: list[Any] | None, side: Any) -> Executed:
            described = c_description.__get__(self)
            description = None if described is None else [tuple(c) + (c.table_oid, c.table_column)
                                                          for c in described]
            self._retrace_live_rows = rows  # the program reads these; the recording keeps its own copy
            return Executed(description, base_cursor.rowcount.__get__(self), base_cursor.lastrowid.__get__(self),
                            base_cursor.statusmessage.__get__(self), base_cursor.query.__get__(self),
                            None if rows is None else own_copy(rows), side)

        def _retrace_load(self, executed: Any, named: bool) -> None:
            live = self.__dict__.pop("_retrace_live_rows", None)
            if not isinstance(executed, Executed):  # psycopg2 describes; the rows it gave are served as they are
                self._retrace_executed, self._retrace_rows, self._retrace_next = None, live, 0
                return
            self._retrace_executed = executed
            self._retrace_rows = live if live is not None else None if executed.rows is None else list(executed.rows)
            self._retrace_next = self._retrace_batch = self._retrace_row = 0
            self._retrace_served = False
            _apply(self.connection, executed.side)

        # -- calls that reach the server ------------------------------------------------------------

        def execute(self, query: Any, vars: Any = None) -> None:  # noqa: A002 - psycopg2's name
            self._retrace_call("execute", (_query(query), params(vars)), c_execute, query, vars)

        def executemany(self, query: Any, vars_list: Any) -> None:
            vars_list = list(vars_list)
            self._retrace_call("executemany", (_query(query), [params(p) for p in vars_list]),
                               base_cursor.executemany, query, vars_list)

        def callproc(self, procname: str, parameters: Any = None) -> Any:
            self._retrace_call("callproc", (procname, params(parameters)), base_cursor.callproc, procname,
                               parameters)
            return parameters

        def mogrify(self, query: Any, vars: Any = None) -> bytes:  # noqa: A002
            engine = self.connection._retrace_engine
            return engine.call("psycopg2.cursor.mogrify", (_query(query), params(vars)),  # type: ignore[no-any-return]
                               base_cursor.mogrify, self, query, vars)

        def _retrace_copy(self, method: str, key: tuple[Any, ...], file: Any, outgoing: bool, invoke: Any) -> None:
            """COPY: what comes in from ``file`` is in the key; what goes out to it is the event's result.
            ``invoke(cursor, file)`` runs psycopg2's own method with a file of ours."""
            text = isinstance(file, io.TextIOBase)
            incoming = None if outgoing else file.read()

            def run() -> list[Any]:
                if outgoing:
                    out = io.StringIO() if text else io.BytesIO()
                    invoke(self, out)
                    return [out.getvalue(), base_cursor.rowcount.__get__(self)]
                invoke(self, io.StringIO(incoming) if isinstance(incoming, str) else io.BytesIO(incoming or b""))
                return [None, base_cursor.rowcount.__get__(self)]

            written, rowcount = self.connection._retrace_engine.call(
                f"psycopg2.cursor.{method}", (*key, None if incoming is None else payload(incoming)), run)
            self._retrace_executed = Executed(None, rowcount)
            self._retrace_rows = None
            if written is not None:
                file.write(written)

        def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> None:
            outgoing = bool(_COPY_OUT.search(str(_query(sql))))
            self._retrace_copy("copy_expert", (_query(sql),), file, outgoing,
                               lambda cur, f: base_cursor.copy_expert(cur, sql, f, size))

        def copy_from(self, file: Any, table: str, sep: str = "\t", null: str = "\\N", size: int = 8192,
                      columns: Any = None) -> None:
            self._retrace_copy("copy_from", (table, sep, null, None if columns is None else tuple(columns)), file,
                               False, lambda cur, f: base_cursor.copy_from(cur, f, table, sep, null, size, columns))

        def copy_to(self, file: Any, table: str, sep: str = "\t", null: str = "\\N", columns: Any = None) -> None:
            self._retrace_copy("copy_to", (table, sep, null, None if columns is None else tuple(columns)), file,
                               True, lambda cur, f: base_cursor.copy_to(cur, f, table, sep, null, columns))

        # -- reading what the last call left ----------------------------------------------------------

        def _retrace_source(self) -> list[Any]:
            """The rows fetching reads: the last call's; psycopg2's own errors where there are none."""
            if self._retrace_closed or self.connection._retrace_closed:
                raise psycopg2.InterfaceError("cursor already closed")
            rows = self._retrace_rows
            if rows is None:
                if self._retrace_executed is None and not self.connection._retrace_replay:
                    base_cursor.fetchone(self)  # nothing executed yet: psycopg2 says why
                raise psycopg2.ProgrammingError("no results to fetch")
            return rows

        def _retrace_shape(self, raw: Any) -> Any:
            """A row as psycopg2 builds it: a tuple, or ``row_factory(cursor)`` filled item by item."""
            factory = self.row_factory
            if factory is None:
                return raw
            row = factory(self)
            for i, value in enumerate(raw):
                row[i] = value
            return row

        def _retrace_take(self, count: int | None) -> list[Any]:
            rows = self._retrace_source()
            start = self._retrace_next
            chunk = rows[start:] if count is None else rows[start : start + count]
            self._retrace_next = start + len(chunk)
            self._retrace_served = True
            # A server-side cursor counts the rows of its last FETCH (psycopg2's rowcount and rownumber).
            self._retrace_batch = self._retrace_row = len(chunk)
            return [self._retrace_shape(r) for r in chunk]

        def fetchone(self) -> Any:
            rows = self._retrace_take(1)
            return rows[0] if rows else None

        def fetchmany(self, size: int | None = None) -> list[Any]:
            return self._retrace_take(self.arraysize if size is None else size)

        def fetchall(self) -> list[Any]:
            return self._retrace_take(None)

        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            if not self.name:
                row = self.fetchone()
                if row is None:
                    raise StopIteration
                return row
            # A server-side cursor fetches ``itersize`` rows at a time while iterating.
            if self._retrace_row >= self._retrace_batch:
                self._retrace_take(self.itersize)
                self._retrace_next -= self._retrace_batch
                self._retrace_row = 0
                if not self._retrace_batch:
                    raise StopIteration
            self._retrace_row += 1
            self._retrace_next += 1
            return self._retrace_shape(self._retrace_rows[self._retrace_next - 1])  # type: ignore[index]

        def scroll(self, value: int, mode: str = "relative") -> None:
            rows = self._retrace_source()
            target = value if mode == "absolute" else self._retrace_next + value
            if mode not in ("relative", "absolute"):
                raise psycopg2.ProgrammingError("scroll mode must be 'relative' or 'absolute'")
            if not 0 <= target < len(rows):  # as psycopg2: the position after the last row is out too
                raise psycopg2.ProgrammingError("scroll destination out of bounds")
            self._retrace_next = target

        def close(self) -> None:
            if not self._retrace_closed:
                self._retrace_closed = True
                if not self.connection._retrace_replay:
                    base_cursor.close(self)

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        @property
        def closed(self) -> bool:
            return self._retrace_closed or bool(self.connection._retrace_closed)

        @property
        def description(self) -> Any:
            executed = self._retrace_executed
            if executed is None:
                return None if self.connection._retrace_replay else c_description.__get__(self)
            if executed.description is None or (self.name and not self._retrace_served):
                return None  # a server-side cursor describes its rows once some were fetched
            return tuple(ext.Column(*c) for c in executed.description)

        @property
        def rowcount(self) -> int:
            executed = self._retrace_executed
            if executed is None:
                return -1 if self.connection._retrace_replay else base_cursor.rowcount.__get__(self)
            if self.name and executed.rows is not None:
                return self._retrace_batch if self._retrace_served else -1
            return executed.rowcount  # type: ignore[no-any-return]

        @property
        def rownumber(self) -> int:
            if self.name:
                return self._retrace_row
            return self._retrace_next if self._retrace_rows is not None else 0

        @property
        def lastrowid(self) -> Any:
            executed = self._retrace_executed
            return executed.lastrowid if executed is not None else 0

        @property
        def statusmessage(self) -> Any:
            executed = self._retrace_executed
            return executed.statusmessage if executed is not None else None

        @property
        def query(self) -> Any:
            executed = self._retrace_executed
            return executed.query if executed is not None else None

    class StandInCursor(LiveCursor):
        """Replay: a cursor of the program's class that was never attached to libpq."""

        def __init__(self, conn: Any, name: Any = None, *args: Any, **kwargs: Any) -> None:
            self._retrace_conn = conn
            self._retrace_name = name
            self._retrace_withhold = bool(kwargs.get("withhold", False))
            self._retrace_scrollable = kwargs.get("scrollable")
            self.arraysize = 1
            self.itersize = 2000

        def mogrify(self, query: Any, vars: Any = None) -> bytes:  # noqa: A002
            return self._retrace_conn._retrace_engine.call(  # type: ignore[no-any-return]
                "psycopg2.cursor.mogrify", (_query(query), params(vars)), replayed)

        connection = property(lambda self: self._retrace_conn)
        name = property(lambda self: self._retrace_name)
        withhold = property(lambda self: self._retrace_withhold,
                            lambda self, value: setattr(self, "_retrace_withhold", bool(value)))
        scrollable = property(lambda self: self._retrace_scrollable,
                              lambda self, value: setattr(self, "_retrace_scrollable", value))

        def nextset(self) -> None:
            raise psycopg2.NotSupportedError("not supported by PostgreSQL")

        def setinputsizes(self, sizes: Any) -> None:
            pass

        def setoutputsize(self, size: Any, column: Any = None) -> None:
            pass

        def __repr__(self) -> str:
            return f"<cursor object at {id(self):#x}; closed: {int(self.closed)}>"

        __str__ = __repr__

    base_info = ext.ConnectionInfo

    class RecordedInfo(base_info):  # type: ignore[misc, valid-type]
        """``connection.info``: psycopg2's type, on the connection (live or stand-in); what cannot change while the
        session lasts is answered from what connect read, what can is an event (``parameter_status`` the same
        one as ``connection.get_parameter_status``)."""

        def __init__(self, conn: Any, facts: dict[str, Any]) -> None:
            super().__init__(conn)
            self._retrace_conn, self._retrace_static = conn, facts

        def _retrace_read(self, name: str) -> Any:
            return self._retrace_conn._retrace_event(f"info.{name}", None,
                                                     lambda conn: getattr(base_info, name).__get__(self))

        def parameter_status(self, name: str) -> Any:
            return self._retrace_conn.get_parameter_status(name)

        def ssl_attribute(self, name: str) -> Any:
            return self._retrace_static["ssl_attributes"].get(name)

        @property
        def password(self) -> Any:  # a secret: never recorded, so a replay has none to give
            if self._retrace_conn._retrace_replay:
                raise psycopg2.NotSupportedError("pytest-retrace: psycopg2 ConnectionInfo.password is not recorded")
            return base_info.password.__get__(self)

        def __repr__(self) -> str:
            return f"<psycopg2.extensions.ConnectionInfo object at {id(self):#x}>"

    def fixed(name: str) -> property:
        return property(lambda self: self._retrace_static[name])

    def changing(name: str) -> property:
        return property(lambda self: self._retrace_read(name))

    for name in STATIC_INFO:
        setattr(RecordedInfo, name, fixed(name))
    for name in CHANGING_INFO:
        setattr(RecordedInfo, name, changing(name))

    class LiveConnection(base_connection):  # type: ignore[misc, valid-type]
        """A connection whose calls that reach the server are events."""

        _retrace_replay = False
        _retrace_engine: Engine
        _retrace_facts: dict[str, Any]
        _retrace_closed = 0
        _retrace_entered = False

        def _retrace_event(self, name: str, key: Any, real: Any, *args: Any) -> Any:
            return self._retrace_engine.call(f"psycopg2.{name}", key, real if not self._retrace_replay else replayed,
                                             self, *args)

        def _retrace_with_news(self, name: str, key: Any, real: Any, *args: Any) -> Any:
            """An event whose call may deliver notices and notifications (they are part of its result)."""

            def run(conn: Any, *a: Any) -> Any:
                marks = _marks(conn)
                returned = real(conn, *a)
                side = _news(conn, marks)
                return returned if side is None else [returned, side]  # neither call returns a list

            result = self._retrace_event(name, key, run, *args)
            if isinstance(result, list):
                _apply(self, result[1])
                return result[0]
            return result

        def _retrace_settings(self, name: str, key: Any, real: Any, *args: Any) -> None:
            """A change of session settings: the event's result is the settings as they are after it."""

            def run(conn: Any, *a: Any) -> dict[str, Any]:
                real(conn, *a)
                return {setting: getattr(base_connection, setting).__get__(conn) for setting in SETTINGS}

            self._retrace_facts.update(self._retrace_event(name, key, run, *args))

        def cursor(self, name: Any = None, cursor_factory: Any = None, withhold: bool = False,
                   scrollable: Any = None) -> Any:
            factory = cursor_factory or self.cursor_factory or base_cursor
            if self._retrace_replay:
                if self._retrace_closed:
                    raise psycopg2.InterfaceError("connection already closed")
                made = combined(factory, StandInCursor, base_cursor, _COMBINED)(self, name)
                made._retrace_withhold, made._retrace_scrollable = withhold, scrollable
                return made
            return base_connection.cursor(self, name, cursor_factory=combined(factory, LiveCursor, base_cursor,
                                                                                    _COMBINED),
                                          withhold=withhold, scrollable=scrollable)

        def commit(self) -> None:
            self._retrace_with_news("commit", None, base_connection.commit)

        def rollback(self) -> None:
            self._retrace_event("rollback", None, base_connection.rollback)

        def close(self) -> None:
            self._retrace_event("close", None, base_connection.close)
            self._retrace_closed = 1

        def __enter__(self) -> Any:
            if self._retrace_closed:
                raise psycopg2.InterfaceError("connection already closed")
            if self._retrace_entered:
                raise psycopg2.ProgrammingError("the connection cannot be re-entered recursively")
            self._retrace_entered = True
            return self

        def __exit__(self, exc_type: Any, *exc: object) -> None:
            # psycopg2: leaving the block commits, or rolls back on an exception; it does not close.
            self._retrace_entered = False
            LiveConnection.rollback(self) if exc_type is not None else LiveConnection.commit(self)

        def poll(self) -> int:
            return self._retrace_with_news("poll", None, base_connection.poll)  # type: ignore[no-any-return]

        def cancel(self) -> None:
            self._retrace_event("cancel", None, base_connection.cancel)

        def reset(self) -> None:
            self._retrace_settings("reset", None, base_connection.reset)

        def set_session(self, *args: Any, **kwargs: Any) -> None:
            self._retrace_settings("set_session", (args, kwargs),
                                   lambda conn: base_connection.set_session(conn, *args, **kwargs))

        def set_isolation_level(self, level: Any) -> None:
            self._retrace_settings("set_isolation_level", (level,), base_connection.set_isolation_level, level)

        def set_client_encoding(self, encoding: str) -> None:
            self._retrace_settings("set_client_encoding", (encoding,), base_connection.set_client_encoding,
                                   encoding)

        def get_transaction_status(self) -> int:
            return self._retrace_event(  # type: ignore[no-any-return]
                "get_transaction_status", None, base_connection.get_transaction_status)

        def get_parameter_status(self, parameter: str) -> Any:
            return self._retrace_event("get_parameter_status", (parameter,), base_connection.get_parameter_status,
                                       parameter)

        def get_backend_pid(self) -> int:
            return self._retrace_event("get_backend_pid", None, base_connection.get_backend_pid)  # type: ignore[no-any-return]

        def get_dsn_parameters(self) -> Any:
            return self._retrace_event("get_dsn_parameters", None, base_connection.get_dsn_parameters)

        def isexecuting(self) -> bool:
            return self._retrace_event("isexecuting", None, base_connection.isexecuting)  # type: ignore[no-any-return]

        def fileno(self) -> int:
            return self._retrace_event("fileno", None, base_connection.fileno)  # type: ignore[no-any-return]

        def tpc_begin(self, xid: Any) -> None:
            self._retrace_event("tpc_begin", (str(xid),), base_connection.tpc_begin, xid)

        def tpc_prepare(self) -> None:
            self._retrace_event("tpc_prepare", None, base_connection.tpc_prepare)

        def tpc_commit(self, *xid: Any) -> None:
            self._retrace_event("tpc_commit", tuple(str(x) for x in xid), base_connection.tpc_commit, *xid)

        def tpc_rollback(self, *xid: Any) -> None:
            self._retrace_event("tpc_rollback", tuple(str(x) for x in xid), base_connection.tpc_rollback, *xid)

        @property
        def info(self) -> Any:
            """A ``ConnectionInfo`` whose fixed facts were read at connect (no event: Django reads the server
            version once per process, on whichever request comes first) and whose changing ones are events."""
            facts = self._retrace_facts.get("info")
            if facts is not None:
                return RecordedInfo(self, facts)
            # A recording made before connect read them: the attributes, read at once, were the event's result.
            real = None if self._retrace_replay else base_connection.info.__get__(self)

            def snapshot(conn: Any) -> dict[str, Any]:
                return {name: getattr(real, name, None) for name in INFO}

            facts = self._retrace_event("info", None, snapshot)
            return real if real is not None else _Info(facts, self)

        @property
        def closed(self) -> int:
            return self._retrace_event("closed", None, base_connection.closed.__get__)  # type: ignore[no-any-return]

        @property
        def status(self) -> int:
            return self._retrace_event("status", None, base_connection.status.__get__)  # type: ignore[no-any-return]

        def _retrace_setter(name: str) -> Any:  # type: ignore[misc]  # noqa: N805 - builds a property
            def get(self: Any) -> Any:
                return self._retrace_facts.get(name)

            def set_(self: Any, value: Any) -> None:
                # An event whose result is the settings after the change (autocommit may change more).
                key = "autocommit" if name == "autocommit" else f"connection.set.{name}"
                self._retrace_settings(key, (value,), getattr(base_connection, name).__set__, value)

            return property(get, set_)

        autocommit = _retrace_setter("autocommit")
        isolation_level = _retrace_setter("isolation_level")
        readonly = _retrace_setter("readonly")
        deferrable = _retrace_setter("deferrable")
        encoding = property(lambda self: self._retrace_facts.get("encoding"))
        dsn = property(lambda self: self._retrace_facts.get("dsn"))
        server_version = property(lambda self: self._retrace_facts.get("server_version"))
        protocol_version = property(lambda self: self._retrace_facts.get("protocol_version"))
        del _retrace_setter

    class StandInConnection(LiveConnection):
        """Replay: a connection of the program's class that was never connected."""

        _retrace_replay = True

        def __init__(self, dsn: Any = None, *args: Any, **kwargs: Any) -> None:
            self.notices: list[Any] = []
            self.notifies: list[Any] = []
            self._retrace_types: tuple[dict[Any, Any], dict[Any, Any]] = ({}, {})

        string_types = property(lambda self: self._retrace_types[0])
        binary_types = property(lambda self: self._retrace_types[1])

        def xid(self, format_id: Any, gtrid: Any = None, bqual: Any = None) -> Any:
            return ext.Xid(format_id, gtrid, bqual)

        def __repr__(self) -> str:
            return f"<connection object at {id(self):#x}; dsn: {self.dsn!r}, closed: {int(self._retrace_closed)}>"

        __str__ = __repr__

    # Anything else psycopg2's types have would read a connection that is not there: it refuses on replay.
    for standin, base in ((StandInConnection, base_connection), (StandInCursor, base_cursor)):
        for name in base.__dict__:
            if name.startswith("__") or name[0].isupper() or any(name in k.__dict__ for k in standin.__mro__[:-2]):
                continue
            if name in ("cursor_factory", "notices", "notifies", "arraysize", "itersize", "row_factory",
                        "tzinfo_factory", "async", "async_", "string_types", "binary_types", "typecaster"):
                continue  # plain slots psycopg2 reads and writes without libpq
            setattr(standin, name, _refusal(f"{base.__name__}.{name}"))

    for made in (LiveCursor, LiveConnection, StandInConnection, StandInCursor):
        wear_library_faces(made)  # our methods show the driver's faces, in tracebacks too
    return DriverClasses(LiveConnection, StandInConnection, LiveCursor, StandInCursor)


def _describe(info: Any) -> dict[str, Any] | None:
    """What ``connection.info`` says that stays the same while the session lasts; None when it cannot say yet
    (an asynchronous connection still connecting: its ``info`` is then read as one event, as before)."""
    import psycopg2

    try:
        facts = {name: getattr(info, name) for name in STATIC_INFO}
        facts["ssl_attributes"] = {name: info.ssl_attribute(name) for name in facts["ssl_attribute_names"]}
    except psycopg2.Error:
        return None
    return facts


def _refusal(what: str) -> property:
    def refuse(self: Any) -> Any:
        import psycopg2

        raise psycopg2.NotSupportedError(f"pytest-retrace: psycopg2 {what} is not recorded; a replay has no "
                                         "database behind its connections")

    return property(refuse)


class _Info:
    """Replay: what ``connection.info`` said when it was read (psycopg2's ConnectionInfo needs libpq)."""

    def __init__(self, facts: dict[str, Any], conn: Any) -> None:
        self.__dict__.update(facts)
        self._conn = conn

    def parameter_status(self, name: str) -> Any:
        return self._conn.get_parameter_status(name)


def _patch_for_replay(patcher: Patcher) -> None:
    """Replay only: psycopg2's functions that read a connection's or cursor's C insides accept our stand-ins."""
    if patcher in _REPLAY_PATCHED:
        return
    _REPLAY_PATCHED.add(patcher)
    standin_cursor, standin_connection = _CLASSES[0].standin_cursor, _CLASSES[0].standin_connection

    def stand_in(scope: Any) -> bool:
        return isinstance(scope, (standin_connection, standin_cursor))

    def patch(module: ModuleType) -> None:
        real_register = module.__dict__.get("register_type")
        if real_register is not None and not hasattr(real_register, "__retrace_impl__"):
            def register_type(obj: Any, scope: Any = None, _real: Any = real_register) -> None:
                if not stand_in(scope):
                    return _real(obj, scope) if scope is not None else _real(obj)  # type: ignore[no-any-return]
                conn = scope.connection if isinstance(scope, standin_cursor) else scope
                for oid in obj.values:
                    conn.string_types[oid] = obj
                return None
            patcher.set(module, "register_type", register_type)
        real_quote = module.__dict__.get("quote_ident")
        if real_quote is not None and not hasattr(real_quote, "__retrace_impl__"):
            def quote_ident(ident: Any, scope: Any, _real: Any = real_quote) -> str:
                if not stand_in(scope):
                    return _real(ident, scope)  # type: ignore[no-any-return]
                # libpq's PQescapeIdentifier: double quotes around, inner double quotes doubled
                text = ident.decode() if isinstance(ident, bytes) else ident
                return '"' + text.replace('"', '""') + '"'
            patcher.set(module, "quote_ident", quote_ident)

    for name in ("psycopg2.extensions", "psycopg2._json", "psycopg2._range", "psycopg2._ipaddress",
                 "psycopg2.extras"):
        patcher.when_imported(name, patch)


def _patch_literal(engine: Engine, patcher: Patcher, sql: ModuleType) -> None:
    """``sql.Literal.as_string(conn)`` quotes through libpq: an event when the context is one of ours."""
    real = sql.Literal.as_string
    live = _CLASSES[0].live_connection, _CLASSES[0].live_cursor

    def as_string(self: Any, context: Any) -> Any:
        if not isinstance(context, live):
            return real(self, context)
        conn = context.connection if isinstance(context, live[1]) else context
        fn = replayed if conn._retrace_replay else real
        return conn._retrace_engine.call("psycopg2.sql.Literal.as_string", (params((self.wrapped,))[0],), fn,
                                         self, context)

    patcher.set(sql.Literal, "as_string", as_string)


def _patch_encrypt_password(engine: Engine, patcher: Patcher, ext: ModuleType) -> None:
    """``extensions.encrypt_password(…, scope=conn)`` asks the server how to hash (libpq reads the connection's C
    insides, which a stand-in does not have) and salts at random: an event when the scope is one of ours, keyed
    with the password redacted."""
    real = ext.encrypt_password
    live = _CLASSES[0].live_connection, _CLASSES[0].live_cursor

    def encrypt_password(password: Any, user: Any, scope: Any = None, algorithm: Any = None) -> Any:
        if not isinstance(scope, live):
            return real(password, user, scope, algorithm)
        conn = scope.connection if isinstance(scope, live[1]) else scope
        fn = replayed if conn._retrace_replay else real
        key = (engine.redaction.value("password", str(password)), user, algorithm)
        return conn._retrace_engine.call("psycopg2.extensions.encrypt_password", key, fn, password, user, scope,
                                         algorithm)

    patcher.set(ext, "encrypt_password", encrypt_password)


@hookimpl
def retrace_install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    engine.assume_success(transaction_control("psycopg2"))
    patcher.when_imported("psycopg2", lambda module: install(engine, patcher, module))


def install(engine: Engine, patcher: Patcher, module: ModuleType) -> None:
    import psycopg2
    import psycopg2.extensions as ext

    if not _CLASSES:
        _CLASSES.append(_build(ext))
    live, standin = _CLASSES[0].live_connection, _CLASSES[0].standin_connection
    real_connect = module.connect

    def connect(dsn: Any = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
        factory = connection_factory or ext.connection
        opened: list[Any] = []

        def open_and_describe() -> dict[str, Any]:
            conn = real_connect(dsn, connection_factory=combined(factory, live, ext.connection, _COMBINED),
                                cursor_factory=cursor_factory, **kwargs)
            opened.append(conn)
            facts = {}
            for name in FACTS:  # an asynchronous connection may not know them yet
                try:
                    facts[name] = getattr(ext.connection, name).__get__(conn)
                except psycopg2.Error:
                    facts[name] = None
            facts["info"] = _describe(ext.connection.info.__get__(conn))
            return facts

        key = connect_key(() if dsn is None else (dsn,), kwargs, engine.redaction)
        with setting_up:  # a connect is set-up: a request on a pooled connection has none
            facts = engine.call("psycopg2.connect", key, open_and_describe)
        if opened:
            conn = opened[0]
        else:  # replay: the program's class, never connected (psycopg2 parses the DSN, no more)
            _patch_for_replay(patcher)
            with internal:
                conn = real_connect(dsn, connection_factory=combined(factory, standin, ext.connection, _COMBINED),
                                    cursor_factory=cursor_factory, **kwargs)
        conn._retrace_engine = engine
        conn._retrace_facts = dict(facts)
        return conn

    patcher.set(module, "connect", connect)
    _patch_encrypt_password(engine, patcher, ext)
    patcher.when_imported("psycopg2.sql", lambda sql: _patch_literal(engine, patcher, sql))
