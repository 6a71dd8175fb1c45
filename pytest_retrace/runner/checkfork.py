"""A self-check's replay in a fork: a test's call replayed from exactly the memory state its recorded run began in.

The fork is taken just before the test's call phase, fixtures set up. The child waits; the parent runs the test
for real while recording (its outcome and side effects are the test's own), then sends the child the recorded
events and how the run ended. The child — still in the pre-test state, whatever the run changed in the parent's
memory or on disk — replays the call against them and sends back how the replay went (:class:`CheckResult`).
A divergence in any of the replay's threads ends the child at once with its report. Nothing of a replay outlives
its child: it ends with ``os._exit`` whatever happens, and dies with the parent.

Both ends are one process image of one version: the events travel as the recording's own encoding, the result as
JSON.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import re
import select
import signal
import stat
import tempfile
import threading
import time
import traceback
import warnings
from typing import Any, NoReturn

from ..boundaries import areas, collector, descriptors, entropy
from ..boundaries.files import classifier_for
from ..engine import guard
from ..engine.divergence import Call, Divergence, DivergenceKind
from ..engine.importhook import write_no_bytecode
from ..engine.replayer import Replayer
from ..engine.state import enter_gate, start_call_thread
from ..engine.watchdog import Watchdog
from ..format import codec
from ..format.events import Setup, decode_events
from ..hooks import manager
from ..kinds import inprocess
from ..record import Record, read_field
from ..redaction import Redaction
from .tree import die_with_parent

# Taken at import, before any boundary replaces them: the fork's own plumbing is never recorded nor replayed.
_exit, _read, _write, _close, _dup2, _fork, _waitpid, _kill = (os._exit, os.read, os.write, os.close, os.dup2,
                                                                 os.fork, os.waitpid, os.kill)
_monotonic = time.monotonic
CHILD_FAILED = 3  # the child's exit status when our own code failed there
SETTLED = b"s"  # the child's first byte: it has taken its copies of the files it inherited
SETTLE_TIMEOUT = 30.0
STDERR_TAIL = 2000  # what a report shows of a child that died


def outcome_text(exc: BaseException | None) -> str:
    """How a test's call ended, as the run and its replay compare it. Memory addresses are masked: the replay's
    own objects (stand-ins among them) may sit elsewhere than the run's, and nothing else tells them apart."""
    if exc is None:
        return "passed"
    return f"{type(exc).__module__}.{type(exc).__qualname__}: " + re.sub(r"0x[0-9a-f]+", "0x…", str(exc))


class CheckResult(Record):
    """How the replay in the child went."""

    __slots__ = ("divergence", "replayed", "unconsumed", "consumed", "error")

    def __init__(self, divergence: Divergence | None = None, replayed: str | None = None,
                 unconsumed: Divergence | None = None, consumed: int = 0, error: str | None = None) -> None:
        self.divergence = divergence  # what ended the replay early, on any of its threads
        self.replayed = replayed  # how the replayed call ended (outcome_text), when it ran to its end
        self.unconsumed = unconsumed  # the call ended before the recorded calls did: the first one not made
        self.consumed = consumed  # events the replay consumed
        self.error = error  # pytest-retrace itself failed: what, with our traceback (a bug to report)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(read_field(data, "divergence", Divergence), data.get("replayed"),
                   read_field(data, "unconsumed", Divergence), data.get("consumed") or 0, data.get("error"))


def fork_unavailable() -> str | None:
    """Why this platform cannot replay in a fork, or None when it can."""
    return None if hasattr(os, "fork") else "os.fork is not available on this platform"


