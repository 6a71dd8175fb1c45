"""The boundary engine: every crossing into the outside world goes through here.

A boundary calls ``engine.call(name, args, fn, ...)`` (``args`` a tuple, or None): while recording, ``fn``
runs and the event ``(name, args) -> result`` is appended to the trace; while
replaying, ``fn`` never runs and the recorded result is handed back after the
call key (name and normalized args) was checked against the recording.

A thread-local *phase gate* marks a thread that is inside an external call or
inside pytest-retrace itself: calls made from there pass straight through, so a
boundary's own internals are never recorded twice.

Hot path: reading a thread-local costs more than a clock call, so while the
program has one thread and no gate is open anywhere, ``FAST[0]`` is true and
boundaries skip the thread-local state altogether.
"""

from __future__ import annotations

import _thread
import itertools
import os
import runpy
import sys
import time
import traceback
from collections.abc import Callable
from operator import length_hint
from types import FrameType
from typing import Any, NoReturn

from .codec import Digest, Raised
from .demux import EXHAUSTED, TIMED_OUT
from .errors import ReplayDivergence, UnrecordedCall
from .protocol import DIVERGED_EXIT

# Taken before boundaries patch them: the replay's own waiting runs on real time and real threads.
_sleep = time.sleep
_monotonic = time.monotonic
_start_raw_thread = _thread.start_new_thread
# How long a replaying thread waits in the demultiplexer before it looks again (only the watchdog
# decides that a replay is stuck).
WAIT_SLICE = 1.0

# Byte payloads up to this size are kept whole in call keys (readable diffs); larger ones become a Digest.
INLINE_BYTES = 1024
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# True while only the main thread runs and no gate is open: the state the hot path may assume.
FAST = [False]
_SINGLE_THREAD = [True]
# True once a recorded thread started another: from then on synchronization points are events.
# It flips at the same point of the program in record and replay, unlike _SINGLE_THREAD.
THREADED = [False]

MAIN = "0"  # the logical id of the thread the engine was started on


class _ThreadState(_thread._local):
    gate = 0  # > 0 while this thread is inside an external call or inside pytest-retrace
    # Logical thread id (DESIGN §4): "0" for the thread the engine was started on; the n-th thread
    # that thread ``p`` starts is ``p.n``. None for threads outside the recording (those that were
    # there before, e.g. a server a test talks to, and our own writer): their calls pass straight through.
    tid: str | None = None
    children = 0  # threads this thread has started
    slot = 0  # the demultiplexer's number for this thread (replay)
    # The engine of the in-process recording this thread belongs to (see Router); None otherwise.
    engine: Engine | None = None


tls = _ThreadState()


def enter_gate() -> None:
    tls.gate += 1
    FAST[0] = False


def leave_gate() -> None:
    tls.gate -= 1
    if not tls.gate and _SINGLE_THREAD[0] and tls.tid is MAIN:
        FAST[0] = True


def start_main_thread() -> None:
    """Called once the engine is installed, on the program's main thread."""
    tls.tid = MAIN
    tls.children = 0
    tls.slot = 0
    _SINGLE_THREAD[0] = True
    THREADED[0] = False
    FAST[0] = not tls.gate


def start_call_thread(engine: Engine) -> None:
    """A per-call recording into ``engine`` starts on this thread, in a process whose other threads run on
    (other recordings among them): this thread becomes thread 0 of the recording, and the single-thread
    hot path stays off. Whether its synchronization points are events is the recording's own
    ``engine.threaded``; the process-wide flag only ever turns on."""
    tls.tid = MAIN
    tls.children = 0
    tls.engine = engine
    _SINGLE_THREAD[0] = False
    FAST[0] = False


def outside_recordings() -> bool:
    """True when the calling thread belongs to no recording under way: a new in-process recording may start
    on it (a thread that an earlier, finished one started counts as outside)."""
    return tls.tid is None or (tls.engine is not None and not tls.engine.open)


def end_call_thread() -> None:
    """The per-call recording on this thread is over: the thread is outside any recording again."""
    tls.tid = None
    tls.engine = None


def _forked_child() -> None:
    """A forked child is outside the recording: its calls pass straight through."""
    tls.tid = None
    tls.engine = None
    _SINGLE_THREAD[0] = False
    THREADED[0] = False
    FAST[0] = False


