"""Signals: handlers run at the recorded place; timers and waits for signals are events.

A Python signal handler runs between two bytecodes of the main thread, so between two events of the
recording, wherever the signal happened to arrive: a timer's tick (``setitimer``, ``alarm``), another
process's ``kill``. While recording, every Python-level handler (those the program installs with
``signal.signal``, and those already installed when recording starts, ``default_int_handler`` among them)
runs wrapped: its start is an event ``signal.handler(signum)`` on the main thread, followed by the
handler's own calls. The wrapper is a stand-in wearing the handler's face; ``signal.signal`` and
``signal.getsignal`` hand the program its own handler back.

If the handler runs while the main thread is inside an external call (``time.sleep`` interrupted by
SIGALRM, resumed after it by PEP 475), the call's gate is open: the wrapper closes it for the handler's
time, so that the handler's calls are recorded, and they land before the interrupted call's own event.
The event's result is the place the handler ran at in the program's code (code and instruction offset;
a signal that lands in a boundary's own code is held until the program's frame goes on: :class:`Deferred`),
or None inside an external call. On replay the handler runs at that place, watched for from the event
before it (:class:`Arming`, :class:`Place`); a call the program makes first (the interrupted call, or a
place never reached) finds the handler's event next and runs it at its start (the replayer's
:attr:`~pytest_retrace.engine.replayer.Replayer.asynchronous` hook), then is checked against the event after.
When the handler raises inside the interrupted call, the
call raises the handler's exception and records no event of its own (``tls.interrupted``): on replay the
call raises it from its start the same way.

On replay no timer is armed and no signal is awaited: ``setitimer``, ``getitimer``, ``alarm``, ``pause``,
``sigwait``, ``sigwaitinfo``, ``sigtimedwait`` and ``sigpending`` are events. A real signal that reaches a
replay from outside does not run the handler (the recorded events drive it); a Ctrl-C (SIGINT) from
outside interrupts the replay with KeyboardInterrupt, as it interrupts any test. A signal the process
sends itself (``os.kill(os.getpid())``, ``raise_signal``, ``killpg`` of its own group, ``pthread_kill``)
is delivered at once, synchronously, on both sides: its handler runs right there and is no event
(:data:`own_signal`).

Garbage-collector callbacks are the other code that runs at a place no program line decides: see
:mod:`.collector`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterable, MutableSequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..engine.standin import StandIn, in_native_call
from ..engine.state import STATE, tls
from ..format.events import MAIN, Event, indices_of
from ..frames import is_library, is_own

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

HANDLER = "signal.handler"  # the event of a handler starting

_REAL_SIGNAL, _REAL_GETSIGNAL = signal.signal, signal.getsignal
_REAL_PTHREAD_KILL = getattr(signal, "pthread_kill", None)


class _OwnSignal:
    """``with own_signal:`` around a signal the process sends itself: its handler runs there, synchronously
    (``os.kill`` and friends check for signals before they return), as the program's own doing on both
    sides; no event marks it."""

    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 0

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1


own_signal = _OwnSignal()


def program_frame(frame: FrameType | None) -> FrameType | None:
    """The frame a handler is handed: the program's innermost one (a signal that lands inside a boundary
    lands, as the program sees it, in the program's call of it)."""
    while frame is not None and is_own(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


class Handlers:
    """The program's signal handlers, installed wrapped (one :class:`Handlers` per installation)."""

    def __init__(self, engine: Engine, replaying: bool) -> None:
        self.engine = engine
        self.replaying = replaying
        self.wrappers: dict[int, tuple[Any, Any]] = {}  # id(wrapper) -> (wrapper, the program's handler)
        self.active = True
        self.armed: Place | None = None  # replay: the place of the next handler the program is heading for

    def mark_places(self, events: MutableSequence[Event]) -> None:
        """Replay: the main thread's event before each recorded handler with a place arms a watch for that place
        when the replay answers it (:class:`Arming`)."""
        for at in indices_of(events, HANDLER):  # few, in a recording of many events: only these are read
            event = events[at]
            if event.tid != MAIN or not event.result:
                continue
            previous = next((i for i in range(at - 1, -1, -1) if events[i].tid == MAIN), None)
            if previous is not None:
                events[previous] = Arming(events[previous], event, self)

    def arm(self, event: Event) -> None:
        """The replay answered the main thread's last event before ``event``, a handler that ran at a place in
        the program's code: watch the main thread's instructions until it gets there."""
        if self.armed is not None:
            self.armed.disarm()
        self.armed = Place(self, event)

    def wrap(self, handler: Any) -> Any:
        """What goes to the interpreter in place of the program's ``handler``."""
        if not callable(handler):
            return handler  # SIG_DFL, SIG_IGN, or what the real signal.signal refuses
        engine, replaying = self.engine, self.replaying

        def run(signum: int, landed: FrameType | None) -> Any:
            frame = program_frame(landed)
            if own_signal.depth or not self.active or tls.tid is not MAIN:
                return handler(signum, frame)  # the program's own doing, or outside the recording
            if replaying:  # from outside: the recorded handler events drive the handler
                if signum == signal.SIGINT:
                    signal.default_int_handler(signum, frame)  # Ctrl-C interrupts the replay
                return None
            caller, in_call = boundary_caller(landed)
            if caller is None:  # in the program's code (or a library's it called): a place to find again
                return record_handler(engine, handler, signum, frame, place(frame))
            if in_call or landed.f_code.co_name in _WAITS:  # type: ignore[union-attr]
                # inside an external call (PEP 475: it goes on after the handler): before the call's event
                return record_handler(engine, handler, signum, caller, None)
            Deferred.until_program(engine, handler, signum, caller)  # in a boundary's own code around its call
            return None

        wrapper = StandIn(run, handler)
        self.wrappers[id(wrapper)] = (wrapper, handler)
        return wrapper

    def program_face(self, installed: Any) -> Any:
        """The handler as the program installed it, for what the interpreter holds."""
        held = self.wrappers.get(id(installed))
        return installed if held is None or held[0] is not installed else held[1]

    def current(self, signum: int) -> Any:
        return self.program_face(_REAL_GETSIGNAL(signum))

    def wrap_installed(self) -> None:
        """Wrap the Python handlers that were installed before the recording started."""
        for signum in signal.valid_signals():
            try:
                handler = _REAL_GETSIGNAL(signum)
                if callable(handler) and id(handler) not in self.wrappers:
                    _REAL_SIGNAL(signum, self.wrap(handler))
            except (ValueError, OSError, TypeError):  # a signal Python cannot handle
                continue

    def unwrap(self) -> None:
        """Put the program's own handlers back in our wrappers' places."""
        self.active = False
        for signum in signal.valid_signals():
            try:
                installed = _REAL_GETSIGNAL(signum)
                if self.program_face(installed) is not installed:
                    _REAL_SIGNAL(signum, self.program_face(installed))
            except (ValueError, OSError, TypeError):
                continue

    def run_recorded(self, event: Event) -> None:
        """Replay: the recording has the handler of ``event`` starting here; run the program's handler now, with
        the program's current frame, as the interpreter would have."""
        if self.armed is not None and self.armed.event is event:
            self.armed.disarm()
        if isinstance(event, Arming):
            event.result  # noqa: B018 - answered: the watch for the handler after it starts here
        signum = event.args[0]
        handler = self.current(signum)
        if not callable(handler):
            shown = getattr(handler, "name", handler)
            self.engine.diverge(  # type: ignore[attr-defined]
                _mismatch(), event, HANDLER, (signum, f"no Python handler installed: {shown}"), MAIN)
            return
        handler(signum, program_frame(sys._getframe(1)))


def _mismatch() -> Any:
    from ..engine.divergence import DivergenceKind

    return DivergenceKind.MISMATCH


def place(frame: FrameType | None) -> list[Any] | None:
    """Where in the program a handler runs, as its event records it: the code (qualified name, first line) and
    the offset of the last instruction the frame ran. In a library's code, the program's innermost frame's too
    (the library's code may run otherwise on replay, where a boundary's objects are stand-ins): the handler
    ran before that frame's call in progress returned."""
    where: list[Any] = []
    while frame is not None:
        code = frame.f_code
        where += [getattr(code, "co_qualname", code.co_name), code.co_firstlineno, frame.f_lasti]
        if not is_library(code.co_filename):
            break
        frame = frame.f_back
    return where[:3] + where[-3:] if len(where) > 3 else where or None


def boundary_caller(landed: FrameType | None) -> tuple[FrameType | None, bool]:
    """Where a signal landed: None when in the program's code (or a library's it runs); else inside a boundary,
    and then the program's frame that called it, and whether the boundary is inside its external call (a
    Recorder.call running)."""
    from ..engine.recorder import Recorder
    from ..engine.stack import launcher_frame

    frame = landed
    while frame is not None and is_library(frame.f_code.co_filename) and not is_own(frame.f_code.co_filename):
        frame = frame.f_back  # a library's code: called by the program, or by a boundary?
    if frame is None or not is_own(frame.f_code.co_filename) or launcher_frame_only(frame, launcher_frame):
        return None, False
    in_call = in_native_call()  # the recorder's call() in C has no frame to find
    call = Recorder._call.__code__
    while frame is not None and is_own(frame.f_code.co_filename):
        in_call = in_call or frame.f_code is call
        frame = frame.f_back
    # Recorder.call leaves the gate as the external call returns, before it writes the call's event: a signal that
    # lands after that is around the call, not inside it (its event may be written already).
    return frame, in_call and tls.gate > 0


def launcher_frame_only(frame: FrameType, launcher_frame: Callable[[str], bool]) -> bool:
    """Whether ``frame`` and every frame beneath it run the program (ours at the bottom of the stack)."""
    while frame is not None:
        if not launcher_frame(frame.f_code.co_filename) and not is_library(frame.f_code.co_filename):
            return False
        frame = frame.f_back  # type: ignore[assignment]
    return True


# Our own code that waits for real outside any external call (a join's wait): a handler that lands there runs there.
_WAITS = frozenset({"after_waiting", "blocking"})


class Deferred:
    """Recording: a signal that lands in a boundary's own code, outside the external call (where a call's event
    may or may not have been written yet), runs its handler when the program's frame goes on, at its next
    instruction: a place the replay finds again. Our code between is short and does not wait."""

    pending: Deferred | None = None

    def __init__(self, engine: Engine, frame: FrameType) -> None:
        self.engine = engine
        self.frame = frame
        self.lasti = frame.f_lasti
        self.handlers: list[tuple[Callable[[int, Any], Any], int]] = []
        self.previous = sys.gettrace()
        self.local = StandIn(self._local, self._local)
        frame.f_trace = self.local
        frame.f_trace_opcodes = True
        sys.settrace(StandIn(_untraced, _untraced))

    @classmethod
    def until_program(cls, engine: Engine, handler: Callable[[int, Any], Any], signum: int, frame: FrameType) -> None:
        deferred = cls.pending
        if deferred is None or deferred.frame is not frame:
            deferred = cls.pending = cls(engine, frame)
        deferred.handlers.append((handler, signum))

    def _local(self, frame: FrameType, what: str, arg: Any) -> Any:
        if frame is not self.frame:
            return None
        if what == "opcode":
            self.run(frame)
            return frame.f_trace
        if what == "return" and frame.f_back is not None:  # left by an exception: the caller goes on
            self.move(frame.f_back)
        return self.local

    def move(self, frame: FrameType) -> None:
        self.frame.f_trace = None
        self.frame = frame
        self.lasti = frame.f_lasti
        frame.f_trace = self.local
        frame.f_trace_opcodes = True

    def run(self, frame: FrameType) -> None:
        Deferred.pending = None
        sys.settrace(self.previous)
        frame.f_trace = None
        frame.f_trace_opcodes = False
        code = frame.f_code
        where = [getattr(code, "co_qualname", code.co_name), code.co_firstlineno, self.lasti]
        for handler, signum in self.handlers:
            record_handler(self.engine, handler, signum, frame, where)


def _untraced(frame: FrameType, what: str, arg: Any) -> None:
    return None


def record_handler(engine: Engine, handler: Callable[[int, Any], Any], signum: int, frame: FrameType | None,
                   where: list[Any] | None) -> Any:
    """Recording: the handler's start is an event on the main thread (its result: where it ran), then the
    handler runs with its calls recorded, even when the signal landed inside an external call (whose gate is
    closed for the handler's time and opened again after)."""
    gate, fast = tls.gate, STATE.fast
    tls.gate = 0
    STATE.fast = STATE.single_thread
    try:
        engine.call(HANDLER, (int(signum),), lambda: where)
        try:
            return handler(signum, frame)
        except BaseException as exc:
            if gate:  # the interrupted call raises it and has no event of its own (see Recorder.call)
                tls.interrupted = id(exc)
            raise
    finally:
        tls.gate = gate
        STATE.fast = fast and STATE.single_thread


# -- timers and waits -------------------------------------------------------------------------------------


def _sigset(sigset: Iterable[Any]) -> list[int]:
    return sorted({int(s) for s in sigset})


def _as_signal(number: int) -> Any:
    try:
        return signal.Signals(number)
    except ValueError:
        return number


def _install_events(engine: Engine, patcher: Patcher) -> None:
    """Timers and the ways to wait for a signal are events; on replay no timer is armed, nothing awaited."""
    if hasattr(signal, "setitimer"):
        real_setitimer, real_getitimer = signal.setitimer, signal.getitimer

        def setitimer(which: int, seconds: float, interval: float = 0.0) -> tuple[float, float]:
            return tuple(engine.call("signal.setitimer", (int(which), seconds, interval),  # type: ignore[return-value]
                                     lambda: list(real_setitimer(which, seconds, interval))))

        def getitimer(which: int) -> tuple[float, float]:
            return tuple(engine.call("signal.getitimer", (int(which),),  # type: ignore[return-value]
                                     lambda: list(real_getitimer(which))))

        patcher.set(signal, "setitimer", setitimer)
        patcher.set(signal, "getitimer", getitimer)
    if hasattr(signal, "alarm"):
        real_alarm = signal.alarm

        def alarm(seconds: int) -> int:
            return engine.call("signal.alarm", (seconds,), real_alarm, seconds)  # type: ignore[no-any-return]

        patcher.set(signal, "alarm", alarm)
    if hasattr(signal, "pause"):
        real_pause = signal.pause

        def pause() -> None:
            engine.call("signal.pause", None, real_pause)

        patcher.set(signal, "pause", pause)
    if hasattr(signal, "sigpending"):
        real_sigpending = signal.sigpending

        def sigpending() -> set[Any]:
            numbers = engine.call("signal.sigpending", None, lambda: _sigset(real_sigpending()))
            return {_as_signal(n) for n in numbers}

        patcher.set(signal, "sigpending", sigpending)
    if hasattr(signal, "sigwait"):
        real_sigwait = signal.sigwait

        def sigwait(sigset: Iterable[Any]) -> Any:
            wanted = _sigset(sigset)
            return _as_signal(engine.call("signal.sigwait", (wanted,), lambda: int(real_sigwait(wanted))))

        patcher.set(signal, "sigwait", sigwait)
    if hasattr(signal, "sigwaitinfo"):
        real_sigwaitinfo, real_sigtimedwait = signal.sigwaitinfo, signal.sigtimedwait

        def sigwaitinfo(sigset: Iterable[Any]) -> Any:
            wanted = _sigset(sigset)
            return signal.struct_siginfo(engine.call("signal.sigwaitinfo", (wanted,),
                                                     lambda: list(real_sigwaitinfo(wanted))))

        def sigtimedwait(sigset: Iterable[Any], timeout: float) -> Any:
            wanted = _sigset(sigset)

            def wait() -> list[int] | None:
                info = real_sigtimedwait(wanted, timeout)
                return None if info is None else list(info)

            info = engine.call("signal.sigtimedwait", (wanted, timeout), wait)
            return None if info is None else signal.struct_siginfo(info)

        patcher.set(signal, "sigwaitinfo", sigwaitinfo)
        patcher.set(signal, "sigtimedwait", sigtimedwait)


# -- handlers ---------------------------------------------------------------------------------------------


def _install_handlers(engine: Engine, patcher: Patcher) -> None:
    from ..engine.recorder import Recorder
    from ..engine.replayer import Replayer

    if not isinstance(engine, (Recorder, Replayer)):
        return  # a Router's recordings share the process with others: signals are no one request's
    try:
        _REAL_GETSIGNAL(signal.SIGINT)
        _REAL_SIGNAL(signal.SIGINT, _REAL_GETSIGNAL(signal.SIGINT))  # only the main thread may set handlers
    except ValueError:
        return
    handlers = Handlers(engine, replaying=isinstance(engine, Replayer))

    def signal_(signalnum: Any, handler: Any) -> Any:
        previous = _REAL_SIGNAL(signalnum, handlers.wrap(handler))
        return handlers.program_face(previous)

    def getsignal(signalnum: Any) -> Any:
        return handlers.program_face(_REAL_GETSIGNAL(signalnum))

    patcher.set(signal, "signal", signal_)
    patcher.set(signal, "getsignal", getsignal)
    if _REAL_PTHREAD_KILL is not None:
        real_pthread_kill = _REAL_PTHREAD_KILL

        def pthread_kill(thread_id: int, signalnum: int) -> None:
            with own_signal:  # a thread of this process: delivered here, on both sides
                real_pthread_kill(thread_id, signalnum)

        patcher.set(signal, "pthread_kill", pthread_kill)
    handlers.wrap_installed()
    patcher.on_undo(handlers.unwrap)
    if isinstance(engine, Replayer):
        engine.asynchronous = {HANDLER: handlers.run_recorded}
        handlers.mark_places(engine.events)

        def follow(events: MutableSequence[Event]) -> None:  # a forked child of the replay follows its own recording
            if handlers.armed is not None:
                handlers.armed.disarm()
            handlers.mark_places(events)

        engine.follows = follow

        def forget() -> None:
            engine.asynchronous = None
            if handlers.armed is not None:
                handlers.armed.disarm()

        patcher.on_undo(forget)


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    _install_events(engine, patcher)
    _install_handlers(engine, patcher)


# -- the recorded place, on replay ------------------------------------------------------------------------


class Arming(Event):
    """An event answered just before a handler ran at a place in the program's code: answering it arms the
    watch for that place. Read elsewhere (reports, inside our gate), it is the event it stands for."""

    __slots__ = ("_result", "_handler", "_handlers")

    def __init__(self, event: Event, handler: Event, handlers: Handlers) -> None:
        super().__init__(event.index, event.name, event.args, None, event.tid)
        self._result = event.result
        self._handler: Event | None = handler
        self._handlers = handlers

    @property  # type: ignore[override]
    def result(self) -> Any:
        handler = self._handler
        if handler is not None and not tls.gate and tls.tid is MAIN:
            self._handler = None
            self._handlers.arm(handler)
        return self._result

    @result.setter
    def result(self, value: Any) -> None:
        self._result = value


class Place:
    """Replay: watch the main thread's instructions (``sys.settrace``, opcode events) from where it stands until
    it is about to run the instruction after the one the recorded handler ran after (the first time it gets
    there), then take the handler's event and run it. A call the program makes first finds the handler's event
    next and runs it there instead (the replayer's ``asynchronous`` hook), which ends the watch."""

    def __init__(self, handlers: Handlers, event: Event) -> None:
        self.handlers = handlers
        self.event = event
        where = event._result if isinstance(event, Arming) else event.result
        self.targets = {(where[i], where[i + 1]): where[i + 2] for i in range(0, len(where), 3)}
        self.last: dict[FrameType, int] = {}  # frames watched: the instruction each ran last
        self.previous = sys.gettrace()
        self.local = StandIn(self._local, self._local)  # C objects: an exception the handler raises leaves
        self.watch = StandIn(self._call, self._call)  # them with our frames cut, as from the interpreter
        frame = program_frame(sys._getframe(1))
        while frame is not None:
            if self._ours(frame):
                self.last[frame] = frame.f_lasti
                frame.f_trace = self.local
                frame.f_trace_opcodes = True
            frame = frame.f_back
        sys.settrace(self.watch)

    def _target(self, frame: FrameType) -> int | None:
        code = frame.f_code
        return self.targets.get((getattr(code, "co_qualname", code.co_name), code.co_firstlineno))

    def _ours(self, frame: FrameType) -> bool:
        return self._target(frame) is not None

    def _call(self, frame: FrameType, what: str, arg: Any) -> Any:
        if what != "call" or not self._ours(frame):
            return None
        if self._target(frame) == frame.f_lasti:
            # The handler ran as this function started (at its first instruction, RESUME, for which no opcode
            # event comes; and on 3.13 no opcode event comes at all in a frame whose watch starts at its call).
            self.arrive()
            return None
        frame.f_trace_opcodes = True
        return self.local

    def _local(self, frame: FrameType, what: str, arg: Any) -> Any:
        if what == "opcode":
            last = self.last.get(frame)
            self.last[frame] = frame.f_lasti
            if last is not None and last == self._target(frame):
                self.arrive()
                # the handler's own calls may have armed the watch for the next handler: if that one ran at the
                # same place, it runs now too
                following = self.handlers.armed
                while following is not None and following._target(frame) == last:
                    following.arrive()
                    following = None if self.handlers.armed is following else self.handlers.armed
                return frame.f_trace  # a watch armed meanwhile keeps its hold on this frame
        return self.local

    def disarm(self) -> None:
        if self.handlers.armed is self:
            self.handlers.armed = None
        sys.settrace(self.previous)
        for frame in self.last:
            frame.f_trace = None
            frame.f_trace_opcodes = False
        self.last.clear()

    def arrive(self) -> None:
        """The program is at the recorded place: the handler's event is next, and the handler runs here."""
        self.disarm()
        engine = self.handlers.engine
        if engine.take(self.event):  # type: ignore[attr-defined]
            self.handlers.run_recorded(self.event)
