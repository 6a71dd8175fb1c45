"""asyncio's subprocesses: a child's pipes and its end, at the descriptors asyncio works them through.

``asyncio.create_subprocess_exec/shell`` and ``loop.subprocess_exec/shell`` start a ``subprocess.Popen`` (ours,
:class:`~.process.RecordedPopen`) under ``_UnixSubprocessTransport``, then work the child at the level of file
descriptors, the same way on Python 3.10 to 3.13:

- its pipes join the loop by descriptor (``connect_read_pipe``/``connect_write_pipe``): the selector watches them,
  data comes from ``os.read(fd, max_size)`` and goes with ``os.write(fd, data)``;
- its end comes from a child watcher: ``os.waitpid(pid, 0)`` in a thread (``ThreadedChildWatcher``, the default up
  to 3.11 and wherever pidfds are refused), or a ``os.pidfd_open(pid)`` descriptor the selector watches, then
  ``os.waitpid`` on the loop (``PidfdChildWatcher``, the default from 3.12 where pidfds work; chosen by
  ``can_use_pidfd()``, which opens a pidfd of the process itself).

So that is where the boundary sits, below every version's transport and protocol classes:

- ``os.read`` and ``os.write`` on a descriptor of a recorded child's pipe are events (``subprocess.pipe.read``:
  the bytes, chunk by chunk, and the empty read of EOF; ``subprocess.pipe.write``: what was written is the call
  key, so a replay that sends other input diverges; its count is the answer, a short write included);
- ``os.waitpid`` on a recorded child's pid is an event (``subprocess.waitpid``), and so is ``os.pidfd_open`` of a
  recorded child or of the process itself (``os.pidfd_open``), so the watcher chosen and what it reports are the
  recording's, whatever the replaying machine allows.

The order of all this relative to the program's other events needs nothing new: the loop's readiness waits are
events already (``select.epoll`` and friends, :mod:`.socket`), recorded as *positions* among the watched
descriptors. On replay, no process starts; :class:`~.process.RecordedPopen` hands the program, in place of the
child's pipes, real pipe descriptors of its own (and a pidfd stand-in), allocated the way ``Popen`` allocates
its pipes so the numbers come out as a plain run's. The selector really registers them, in the recorded order, so
a recorded "position 2 readable" means the same pipe on both sides; whatever asyncio then does with the
descriptor (``fstat``, ``set_blocking``, ``os.read``, ``os.write``, ``os.close``) works on a real descriptor, and
the reads and writes are answered from the recording. Nothing is ever written into or read from the stand-ins:
they only carry a number and a kind (a FIFO, as the real pipe was).

A ``ThreadedChildWatcher``'s thread is the one place where asyncio hands something from another thread to the loop
through shared memory: ``call_soon_threadsafe`` puts the exit callback in the loop's queue, then wakes the loop
up with a send on its self-pipe. Where, among the loop thread's doings, the callback got in is nowhere in the
events, so the callback is kept aside and the loop's thread queues it itself when it reads its self-pipe (a
point of its own recorded course); the thread's ``waitpid`` is a synchronization point, and the rest of its
report runs inside it (:func:`_install_watcher`). A pidfd watcher needs none of this: the loop's thread does
it all.

A descriptor is known as a child's pipe by its number and the identity (device, inode) of the pipe behind it,
since numbers are reused after a close that goes unseen (a file object's). A pid is a recorded child's from its
``Popen`` until its exit status is known (reaped by ``waitpid``, or its ``returncode`` set), so the pids of
forked children of the recorded tree, which replay really forks, are never taken for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import weakref
from _thread import allocate_lock as _allocate_lock
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.base import Engine, payload
from ..engine.state import enter_gate, internal, leave_gate, tls
from .descriptors import ByIdentity

if TYPE_CHECKING:
    from ..engine.patch import Patcher

# Taken at import, before any boundary replaces them: our own descriptor work is never recorded.
_fstat, _close, _pipe, _os_open, _real_getpid = os.fstat, os.close, os.pipe, os.open, os.getpid
_pidfd_open = getattr(os, "pidfd_open", None)
_DEVNULL_FLAGS = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)


class Children:
    """The recorded children of one installation: their pipes' descriptors and their pids."""

    def __init__(self) -> None:
        self._pipes: ByIdentity[tuple[str, int]] = ByIdentity()  # fd -> (which, pid)
        self._pids: set[int] = set()

    # -- pipes --------------------------------------------------------------------------------------------

    def track(self, fd: int, which: str, pid: int) -> None:
        """Descriptor ``fd`` is the ``which`` pipe (stdin, stdout, stderr) of child ``pid``."""
        self._pipes.track(fd, (which, pid))

    def pipe(self, fd: Any) -> tuple[str, int] | None:
        """Which pipe of which child descriptor ``fd`` is now, or None when it is none."""
        return self._pipes.get(fd)

    # -- pids -----------------------------------------------------------------------------------------------

    def started(self, pid: int) -> None:
        self._pids.add(pid)

    def is_child(self, pid: Any) -> bool:
        return type(pid) is int and pid in self._pids

    def ended(self, pid: Any) -> None:
        """Child ``pid``'s exit status is known: the number may go to another process now."""
        self._pids.discard(pid)


