"""Synchronization points: once threads run, acquiring a lock is an event.

``threading``'s Lock and RLock give way to recorded twins, so everything threading,
queue and concurrent.futures build on them — Condition wait and notify, Semaphore,
BoundedSemaphore, Event, Barrier, Timer, Queue/PriorityQueue/LifoQueue, futures and
``as_completed`` — becomes acquisitions replayed in the recorded order. ``queue.SimpleQueue``
is C code with its own lock, so queue's pure-Python twin stands in for it.

An acquisition is recorded when it completes; replay waits for the thread's turn and
holds it while taking the real lock, so no other thread gets in between. A timed or
non-blocking acquisition that failed while recording fails again without waiting.

The module-level ``random`` functions draw from one generator shared by all threads: the
order of draws is scheduling too, so they are ordered the same way.

``concurrent.futures.as_completed`` yields the futures already done when it is called in
the order of a set of futures, i.e. of their id(): memory addresses, which differ between
any two runs. It yields them in the order the caller gave them instead, in both runs.

Until a recorded thread starts another, none of this records anything.
"""

from __future__ import annotations

import _thread
import os
import queue
import random
import sys
import threading
import time
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from ..engine.router import Router
from ..engine.stack import PACKAGE_DIR
from ..engine.state import STATE, recorded_thread, tls
from .entropy import on_module_generator

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

_allocate_lock = _thread.allocate_lock
_RealRLock = _thread.RLock
# Files whose frames do not name a lock: the site is where the program asked for it.
_LIBRARY_FILES = {threading.__file__, queue.__file__}
_LIBRARY_DIRS = (PACKAGE_DIR, os.path.join(os.path.dirname(threading.__file__), "concurrent"))


def creation_site() -> str:
    """Where the program created a lock (``file.py:function``): its name in call keys. Not the line:
    a recording must go on replaying after edits that only move code."""
    if tls.tid is None or tls.gate:
        return "?"
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename not in _LIBRARY_FILES and not filename.startswith(_LIBRARY_DIRS):
            code = frame.f_code
            return f"{os.path.basename(filename)}:{getattr(code, 'co_qualname', code.co_name)}"
        frame = frame.f_back
    return "?"


class _OrderedAcquisitions:
    """What the recorded Lock and RLock share: acquisitions are events while threads run."""

    __slots__ = ("_lock", "_site", "__weakref__")
    _event = "lock.acquire"
    _lock: Any
    _site: str

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        # ``threaded`` first: a program with one thread pays one attribute lookup per acquisition, no more.
        if not STATE.threaded or not recorded_thread():
            return self._lock.acquire(blocking, timeout)  # type: ignore[no-any-return]
        # The lock classes are module-level types: the engine is the one installed now, if any.
        engine = STATE.installed
        if engine is None:
            return self._lock.acquire(blocking, timeout)  # type: ignore[no-any-return]
        return engine.sync(self._event, (self._site,), self._redo, self._lock.acquire, blocking, timeout)

    def _redo(self, got: bool) -> bool:
        if got and not self._lock.acquire(False):
            STATE.installed.blocking(self._event, (self._site,), self._try)
        return got

    def _try(self, timeout: float) -> bool:
        return self._lock.acquire(True, timeout)  # type: ignore[no-any-return]

    def __enter__(self) -> bool:
        if not STATE.threaded:
            return self._lock.acquire()  # type: ignore[no-any-return]
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def release(self) -> None:
        self._lock.release()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()

    def __repr__(self) -> str:
        return repr(self._lock)


def _server_machinery() -> bool:
    """A lock made by a service's own threads, outside every recording (a server's futures and queues): in-process
    recordings leave it a real lock. It costs them nothing then, and only an acquisition by a thread a recording
    started is an event, which locks made outside recordings never were (see Known limits)."""
    return tls.tid is None and type(STATE.installed) is Router


class RecordedLock(_OrderedAcquisitions):
    """``threading.Lock``, recorded."""

    __slots__ = ()

    def __new__(cls) -> Any:
        return _allocate_lock() if _server_machinery() else super().__new__(cls)

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._site = creation_site()

    def locked(self) -> bool:
        return self._lock.locked()  # type: ignore[no-any-return]

    acquire_lock = _OrderedAcquisitions.acquire
    release_lock = _OrderedAcquisitions.release
    locked_lock = locked