os.register_at_fork(after_in_child=_forked_child)


def threads_started() -> None:
    """A second thread exists from now on: every event looks up its own thread's state."""
    _SINGLE_THREAD[0] = False
    FAST[0] = False


def recorded_thread() -> bool:
    """True when the calling thread's synchronization points are events: a thread of the recording started
    another (for an in-process recording: a thread of *its* recording did, see Router)."""
    if not THREADED[0] or tls.gate or tls.tid is None:
        return False
    engine = tls.engine
    return engine is None or engine.threaded


def payload(data: Any) -> Any:
    """The form a payload (bytes or str) takes in a call key: whole when small, else a Digest."""
    if isinstance(data, str):
        return data if len(data) <= INLINE_BYTES else Digest.of(data.encode("utf-8", "surrogatepass"))
    if len(data) <= INLINE_BYTES:
        return bytes(data)
    return Digest.of(bytes(data))


class Gate:
    """``with internal:`` runs pytest-retrace's own code without recording what it touches."""

    __slots__ = ()

    def __enter__(self) -> None:
        enter_gate()

    def __exit__(self, *exc: object) -> None:
        leave_gate()


internal = Gate()


class Engine:
    """What boundaries see; :class:`Recorder` and :class:`Replayer` implement it."""

    # In-process recordings (Router): whether a thread of this recording started another, and whether
    # the recording is still under way.
    threaded = False
    open = True
    generator: Any = None  # its own generator behind the module-level random functions (see entropy)

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """A fast replacement for an argument-less source (clocks): the hot path of recording."""
        raise NotImplementedError

    def passes(self) -> bool:
        """True when a call made on this thread now would pass straight through: a boundary whose call key
        costs something to build (a digest of the bytes sent) checks this first."""
        return not FAST[0] and (tls.gate > 0 or tls.tid is None)

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        """A synchronization point (lock acquired, thread started or joined …): ``fn(*a)`` runs for real
        when recording and its result is the event's; replay waits for this thread's turn in the recorded
        order, then ``redo(recorded_result)`` performs the operation so that it gives that result."""
        raise NotImplementedError

    def blocking(self, name: str, args: Any, attempt: Callable[[float], bool]) -> None:
        """Replay: run a real blocking operation (``attempt(timeout)``) the recording says completed."""
        raise NotImplementedError

    def after_waiting(self, name: str, attempt: Callable[[float], bool]) -> None:
        """Wait for real (``attempt(timeout)`` until it returns True), then take an event ``name``: the point
        where this thread went on, in the recorded order."""
        while not attempt(1.0):
            pass
        self.call(name, None, nothing)

    def slot_of(self, tid: str) -> int:
        """The demultiplexer's number for logical thread ``tid``, a thread starting now (replay only)."""
        return 0

    def thread_ended(self, tid: str) -> None:
        """Logical thread ``tid`` is done (replay keeps track, for the report of a stuck replay)."""

    def park(self) -> None:
        """Replay: this thread is about to wait for another one outside any recorded call (a join)."""


class Router(Engine):
    """The engine in-process recordings install once, for the process's life (installing boundaries for
    every request would cost more than most requests): each call goes to the engine of the recording
    the calling thread belongs to (``tls.engine``, set by :func:`start_call_thread` and inherited by the
    threads it starts) while that recording is open, so several requests can be recorded at once, each
    into its own recording; every other call passes straight through."""

    @staticmethod
    def _target() -> Engine | None:
        engine = tls.engine
        return engine if engine is not None and engine.open else None

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        engine = self._target()
        return fn(*a, **kw) if engine is None else engine.call(name, args, fn, *a, **kw)

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        target = self._target

        def routed() -> Any:
            engine = target()
            return fn() if engine is None else engine.call(name, None, fn)

        return _dress(routed, fn, name)

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        engine = self._target()
        return fn(*a) if engine is None else engine.sync(name, args, redo, fn, *a)

    def passes(self) -> bool:
        engine = self._target()
        return engine is None or engine.passes()

    def blocking(self, name: str, args: Any, attempt: Callable[[float], bool]) -> None:
        engine = self._target()
        if engine is not None:
            engine.blocking(name, args, attempt)

    def after_waiting(self, name: str, attempt: Callable[[float], bool]) -> None:
        engine = self._target()
        if engine is None:
            super().after_waiting(name, attempt)  # waits for real; its event passes straight through
        else:
            engine.after_waiting(name, attempt)

    def slot_of(self, tid: str) -> int:
        engine = self._target()
        return 0 if engine is None else engine.slot_of(tid)

    def thread_ended(self, tid: str) -> None:
        engine = self._target()
        if engine is not None:
            engine.thread_ended(tid)

    def park(self) -> None:
        engine = self._target()
        if engine is not None:
            engine.park()


