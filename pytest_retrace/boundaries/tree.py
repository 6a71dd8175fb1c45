"""The process tree: ``os.fork`` and what the processes of the recorded tree share (multiprocessing's
connections and semaphores), and waiting for a child.

A fork is an event of the parent's. The child's recording goes on in the child, into a recording of its own
(see the process kind), with a logical id: ``1`` for the program's first fork, ``1.2`` for that child's
second. On replay the process really forks at the recorded point, and the child replays its own part
(``multiprocessing`` with the fork start method, ``ProcessPoolExecutor``, a plain ``os.fork``).

The processes of the tree talk through multiprocessing's connections (its queues, pipes and pools) and
semaphores (its locks, and the semaphores inside its queues). Each process's sends, receives, acquisitions
and releases are its own events. On replay nothing really travels between them, and no semaphore is really
taken: every process gets what it got while recording (whichever worker took which task then), so the
processes replay each on their own, and one that sends something else diverges there.

Waiting for a child is a synchronization point: the recorded answer comes back once the replay's own child
really ended. The program sees the recorded pids; the replay's children have others, which waiting and
signals are given (:meth:`~pytest_retrace.engine.base.Engine.real_pid`).
"""

from __future__ import annotations

import io
import itertools
import os
from typing import TYPE_CHECKING, Any

from ..engine.base import Engine, payload

if TYPE_CHECKING:
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

_REAL_FORK, _REAL_WAITPID, _REAL_WAIT = os.fork, os.waitpid, os.wait


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    def fork() -> int:
        return engine.fork(_REAL_FORK)

    def reaped(result: Any) -> tuple[int, int]:
        """Replayed: the recording says this child ended; so does the replay's, now."""
        pid, status = result
        real = engine.real_pid(pid) if pid else None
        if real is not None:
            _REAL_WAITPID(real, 0)
        return pid, status

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        return tuple(engine.sync("os.waitpid", (pid, options), reaped, _REAL_WAITPID, pid, options))  # type: ignore

    def wait() -> tuple[int, int]:
        return tuple(engine.sync("os.wait", None, reaped, _REAL_WAIT))  # type: ignore[return-value]

    patcher.set(os, "fork", fork)
    patcher.set(os, "waitpid", waitpid)
    patcher.set(os, "wait", wait)
    patcher.when_imported("multiprocessing.process", lambda module: _children_in_start_order(module, patcher))
    patcher.when_imported("multiprocessing.connection", lambda module: _install_connections(engine, patcher, module))
    patcher.when_imported("_multiprocessing", lambda module: _install_semaphores(engine, patcher, module))


class StartOrdered(set):  # type: ignore[type-arg]
    """A set that iterates in the order its items were added: multiprocessing's set of started children, whose
    ``_cleanup`` polls each child in iteration order (a set of objects hashed by ``id()`` iterates in an order
    that differs between runs, and so would the recorded polls)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self._order = dict.fromkeys(items)

    def add(self, item: Any) -> None:
        super().add(item)
        self._order[item] = None

    def discard(self, item: Any) -> None:
        super().discard(item)
        self._order.pop(item, None)

    def remove(self, item: Any) -> None:
        super().remove(item)
        self._order.pop(item, None)

    def clear(self) -> None:
        super().clear()
        self._order.clear()

    def __iter__(self) -> Any:
        return iter(list(self._order))


def _children_in_start_order(module: Any, patcher: Patcher) -> None:
    if type(getattr(module, "_children", None)) is set:
        patcher.set(module, "_children", StartOrdered(module._children))


def _install_connections(engine: Engine, patcher: Patcher, connection: Any) -> None:
    cls = connection.Connection
    real_send, real_recv = cls._send_bytes, cls._recv_bytes

    def _send_bytes(self: Any, buf: Any) -> None:
        if engine.passes():
            return real_send(self, buf)  # type: ignore[no-any-return]
        engine.call("multiprocessing.send_bytes", (payload(bytes(buf)),), real_send, self, buf)
        return None

    def _recv_bytes(self: Any, maxsize: int | None = None) -> io.BytesIO:
        if engine.passes():
            return real_recv(self, maxsize)  # type: ignore[no-any-return]
        data = engine.call("multiprocessing.recv_bytes", (maxsize,), lambda: real_recv(self, maxsize).getvalue())
        return io.BytesIO(data)

    patcher.set(cls, "_send_bytes", _send_bytes)
    patcher.set(cls, "_recv_bytes", _recv_bytes)


class RecordedSemLock:
    """multiprocessing's semaphore (``_multiprocessing.SemLock``, under its locks and queues) whose acquisitions,
    releases and state reads are events. The real semaphore is made on both sides (that touches nothing) but
    used only while recording. ``label``: its number in the order the process made them, shown in call keys."""

    _retrace_engine: Engine
    _made = itertools.count(1)

    def __init__(self, real: Any) -> None:
        self._real = real
        self._label = next(RecordedSemLock._made)

    def _call(self, op: str, args: tuple[Any, ...], *a: Any) -> Any:
        return self._retrace_engine.call(f"semlock.{op}", (self._label, *args), getattr(self._real, op), *a)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        return self._call("acquire", (block, timeout), block, timeout)  # type: ignore[no-any-return]

    def release(self) -> None:
        self._call("release", ())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_mine(self) -> bool:
        return self._call("_is_mine", ())  # type: ignore[no-any-return]

    def _count(self) -> int:
        return self._call("_count", ())  # type: ignore[no-any-return]

    def _get_value(self) -> int:
        return self._call("_get_value", ())  # type: ignore[no-any-return]

    def _is_zero(self) -> bool:
        return self._call("_is_zero", ())  # type: ignore[no-any-return]

    def _after_fork(self) -> None:
        self._real._after_fork()

    def __getattr__(self, name: str) -> Any:  # handle, kind, maxvalue, name
        return getattr(self._real, name)


def _install_semaphores(engine: Engine, patcher: Patcher, module: Any) -> None:
    real = module.SemLock
    recorded = type("SemLock", (RecordedSemLock,), {"_retrace_engine": engine, "__module__": "_multiprocessing"})

    def make(*args: Any, **kwargs: Any) -> Any:  # (a stand-in: it answers SEM_VALUE_MAX and _rebuild as SemLock)
        return recorded(real(*args, **kwargs))

    patcher.set(module, "SemLock", make)
