"""The boundary engine: every crossing into the outside world goes through here.

A boundary calls ``engine.call(name, args, fn, ...)``: while recording, ``fn``
runs and the event ``(name, args) -> result`` is appended to the trace; while
replaying, ``fn`` never runs and the recorded result is handed back after the
call key (name and normalized args) was checked against the recording.

A thread-local *phase gate* marks a thread that is inside an external call or
inside pytest-retrace itself: calls made from there pass straight through, so a
boundary's own internals are never recorded twice.
"""

from __future__ import annotations

import _thread
import os
import runpy
import traceback
from collections.abc import Callable
from typing import Any

from .codec import Digest, Raised
from .errors import ReplayDivergence

# Byte payloads up to this size are kept whole in call keys (readable diffs); larger ones become a Digest.
INLINE_BYTES = 1024
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class _ThreadState(_thread._local):
    gate = 0  # > 0 while this thread is inside an external call or inside pytest-retrace
    tid = -1  # logical thread id; -1 until assigned


tls = _ThreadState()


def payload(data: Any) -> Any:
    """The form a payload (bytes or str) takes in a call key: whole when small, else a Digest."""
    if isinstance(data, str):
        return data if len(data) <= INLINE_BYTES else Digest.of(data.encode("utf-8", "surrogatepass"))
    if len(data) <= INLINE_BYTES:
        return bytes(data)
    return Digest.of(bytes(data))


class Gate:
    """``with Gate():`` runs pytest-retrace's own code without recording what it touches."""

    __slots__ = ()

    def __enter__(self) -> None:
        tls.gate += 1

    def __exit__(self, *exc: object) -> None:
        tls.gate -= 1


internal = Gate()


def _current_tid(assign: Callable[[], int]) -> int:
    tid = tls.tid
    if tid < 0:
        tid = tls.tid = assign()
    return tid


class Engine:
    """What boundaries see; :class:`Recorder` and :class:`Replayer` implement it."""

    recording: bool

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """A fast replacement for an argument-less source (clocks): the hot path of recording."""
        raise NotImplementedError

    def next_tid(self) -> int:
        raise NotImplementedError


class Recorder(Engine):
    """Appends events to ``sink`` (a list the tape writer drains from its own thread).

    An event is a list: ``[name_id, result]`` for the main thread and no args,
    ``[name_id, result, args]`` with args, ``[name_id, result, args, tid]`` off the main thread.
    """

    recording = True

    def __init__(self, sink: list[Any], name_id: Callable[[str], int]) -> None:
        self.sink = sink
        self.name_id = name_id
        self._threads = 0

    def next_tid(self) -> int:
        with internal:
            self._threads += 1
            return self._threads

    def _append(self, nid: int, args: Any, result: Any) -> None:
        tid = tls.tid if tls.tid >= 0 else _current_tid(self.next_tid)
        if tid:
            self.sink.append([nid, result, args, tid])
        elif args is None:
            self.sink.append([nid, result])
        else:
            self.sink.append([nid, result, args])

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        if tls.gate:
            return fn(*a, **kw)
        nid = self.name_id(name)
        tls.gate += 1
        try:
            result = fn(*a, **kw)
        except BaseException as exc:
            tls.gate -= 1
            self._append(nid, args, Raised(exc))
            raise
        tls.gate -= 1
        self._append(nid, args, result)
        return result

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        nid = self.name_id(name)
        append = self.sink.append
        state = tls
        slow = self._append

        def recorded() -> Any:
            value = fn()
            if not state.gate:
                if state.tid == 0:
                    append([nid, value])
                else:
                    slow(nid, None, value)
            return value

        recorded.__name__ = getattr(fn, "__name__", name)
        recorded.__doc__ = getattr(fn, "__doc__", None)
        return recorded


class Event:
    """One recorded event as replay sees it."""

    __slots__ = ("index", "name", "args", "result", "tid")

    def __init__(self, index: int, name: str, args: Any, result: Any, tid: int) -> None:
        self.index = index
        self.name = name
        self.args = args
        self.result = result
        self.tid = tid

    def describe(self) -> str:
        return describe_call(self.name, self.args)