def stand_in_pipes(kinds: list[Any]) -> list[int | None]:
    """Replay: the parent's ends of a child's pipes, for standard streams of ``kinds`` (stdin, stdout, stderr as
    ``Popen`` got them): real pipe descriptors (stdin: a write end; the others: a read end) that no child holds.
    Allocated as ``Popen`` allocates (a pipe per PIPE, ``/dev/null`` once at the first DEVNULL, in stream order;
    the child's ends closed), so the program's descriptors get the numbers a plain run gives them."""
    ours: list[int | None] = []
    closing: list[int] = []
    with internal:
        for i, kind in enumerate(kinds):
            if kind == subprocess.PIPE:
                read, write = _pipe()
                ours.append(write if i == 0 else read)
                closing.append(read if i == 0 else write)
            else:
                ours.append(None)
                if kind == subprocess.DEVNULL and not any(k == subprocess.DEVNULL for k in kinds[:i]):
                    closing.append(_os_open(os.devnull, _DEVNULL_FLAGS))
        for fd in closing:
            _close(fd)
    return ours


def stand_in_pidfd() -> int:
    """Replay: a descriptor standing for a pidfd the recording opened (a pipe's read end, pollable as a pidfd
    is; it never becomes ready for real, the recorded readiness says when the child ended)."""
    with internal:
        read, write = _pipe()
        _close(write)
    return read


def install(engine: Engine, patcher: Patcher, children: Children, is_own: Callable[[int], bool]) -> None:
    """``os.read``/``os.write`` on a recorded child's pipes, ``os.waitpid`` and ``os.pidfd_open`` of a recorded
    child (and ``pidfd_open`` of the process itself: ``is_own(pid)``, its pid as the program sees it) become
    events."""
    real_read, real_write, real_waitpid = os.read, os.write, os.waitpid

    def read(fd: int, n: int) -> bytes:
        pipe = None if tls.gate else children.pipe(fd)
        if pipe is None:
            return real_read(fd, n)
        return engine.call("subprocess.pipe.read", (*pipe, n), real_read, fd, n)  # type: ignore[no-any-return]

    def write(fd: int, data: Any) -> int:
        pipe = None if tls.gate else children.pipe(fd)
        if pipe is None:
            return real_write(fd, data)
        return engine.call(  # type: ignore[no-any-return]
            "subprocess.pipe.write", (*pipe, payload(data)), real_write, fd, data)

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        answer = _watcher.answer
        if answer is not None:  # a ThreadedChildWatcher's thread, its event taken (see _install_watcher)
            _watcher.answer = None
            if isinstance(answer, BaseException):
                raise answer
            return answer  # type: ignore[no-any-return]
        if tls.gate or not children.is_child(pid):
            return real_waitpid(pid, options)
        try:
            got, status = engine.call("subprocess.waitpid", (pid, options), _reap, real_waitpid, pid, options)
        except ChildProcessError:
            children.ended(pid)
            raise
        if got:
            children.ended(pid)
        return got, status

    patcher.set(os, "read", read)
    patcher.set(os, "write", write)
    patcher.set(os, "waitpid", waitpid)
    patcher.when_imported("asyncio.unix_events",
                          lambda module: _install_watcher(module, patcher, engine, children, real_waitpid))

    if _pidfd_open is not None:
        real_pidfd_open = os.pidfd_open

        def pidfd_open(pid: int, flags: int = 0) -> int:
            own = type(pid) is int and is_own(pid)
            if tls.gate or not (own or children.is_child(pid)):
                return real_pidfd_open(pid, flags)  # type: ignore[no-any-return]
            opened: list[int] = []

            def run() -> None:
                opened.append(real_pidfd_open(_real_getpid() if own else pid, flags))

            engine.call("os.pidfd_open", ("self" if own else pid, flags), run)
            if opened:
                return opened[0]
            if own:  # replayed: this process's own pidfd where the machine allows it
                with internal:
                    try:
                        return real_pidfd_open(_real_getpid(), flags)  # type: ignore[no-any-return]
                    except OSError:
                        pass
            return stand_in_pidfd()

        patcher.set(os, "pidfd_open", pidfd_open)


