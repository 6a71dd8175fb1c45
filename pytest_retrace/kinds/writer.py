"""Writing kept in-process recordings off the request path, and not losing them when the process stops.

A request (or call) that ends hands its finished recording to this process's :class:`RecordingWriter`, a
thread of ours started at the first hand-over, and goes on: the encoding, the disk and the rotation are no
part of answering. What is handed over must still reach the disk when the server stops right after the last
answer, so the process waits for it on its way out, for at most :data:`SHUTDOWN_WAIT` seconds:

- at interpreter exit (``atexit``): a server stopped with SIGINT (KeyboardInterrupt), gunicorn's workers on
  SIGTERM, SIGINT/SIGQUIT and when ``max_requests`` recycles them (they leave through ``sys.exit``);
- on SIGTERM, in a process that left SIGTERM to kill it outright (werkzeug's server, ``flask run``): a
  handler of ours waits, then dies of the same signal, as the process would have.

The wait covers recordings handed over and requests still under way on other threads (an answered request
ends its recording just after the client has the last byte). Whatever is still missing when the wait is
over is lost, and logged on the ``pytest_retrace`` logger with how many.

One writer per process: a process forked from one that recorded (a gunicorn worker forked from a master
that imported the app with ``--preload``) starts with a writer of its own and nothing of its parent's.

Recordings for a URL (``s3://bucket/prefix``) are written the same way into a local spool folder (see
:func:`spool_of`) and uploaded from it right after, on the writer thread; what fails to upload stays there, and
goes with the next recording's upload and at exit (within the same :data:`SHUTDOWN_WAIT`).

Rotation (:func:`rotate`) runs after each write and is safe with several processes writing into one
folder: each keeps the newest files, a file another process removed meanwhile is no error, and temporary
files (``.NAME.retrace.XXXX.partial``, see :func:`~pytest_retrace.format.tape.open_temp_beside`) are never
counted nor removed.
"""

from __future__ import annotations

import _thread
import atexit
import gc
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from ..engine.state import internal, mark_outside, outside_recordings
from ..format.codec import blake2b
from ..format.storage import Spool, filesystem, spool_for, spools
from ..hooks.plugin_cache import cache_folder

log = logging.getLogger("pytest_retrace")
SHUTDOWN_WAIT = 5.0  # seconds a stopping process waits for its recordings: below gunicorn's graceful timeout
_start_thread = _thread.start_new_thread  # the original: boundaries patch the module attribute
_monotonic = time.monotonic
ABANDONED_CHECK = 1.0  # seconds between the writer's looks for recordings whose thread ended unclosed
_PRUNE_AT = 256  # recordings under way at once (threads of a process) beyond which the gone ones are looked for


class Job(NamedTuple):
    """A finished recording to write: ``write`` does it; ``folder`` is where, for the log."""

    write: Callable[[], None]
    folder: Path