class ReplayFork:
    """The two ends of one self-check: :meth:`start` forks; :attr:`in_child` says which end this is."""

    def __init__(self, pid: int, go: int, result: int, stderr: Any, parent: int, threads: list[str]) -> None:
        self.pid = pid  # 0 in the child
        self._go = go  # the child reads the recording from it; the parent writes
        self._result = result  # the child writes its CheckResult; the parent reads
        self._stderr = stderr  # where the child's stderr goes (a temporary file the parent reads if it died)
        self._parent = parent
        # The other threads running when it forked (by name): the child has none of them, and a replay that waits
        # for work the run handed to one of them waits in vain.
        self.threads_before = threads
        self._watchdog: Watchdog | None = None

    @property
    def in_child(self) -> bool:
        return self.pid == 0

    @classmethod
    def start(cls) -> ReplayFork:
        """Fork now. The child waits in :meth:`receive`, with copies of its own of the files it inherited open
        (``_private_files``); standard streams that are no files go nowhere, stderr then to a file the parent
        reads should the child die."""
        reap(wait=False)
        areas()  # the boundaries' modules and plugins imported before the fork: the replay's sys.modules is the run's
        manager.manager()
        go_read, go_write = os.pipe()
        result_read, result_write = os.pipe()
        stderr = tempfile.TemporaryFile(prefix="retrace-self-check-")  # noqa: SIM115 - closed by result()
        parent = os.getpid()
        threads = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        with warnings.catch_warnings():
            # Python 3.12 warns of fork with threads running: the child runs only the replay, never their work.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = _fork()
        if pid == 0:
            _close(go_write)
            _close(result_read)
            return cls(0, go_read, result_write, stderr, parent, threads)._settle()
        _close(go_read)
        _close(result_write)
        fork = cls(pid, go_write, result_read, stderr, parent, threads)
        fork._settled()
        return fork

    # -- the child --------------------------------------------------------------------------------------------

    def _settle(self) -> ReplayFork:
        try:
            # The collector leaves the heap it inherited alone: collecting it would copy every page of it.
            gc.freeze()
            die_with_parent(self._parent)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which ends us
            _private_files({self._go, self._result, self._stderr.fileno()}, self._stderr.fileno())
        except BaseException:  # noqa: BLE001 - nothing of the child may reach the parent's pytest
            _write(self._result, SETTLED)
            self.failed()
        _write(self._result, SETTLED)  # the parent may go on: our copies hold the files as they were
        return self

    def receive(self, redaction: Redaction, stuck_timeout: float) -> Replayer | None:
        """Wait for the run's recording; install a replay of it, redacting with ``redaction`` as the run did.
        Returns the engine, or None when the parent sends nothing (the test is not checked): then only exit is
        left."""
        data = _read_all(self._go)
        _close(self._go)
        if not data:
            return None
        names, sink, setup, classified = codec.unpackb(data)
        classifier_for(()).learn(classified)  # paths are code or data to the replay as they were to the run
        codec.run_program_constructors()  # the recording is this very process's: its classes are its own
        inprocess.replaying_here()  # decorators and middleware the test sets up record nothing here
        write_no_bytecode()  # a replay writes nothing, not even the bytecode cache of what it imports
        engine = Replayer(decode_events(sink, names), on_divergence=self._diverged, setup=Setup.from_frame(setup),
                          stuck_timeout=stuck_timeout)
        engine.redaction = redaction
        # The session's Router sends the calls of this thread, and of the threads it starts, to the replay, as it
        # sent the run's to its recording: the same boundaries on both sides.
        collector.outermost()
        start_call_thread(engine)
        engine.generator = entropy.own_generator(engine)  # the run's first event: its generator's seed
        guard.install(engine.refuse)  # what the recording does not answer never happens for real
        if engine.demux is None:  # a multi-threaded replay has a watch of its own
            self._watchdog = Watchdog(stuck_timeout, lambda: (engine.consumed, engine.threads.moving()),
                                      lambda: self._diverged(engine.divergence(DivergenceKind.STUCK, None, None,
                                                                               None, None)))
        return engine

    def _diverged(self, divergence: Divergence) -> NoReturn:
        """A divergence on any thread ends the replay here, reported."""
        self.report(CheckResult(divergence=divergence, consumed=divergence.index or 0))

    def finished(self, engine: Replayer, exc: BaseException | None) -> NoReturn:
        """The replayed call ended, raising ``exc`` or not: report how, and whether every recorded call was made."""
        enter_gate()
        if self._watchdog is not None:
            self._watchdog.finish()
        try:
            engine.finish()
            following = engine.unconsumed()
            unconsumed = None if following is None else Divergence(
                DivergenceKind.MISSING_CALLS, following.index, following.tid, expected=Call(following.describe()))
            result = CheckResult(replayed=outcome_text(exc), unconsumed=unconsumed, consumed=engine.consumed)
        except BaseException:  # noqa: BLE001 - our failure, reported as such
            result = CheckResult(error=traceback.format_exc())
        self.report(result)

    def failed(self) -> NoReturn:
        """Our own code failed in the child (the exception being handled): report it as a bug of ours."""
        self.report(CheckResult(error=traceback.format_exc()))

    def report(self, result: CheckResult) -> NoReturn:
        enter_gate()
        try:
            body = json.dumps(result.to_json(), default=repr).encode()
            data = len(body).to_bytes(4, "big") + body  # the parent reads it whole without waiting for our exit
            while data:
                data = data[_write(self._result, data):]
        except BaseException:  # noqa: BLE001
            _exit(CHILD_FAILED)
        _exit(0)

    # -- the parent -------------------------------------------------------------------------------------------

    def _settled(self) -> None:
        """Wait until the child holds its copies of the files (the run must not change them first)."""
        try:
            if select.select([self._result], [], [], SETTLE_TIMEOUT)[0]:
                _read(self._result, 1)  # the byte, or nothing: a child that died, which result() tells
        except OSError:
            pass

    @staticmethod
    def pack(names: list[str], sink: list[Any], setup: Setup, classified: list[Any]) -> bytes:
        """The run's recording as the child takes it, with how the run classified paths it had not met before
        (``Classifier.since``); raises what the codec raises for a value it cannot hold."""
        return codec.packb([names, sink, setup.frame(), classified])

    def send(self, data: bytes) -> None:
        """Hand the child the run's recording (:meth:`pack`)."""
        try:
            while data:
                data = data[_write(self._go, data):]
        except BrokenPipeError:  # the child is gone: result() tells how
            pass
        finally:
            _close(self._go)

    def cancel(self) -> None:
        """The test is not checked: the child exits without replaying."""
        _close(self._go)
        _EXITING.append(self.pid)
        _close(self._result)
        self._stderr.close()

    def result(self, timeout: float) -> CheckResult:
        """Wait for the child's report, at most ``timeout`` seconds without one: a child that died or hung is
        reported as our failure, with what it wrote to stderr."""
        received = bytearray()
        deadline = _monotonic() + timeout
        try:
            while len(received) < 4 or len(received) < 4 + int.from_bytes(received[:4], "big"):
                left = deadline - _monotonic()
                if left <= 0 or not select.select([self._result], [], [], left)[0]:
                    _kill(self.pid, signal.SIGKILL)
                    self._reap(wait=True)
                    return CheckResult(error=f"the replay made no report in {timeout:.0f} s and was stopped "
                                             f"(a lock another thread held when it forked, or work it handed "
                                             f"to a thread started before the test){self._stderr_tail()}")
                chunk = _read(self._result, 65536)
                if not chunk:
                    return CheckResult(error=f"the replay ended without a report "
                                             f"({_status_text(self._reap(wait=True))}){self._stderr_tail()}")
                received += chunk
            # Its exit (freeing a copy of the whole process) goes on beside the next test: reaped later.
            _EXITING.append(self.pid)
            try:
                return CheckResult.from_json(json.loads(received[4:]))
            except (ValueError, KeyError, TypeError) as exc:
                return CheckResult(error=f"the replay's report cannot be read: {exc}")
        finally:
            _close(self._result)
            self._stderr.close()

    def _reap(self, wait: bool) -> int:
        try:
            return _waitpid(self.pid, 0 if wait else os.WNOHANG)[1]
        except ChildProcessError:
            return 0

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - STDERR_TAIL))
            tail = self._stderr.read().decode(errors="replace").strip()
        except OSError:
            return ""
        return "\n  its stderr ended with:\n    " + "\n    ".join(tail.splitlines()) if tail else ""