def _reap(real_waitpid: Callable[[int, int], tuple[int, int]], pid: int, options: int) -> list[int]:
    return list(real_waitpid(pid, options))


class _Watcher(threading.local):
    # A ThreadedChildWatcher's thread whose waitpid event is taken: what its os.waitpid call answers.
    answer: Any = None


_watcher = _Watcher()
_reports_lock = _allocate_lock()
_reports: weakref.WeakKeyDictionary[Any, list[tuple[Any, tuple[Any, ...], Any]]] = weakref.WeakKeyDictionary()


class _Reporting:
    """The loop as a ThreadedChildWatcher's thread sees it: its ``call_soon_threadsafe`` keeps the callback for
    the loop's thread to take when the wake-up it sends is read (:func:`_deliver`)."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    def __repr__(self) -> str:
        return repr(self._loop)

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> None:
        loop = self._loop
        loop._check_closed()
        with _reports_lock:
            _reports.setdefault(loop, []).append((callback, args, context))
        loop._write_to_self()


def _deliver(loop: Any) -> None:
    """The loop's thread read its self-pipe: the child watchers' reports sent before are its callbacks now."""
    with _reports_lock:
        reports = _reports.pop(loop, None)
    for callback, args, context in reports or ():
        loop.call_soon(callback, *args, context=context)


def _install_watcher(unix_events: Any, patcher: Patcher, engine: Engine, children: Children,
                     real_waitpid: Callable[[int, int], tuple[int, int]]) -> None:
    """``ThreadedChildWatcher._do_waitpid``, its thread's body (the same from 3.10 to 3.13): ``os.waitpid(pid, 0)``,
    then ``loop.call_soon_threadsafe(callback, pid, returncode, …)``, which plainly puts the callback in the loop's
    queue at once and wakes the loop up with a send on its self-pipe.

    The loop's queue is shared memory: where, among the loop thread's own doings, the callback got in is nowhere
    in the events (between two of them, or while the loop's thread printed something), and a replay could not
    put it in at the same point. So the callback is kept aside, and the loop's thread queues it itself once it
    has read its self-pipe (``_read_from_self``, which reads with recorded ``recv`` calls): at a point of its own
    recorded course, the same on both sides. Plainly that is a schedule a slower watcher thread gives (the
    callback runs one turn of the loop later), and the program sees nothing else.

    The thread's ``waitpid`` is a synchronization point (``subprocess.waitpid``), and what follows it (keeping the
    callback, sending the wake-up) runs inside the gate as part of it, so the thread has no other event. While
    recording, its event is appended before it keeps the callback or sends anything (a thread's event is appended
    when its call returns, and a send's could come out recorded after the loop's reaction to it). On replay the
    thread holds its turn until the callback is kept: the loop's thread cannot read its self-pipe before."""
    selector_events = sys.modules.get("asyncio.selector_events")
    loop_class = getattr(selector_events, "BaseSelectorEventLoop", None)
    real_read_from_self = getattr(loop_class, "_read_from_self", None)
    if real_read_from_self is None:
        return

    def _read_from_self(self: Any) -> Any:
        try:
            return real_read_from_self(self)
        finally:
            if _reports:
                _deliver(self)

    patcher.set(loop_class, "_read_from_self", _read_from_self)
    for name in ("ThreadedChildWatcher", "_ThreadedChildWatcher"):
        cls = getattr(unix_events, name, None)
        real = cls.__dict__.get("_do_waitpid") if isinstance(cls, type) else None
        if real is None:
            continue

        def _do_waitpid(self: Any, loop: Any, expected_pid: int, callback: Any, args: Any, _real: Any = real) -> Any:
            if tls.gate or tls.tid is None or not children.is_child(expected_pid):
                return _real(self, loop, expected_pid, callback, args)
            reported: list[bool] = []

            def report(answer: Any) -> Any:
                reported.append(True)
                _watcher.answer = tuple(answer) if isinstance(answer, list) else answer
                enter_gate()
                try:
                    _real(self, _Reporting(loop), expected_pid, callback, args)
                finally:
                    leave_gate()
                    _watcher.answer = None
                return answer

            answer: Any
            try:
                answer = engine.sync("subprocess.waitpid", (expected_pid, 0), report, _reap, real_waitpid,
                                     expected_pid, 0)
            except ChildProcessError as exc:  # reaped by someone else: asyncio reports 255
                answer = exc
            if isinstance(answer, BaseException) or answer[0]:
                children.ended(expected_pid)
            if not reported:  # recorded (or a recorded exception raised): the report follows the event
                report(answer)

        patcher.set(cls, "_do_waitpid", _do_waitpid)
