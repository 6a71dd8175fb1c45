"""DB-API drivers — psycopg2 and sqlite3 — recorded at the driver's own types (the plugin, and what both share).

A recorded program gets the driver's own connection and cursor types: the adapters pass a subclass
through the driver's hook (psycopg2's ``connection_factory``/``cursor_factory``, sqlite3's
``factory=``), combined with the program's own factory when it gives one, so the driver's C
functions, ``isinstance`` checks and the program's own subclasses work unchanged. The subclass turns
every call that reaches the database into an event. On replay the same classes stand in, built
without a database (:mod:`.psycopg2_adapter`, :mod:`.sqlite3_adapter`).

Events (``psycopg2.…`` / ``sqlite3.…``): ``connect`` (its arguments, passwords redacted),
``cursor.execute`` / ``executemany`` / ``callproc`` / ``executescript`` (query text — or a
``psycopg2.sql`` composition — and parameters in the key), ``commit``, ``rollback``, ``close``,
settings, and what each driver adds. An execute's result (:class:`Executed`) is everything the
program can read afterwards: description, rowcount, lastrowid, status, *all* rows (fetched at
once) and what the call left on the connection (notices, notifications, trace callbacks); fetching
then reads those rows through the program's row factory, the same way in record and replay.
"""

from __future__ import annotations

import os
from typing import Any

from ..format.codec import interned
from ..record import Record
from ..redaction import DEFAULT, Redaction


def transaction_control(driver: str) -> tuple[str, ...]:
    """Fixed code on a new path commits where the crash rolled back: transaction control is assumed to succeed."""
    return tuple(f"{driver}.{call}" for call in ("commit", "rollback", "close"))


class Executed(Record):
    """What a call on a cursor left for the program to read. The event's result is its plain form
    (:meth:`encode`): a recording stays readable where this module is not loaded (``retrace show``)."""

    __slots__ = ("description", "rowcount", "lastrowid", "statusmessage", "query", "rows", "side")

    def __init__(self, description: list[tuple[Any, ...]] | None, rowcount: int, lastrowid: Any = None,
                 statusmessage: str | None = None, query: Any = None, rows: list[Any] | None = None,
                 side: list[Any] | None = None) -> None:
        self.description = description  # raw entries; each driver rebuilds its own column type
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.statusmessage = statusmessage
        self.query = query
        self.rows = rows  # as the driver built them before any row factory (tuples); None: nothing to fetch
        self.side = side  # what the call left on the connection, driver-specific ([kind, value] pairs)

    def encode(self) -> dict[str, Any]:
        """Plain values under readable names (``retrace show --json`` prints them); memoryviews (psycopg2's
        ``bytea``) as bytes, their places listed apart. The description and status come back with every call of
        the same query: the recording stores them once (they decode as a tuple of tuples and a str)."""
        rows = self.rows
        views: list[Any] = []
        if rows is not None and any(type(v) is memoryview for row in rows for v in _values(row)):
            rows = [_bytes_for_views(i, row, views) for i, row in enumerate(rows)]
        description = self.description
        plain = {"description": None if description is None else interned(tuple(description)),
                 "rowcount": self.rowcount, "lastrowid": self.lastrowid,
                 "statusmessage": interned(self.statusmessage), "query": self.query, "rows": rows}
        if self.side:
            plain["side"] = self.side
        if views:
            plain["memoryviews"] = views
        return plain

    @classmethod
    def decode(cls, data: Any) -> Any:
        if not isinstance(data, dict):  # Unrecordable, or None (a crash replayed on a new path)
            return data
        rows = data["rows"]
        for i, key in data.get("memoryviews") or ():
            row = rows[i]
            if isinstance(row, dict):
                row[key] = memoryview(row[key])
            else:
                rows[i] = row[:key] + (memoryview(row[key]),) + row[key + 1 :]
        return cls(data["description"], data["rowcount"], data["lastrowid"], data["statusmessage"],
                   unpacked_query(data["query"]), rows, data.get("side"))


def _values(row: Any) -> Any:
    return row.values() if isinstance(row, dict) else row


def _bytes_for_views(index: int, row: Any, views: list[Any]) -> Any:
    if isinstance(row, dict):
        for k, v in row.items():
            if type(v) is memoryview:
                views.append([index, k])
        return {k: bytes(v) if type(v) is memoryview else v for k, v in row.items()}
    views += [[index, k] for k, v in enumerate(row) if type(v) is memoryview]
    return tuple(bytes(v) if type(v) is memoryview else v for v in row)


def own_copy(rows: list[Any]) -> list[Any]:
    """The rows as the recording keeps them: values the program may change in place (JSON, arrays) are copied,
    since the recording is encoded later, on the writer's thread."""
    if not any(type(v) in (list, dict) for row in rows for v in (row.values() if isinstance(row, dict) else row)):
        return rows
    import copy

    def own(value: Any) -> Any:
        return copy.deepcopy(value) if type(value) in (list, dict) else value

    return [{k: own(v) for k, v in row.items()} if isinstance(row, dict) else tuple(own(v) for v in row)
            for row in rows]