PRIVATE_COPY_LIMIT = 64 << 20  # a bigger file the child inherited reads as empty and takes writes to nowhere


def _private_files(ours: set[int], stderr: int) -> None:
    """Give the child a copy of its own of every file it inherited open (pytest's capture files among them), as
    it stood when it forked: what the replay writes to them, or reads back, or where it moves their offsets, is
    the child's alone; the parent's files and offsets stay as its run left them. Standard streams that are not
    files (a terminal, xdist's pipes) go nowhere; stderr then goes to ``stderr``, ours."""
    null = os.open(os.devnull, os.O_RDWR)
    groups: dict[tuple[int, ...], list[int]] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # no /proc: the standard streams at least
        names = ["0", "1", "2"]
    for name in names:
        fd = int(name)
        if fd in ours or fd == null:
            continue
        try:
            st = os.fstat(fd)
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if not stat.S_ISREG(st.st_mode):
            if fd in (0, 1, 2):
                _dup2(stderr if fd == 2 else null, fd)
            continue
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        # Descriptors of one open file share its offset: one copy each (told apart by offset and flags).
        groups.setdefault((st.st_dev, st.st_ino, os.lseek(fd, 0, os.SEEK_CUR), flags), []).append(fd)
    for (_, _, offset, flags), fds in groups.items():
        size = os.fstat(fds[0]).st_size
        try:
            copy = _copy_of(fds[0], size, offset, flags) if size <= PRIVATE_COPY_LIMIT else None
        except OSError:  # (a file that cannot be opened again for reading)
            copy = None
        if copy is None:
            copy = os.open(os.devnull, os.O_RDWR)
        known_again = descriptors.replacing(fds)  # a written descriptor stays one (boundaries/changes.py)
        for fd in fds:
            _dup2(copy, fd)
        _close(copy)
        known_again()
    _close(null)


def _copy_of(fd: int, size: int, offset: int, flags: int) -> int:
    """A memory file holding the ``size`` bytes of the file behind ``fd``, at ``offset``, appending if ``flags``
    say so."""
    copy = os.memfd_create("retrace-private")
    try:
        # sendfile reads from a readable descriptor: a write-only one's file is opened again to be read.
        source = fd if flags & os.O_ACCMODE != os.O_WRONLY else os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    except OSError:
        _close(copy)
        raise
    try:
        done = 0
        while done < size:
            sent = os.sendfile(copy, source, done, size - done)
            if not sent:
                break
            done += sent
    finally:
        if source != fd:
            _close(source)
    os.lseek(copy, offset, os.SEEK_SET)
    fcntl.fcntl(copy, fcntl.F_SETFL, flags & os.O_APPEND)
    return copy


_EXITING: list[int] = []  # children that reported (or were told to go) and exit on their own


def reap(wait: bool) -> None:
    """Collect the children that exited (``wait``: wait for all of them, at the end of the session)."""
    for pid in _EXITING[:]:
        try:
            done, _ = _waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _EXITING.remove(pid)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := _read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    return f"wait status {status}"