class RecordingWriter:
    """This process's writer: a queue of finished recordings and the thread that writes them."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()  # not threading.Lock: boundaries replace that one
        self._jobs: deque[Job] = deque()
        self._wake = _thread.allocate_lock()  # released: there is work
        self._wake.acquire()
        self._nap = _thread.allocate_lock()  # never released: a sleep that calls no boundary
        self._nap.acquire()
        self._pending = 0  # handed over and not written yet (or failed)
        self._started = False
        # Recordings under way (by id: a weak reference to it, and the thread it runs on): the exit waits for those
        # of other threads. Weak: one whose body the server never closed is not waited for once it is gone. A plain
        # dict, not a WeakKeyDictionary: every recorded request passes here twice, and that one's Python-level
        # bookkeeping cost a microsecond.
        self._open: dict[int, tuple[weakref.ref[Any], int]] = {}
        self._prune_at = _PRUNE_AT
        self._collected_for: frozenset[int] = frozenset()  # the abandoned recordings the last collection was for

    def opened(self, recording: Any) -> None:
        """``recording`` started on the calling thread: a stopping process waits for it to end."""
        if not _ExitFlush.registered:
            _exit_flush_registered()
        under_way = self._open
        if len(under_way) >= self._prune_at:
            self._prune()
        under_way[id(recording)] = (weakref.ref(recording), _thread.get_ident())

    def closed(self, recording: Any) -> None:
        self._open.pop(id(recording), None)

    def _prune(self) -> None:
        """Forget the recordings that were never closed and are gone (bodies a server dropped unclosed)."""
        for key, (ref, _thread_id) in list(self._open.items()):
            if ref() is None:
                self._open.pop(key, None)
        self._prune_at = max(_PRUNE_AT, 2 * len(self._open))  # as many live ones: not again at every request

    def under_way(self, me: int) -> int:
        """How many recordings are under way on threads other than ``me``."""
        return sum(1 for ref, thread in list(self._open.values()) if thread != me and ref() is not None)

    def submit(self, job: Job) -> None:
        """Write ``job`` soon, on the writer thread; never raises (a writer that cannot start writes it here)."""
        with self._lock:
            self._pending += 1
            self._jobs.append(job)
            start = not self._started
            self._started = True
        if start:
            try:
                _start_thread(self._run, ())
            except RuntimeError as exc:  # no thread to be had: write here rather than lose it
                log.warning("pytest-retrace: no writer thread (%s); writing recordings on the request's thread",
                            exc)
                with self._lock:
                    self._started = False
                self._drain()
                return
        if self._wake.locked():
            try:
                self._wake.release()
            except RuntimeError:  # another hand-over woke it first
                pass

    def _run(self) -> None:
        mark_outside()  # nothing the writer does is any recording's
        while True:
            if self._wake.acquire(timeout=ABANDONED_CHECK):
                self._drain()
            elif self._open:
                self._collect_abandoned()

    def _collect_abandoned(self) -> None:
        """Recordings under way on threads that have ended can only end when their response body is freed
        (request.py's ``_RecordedBody.__del__``: a server that dropped it unclosed); one caught in a reference cycle
        waits for a collection, made here once for each new set of them."""
        alive = sys._current_frames().keys()
        abandoned = frozenset(key for key, (ref, thread) in list(self._open.items())
                              if thread not in alive and ref() is not None)
        if abandoned and abandoned != self._collected_for:
            self._collected_for = abandoned
            gc.collect()

    def _drain(self) -> None:
        while True:
            try:
                job = self._jobs.popleft()
            except IndexError:
                return
            try:
                with internal:
                    job.write()
            except Exception as exc:
                log.warning("pytest-retrace: a recording could not be written to %s: %s", job.folder, exc)
            finally:
                with self._lock:
                    self._pending -= 1

    def _end_held(self, me: int) -> None:
        """End the recordings of the calling thread that only wait for what holds them (a response body handed
        over and never closed, by a test client whose response is still in a variable): the interpreter would
        free it after the writer is gone. One whose own code still runs (a signal handler interrupting it) has
        no holder yet, and is left."""
        for ref, thread in list(self._open.values()):
            recording = ref() if thread == me else None
            holder = recording.holder() if recording is not None and recording.holder is not None else None
            if holder is not None:
                holder.end_at_exit()

    def flush(self, timeout: float, why: str) -> int:
        """Wait until every recording handed over is written and every recording under way on another thread
        has ended (and is written), for at most ``timeout`` seconds. Returns how many were lost, after logging
        them. The calling thread's own recording, if one is under way (a signal handler interrupting it), cannot
        end while we wait: it is not waited for."""
        me = _thread.get_ident()
        deadline = _monotonic() + timeout
        self._end_held(me)
        if self.under_way(me):
            # A response a server dropped unclosed ends its recording when the body is freed (request.py's
            # _RecordedBody.__del__); caught in a reference cycle (werkzeug's, with the client gone), only a
            # collection frees it.
            gc.collect()
        while True:
            under_way = self.under_way(me)
            pending = self._pending
            if not pending and not under_way:
                return 0
            if _monotonic() >= deadline:
                folders = sorted({str(job.folder) for job in list(self._jobs)})
                log.error("pytest-retrace: %s: after waiting %.1f s, %d recordings are not written%s and %d "
                          "requests or calls are still under way: they are lost", why, timeout, pending,
                          f" (to {', '.join(folders)})" if folders else "", under_way)
                return pending + under_way
            self._nap.acquire(timeout=0.01)


_writer = RecordingWriter()


def writer() -> RecordingWriter:
    """This process's writer."""
    return _writer


def _forked() -> None:
    """A forked child writes its own recordings: nothing of its parent's queue (the parent writes those) and a
    thread of its own (the parent's is not in the child)."""
    global _writer
    _writer = RecordingWriter()


os.register_at_fork(after_in_child=_forked)


class _ExitFlush:
    registered = False
    before_executors = False
    done = False  # flushed on the way out (once: threading's exit calls, then atexit's)


def _exit_flush_registered() -> None:
    """At interpreter exit, wait for the recordings (registered once; a forked child inherits it)."""
    if not _ExitFlush.registered:
        _ExitFlush.registered = True
        atexit.register(_flush_at_exit)


def _flush_at_exit() -> None:
    if _ExitFlush.done:
        return
    _ExitFlush.done = True
    with internal:
        _flush_all("the process is exiting")


def _flush_all(why: str) -> None:
    """Write what is pending, then upload what waits in the spools, all within :data:`SHUTDOWN_WAIT`."""
    deadline = _monotonic() + SHUTDOWN_WAIT
    _writer.flush(SHUTDOWN_WAIT, why)
    for spool in spools():
        if spool.pending() and spool.upload(deadline):
            log.error("pytest-retrace: %s: %d recordings are not uploaded to %s: they stay in %s, and go with the "
                      "next upload from there", why, spool.failed, spool.url, spool.folder)


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM where it would have killed the process outright: write what is pending, then die of it."""
    with internal:
        _flush_all(f"stopping on {signal.Signals(signum).name}")
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def watch_shutdown() -> None:
    """Make a stopping process wait for its recordings (see the module's documentation). Called where a service
    sets recording up (``RecordingMiddleware``, ``record_calls``): the SIGTERM handler can only be installed
    from the main thread, and only where SIGTERM still kills outright (a server's own handler, gunicorn's,
    leaves through ``sys.exit``, and so through the exit flush). Inside a whole-process recording or replay it
    does nothing: the program's signals are the recording's."""
    if not outside_recordings():
        return
    _exit_flush_registered()
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: the exit flush still holds
        pass


# -- recordings for a URL ---------------------------------------------------------------------------------


def spool_of(url: str) -> Spool:
    """The spool of recordings written for ``url``: a folder of the user's cache (``$RETRACE_CACHE_DIR``, else
    ``~/.cache/pytest-retrace``; else the temporary folder), one per URL, so a process started later uploads what
    an earlier one left. Raises StorageError when no installed package opens the URL (said at set-up, not at
    the first request)."""
    filesystem(url)
    _flush_before_executors_stop()
    base = cache_folder() or os.path.join(_temp_folder(), f"pytest-retrace-{os.getuid()}")
    key = blake2b(url.rstrip("/").encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()
    return spool_for(url, os.path.join(base, "spool", key))


def _flush_before_executors_stop() -> None:
    """Uploads go through asyncio (s3fs, gcsfs), whose thread pools refuse work once the interpreter begins to
    stop (``concurrent.futures`` stops them before ``atexit`` runs): a process with a spool flushes earlier, among
    threading's exit calls, which run last registered first."""
    if _ExitFlush.before_executors:
        return
    _ExitFlush.before_executors = True
    import concurrent.futures.thread  # noqa: F401  # registers its own exit call now: ours comes after, runs before

    try:
        threading._register_atexit(_flush_at_exit)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # another Python; or already stopping
        pass


def _temp_folder() -> str:
    import tempfile

    return tempfile.gettempdir()


# -- rotation --------------------------------------------------------------------------------------------


class _Kept(NamedTuple):
    mtime_ns: int
    name: str
    size: int


def rotate(folder: Path, max_files: int | None, max_bytes: int | None) -> None:
    """Drop the oldest recordings beyond ``max_files`` files or ``max_bytes`` bytes in all.

    Several processes rotate one folder at once: each orders what it sees the same way (newest first, by
    modification time, then name) and drops only files with enough newer ones, so the newest never go, however
    the rotations interleave; a file that another one removed meanwhile is skipped."""
    if max_files is None and max_bytes is None:
        return
    kept: list[_Kept] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.endswith(".retrace"):
                continue  # temporary files end in .partial: being written, not ours to count or remove
            try:
                if entry.is_file(follow_symlinks=False):
                    status = entry.stat(follow_symlinks=False)
                    kept.append(_Kept(status.st_mtime_ns, entry.name, status.st_size))
            except FileNotFoundError:
                continue
    kept.sort(reverse=True)
    total = 0
    for index, recording in enumerate(kept):
        total += recording.size
        if (max_files is not None and index >= max_files) or (max_bytes is not None and total > max_bytes):
            try:
                os.unlink(folder / recording.name)
            except FileNotFoundError:
                pass
