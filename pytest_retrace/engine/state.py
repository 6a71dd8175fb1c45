"""Where the engine stands: per thread (:data:`tls`) and for the whole process (:data:`STATE`).

Both change only through the functions of this module (and the engine's own hot paths, which
read and write :data:`STATE` directly).

A thread-local *phase gate* marks a thread that is inside an external call or inside
pytest-retrace itself: calls made from there pass straight through, so a boundary's own
internals are never recorded twice.

Hot path: reading a thread-local costs more than a clock call, so while the program has one
thread and no gate is open anywhere, ``STATE.fast`` is true and boundaries skip the
thread-local state altogether.
"""

from __future__ import annotations

import _thread
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..format.events import MAIN


class _ThreadState(_thread._local):
    gate = 0  # > 0 while this thread is inside an external call or inside pytest-retrace
    # Logical thread id: "0" for the thread the engine was started on; the n-th thread that thread
    # ``p`` starts is ``p.n``. None for threads outside the recording (those that were there before,
    # e.g. a server a test talks to, and our own writer): their calls pass straight through.
    tid: str | None = None
    children = 0  # threads this thread has started
    slot = 0  # the demultiplexer's number for this thread (replay)
    # The engine of the in-process recording this thread belongs to (see Router); None otherwise.
    engine: Any = None
    # id() of the exception the last external call raised on this thread: a stand-in tells the call's own
    # exceptions from errors of ours by it (an id, not the exception: that would keep its frames alive).
    raised = 0
    # > 0 while open() hands the opening to the program's own opener, whose os.open is a boundary's: the replay
    # guard leaves that open to it.
    opener = 0
    # > 0 while the garbage collector runs finalizers on this thread (behind the gate: see boundaries/collector)
    collecting = 0
    # id() of the exception a signal handler raised while this thread was inside an external call: the call
    # raises it and records no event of its own, the handler's event stands for it (boundaries/signals).
    interrupted = 0
    # > 0 while this thread sets up a connection (a connect, a pool's or framework's opening of one): its calls
    # are also set-up ones (see engine/setup.py), and the hot path is off.
    setup = 0


tls = _ThreadState()


class _TidOutsideOf:
    """``tls.tid`` where code that is not the program's runs on the program's own threads (a debugger's tracer,
    between the program's lines): None while a frame of that code is on the calling thread's stack, so that its
    calls pass through, as an outside thread's do, and take no event of the program's. Each read walks the
    stack: for a debugging session only (:func:`outside_while_in`)."""

    __slots__ = ("folders",)

    def __init__(self, folders: tuple[str, ...]) -> None:
        self.folders = folders

    def __get__(self, state: Any, owner: Any = None) -> Any:
        if state is None:
            return None
        tid = state.__dict__.get("own_tid")
        if tid is not None:
            frame: FrameType | None = sys._getframe(1)
            while frame is not None:
                if frame.f_code.co_filename.startswith(self.folders):
                    return None
                frame = frame.f_back
        return tid

    def __set__(self, state: Any, tid: str | None) -> None:
        state.__dict__["own_tid"] = tid


def outside_while_in(folders: tuple[str, ...]) -> None:
    """From now on, what code under ``folders`` calls, on any thread, is outside the recording (set before any
    thread takes its logical id)."""
    _ThreadState.tid = _TidOutsideOf(folders)  # type: ignore[assignment]


class EngineState:
    """What holds for the whole process while a recording or replay is under way."""

    __slots__ = ("fast", "single_thread", "threaded", "installed")

    def __init__(self) -> None:
        self.fast = False  # only the main thread runs and no gate is open: the state the hot path may assume
        self.single_thread = True
        # A recorded thread started another: from then on synchronization points are events. It flips
        # at the same point of the program in record and replay, unlike ``single_thread``.
        self.threaded = False
        self.installed: Any = None  # the engine whose boundaries are installed now, if any


STATE = EngineState()


def enter_gate() -> None:
    tls.gate += 1
    STATE.fast = False


def leave_gate() -> None:
    tls.gate -= 1
    if not tls.gate and STATE.single_thread and tls.tid is MAIN and not tls.setup:
        STATE.fast = True


def leave(fast: bool) -> None:
    """Leave the gate an external call entered; ``fast``: it entered on the hot path."""
    if fast:
        tls.gate = 0
        STATE.fast = STATE.single_thread
    else:
        leave_gate()


class Gate:
    """``with internal:`` runs pytest-retrace's own code without recording what it touches."""

    __slots__ = ()

    def __enter__(self) -> None:
        enter_gate()

    def __exit__(self, *exc: object) -> None:
        leave_gate()


internal = Gate()