class Unrecordable:
    """Returned to the recorder in place of a result we failed to describe (a fault of ours): the writer
    cannot encode it and marks the recording incomplete, while the program goes on with the driver's answer."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __repr__(self) -> str:
        return f"Unrecordable({self.problem})"


def packed_query(text: Any, sent: Any) -> Any:
    """The query a driver sent (psycopg2's ``cursor.query``) as the recording holds it: when it is the query
    ``text`` (UTF-8) with each ``%s`` replaced by a quoted parameter, ``[text, [quoted …]]``, the text the same
    value the call's key stores once; otherwise as it is. Exact: the short form is kept only when it rebuilds
    ``sent`` byte for byte."""
    if type(text) is not str or type(sent) is not bytes:
        return sent
    try:
        template = text.encode()
    except UnicodeEncodeError:  # lone surrogates: the driver refused it, or sent it otherwise
        return sent
    parts = template.split(b"%s")
    if len(parts) < 2 or not sent.startswith(parts[0]) or not sent.endswith(parts[-1]):
        return sent
    position, quoted = len(parts[0]), []
    for part in parts[1:-1]:
        end = sent.find(part, position) if part else -1  # "%s%s": where one ends is anyone's guess
        if end < 0:
            return sent
        quoted.append(sent[position:end])
        position = end + len(part)
    if len(sent) - len(parts[-1]) < position:
        return sent
    quoted.append(sent[position : len(sent) - len(parts[-1])])
    return [interned(text), quoted] if _rebuilt(parts, quoted) == sent else sent


def unpacked_query(stored: Any) -> Any:
    """The query as it was sent, from what :func:`packed_query` stored (anything else is the query itself)."""
    if not (type(stored) is list and len(stored) == 2 and type(stored[0]) is str and type(stored[1]) is list
            and all(type(q) is bytes for q in stored[1])):
        return stored
    try:
        parts = stored[0].encode().split(b"%s")
    except UnicodeEncodeError:
        return stored
    return _rebuilt(parts, stored[1]) if len(parts) == len(stored[1]) + 1 else stored


def _rebuilt(parts: list[bytes], quoted: list[bytes]) -> bytes:
    pieces = [parts[0]]
    for value, part in zip(quoted, parts[1:], strict=True):
        pieces += (value, part)
    return b"".join(pieces)


def keyed(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A cursor call's key (query text first) as it is recorded: the text, which comes back with every call of
    that query, stored once. After redaction: redacting makes new strings."""
    return (interned(key[0]), *key[1:]) if key else key


def param(value: Any) -> Any:
    """A query parameter as the call key holds it: psycopg2's adapters (Json, Binary …) by what they adapt."""
    if hasattr(value, "getquoted") and hasattr(value, "adapted"):
        adapted = value.adapted
        return [type(value).__name__, bytes(adapted) if isinstance(adapted, memoryview) else adapted]
    if type(value) is memoryview:
        return bytes(value)
    return value


def params(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: param(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return tuple(param(v) for v in values)
    return values


def connect_key(args: tuple[Any, ...], kwargs: dict[str, Any], redaction: Redaction = DEFAULT) -> tuple[Any, ...]:
    """A connect call's key: its arguments redacted (a secret-named keyword argument whole, a DSN's or URI's
    password part) with the fixed placeholder, which the replay side, redacting alike, matches: a digest of a
    short password could be guessed back, and a replayed program holds the placeholder, not the password."""

    def hide(text: Any) -> Any:
        return redaction.text(text) if isinstance(text, str) else text

    named = {k: redaction.value(k, v) if isinstance(v, str) and redaction.matches(k) else setting_key(hide(v))
             for k, v in sorted(kwargs.items()) if k not in ("connection_factory", "cursor_factory", "factory")}
    return (tuple(setting_key(hide(a)) for a in args), named)


def setting_key(value: Any) -> Any:
    """A value as a call key holds it: plain values as they are, callables and classes by name."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, os.PathLike):  # sqlite3.connect(pathlib.Path(…))
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return tuple(setting_key(v) for v in value)
    return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"


def replayed(*args: Any, **kwargs: Any) -> Any:
    """Stands for a driver call on a replayed connection, where there is no database: never called while
    the replay follows the recording (the engine answers from it)."""
    raise RuntimeError("pytest-retrace: a replayed database connection has no database behind it")


class DriverClasses(Record):
    """Our connection and cursor classes for one driver, made once it is imported (they derive from its types):
    the live ones record, the stand-ins replay."""

    __slots__ = ("live_connection", "standin_connection", "live_cursor", "standin_cursor")

    # Classes made at run time from the driver's C types: typed Any, as the driver's own are to mypy.
    def __init__(self, live_connection: Any, standin_connection: Any, live_cursor: Any = None,
                 standin_cursor: Any = None) -> None:
        self.live_connection = live_connection
        self.standin_connection = standin_connection
        self.live_cursor = live_cursor
        self.standin_cursor = standin_cursor


def combined(user: type, ours: type, base: type, cache: dict[tuple[type, type], type]) -> type:
    """The class a connection or cursor is made of: the program's own ``user`` class (a subclass of the
    driver's ``base``, or ``base`` itself) with ``ours`` placed just above ``base``, so the program's methods
    run first and reach ours through ``super()``. It wears the program's class's name."""
    made = cache.get((user, ours))
    if made is None:
        bases = (ours,) if user is base else (user, ours)
        namespace: dict[str, Any] = {"__module__": user.__module__, "__qualname__": user.__qualname__,
                                     "__doc__": user.__doc__}
        if "__slots__" in user.__dict__:
            namespace["__slots__"] = ()
        # setdefault: two threads making the same class at once still hand out one class
        made = cache.setdefault((user, ours), type(user.__name__, bases, namespace))
    return made