def short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 12] + " …" + text[-9:]


def describe_call(name: str, args: Any) -> str:
    if args is None:
        return f"{name}()"
    if isinstance(args, tuple):
        return f"{name}({', '.join(short_repr(a) for a in args)})"
    return f"{name}({short_repr(args)})"


def launcher_frame(filename: str) -> bool:
    """Frames that run the program rather than belong to it: ours, runpy's, the child's ``-c``."""
    return filename.startswith(PACKAGE_DIR) or filename in ("<string>", runpy.__file__) or "runpy" in filename


def replay_stack() -> list[list[Any]]:
    """The program's Python stack at this point, without pytest-retrace's own frames."""
    frames = traceback.extract_stack()
    while frames and launcher_frame(frames[0].filename):
        frames.pop(0)
    return [
        [f.filename, f.lineno, f.name, f.line or ""]
        for f in frames
        if not f.filename.startswith(PACKAGE_DIR) and "importlib._bootstrap" not in f.filename
    ]


class Replayer(Engine):
    """Answers every external call from the recorded events, in the recorded order."""

    recording = False

    def __init__(
        self,
        events: list[Event],
        on_divergence: Callable[[dict[str, Any]], None] | None = None,
        truncated: bool = False,
        stuck_timeout: float = 10.0,
    ) -> None:
        from .demux import Demux

        self.events = events
        self.truncated = truncated
        self.demux = Demux([e.tid for e in events])
        self.on_divergence = on_divergence or self._raise
        self.stuck_timeout = stuck_timeout
        self._threads = 0

    @staticmethod
    def _raise(report: dict[str, Any]) -> None:
        raise ReplayDivergence(report)

    def next_tid(self) -> int:
        with internal:
            self._threads += 1
            return self._threads

    @property
    def consumed(self) -> int:
        return self.demux.position

    def next_event(self, name: str, args: Any) -> Event:
        tid = tls.tid if tls.tid >= 0 else _current_tid(self.next_tid)
        index = self.demux.claim(tid, self.stuck_timeout)
        if index < 0:
            self._fail_claim(index, tid, name, args)
        event = self.events[index]
        if event.name != name or event.args != args:
            self.diverge(event, name, args, tid)
        return event

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        if tls.gate:
            return fn(*a, **kw)
        result = self.next_event(name, args).result
        if type(result) is Raised:
            raise result.exception.with_traceback(None)
        return result

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        state = tls
        call = self.call

        def replayed() -> Any:
            if state.gate:
                return fn()
            return call(name, None, fn)

        replayed.__name__ = getattr(fn, "__name__", name)
        replayed.__doc__ = getattr(fn, "__doc__", None)
        return replayed

    # -- divergence -------------------------------------------------------------------------------------

    def _fail_claim(self, code: int, tid: int, name: str, args: Any) -> None:
        from .demux import EXHAUSTED

        if code == EXHAUSTED:
            if self.truncated:
                self.report("truncated", None, name, args, tid)
            self.report("extra-call", None, name, args, tid)
        self.report("stuck", None, name, args, tid)

    def diverge(self, expected: Event, name: str, args: Any, tid: int) -> None:
        self.report("mismatch", expected, name, args, tid)

    def report(self, kind: str, expected: Event | None, name: str, args: Any, tid: int) -> None:
        with internal:
            index = expected.index if expected is not None else self.consumed
            before = self.events[max(0, index - 5) : index]
            report = {
                "kind": kind,
                "index": index,
                "thread": tid,
                "expected": _call_json(expected.name, expected.args) if expected is not None else None,
                "actual": _call_json(name, args),
                "stack": replay_stack(),
                "preceding": [
                    {"index": e.index, "thread": e.tid, "call": e.describe(), "result": short_repr(e.result)}
                    for e in before
                ],
            }
        self.on_divergence(report)
        raise AssertionError("on_divergence must not return")  # pragma: no cover


def _call_json(name: str, args: Any) -> dict[str, Any]:
    return {"name": name, "args": None if args is None else repr(args), "call": describe_call(name, args)}