class SettingUp:
    """``with setting_up:`` around the opening of a connection: its calls are set-up ones (engine/setup.py)."""

    __slots__ = ()

    def __enter__(self) -> None:
        tls.setup += 1
        STATE.fast = False

    def __exit__(self, *exc: object) -> None:
        tls.setup -= 1
        if not tls.setup and not tls.gate and STATE.single_thread and tls.tid is MAIN:
            STATE.fast = True


setting_up = SettingUp()


def install(engine: Any) -> Callable[[], None]:
    """``engine``'s boundaries are installed: locks and custom boundaries send their calls to it. Returns what
    puts back the engine installed before (boundaries installed over others, as a self-check's over a service's
    router, are undone to them)."""
    previous, STATE.installed = STATE.installed, engine

    def uninstall() -> None:
        STATE.installed = previous

    return uninstall


def start_main_thread() -> None:
    """Called once the engine is installed, on the program's main thread. Under a debugger (see
    :func:`outside_while_in`) the single-thread hot path, which takes every call for this thread's, stays off:
    the debugger's threads run beside it, and their calls must pass through."""
    tls.tid = MAIN
    tls.children = 0
    tls.slot = 0
    STATE.single_thread = not isinstance(_ThreadState.__dict__["tid"], _TidOutsideOf)
    STATE.threaded = False
    STATE.fast = STATE.single_thread and not tls.gate


def end_main_thread() -> None:
    """The recording or replay that :func:`start_main_thread` began is over (its boundaries undone): this
    thread is outside any recording again."""
    tls.tid = None
    STATE.fast = False
    STATE.threaded = False


def start_call_thread(engine: Any) -> None:
    """A per-call recording into ``engine`` starts on this thread, in a process whose other threads run on
    (other recordings among them): this thread becomes thread 0 of the recording, and the single-thread
    hot path stays off. Whether its synchronization points are events is the recording's own
    ``engine.threaded``; the process-wide flag only ever turns on."""
    tls.tid = MAIN
    tls.children = 0
    tls.engine = engine
    STATE.single_thread = False
    STATE.fast = False


def outside_recordings() -> bool:
    """True when the calling thread belongs to no recording under way: a new in-process recording may start
    on it (a thread that an earlier, finished one started counts as outside)."""
    return tls.tid is None or (tls.engine is not None and not tls.engine.open)


def end_call_thread() -> int:
    """The per-call recording on this thread is over (or suspended): the thread is outside any recording
    again. Returns how many threads it had started, for :func:`resume_call_thread`."""
    children = tls.children
    tls.tid = None
    tls.engine = None
    return children


def resume_call_thread(engine: Any, children: int) -> None:
    """Back to a suspended per-call recording: thread 0 of ``engine`` again, its thread numbering kept (what
    :func:`start_call_thread` does, inline: a streamed response resumes its recording for every chunk)."""
    tls.tid = MAIN
    tls.children = children
    tls.engine = engine
    STATE.single_thread = False
    STATE.fast = False


def mark_outside() -> None:
    """The calling thread is one of pytest-retrace's own (the tape writer): nothing it does is recorded."""
    tls.gate = 1
    tls.tid = None


def _forked_child() -> None:
    """A forked child is outside the recording: its calls pass straight through."""
    tls.tid = None
    tls.engine = None
    STATE.single_thread = False
    STATE.threaded = False
    STATE.fast = False


os.register_at_fork(after_in_child=_forked_child)


def threads_started() -> None:
    """A second thread exists from now on: every event looks up its own thread's state."""
    STATE.single_thread = False
    STATE.fast = False


def new_child_thread() -> str | None:
    """The calling thread starts a thread: the new thread's logical id, or None when the new thread is
    outside the recording (started from outside it, or from inside an external call). From then on the
    recording's synchronization points are events."""
    threads_started()
    parent = tls.tid
    if parent is None or tls.gate:
        return None
    STATE.threaded = True
    if tls.engine is not None:  # an in-process recording's engine: the thread belongs to it too
        tls.engine.threaded = True
    tls.children += 1
    return f"{parent}.{tls.children}"


def enter_child_thread(tid: str, recording: Any, slot_of: Callable[[str], int]) -> None:
    """The first thing a thread of the recording does: take its logical id, its recording, and its slot
    in the replay (``slot_of``, asked once the thread knows its recording)."""
    tls.tid = tid
    tls.engine = recording
    tls.slot = slot_of(tid)


def recorded_thread() -> bool:
    """True when the calling thread's synchronization points are events: a thread of the recording started
    another (for an in-process recording: a thread of *its* recording did, see Router)."""
    if not STATE.threaded or tls.gate or tls.tid is None:
        return False
    engine = tls.engine
    return engine is None or engine.threaded
