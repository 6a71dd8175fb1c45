"""Recording: external calls run for real, and each becomes an event in the trace."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..format.codec import Raised
from ..format.events import FORM_ARGS, FORM_PLAIN, FORM_THREAD, MAIN
from ..format.tape import MemoryTape, TapeWriter
from ..redaction import DEFAULT, Redaction
from .base import Engine
from .standin import call_recorder, noarg_recorder
from .state import STATE, enter_gate, leave, leave_gate, tls

# Results the program may go on to mutate after the call returned; the writer encodes later.
_MUTABLE = (list, dict, bytearray)


def _inside(call: FrameType) -> Callable[[BaseException], bool]:
    """Whether an exception chained to one a call raised was raised inside that call too (its traceback starts
    in a frame the call made), not by the program before it called (the exception it was handling)."""

    def inside(exc: BaseException) -> bool:
        tb = exc.__traceback__
        frame = None if tb is None else tb.tb_frame
        while frame is not None:
            if frame is call:
                return True
            frame = frame.f_back
        return tb is None  # made inside and never raised: the program cannot have been handling it

    return inside


class Recorder(Engine):
    """Appends events to the tape's ``sink``: a file being written (whose writer drains the sink from a thread
    of its own) or a recording kept in memory.

    ``sink += (…)`` is one list operation, atomic under the GIL, so events from
    several threads never interleave their fields.
    """

    def __init__(self, tape: MemoryTape | TapeWriter) -> None:
        self.tape = tape
        self.sink = tape.sink
        self.name_id = tape.name_id
        # One tick per value beyond (code, result); next() on a count is atomic under the GIL.
        self._extra_values = itertools.count()
        self.setup_marked: list[int] = []  # the events made while a connection was set up (engine/setup.py)
        # Files the program changed that count as code, read live (boundaries/changes.py): a replay that starts
        # from before the change (a self-check's fork) reads them as the change left them.
        self.code_changed: list[str] = []
        self.code_made: set[str] = set()  # files counting as code that the recording made: changing those is fine
        self.output_shared = False  # a process it started wrote to descriptors of the program's (boundaries/process)
        self._redaction: Redaction = DEFAULT
        self._make_redaction: Callable[[], Redaction] | None = None
        if call_recorder is not None:  # the common case of call() in C; the rest in _call
            self.call = call_recorder(self, STATE, tls, tape.table.ids, self._call, self._raised)  # type: ignore
    @property  # type: ignore[override]
    def redaction(self) -> Redaction:
        """The policy calls are keyed with; one given by :meth:`redact_later` is made when first asked for."""
        make = self._make_redaction
        if make is not None:
            self._redaction, self._make_redaction = make(), None
        return self._redaction

    @redaction.setter
    def redaction(self, value: Redaction) -> None:
        self._redaction, self._make_redaction = value, None

    def redact_later(self, make: Callable[[], Redaction]) -> None:
        """Key calls with the policy ``make()`` gives, made only if a call asks for it: a request's policy knows the
        secrets it carries, which takes parsing its headers, and most calls (clocks, entropy) never ask."""
        self._make_redaction = make

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
        return self._call(name, args, fn, *a, **kw)

    def _raised(self, exc: BaseException, nid: int, args: Any) -> None:
        """The native call() ran ``fn`` on the hot path, and it raised ``exc`` (raised on once this returns)."""
        leave(True)
        tls.raised = id(exc)
        if tls.interrupted == id(exc):
            tls.interrupted = 0
            return
        self._append(nid, args, Raised(exc, inside=_inside(sys._getframe(1))), MAIN)

    def _call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        fast = STATE.fast
        if fast:  # only the main thread, no gate open: skip the thread-local reads
            STATE.fast = False
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
            leave(fast)
            tls.raised = id(exc)  # the call's own exception, not an error of ours (see standin)
            if tls.interrupted == id(exc):  # a signal handler raised it inside the call: no event of the call's
                tls.interrupted = 0
                raise
            self._append(nid, args, Raised(exc, inside=_inside(sys._getframe())), tid)
            raise
        leave(fast)
        # The writer encodes later, on its own thread: a list or dict the program goes on to
        # mutate must be recorded as it was returned.
        self._append(nid, args, result.copy() if type(result) in _MUTABLE else result, tid)
        return result

    def fork(self, real_fork: Callable[[], int]) -> int:
        if tls.gate or tls.tid is None or self.on_fork_child is None:
            return real_fork()
        tid = tls.tid
        nid = self.name_id("os.fork")
        label = self.next_process()
        enter_gate()
        try:
            pid = real_fork()
        except BaseException as exc:
            leave_gate()
            self._append(nid, None, Raised(exc), tid)
            raise
        leave_gate()
        if pid == 0:  # the child: its own recording begins (the fork is an event of the parent's)
            self.on_fork_child(label)
            return 0
        self._append(nid, None, pid, tid)
        return pid

    def forked_child(self, tape: TapeWriter, label: str) -> None:
        """In a forked child: record into ``tape`` from now on (it drains the same sink, which is emptied of the
        parent's events, with the same names), as process ``label``."""
        self.tape = tape
        self.process, self._forks = label, 0
        self._extra_values = itertools.count()

    def internal_error(self, reason: str) -> bool:
        self.tape.error = self.tape.error or reason
        return True

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        return self.call(name, args, fn, *a)

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        code = self.name_id(name) << 2 | FORM_PLAIN
        nid = code >> 2
        sink = self.sink
        state = STATE
        append = self._append

        def slow(value: Any) -> None:  # not the hot path: another thread, or inside a gate
            if not tls.gate and tls.tid is not None:
                append(nid, None, value, tls.tid)

        if noarg_recorder is not None:
            return noarg_recorder(fn, code, sink, state, slow)  # type: ignore[no-any-return]

        def recorded() -> Any:
            value = fn()
            if state.fast:
                sink.extend((code, value))
            else:
                slow(value)
            return value

        return recorded
