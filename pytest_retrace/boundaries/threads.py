"""Threads: logical ids, thread start and join as synchronization points.

The thread the engine starts on is ``0``; the n-th thread that thread ``p`` starts is
``p.n``, assigned in the parent when it starts the thread, so ids are the same in record
and replay whatever the OS does. Starting a thread, the end of a join and a join with a
timeout are events in the parent's flow. Threads started from outside the recording (a server a test talks to,
an external call's internals) are outside it too.
"""

from __future__ import annotations

import _thread
import threading
from typing import TYPE_CHECKING, Any

from ..engine.base import nothing
from ..engine.state import enter_child_thread, new_child_thread, recorded_thread, tls

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    def labelled(real_start: Callable[..., Any]) -> Callable[..., Any]:
        def start(function: Any, *rest: Any, **kw: Any) -> Any:
            tid = new_child_thread()
            if tid is None:
                return real_start(function, *rest, **kw)
            recording = tls.engine  # an in-process recording's engine: the thread belongs to it too
            thread = getattr(function, "__self__", None)
            if isinstance(thread, threading.Thread):
                thread._retrace_tid = tid  # type: ignore[attr-defined]  # a thread of the recording

            def run(*a: Any, **kwargs: Any) -> Any:
                enter_child_thread(tid, recording, engine.slot_of)
                try:
                    return function(*a, **kwargs)
                finally:
                    engine.thread_ended(tid)

            started: list[Any] = []

            def start_real(_recorded: Any = None) -> None:
                started.append(real_start(run, *rest, **kw))

            # The event goes first: the new thread's own events must come after it in the recording.
            # Replay starts the thread while it holds this event's turn (start_real as the redo).
            engine.sync("thread.start", (tid,), start_real, nothing)
            if not started:
                start_real()
            return started[0]

        return start

    start_new_thread = labelled(_thread.start_new_thread)
    patcher.set(_thread, "start_new_thread", start_new_thread)
    patcher.set(_thread, "start_new", start_new_thread)
    if hasattr(threading, "_start_new_thread"):  # up to 3.12
        patcher.set(threading, "_start_new_thread", start_new_thread)
    if hasattr(_thread, "start_joinable_thread"):  # 3.13: what Thread.start calls
        joinable = labelled(_thread.start_joinable_thread)
        patcher.set(_thread, "start_joinable_thread", joinable)
        patcher.set(threading, "_start_joinable_thread", joinable)

    real_join = threading.Thread.join

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        # A join that waits for the end waits for real, holding no turn (the joined thread's events
        # all come before its end), then takes its place in the recorded order: when the joining thread
        # went on running matters to what it sees of the others. No thread id in the key: the order
        # in which a program joins a set of threads is a matter of id() hashes.
        # A timed join is an event of its own: whether the thread ended in time is scheduling.
        if getattr(self, "_retrace_tid", None) is None or not recorded_thread():
            return real_join(self, timeout)
        if timeout is None:
            engine.park()  # this thread runs no program code until the join returns: pass the baton on
            engine.after_waiting("thread.joined", lambda t: ended(self, t))
            return None

        def joined() -> bool:
            real_join(self, timeout)
            return not real_is_alive(self)

        def redo(ended_then: bool) -> None:
            if ended_then:  # else it timed out while recording, and the thread still runs here too
                engine.blocking("thread.join", None, lambda t: ended(self, t))

        engine.sync("thread.join", None, redo, joined)
        return None

    real_is_alive = threading.Thread.is_alive

    def ended(thread: threading.Thread, timeout: float) -> bool:
        real_join(thread, timeout)
        return not real_is_alive(thread)

    def is_alive(self: threading.Thread) -> bool:
        # Whether another thread has ended yet is scheduling: an event, and a thread that had ended while
        # recording has ended on replay too before the program sees so (pools check their handler threads).
        if getattr(self, "_retrace_tid", None) is None or not recorded_thread():
            return real_is_alive(self)

        def redo(alive: bool) -> bool:
            if not alive:
                engine.blocking("thread.is_alive", None, lambda t: ended(self, t))
            return alive

        return engine.sync("thread.is_alive", None, redo, real_is_alive, self)  # type: ignore[no-any-return]

    patcher.set(threading.Thread, "join", join)
    patcher.set(threading.Thread, "is_alive", is_alive)
