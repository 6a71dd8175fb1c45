"""The event form: how recorded calls sit in a trace, in memory and on disk.

Events travel flat, with no container per event (allocating one per event costs more than the
clock call it records): ``code, result[, args[, thread]]`` where ``code = name_id << 2 | form``.
Form 0 (``FORM_PLAIN``) has no arguments and belongs to the main thread, form 1 (``FORM_ARGS``)
has arguments and belongs to the main thread, form 2 (``FORM_THREAD``) has arguments (or None) and
a logical thread id. Boundary names are numbered per recording in order of first use
(:class:`NameTable`); the file stores the names once, in NAMES frames.

Replay reads them back as :class:`Event` objects (:func:`event_list`), made one at a time as it needs them
where the native module is built.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Iterator, MutableSequence, Sequence
from typing import Any

from ..record import Record
from ..speedups import NATIVE
from . import codec

FORM_PLAIN, FORM_ARGS, FORM_THREAD = 0, 1, 2
MAIN = "0"  # the logical id of the thread a recording starts on; FORM_PLAIN and FORM_ARGS events are its


def width(code: int) -> int:
    """How many flat values the event that starts with ``code`` takes: 2, 3 or 4."""
    return 2 + (code & 3)


def split(flat: list[Any]) -> Iterator[list[Any]]:
    """The events of a flat stream, each as its list of values (code first). Raises ValueError when the
    stream is malformed."""
    i, n, index = 0, len(flat), 0
    while i < n:
        code = flat[i]
        if type(code) is not int or i + width(code) > n:
            raise ValueError(f"malformed event stream at value {i} (event {index})")
        yield flat[i : i + width(code)]
        i += width(code)
        index += 1


class NameTable:
    """The boundary names of one recording, numbered in order of first use (events carry the number).

    Thread-safe: threads of one recording may meet a new name at once. The lock is a raw one, taken
    only for a name not seen yet: the hot path is one dict lookup."""

    __slots__ = ("names", "ids", "_lock")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ids: dict[str, int] = {}  # read by the recorder's native fast path too
        self._lock = _thread.allocate_lock()  # not threading.Lock: boundaries replace that one

    def name_id(self, name: str) -> int:
        nid = self.ids.get(name)
        if nid is None:
            with self._lock:
                nid = self.ids.get(name)
                if nid is None:
                    # The name goes in first: a writer that sees the id in an event must find the name.
                    nid = len(self.names)
                    self.names.append(name)
                    self.ids[name] = nid
        return nid


class Event:
    """One recorded event as replay sees it."""

    __slots__ = ("index", "name", "args", "result", "tid")

    def __init__(self, index: int, name: str, args: Any, result: Any, tid: str) -> None:
        self.index = index
        self.name = name
        self.args = args
        self.result = result
        self.tid = tid

    def describe(self) -> str:
        return describe_call(self.name, self.args)


class DeferredEvent(Event):
    """An event whose result or arguments hold a value the reader could not resolve yet (a
    :class:`~.codec.Deferred`): both are resolved when read, which on replay is when the program is handed the
    result or makes the call (by then it has imported the module that defines the value's type)."""

    __slots__ = ()

    @property  # type: ignore[override]
    def result(self) -> Any:
        return _settled(self, _RESULT)

    @result.setter
    def result(self, value: Any) -> None:
        _RESULT.__set__(self, value)

    @property  # type: ignore[override]
    def args(self) -> Any:
        return _settled(self, _ARGS)

    @args.setter
    def args(self, value: Any) -> None:
        _ARGS.__set__(self, value)


_RESULT, _ARGS = Event.__dict__["result"], Event.__dict__["args"]  # the slots themselves


def _settled(event: Event, slot: Any) -> Any:
    raw = slot.__get__(event)
    value = codec.settled(raw)
    if value is not raw:
        slot.__set__(event, value)
    return value


MAX_THREAD_ID = 200  # characters of a logical thread id ("0.1.2"): threads nested that deep are no program's


def _offsets(flat: list[Any], names: int, first: int) -> Iterator[int]:
    """Where each event of a flat stream starts, checked value by value (``names``: how many boundary names the
    recording has so far). Raises ValueError when the stream is malformed."""
    i, n, index = 0, len(flat), first
    while i < n:
        code = flat[i]
        if type(code) is not int or code < 0 or (code >> 2) >= names or (code & 3) > FORM_THREAD or (
                i + width(code) > n):
            raise ValueError(f"malformed event stream at value {i} (event {index})")
        if code & 3 == FORM_THREAD:
            tid = flat[i + 3]
            if type(tid) is not str or not 0 < len(tid) <= MAX_THREAD_ID:
                raise ValueError(f"malformed thread id at value {i + 3} (event {index})")
        yield i
        i += width(code)
        index += 1


def decode_events(flat: list[Any], names: list[str], first: int = 0, deferred: bool = False) -> list[Event]:
    """Events from their flat form, numbered from ``first``; with ``deferred``, those holding a
    :class:`~.codec.Deferred` are :class:`DeferredEvent`. Raises ValueError when the stream is malformed."""
    events: list[Event] = []
    append = events.append
    for index, i in enumerate(_offsets(flat, len(names), first), first):
        code = flat[i]
        form = code & 3
        if form == FORM_PLAIN:
            append(Event(index, names[code >> 2], None, flat[i + 1], MAIN))
            continue
        args = flat[i + 2]
        if type(args) is list:
            args = tuple(args)
        append(Event(index, names[code >> 2], args, flat[i + 1], MAIN if form == FORM_ARGS else flat[i + 3]))
    if deferred:
        events = [DeferredEvent(e.index, e.name, e.args, e.result, e.tid)
                  if codec.has_deferred(e.result) or codec.has_deferred(e.args) else e for e in events]
    return events


def read_events(payload: bytes, names: int, first: int, decoding: codec.Decoding | None = None,
                keep: bool = True) -> tuple[int, list[Any] | None]:
    """An EVENTS frame's payload (``[3, [code, result, …]]``), checked value by value: how many events it holds,
    and with ``keep`` their flat form (``decoding``: the recording's stored values, which references name). Without
    ``keep`` (the launcher only counts them: the replay's child reads them), natively nothing is made of the values
    but of ext values, which only the codec can check. Raises ValueError when the payload is malformed."""
    if NATIVE is None:  # the twin: decoded whole
        frame = codec.unpackb(payload, decoding)
        if type(frame) is not list or len(frame) != 2 or type(frame[1]) is not list:
            raise ValueError("an EVENTS frame that is not a list of events")
        return sum(1 for _ in _offsets(frame[1], names, first)), frame[1] if keep else None
    count, exts = NATIVE.scan_events(payload, names, first)
    if not keep:
        codec.check_exts(payload, exts, decoding)
        return count, None
    return count, codec.unpackb(payload, decoding, scanned=True)[1]  # ext values checked as they decode


def event_list(frames: list[list[Any]], names: list[str], first: int = 0,
               deferred: list[range] | None = None) -> MutableSequence[Event]:
    """The events of flat streams (each frame's) as replay reads them, numbered from ``first``: natively, each made
    into an :class:`Event` only when asked for (the replay's fast paths read the next one's result straight from
    the stream: see ``native/events.cpp``); else decoded all at once. ``deferred``: the ranges of events (from 0) read
    from frames that held :class:`~.codec.Deferred` values. Raises ValueError when the stream is malformed."""
    if NATIVE is None:
        return decode_events([value for frame in frames for value in frame], names, first, deferred=bool(deferred))
    events = NATIVE.EventList(frames, names, first, Event, DeferredEvent)
    for span in deferred or ():
        events.defer([i for i in span if _holds_deferred(events[i])])
    return events  # type: ignore[no-any-return]


def threads_of(events: Sequence[Event]) -> list[str] | None:
    """Each event's logical thread id, in order; None when every one is the main thread's."""
    if NATIVE is not None and isinstance(events, NATIVE.EventList):
        return None if events.single_thread() else events.tids()
    tids = [e.tid for e in events]
    return None if all(tid == MAIN for tid in tids) else tids


def indices_of(events: Sequence[Event], name: str) -> list[int]:
    """The positions of the events that call ``name``."""
    if NATIVE is not None and isinstance(events, NATIVE.EventList):
        return events.indices_of(name)  # type: ignore[no-any-return]
    return [i for i, e in enumerate(events) if e.name == name]


def _holds_deferred(event: Event) -> bool:
    return codec.has_deferred(event.result) or codec.has_deferred(event.args)


def intern_names(names: list[str]) -> list[str]:
    return [sys.intern(n) for n in names]


def short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 12] + " …" + text[-9:]


