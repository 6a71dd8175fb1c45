"""Fast replay of process recordings: one started interpreter (a *zygote*) forks a replay per recording.

A cold process replay starts an interpreter and imports the replay machinery for every recording, which
costs several times the run of a small program. What a replaying child does before it looks at its
recording (start with the hash seed, the locale variables and the launcher's environment; import the
child entry and the boundaries; take the keys and plugins the launcher hands over) is the same for every
recording started with the same environment. So the launcher starts one zygote per such environment (the
recordings of a project share one hash seed, see ``launcher.hash_seed_for``): ``python -c CHILD_CODE``,
exactly the command and environment of a cold replay, which stops where the child would read its
recording. For each recording the launcher sends the replay's configuration with its own stdout and stderr
pipes (``SCM_RIGHTS``); the zygote forks, the fork puts the pipes in place of its stdout and stderr, goes to
the folder the launcher is in, and replays as the cold child would from there on (``child.replay_here``).
The replayed program cannot tell: ``sys.argv``, ``sys.flags``, ``sys.path``, the hash seed, the environment,
the modules imported, the signal handlers and the descriptors it holds are the cold child's.

The zygote never runs a replay itself, so every fork starts from the same state. It dies with the launcher;
a replay dies with the zygote. When a zygote cannot be used (no ``os.fork``, it died, it would not start),
the launcher replays cold. ``RETRACE_NO_FORKSERVER=1`` turns zygotes off with the fork servers.

Server side: only modules a cold child imports anyway are imported at the top (the fork must not leave
the program a module a cold replay would not have); the launcher's side imports what it needs when it runs.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .protocol import ReplayConfig, ZygoteConfig, decode_config, encode_config

if TYPE_CHECKING:
    import subprocess

MAX_ZYGOTES = 4  # environments served at once by one pytest process; the oldest zygote goes first
MESSAGE_SIZE = 1 << 20  # the largest command: a replay's configuration as JSON
ANSWER_SIZE = 4096
STARTUP_TIMEOUT = 60.0  # seconds for a zygote to say it is ready
_FD_SIZE = struct.calcsize("i")

_exit, _fork, _waitpid, _getppid = os._exit, os.fork, os.waitpid, os.getppid  # taken before boundaries replace them


def usable() -> bool:
    """Whether this platform can fork replays from a zygote."""
    return hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "SCM_RIGHTS")


# -- the launcher's side ------------------------------------------------------------------------------------


class Zygote:
    """The launcher's handle on one zygote: started with ``env`` (a cold replay's environment, without its
    configuration) under ``prefix`` (a sandbox's command, or nothing)."""

    def __init__(self, env: dict[str, str], prefix: list[str], plugins: list[str]) -> None:
        import subprocess

        from .protocol import CHILD_CODE, CHILD_ENV

        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(env)
        env[CHILD_ENV] = encode_config(ZygoteConfig(theirs.fileno(), plugins))
        # stdout and stderr are pipes, as a cold child's are (Python picks its buffering by them at start); the
        # zygote writes nothing there, its forks get pipes of their own.
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            [*prefix, sys.executable, "-c", CHILD_CODE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(theirs.fileno(),))
        theirs.close()
        self.channel.settimeout(STARTUP_TIMEOUT)  # one that hangs while it starts is given up on: replay cold
        hello = self._answer()
        self.channel.settimeout(None)  # a replay takes as long as it takes (it stops itself when stuck)
        self.ready = bool(hello and hello.get("ready"))
        self.why_not = (hello or {}).get("why") or "the zygote ended before it was ready"
        if not self.ready:
            self.close()

    def _answer(self) -> dict[str, Any] | None:
        try:
            data = self.channel.recv(ANSWER_SIZE)
        except OSError:
            return None
        return json.loads(data) if data else None

    def send(self, config: ReplayConfig, stdout: int, stderr: int) -> bool:
        """Replay one recording in a fresh fork whose stdout and stderr are the descriptors given (the caller
        closes its own copies once they are sent); False when the zygote is gone."""
        try:
            socket.send_fds(self.channel, [encode_config(config).encode()], [stdout, stderr])
        except OSError:
            return False
        return True

    def ran(self) -> int | None:
        """The exit status of the replay :meth:`send` started, as a child's return code; None when the zygote
        died before it could tell (the replay then died with it: replay cold)."""
        answer = self._answer()
        return None if answer is None else int(answer["returncode"])

    def close(self) -> None:
        if self.channel.fileno() < 0:
            return
        self.channel.close()  # the zygote reads the end of its commands and leaves
        try:
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - it must go, whatever it does
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


_zygotes: dict[str, Zygote | None] = {}  # by key, oldest first


# Variables that change from test to test and that nothing reads before the replay restores the recorded
# environment (which replaces the process's own, ``env.restore``): they do not part zygotes.
PER_TEST = frozenset({"PYTEST_CURRENT_TEST"})


def key(env: dict[str, str], prefix: list[str]) -> str:
    """What a zygote's forks have in common with a cold child: the command that starts it, its environment."""
    import hashlib

    text = json.dumps([prefix, sys.executable, sorted(item for item in env.items() if item[0] not in PER_TEST)])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def zygote_for(env: dict[str, str], prefix: list[str], plugins: list[str]) -> Zygote | None:
    """The running zygote for a cold replay's environment ``env`` and command ``prefix`` (started now if need
    be), or None: replay cold."""
    if not usable() or os.environ.get("RETRACE_NO_FORKSERVER"):
        return None
    found = key(env, prefix)
    if found in _zygotes:
        _zygotes[found] = _zygotes.pop(found)  # the most recently used goes last
        return _zygotes[found]
    _close_at_exit()
    while len(_zygotes) >= MAX_ZYGOTES:
        oldest = _zygotes.pop(next(iter(_zygotes)))
        if oldest is not None:
            oldest.close()
    zygote = Zygote(env, prefix, plugins)
    # One that would not start is remembered as None: this environment replays cold, without trying again.
    _zygotes[found] = zygote if zygote.ready else None
    return _zygotes[found]


def forget(env: dict[str, str], prefix: list[str]) -> None:
    """The zygote failed: stop it, and replay its environment cold from now on."""
    found = key(env, prefix)
    zygote = _zygotes.get(found)
    if zygote is not None:
        zygote.close()
    if found in _zygotes:
        _zygotes[found] = None


def close_all() -> None:
    while _zygotes:
        zygote = _zygotes.pop(next(iter(_zygotes)))
        if zygote is not None:
            zygote.close()


def _close_at_exit() -> None:
    """Registered with the first zygote, not at import: a zygote's fork must not inherit one more atexit handler
    than a cold child has."""
    if not _Registered.done:
        import atexit

        atexit.register(close_all)
        _Registered.done = True


class _Registered:
    done = False


# -- the zygote's side, in its own interpreter ------------------------------------------------------------


def _receive(channel: socket.socket) -> tuple[bytes, list[int]]:
    """One command and the descriptors sent with it (b"" when the launcher closed the channel). By hand rather
    than ``socket.recv_fds``, which imports ``array``: a module a cold child does not have."""
    data, ancillary, flags, _ = channel.recvmsg(MESSAGE_SIZE, socket.CMSG_SPACE(2 * _FD_SIZE))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable_size = len(payload) - len(payload) % _FD_SIZE
            fds.extend(struct.unpack(f"{usable_size // _FD_SIZE}i", payload[:usable_size]))
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise OSError("a zygote command came truncated")
    return data, fds


def _say(channel: socket.socket, **message: Any) -> None:
    channel.sendall(json.dumps(message).encode())


def _other_threads() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) > 1
    except OSError:
        import threading

        return threading.active_count() > 1