# Events travel flat in the sink and on disk, no container per event (allocating one per
# event costs more than the clock call it records): ``code, result[, args[, tid]]`` where
# ``code = name_id << 2 | form`` and form 0 has no args (main thread), 1 has args (main
# thread), 2 has args and a thread id.
FORM_PLAIN, FORM_ARGS, FORM_THREAD = 0, 1, 2
_MUTABLE = (list, dict, bytearray)


def _leave(fast: bool) -> None:
    if fast:
        tls.gate = 0
        FAST[0] = _SINGLE_THREAD[0]
    else:
        leave_gate()


class Recorder(Engine):
    """Appends events to ``sink``, a list the tape writer drains from its own thread.

    ``sink += (…)`` is one list operation, atomic under the GIL, so events from
    several threads never interleave their fields.
    """

    def __init__(self, sink: list[Any], name_id: Callable[[str], int]) -> None:
        self.sink = sink
        self.name_id = name_id
        # One tick per value beyond (code, result); next() on a count is atomic under the GIL.
        self._extra_values = itertools.count()

    def events_in(self, values: int) -> int:
        """How many events ``values`` sink entries hold (the hot path keeps no event counter)."""
        extra = next(self._extra_values)
        self._extra_values = itertools.count(extra)
        return (values - extra) // 2

    def _append(self, nid: int, args: tuple[Any, ...] | None, result: Any, tid: str) -> None:
        sink = self.sink
        if tid is not MAIN:
            sink += (nid << 2 | FORM_THREAD, result, None if args is None else list(args), tid)
            next(self._extra_values), next(self._extra_values)
        elif args is None:
            sink += (nid << 2 | FORM_PLAIN, result)
        else:
            # A list packs natively; a tuple would take the slower ext path. Args are always a tuple.
            sink += (nid << 2 | FORM_ARGS, result, list(args))
            next(self._extra_values)

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        fast = FAST[0]
        if fast:  # only the main thread, no gate open: skip the thread-local reads
            FAST[0] = False
            tls.gate = 1
            tid = MAIN
        elif tls.gate or tls.tid is None:
            return fn(*a, **kw)
        else:
            enter_gate()
            tid = tls.tid
        nid = self.name_id(name)
        try:
            result = fn(*a, **kw)
        except BaseException as exc:
            _leave(fast)
            self._append(nid, args, Raised(exc), tid)
            raise
        _leave(fast)
        # The writer encodes later, on its own thread: a list or dict the program goes on to
        # mutate must be recorded as it was returned.
        self._append(nid, args, result.copy() if type(result) in _MUTABLE else result, tid)
        return result

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        return self.call(name, args, fn, *a)

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        code = self.name_id(name) << 2 | FORM_PLAIN
        nid = code >> 2
        sink = self.sink
        fast = FAST
        slow = self._append

        def recorded() -> Any:
            nonlocal sink
            value = fn()
            if fast[0]:
                sink += (code, value)
            elif not tls.gate and tls.tid is not None:
                slow(nid, None, value, tls.tid)
            return value

        return _dress(recorded, fn, name)


def nothing() -> None:
    """An external call with nothing to do: its event marks a point in the recorded order."""
    return None


def _dress(wrapper: Callable[[], Any], original: Callable[[], Any], name: str) -> Callable[[], Any]:
    """Give a wrapper its original's names, so it reads the same in reprs and tracebacks on both sides."""
    wrapper.__name__ = getattr(original, "__name__", name)
    wrapper.__qualname__ = getattr(original, "__qualname__", wrapper.__name__)
    wrapper.__module__ = getattr(original, "__module__", None) or wrapper.__module__
    wrapper.__doc__ = getattr(original, "__doc__", None)
    return wrapper