def describe_call(name: str, args: Any) -> str:
    if args is None:
        return f"{name}()"
    if isinstance(args, tuple):
        return f"{name}({', '.join(short_repr(a) for a in args)})"
    return f"{name}({short_repr(args)})"


def call_key(name: str, args: Any) -> tuple[str, bytes]:
    """A call as a dict key: its name and its encoded arguments (arguments may hold unhashable values)."""
    return name, codec.packb(args)


# Connection set-up (see engine/setup.py): a call key's answers a recording's set-up log keeps (a clock read while
# connecting has a new one each time), and how many call keys (a few calls a connection, of few kinds).
ANSWERS_PER_KEY = 8
MAX_SETUP_KEYS = 1000


class Setup(Record):
    """What a recording holds of connection set-up: the indices of its own events made while setting up a
    connection, and the process's set-up calls (``[name, args, [results …]]``) as they were when it ended."""

    __slots__ = ("marked", "log")

    def __init__(self, marked: list[int] | None = None, log: list[list[Any]] | None = None) -> None:
        self.marked: list[int] = marked or []
        self.log: list[list[Any]] = log or []

    def frame(self) -> list[Any]:
        return [self.marked, self.log]

    @classmethod
    def from_frame(cls, body: Any) -> Setup:
        """Read back a SETUP frame's body; ValueError when it has not the shape :meth:`frame` gives it."""
        if not (type(body) is list and len(body) == 2 and type(body[0]) is list and type(body[1]) is list
                and all(type(i) is int and i >= 0 for i in body[0])
                and all(type(e) is list and len(e) == 3 and type(e[0]) is str and type(e[2]) is list
                        and 0 < len(e[2]) <= ANSWERS_PER_KEY for e in body[1])
                and len(body[1]) <= MAX_SETUP_KEYS):
            raise ValueError("a SETUP frame that is not [event indices, [[name, arguments, [results]] …]]")
        log = [[name, tuple(args) if type(args) is list else args, results] for name, args, results in body[1]]
        return cls(body[0], log)