def _preload() -> None:
    """Import now what every process replay imports before the program starts (the forks then find it
    imported): the plugin manager with the library adapters, which installing the boundaries loads first."""
    from ..engine.state import internal
    from ..hooks import manager

    with internal:
        manager.manager()


def serve(config: ZygoteConfig, replay_here: Callable[[ReplayConfig], NoReturn]) -> None:
    """Wait for commands; fork a replay (``replay_here``, the child entry's) for each. The caller has done what a
    cold child does before it reads its configuration's recording."""
    channel = socket.socket(fileno=config.channel)
    _preload()
    if _other_threads():
        _say(channel, ready=False, why="the interpreter started threads before the replay, and a fork loses them")
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the replaying fork and the launcher
    # The forks' collections leave the zygote's objects alone: each would copy every page holding one (half a
    # small replay's CPU time). The one trace a program can see: gc.get_freeze_count() is not 0.
    gc.freeze()
    _say(channel, ready=True)
    while True:
        try:
            data, fds = _receive(channel)
        except OSError:
            return
        if not data:
            return  # the launcher is done
        command = decode_config(data.decode())
        assert isinstance(command, ReplayConfig) and len(fds) == 2
        sys.stdout.flush()
        sys.stderr.flush()
        pid = _fork()
        if pid == 0:
            _replay_in_fork(command, channel, fds, handler, replay_here)
        for fd in fds:
            os.close(fd)
        _, status = _waitpid(pid, 0)
        _say(channel, returncode=os.waitstatus_to_exitcode(status))


def _replay_in_fork(command: ReplayConfig, channel: socket.socket, fds: list[int], handler: Any,
                    replay_here: Callable[[ReplayConfig], NoReturn]) -> NoReturn:
    """In the fork: become what a cold child is when it has read its configuration, and replay. The replay
    leaves as a cold child's does (``os._exit``, or ``SystemExit`` out through ``child.main`` and the
    interpreter's own end: the program's atexit handlers, threads joined, streams flushed)."""
    from .tree import die_with_parent

    try:
        zygote = _getppid()
        channel.close()
        signal.signal(signal.SIGINT, handler)
        for target, fd in zip((1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        if not die_with_parent(zygote):  # the zygote is gone (and so is the launcher, as a rule)
            _exit(1)
        if command.cwd is not None:
            os.chdir(command.cwd)  # where a cold child starts: the launcher's folder
        # This module is the zygote's, which a cold child never imports: the program does not see it either.
        sys.modules.pop(__name__, None)
        parent = sys.modules.get(__name__.rpartition(".")[0])
        if parent is not None and getattr(parent, "zygote", None) is not None:
            delattr(parent, "zygote")
    except BaseException:  # an error of ours before the replay could start
        import traceback

        sys.stderr.write("retrace: the replay could not start in the zygote:\n")
        traceback.print_exc()
        sys.stderr.flush()
        _exit(1)
    replay_here(command)