def decode_events(flat: list[Any], names: list[str]) -> list[Event]:
    """Events from their flat on-disk form. Raises ValueError when the stream is malformed."""
    events: list[Event] = []
    append = events.append
    # Equal call arguments share one tuple: far fewer objects for a long recording of few distinct calls.
    shared: dict[Any, Any] = {}
    count = len(names)
    i, n, index = 0, len(flat), 0
    while i < n:
        code = flat[i]
        if type(code) is not int or (code >> 2) >= count or i + 2 + (code & 3) > n:
            raise ValueError(f"malformed event stream at value {i} (event {index})")
        form = code & 3
        if form == FORM_PLAIN:
            append(Event(index, names[code >> 2], None, flat[i + 1], MAIN))
            i += 2
        else:
            args = flat[i + 2]
            if type(args) is list:
                args = tuple(args)
                try:
                    args = shared.setdefault(args, args)
                except TypeError:  # unhashable arguments (a list inside): keep them as they are
                    pass
            if form == FORM_ARGS:
                append(Event(index, names[code >> 2], args, flat[i + 1], MAIN))
                i += 3
            else:
                append(Event(index, names[code >> 2], args, flat[i + 1], flat[i + 3]))
                i += 4
        index += 1
    return events


def intern_names(names: list[str]) -> list[str]:
    return [sys.intern(n) for n in names]


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


def short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 12] + " …" + text[-9:]


def describe_call(name: str, args: Any) -> str:
    if args is None:
        return f"{name}()"
    if isinstance(args, tuple):
        return f"{name}({', '.join(short_repr(a) for a in args)})"
    return f"{name}({short_repr(args)})"


_LAUNCHER_FILES = ("<string>", "<frozen runpy>", runpy.__file__)


def launcher_frame(filename: str) -> bool:
    """Frames that run the program rather than belong to it: ours, runpy's, the child's ``-c``."""
    return filename.startswith(PACKAGE_DIR) or filename in _LAUNCHER_FILES


def replay_stack(frame: FrameType | None = None) -> list[list[Any]]:
    """The program's Python stack at this point (or at ``frame``), without pytest-retrace's own frames."""
    frames = traceback.extract_stack(frame)
    while frames and launcher_frame(frames[0].filename):
        frames.pop(0)
    return [
        [f.filename, f.lineno, f.name, f.line or ""]
        for f in frames
        if not f.filename.startswith(PACKAGE_DIR) and "importlib._bootstrap" not in f.filename
    ]