class RecordedRLock(_OrderedAcquisitions):
    """``threading.RLock``, recorded. Condition uses its private ``_release_save``/``_acquire_restore``
    pair; the second one blocks, so it is an event too."""

    __slots__ = ()
    _event = "rlock.acquire"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _RealRLock(*args, **kwargs) if _server_machinery() else super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock = _RealRLock(*args, **kwargs)
        self._site = creation_site()

    def _acquire_restore(self, state: Any) -> None:
        restore = self._lock._acquire_restore
        engine = STATE.installed
        if engine is None or not recorded_thread():
            return restore(state)  # type: ignore[no-any-return]
        engine.sync(self._event, (self._site,), lambda _recorded: restore(state), restore, state)
        return None

    def _release_save(self) -> Any:
        return self._lock._release_save()

    def _is_owned(self) -> bool:
        return self._lock._is_owned()  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:  # _recursion_count and whatever newer Pythons add
        return getattr(self._lock, name)


# The program asks type(lock) what it is: the answer is the lock types' own names.
for _ours, _theirs in ((RecordedLock, _thread.LockType), (RecordedRLock, _RealRLock)):
    _ours.__name__, _ours.__qualname__, _ours.__module__ = _theirs.__name__, _theirs.__qualname__, _theirs.__module__
del _ours, _theirs

# The module-level functions of ``random`` that draw from the shared generator.
RANDOM_DRAWS = (
    "random", "uniform", "randint", "randrange", "choice", "choices", "shuffle", "sample", "getrandbits",
    "randbytes", "triangular", "gauss", "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate",
    "gammavariate", "betavariate", "paretovariate", "weibullvariate", "binomialvariate",
)


def _ordered_draw(engine: Engine, name: str) -> Callable[..., Any]:
    draw = on_module_generator(name)

    def ordered(*args: Any, **kwargs: Any) -> Any:
        if not recorded_thread():
            return draw(*args, **kwargs)

        def run(_recorded: Any = None) -> Any:
            return draw(*args, **kwargs)

        return engine.sync(f"random.{name}", None, run, run)

    return ordered


def _as_completed_in_given_order(futures: ModuleType) -> Callable[..., Any]:
    """``as_completed`` as the standard library writes it (3.10-3.13), but the futures that are done
    at the call come in the caller's order rather than in their set's."""
    base = futures._base  # type: ignore[attr-defined]
    done_states = (base.CANCELLED_AND_NOTIFIED, base.FINISHED)

    def as_completed(fs: Any, timeout: float | None = None) -> Any:
        end_time = None if timeout is None else timeout + time.monotonic()
        given = list(dict.fromkeys(fs))
        fs = set(given)
        with base._AcquireFutures(fs):
            finished = [f for f in given if f._state in done_states]
            pending = fs - set(finished)
            waiter = base._create_and_install_waiters(fs, base._AS_COMPLETED)
        try:
            yield from base._yield_finished_futures(finished, waiter, ref_collect=(fs,))
            while pending:
                wait_timeout = None
                if end_time is not None:
                    wait_timeout = end_time - time.monotonic()
                    if wait_timeout < 0:
                        raise base.TimeoutError(f"{len(pending)} (of {len(fs)}) futures unfinished")
                waiter.event.wait(wait_timeout)
                with waiter.lock:
                    finished = waiter.finished_futures
                    waiter.finished_futures = []
                    waiter.event.clear()
                finished.reverse()  # the waiter collects them last first
                yield from base._yield_finished_futures(finished, waiter, ref_collect=(fs, pending))
        finally:
            for f in fs:
                with f._condition:
                    f._waiters.remove(waiter)

    return as_completed


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    patcher.set(threading, "Lock", RecordedLock)
    patcher.set(threading, "_allocate_lock", RecordedLock)  # Condition.wait's waiter locks
    patcher.set(threading, "_CRLock", RecordedRLock)  # threading.RLock() builds on this name
    patcher.set(queue, "SimpleQueue", queue._PySimpleQueue)  # type: ignore[attr-defined]
    shared = random._inst  # type: ignore[attr-defined]
    for name in RANDOM_DRAWS:
        draw = getattr(random, name, None)
        if draw is not None and getattr(draw, "__self__", None) is shared:
            patcher.set(random, name, _ordered_draw(engine, name))

    def patch_futures(futures: ModuleType) -> None:
        ordered = _as_completed_in_given_order(futures)
        patcher.set(futures, "as_completed", ordered)
        patcher.set(futures._base, "as_completed", ordered)  # type: ignore[attr-defined]

    patcher.when_imported("concurrent.futures", patch_futures)
