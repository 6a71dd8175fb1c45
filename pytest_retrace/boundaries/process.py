"""Processes: ``subprocess.Popen`` (so ``run``, ``check_output``, ``os.popen``), ``os.system``, ``posix_spawn``,
``os.getpid``/``getppid``, signals to other processes (``kill``, ``killpg``, ``pidfd_send_signal``), what the
process reads from its standard input, and the ways a process ends without returning (``os._exit``, a fatal
signal to itself, ``abort``).

On replay nothing is spawned: :class:`RecordedPopen` answers every method from the
recording. It subclasses the real Popen so ``isinstance`` checks still hold. Its pipes are real
descriptors on both sides (on replay, pipes of the replay's own), and what goes through them by
descriptor, the child's ``waitpid`` and pidfd are events too (:mod:`.aio`: how asyncio's subprocess
transports replay). A signal to
another process is an event, never sent on replay; one to the process itself is the
program's own doing and is delivered, on both sides.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.base import Engine, payload, with_engine
from ..engine.state import tls
from .aio import Children, stand_in_pipes
from .aio import install as install_children
from .signals import own_signal
from .streams import RecordedStream

if TYPE_CHECKING:
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

_REAL_POPEN = subprocess.Popen
_REAL_GETPID, _REAL_GETPPID, _REAL_EXIT, _REAL_KILL, _REAL_ABORT = os.getpid, os.getppid, os._exit, os.kill, os.abort
_REAL_RAISE = signal.raise_signal
_REAL_KILLPG, _REAL_GETPGRP = os.killpg, os.getpgrp
# Signals whose default action is not to end the process (ignored, or stopping it).
_NOT_FATAL = {getattr(signal, name) for name in ("SIGCHLD", "SIGURG", "SIGWINCH", "SIGCONT", "SIGSTOP", "SIGTSTP",
                                                 "SIGTTIN", "SIGTTOU") if hasattr(signal, name)}


class Ending:
    """How the recorded (or replayed) process reports its end when it ends without returning: ``now(status)``
    runs before it goes (status: minus the signal's number for a death by signal; the kind sees to it that a
    fork's end is not reported). ``pid`` is the process's id as the program sees it (the recorded one, on
    replay); ``parent``, while recording, the one that started ``retrace record``."""

    __slots__ = ("now", "pid", "real_pid", "parent")

    def __init__(self, now: Callable[[int], None], pid: int, parent: int | None = None) -> None:
        self.now = now
        self.pid = pid
        self.real_pid = _REAL_GETPID()
        self.parent = parent


_ending: Ending | None = None
_NO_SIGNAL = contextlib.nullcontext()


def ends(ending: Ending | None) -> None:
    """Report the process's end through ``ending`` (a process recording or replay; None: no longer)."""
    global _ending
    _ending = ending


def _fatal(sig: int) -> bool:
    """Whether ``sig`` delivered now ends this process: its default action, no handler, not blocked."""
    try:
        return (sig == signal.SIGKILL or (signal.getsignal(sig) == signal.SIG_DFL and sig not in _NOT_FATAL
                                          and sig not in signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    except (ValueError, OSError):
        return False
_CODE = _REAL_POPEN.__init__.__code__
_POSITIONAL = _CODE.co_varnames[1 : _CODE.co_argcount]  # args, bufsize, executable, stdin, stdout …


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Popen's arguments by name (what inspect.signature().bind does, without importing inspect)."""
    if len(args) > len(_POSITIONAL):
        raise TypeError(f"Popen() takes at most {len(_POSITIONAL)} positional arguments ({len(args)} given)")
    bound = dict(zip(_POSITIONAL, args, strict=False))
    bound.update(kwargs)
    if "args" not in bound:
        raise TypeError("Popen() missing required argument: 'args'")
    return bound


def _writes_to_ours(engine: Engine) -> None:
    """A process the recording starts writes its output to descriptors of the program's (inherited, or a file):
    the recording notes it (``Recorder.output_shared``), as what it wrote there is no event of its own."""
    recording = tls.engine if tls.engine is not None else engine
    if getattr(recording, "output_shared", None) is False:
        recording.output_shared = True  # type: ignore[union-attr]


def _stream_kind(value: Any) -> Any:
    if value is None or isinstance(value, int) and value < 0:
        return value  # None, PIPE, STDOUT, DEVNULL
    return "file"


def _command(args: Any, engine: Engine) -> Any:
    """A command as its call key holds it: its secrets (``--password=…``, a token's shape) redacted the same way
    on both sides."""
    if isinstance(args, (str, bytes, os.PathLike)):  # a shell line: its words as arguments (``--token X``)
        line = os.fsdecode(args)
        try:
            words = shlex.split(line)
        except ValueError:  # unbalanced quotes: the shell will say so; its secrets are found by shape alone
            return engine.redaction.text(line)
        redacted = engine.redaction.argv(words)[0]
        return engine.redaction.text(line) if redacted == words else shlex.join(redacted)
    return engine.redaction.argv([os.fsdecode(a) for a in args])[0]


class RecordedPopen(_REAL_POPEN):  # type: ignore[misc, valid-type]
    """Recorded ``subprocess.Popen``: spawns only while recording. Installed as ``subprocess.Popen`` through
    :func:`~pytest_retrace.engine.base.with_engine`, which gives it the engine."""

    _retrace_engine: Engine
    _retrace_children: Children
    _child_created = False
    _real: Any = None
    _returncode: int | None = None

    @property  # type: ignore[override]
    def returncode(self) -> int | None:
        return self._returncode

    @returncode.setter
    def returncode(self, value: int | None) -> None:
        """Set by our methods from what the child answered, and by asyncio from what its child watcher got: the
        real ``Popen`` learns it too (it would look for a child already reaped), and the pid is no longer the
        child's."""
        self._returncode = value
        if value is not None:
            real = self._real
            if real is not None and real.returncode is None:
                real.returncode = value
            pid = getattr(self, "pid", None)
            if pid is not None:
                self._retrace_children.ended(pid)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = _bind(args, kwargs)
        self.args = bound["args"]
        self.returncode = None
        self.encoding = bound.get("encoding")
        self.errors = bound.get("errors")
        self.text_mode = bool(self.encoding or self.errors or bound.get("text") or bound.get("universal_newlines"))
        self.universal_newlines = self.text_mode
        kinds = [_stream_kind(bound.get(n)) for n in ("stdin", "stdout", "stderr")]
        key = (
            _command(self.args, self._retrace_engine),
            bool(bound.get("shell")),
            os.fsdecode(bound["cwd"]) if bound.get("cwd") is not None else None,
            kinds,
            self.text_mode,
        )

        def spawn() -> int:
            self._real = _REAL_POPEN(*args, **kwargs)
            return self._real.pid

        if any(kind is None or kind == "file" for kind in kinds[1:]):
            _writes_to_ours(self._retrace_engine)
        self.pid = self._retrace_engine.call("subprocess.Popen", key, spawn)
        self._retrace_children.started(self.pid)
        # On replay the child's pipes are pipes of our own, which the program's descriptor work (asyncio's
        # transports) can use; what goes through them is answered from the recording (see .aio).
        stand_ins = stand_in_pipes(kinds) if self._real is None else [None, None, None]
        self.stdin = self._stream("stdin", kinds[0], "wb", stand_ins[0])
        self.stdout = self._stream("stdout", kinds[1], "rb", stand_ins[1])
        self.stderr = self._stream("stderr", kinds[2], "rb", stand_ins[2])

    def _stream(self, which: str, kind: Any, mode: str, stand_in: int | None) -> Any:
        if kind != subprocess.PIPE:
            return None
        if self._real is not None:
            real = getattr(self._real, which, None)
            if isinstance(real, io.TextIOWrapper):
                real = real.buffer
        else:
            real = io.FileIO(stand_in, mode) if stand_in is not None else None  # type: ignore[arg-type]
        if real is not None:
            self._retrace_children.track(real.fileno(), which, self.pid)
        binary = RecordedStream(self._retrace_engine, f"subprocess.{which}", self.pid, real, mode)
        if not self.text_mode:
            return binary
        return io.TextIOWrapper(binary, encoding=self.encoding, errors=self.errors, write_through=which == "stdin")

    def _recorded(self, name: str, args: Any, method: str, *a: Any, **kw: Any) -> Any:
        real = self._real

        def run() -> list[Any]:
            result = getattr(real, method)(*a, **kw)
            return [result, real.returncode]

        result, self.returncode = self._retrace_engine.call(f"subprocess.{name}", args, run)
        return result

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        key = (None if input is None else payload(input), timeout)
        out, err = self._recorded("communicate", key, "communicate", input, timeout)
        return out, err

    def wait(self, timeout: float | None = None) -> int:
        return self._recorded("wait", (timeout,), "wait", timeout)  # type: ignore[no-any-return]

    def poll(self) -> int | None:
        return self._recorded("poll", None, "poll")  # type: ignore[no-any-return]

    def send_signal(self, sig: int) -> None:
        self._recorded("send_signal", (int(sig),), "send_signal", sig)

    def terminate(self) -> None:
        self._recorded("terminate", None, "terminate")

    def kill(self) -> None:
        self._recorded("kill", None, "kill")

    def __enter__(self) -> RecordedPopen:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        real = self._real
        self.returncode = self._retrace_engine.call(
            "subprocess.exit", None, lambda: (real.__exit__(exc_type, exc, tb), real.returncode)[1]
        )
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def __del__(self) -> None:
        pass


def _install_stdin(engine: Engine, patcher: Patcher) -> None:
    """``sys.stdin`` (so ``input()``) becomes a recorded stream: on replay nothing is read."""
    real = sys.stdin
    if real is None:
        return
    buffer = getattr(real, "buffer", None)
    stream = RecordedStream(engine, "stdin", "<stdin>", buffer, "rb", "<stdin>")
    text = io.TextIOWrapper(stream, encoding=real.encoding, errors=real.errors, line_buffering=True)
    patcher.set(sys, "stdin", text)


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    _install_stdin(engine, patcher)
    children = Children()
    popen = with_engine(RecordedPopen, engine, name="Popen", module="subprocess")
    popen._retrace_children = children
    patcher.set(subprocess, "Popen", popen)
    real_system = os.system

    def system(command: Any) -> int:
        _writes_to_ours(engine)
        return engine.call("os.system", (os.fsdecode(command),), real_system, command)

    patcher.set(os, "system", system)
    for name in ("posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            patcher.set(os, name, _spawner(engine, name, getattr(os, name)))
    patcher.set(os, "getpid", engine.wrap_noarg("os.getpid", _REAL_GETPID))
    patcher.set(os, "getppid", engine.wrap_noarg("os.getppid", _parent_as_the_user_sees_it))
    _install_endings(engine, patcher)
    install_children(engine, patcher, children, _itself)


def _itself(pid: int) -> bool:
    """Whether ``pid`` is this process as the program sees it (its recorded pid, on replay)."""
    ending = _ending
    return pid == (ending.pid if ending is not None and _REAL_GETPID() == ending.real_pid else _REAL_GETPID())


def _spawner(engine: Engine, name: str, real: Callable[..., int]) -> Callable[..., int]:
    """``os.posix_spawn``/``posix_spawnp``: the pid is recorded, and on replay nothing is spawned (waiting for it
    answers as recorded). The environment is no part of the key: it holds secrets."""

    def spawn(path: Any, argv: Any, env: Any, **kwargs: Any) -> int:
        key = (os.fsdecode(path), _command(list(argv), engine), sorted(kwargs))
        return engine.call(f"os.{name}", key, real, path, argv, env, **kwargs)  # type: ignore[no-any-return]

    spawn.__name__ = spawn.__qualname__ = name
    return spawn


def _parent_as_the_user_sees_it() -> int:
    """The recorded program's parent is the one that started ``retrace record``, not the launcher."""
    ending = _ending
    if ending is not None and ending.parent is not None and _REAL_GETPID() == ending.real_pid:
        return ending.parent
    return _REAL_GETPPID()


def _install_endings(engine: Engine, patcher: Patcher) -> None:
    def _exit(status: int) -> None:
        if _ending is not None:
            _ending.now(status)
        _REAL_EXIT(status)

    def kill(pid: int, sig: int) -> None:
        ending = _ending
        if ending is not None and pid == ending.pid:  # the process itself: the program's own doing, on both sides
            if _fatal(sig):
                ending.now(-int(sig))
            with own_signal:  # its handler runs before kill returns, as the program's own doing (no event)
                return _REAL_KILL(_REAL_GETPID(), sig)  # type: ignore[no-any-return]

        def redo(_: Any) -> None:  # replayed: a process this one forked is the replay's own (see the tree)
            engine.signal_child(pid, int(sig))

        return engine.sync("os.kill", (pid, int(sig)), redo, _REAL_KILL, pid, sig)  # type: ignore[no-any-return]

    def killpg(pgid: int, sig: int) -> None:
        """A signal to a process group is an event, never sent on replay; when the group is the process's own,
        the process itself gets it, on both sides (the program's own doing)."""
        own = pgid == 0 or pgid == _REAL_GETPGRP()
        if own and _ending is not None and _fatal(sig):
            _ending.now(-int(sig))
        sent: list[bool] = []
        blocked: list[Any] = []

        def send() -> None:
            sent.append(True)
            if own:  # held back until the event is recorded: its handler runs after it, as on replay
                blocked.append(signal.pthread_sigmask(signal.SIG_BLOCK, [sig]))
            _REAL_KILLPG(pgid, sig)

        with own_signal if own else _NO_SIGNAL:
            try:
                engine.call("os.killpg", ("own group" if own else pgid, int(sig)), send)
            finally:
                if blocked:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked[0])
            if own and not sent:  # replayed: of the group, only this process is the replay's
                _REAL_KILL(_REAL_GETPID(), sig)

    def raise_signal(sig: int) -> None:
        if _ending is not None and _fatal(sig):
            _ending.now(-int(sig))
        with own_signal:
            _REAL_RAISE(sig)

    def abort() -> None:
        if _ending is not None:
            _ending.now(-signal.SIGABRT)
        _REAL_ABORT()

    patcher.set(os, "_exit", _exit)
    patcher.set(os, "kill", kill)
    patcher.set(os, "killpg", killpg)
    if hasattr(signal, "pidfd_send_signal"):
        real_pidfd_send_signal = signal.pidfd_send_signal

        def pidfd_send_signal(pidfd: int, sig: int, siginfo: Any = None, flags: int = 0) -> None:
            engine.call("signal.pidfd_send_signal", (int(sig), flags), real_pidfd_send_signal, pidfd, sig, siginfo,
                        flags)

        patcher.set(signal, "pidfd_send_signal", pidfd_send_signal)
    patcher.set(signal, "raise_signal", raise_signal)
    patcher.set(os, "abort", abort)