class Replayer(Engine):
    """Answers every external call from the recorded events, in the recorded order.

    A recording made on one thread is replayed with a plain cursor; one with several
    threads goes through the demultiplexer, which hands each thread its turn.

    With ``answer_by_key`` (recordings of a crash), the first divergence does not end
    the replay: the fixed code usually takes a new path, so from there on every call is
    answered by its call key from the events not yet consumed (in order, the last one
    repeating), and a call with no answer raises :class:`UnrecordedCall` into the program.
    """

    def __init__(
        self,
        events: list[Event],
        on_divergence: Callable[[dict[str, Any]], None] | None = None,
        truncated: bool = False,
        stuck_timeout: float = 10.0,
        answer_by_key: bool = False,
    ) -> None:
        from .demux import Demux

        self.events = events
        self.truncated = truncated
        self.single_thread = all(e.tid == MAIN for e in events)
        self._cursor = iter(events)
        self._in_order = [self.single_thread]  # the hot path's switch: single-threaded, in recorded order
        # The demultiplexer numbers threads; logical ids map to numbers in order of first appearance.
        self._slots: dict[Any, int] = {MAIN: 0}
        if not self.single_thread:
            for e in events:
                if e.tid not in self._slots:
                    self._slots[e.tid] = len(self._slots)
        self.demux = None if self.single_thread else Demux([self._slots[e.tid] for e in events])
        # Where each replaying thread stands, for the report of a stuck replay: OS ident and state.
        self._idents: dict[str, int] = {MAIN: _thread.get_ident()}
        self._states: dict[str, Any] = {}  # thread -> what it does now: (doing, name, args), or "finished"
        self._stuck: dict[str, Any] | None = None
        self._credit: dict[str, int] = {}  # per thread: "joined" events taken ahead (see after_waiting)
        self.finished = False
        self.on_divergence = on_divergence or self._raise
        self.stuck_timeout = stuck_timeout
        self.answer_by_key = answer_by_key
        self.first_divergence: dict[str, Any] | None = None
        self.answered_by_key = 0
        self.unanswered: list[str] = []
        self.answered_live: list[str] = []
        self._by_key: dict[tuple[str, bytes], list[Any]] | None = None
        if self.demux is not None:
            _start_raw_thread(self._watch, ())

    @staticmethod
    def _raise(report: dict[str, Any]) -> None:
        raise ReplayDivergence(report)

    @property
    def consumed(self) -> int:
        if self.demux is None:
            return len(self.events) - length_hint(self._cursor)
        return self.demux.position

    @property
    def keyed(self) -> bool:
        """True once the replay answers by call key (a crash recording after its first divergence)."""
        return self._by_key is not None

    # -- threads ----------------------------------------------------------------------------------------

    def slot_of(self, tid: str) -> int:
        with internal:
            self._idents[tid] = _thread.get_ident()
            return self._slots.setdefault(tid, len(self._slots))

    def thread_ended(self, tid: str) -> None:
        self._states[tid] = "finished"
        self.park()

    def park(self) -> None:
        if self.demux is not None and tls.tid is not None:
            self.demux.park(tls.slot)

    def _turn(self, name: str, args: Any, take: bool) -> Event:
        """Wait for this thread's turn in the recorded order; the event, checked against the call."""
        tid = tls.tid
        assert tid is not None and self.demux is not None
        self._states[tid] = ("waits for its turn to call", name, args)  # formatted only for a report
        wait = self.demux.claim if take else self.demux.turn
        while (index := wait(tls.slot, WAIT_SLICE)) == TIMED_OUT:
            pass  # the watchdog decides when waiting has become stuck
        del self._states[tid]
        if index >= 0:
            event = self.events[index]
            if event.name != name or event.args != args:
                return self.diverge("mismatch", event, name, args, tid)
            return event
        if index == EXHAUSTED:
            return self._exhausted(name, args, tid)
        return self._stopped()

    def next_event(self, name: str, args: Any) -> Event:
        if self._by_key is not None:
            return self._answer_by_key(name, args)
        tid = tls.tid
        if self.demux is not None:
            return self._turn(name, args, take=True)
        if tid != MAIN:
            return self.diverge("thread", None, name, args, tid)
        event = next(self._cursor, None)
        if event is None:
            return self._exhausted(name, args, tid)
        if event.name != name or event.args != args:
            return self.diverge("mismatch", event, name, args, tid)
        return event

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        if tls.gate or tls.tid is None:
            return fn(*a)
        if self.demux is None or self._by_key is not None:
            return self._redo(self.next_event(name, args), redo)
        # The turn is held while the operation runs, so no other thread's event slips in between.
        try:
            return self._redo(self._turn(name, args, take=False), redo)
        finally:
            self.demux.advance()

    @staticmethod
    def _redo(event: Event, redo: Callable[[Any], Any]) -> Any:
        result = event.result
        if type(result) is Raised:
            raise result.exception.with_traceback(None)
        return redo(result)  # redo runs real operations only: nothing in it is recorded or replayed

    def blocking(self, name: str, args: Any, attempt: Callable[[float], bool]) -> None:
        """Run a real blocking operation that the recording says completed (the watchdog sees if it never does)."""
        tid = tls.tid
        self._states[tid] = ("holds its turn, inside", name, args)  # type: ignore[index]
        while not attempt(WAIT_SLICE):
            if self.demux is not None and self._stuck is not None:
                self._stopped()
        del self._states[tid]  # type: ignore[arg-type]

    def after_waiting(self, name: str, attempt: Callable[[float], bool]) -> None:
        # A program that joins a set of threads joins them in id() order, which differs between runs: the
        # thread it waits for may need turns that come after this thread's next "joined" events. While it
        # waits, it takes those events when their turn comes (so the others get theirs) and keeps them as
        # credit for the waits to come.
        if self.demux is None or self._by_key is not None or tls.tid is None or tls.gate:
            return super().after_waiting(name, attempt)
        tid, demux = tls.tid, self.demux
        waiting = ("waits for a thread to end, then calls", name, None)
        self._states[tid] = waiting
        while not attempt(0.005):
            position = demux.position
            if demux.expected() == tls.slot and position < len(self.events) and self.events[position].name == name:
                self.call(name, None, nothing)
                self._credit[tid] = self._credit.get(tid, 0) + 1
                self._states[tid] = waiting
        self._states.pop(tid, None)
        if self._credit.get(tid, 0):
            self._credit[tid] -= 1
        else:
            self.call(name, None, nothing)

    def _stopped(self) -> NoReturn:
        """The watchdog found the replay stuck: deliver its report once, then end this thread quietly."""
        report, self._stuck = self._stuck, None
        if report:
            self.on_divergence(report)
        parked = _thread.allocate_lock()
        parked.acquire()
        parked.acquire(True, self.stuck_timeout)  # the process is ending; don't add tracebacks to its output
        raise SystemExit(DIVERGED_EXIT)

    def finish(self) -> None:
        """The replay is over: stop watching for a stuck replay."""
        self.finished = True

    def _watch(self) -> None:
        """Watchdog (its own raw thread): a replay where for ``stuck_timeout`` seconds no event was handed
        out and no thread of the program moved is stuck, whatever the threads are blocked in."""
        tls.gate = 1
        period = min(1.0, self.stuck_timeout / 4)
        last, since = None, _monotonic()
        while not self.finished:
            _sleep(period)
            snapshot = self._progress()
            now = _monotonic()
            if snapshot != last:
                last, since = snapshot, now
            elif now - since >= self.stuck_timeout and not self.finished:
                break
        else:
            return
        report = self.report("stuck", None, None, None, None)
        try:
            self.on_divergence(report)  # a process replay ends here
        except BaseException:
            self._stuck = report  # an in-process replay: the first waiting thread raises it
        assert self.demux is not None
        self.demux.abort()

    def _progress(self) -> tuple[int, list[tuple[int, int, int]]]:
        """What moves while a replay makes progress: the event position and the current instruction of each
        thread that runs program code (not one waiting in pytest-retrace, which may poll)."""
        assert self.demux is not None
        frames = sys._current_frames()
        moving = [(ident, id(f), f.f_lasti) for tid, ident in list(self._idents.items())
                  if tid not in self._states and (f := frames.get(ident)) is not None]
        return self.demux.position, moving

    # -- answering calls --------------------------------------------------------------------------------

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        if FAST[0] and self._in_order[0]:  # the hot path, as in wrap_noarg
            event = next(self._cursor, None)
            if event is None or event.name != name or event.args != args:
                event = self._recheck(event, name, args)
        elif tls.gate or tls.tid is None:
            return fn(*a, **kw)
        else:
            event = self.next_event(name, args)
        result = event.result
        if type(result) is Raised:
            raise result.exception.with_traceback(None)
        if result is LIVE:
            return fn(*a, **kw)
        return result

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        fast = FAST
        cursor = self._cursor
        in_order = self._in_order
        slow = self.next_event

        def replayed() -> Any:
            if fast[0] and in_order[0]:
                event = next(cursor, None)
                if event is None or event.name != name or event.args is not None:
                    event = self._recheck(event, name, None)
            elif tls.gate or tls.tid is None:
                return fn()
            else:
                event = slow(name, None)
            result = event.result
            if type(result) is Raised:
                raise result.exception.with_traceback(None)
            if result is LIVE:
                return fn()
            return result

        return _dress(replayed, fn, name)

    def _recheck(self, event: Event | None, name: str, args: Any) -> Event:
        if event is None:
            return self._exhausted(name, args, MAIN)
        return self.diverge("mismatch", event, name, args, MAIN)

    def _exhausted(self, name: str, args: Any, tid: Any) -> Event:
        return self.diverge("truncated" if self.truncated else "extra-call", None, name, args, tid)

    # -- divergence -------------------------------------------------------------------------------------

    def diverge(self, kind: str, expected: Event | None, name: str, args: Any, tid: Any) -> Event:
        """Report the first divergence; a crash recording goes on answering by call key."""
        report = self.report(kind, expected, name, args, tid)
        if not self.answer_by_key or kind in ("truncated", "stuck"):
            if self.demux is not None:
                self.demux.abort()
            self.on_divergence(report)
            raise AssertionError("on_divergence must not return")  # pragma: no cover
        self.first_divergence = report
        with internal:
            self._by_key = {}
            start = expected.index if expected is not None else self.consumed
            for event in self.events[start:]:
                self._by_key.setdefault(_call_key(event.name, event.args), [0]).append(event)
        self._in_order[0] = False
        return self._answer_by_key(name, args)

    def _answer_by_key(self, name: str, args: Any) -> Event:
        with internal:
            answers = self._by_key.get(_call_key(name, args)) if self._by_key is not None else None
            if answers is None and (name.startswith(_LIVE_WHEN_UNRECORDED) or name in SUCCEED_WHEN_UNRECORDED):
                self.answered_live.append(describe_call(name, args))
                return _LIVE_EVENT if name not in SUCCEED_WHEN_UNRECORDED else _NONE_EVENT
            if answers is None:
                call = describe_call(name, args)
                self.unanswered.append(call)
                raise UnrecordedCall(
                    f"{call}: the recording holds no answer for this call (the replay answers by call key "
                    "since the code took a new path); catch pytest_retrace.UnrecordedCall, or record again"
                )
            position = answers[0]
            if position < len(answers) - 2:
                answers[0] = position + 1
            self.answered_by_key += 1
            return answers[1 + position]  # type: ignore[no-any-return]

    def report(self, kind: str, expected: Event | None, name: str | None, args: Any, tid: Any) -> dict[str, Any]:
        with internal:
            index = expected.index if expected is not None else self.consumed
            if kind == "stuck" and index < len(self.events):  # stuck waiting for this event's thread
                expected = self.events[index]
                tid = expected.tid
            before = self.events[max(0, index - 5) : index]
            return {
                "kind": kind,
                "index": index,
                "thread": tid,
                "expected": _call_json(expected.name, expected.args) if expected is not None else None,
                "actual": _call_json(name, args) if name is not None else None,
                "stack": replay_stack() if name is not None else [],
                "preceding": [
                    {"index": e.index, "thread": e.tid, "call": e.describe(), "result": short_repr(e.result)}
                    for e in before
                ],
                "threads": self.thread_states() if kind == "stuck" else None,
            }

    def thread_states(self) -> list[dict[str, Any]]:
        """For a stuck replay: each logical thread, what it waits for, its next recorded event, its stack."""
        frames = sys._current_frames()
        position = self.consumed
        known = list(self._idents)
        upcoming = self.events[position] if position < len(self.events) else None
        if upcoming is not None and upcoming.tid not in self._idents:
            known.append(upcoming.tid)
        states = []
        for tid in known:
            frame = frames.get(self._idents[tid]) if tid in self._idents else None
            state = self._states.get(tid)
            if isinstance(state, tuple):
                state = f"{state[0]} {describe_call(state[1], state[2])}"
            if tid not in self._idents:
                state = "not started in the replay"
            elif state is None:
                state = "running, or blocked outside any recorded call" if frame is not None else "finished"
            nxt = next((e for e in self.events[position:] if e.tid == tid), None)
            states.append({
                "thread": tid,
                "state": state,
                "next_recorded": None if nxt is None else {"index": nxt.index, "call": nxt.describe()},
                "stack": replay_stack(frame) if frame is not None else [],
            })
        return states


# A crash recording replayed on a new path: clocks and entropy the recording never read are read live
# (they change nothing in the world); any other unanswered call raises UnrecordedCall.
_LIVE_WHEN_UNRECORDED = ("time.", "datetime.", "date.", "os.urandom", "os.getrandom", "random.")
LIVE = object()
_LIVE_EVENT = Event(-1, "(live)", None, LIVE, MAIN)
# Calls that return nothing the program reads and are assumed to succeed on a new path (an adapter's
# transaction control: commit, rollback, close). Adapters add their names.
SUCCEED_WHEN_UNRECORDED: set[str] = set()
_NONE_EVENT = Event(-1, "(assumed to succeed)", None, None, MAIN)


def _call_key(name: str, args: Any) -> tuple[str, bytes]:
    from .codec import packb

    return name, packb(args)


def _call_json(name: str, args: Any) -> dict[str, Any]:
    return {"name": name, "args": None if args is None else repr(args), "call": describe_call(name, args)}
