"""The replay guard: a replay refuses every real effect that no recorded call answered.

Boundaries answer a replay's external calls from the recording and never run the real ones. What reaches the
world anyway (a call no boundary intercepts: ``_socket.socket().connect``, ``os.posix_spawn``, a write through
a descriptor opened by C code, a ``dir_fd`` call; or a call on a new path of the code) is seen here, through
the interpreter's audit hooks (PEP 578), below every Python-level patch, and refused before it happens:

- a file created, written, truncated, removed, renamed, linked or changed in mode, owner, times or attributes;
- a network connection, bind, datagram or name look-up, at any layer;
- a process started (``subprocess``, ``posix_spawn``, ``exec``, ``system``; forks are the recorded tree's own);
- a signal to another process (itself and its own children are the program's own doing).

A refusal is reported like any call the recording does not have: the replay diverges there, with the Python
stack of the effect; on a crash recording's new path, ``UnrecordedCall`` is raised into the program instead.
Only our own work, inside the gate, passes (not a finalizer the garbage collector runs there: its moment is
not the recording's, see ``boundaries/collector.py``). Reads stay allowed: the program's own code is read live.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .state import internal, tls

_getpid, _lstat = os.getpid, os.lstat  # taken before the boundaries replace them

# os.open flags that write or create.
WRITING = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_TMPFILE", 0))
# Files whose opening for writing changes nothing.
HARMLESS_FILES = frozenset({"/dev/null", b"/dev/null"})
MEMORY_DATABASES = (":memory:", "", "file::memory:")

Refuse = Callable[[str, Any], None]


def _open_changes(args: tuple[Any, ...]) -> Any:
    path, mode, flags = args[:3]
    if type(path) is int or not flags & WRITING or path in HARMLESS_FILES or (mode is not None and tls.opener):
        return None
    return (path, flags)


def _changed(shown: int, dir_fd_at: int | None) -> Callable[[tuple[Any, ...]], Any]:
    """A change to the path first in the event's arguments (``dir_fd_at``: where its ``dir_fd`` is): its first
    ``shown`` arguments, or None when nothing is at the path."""

    def shows(args: tuple[Any, ...]) -> Any:
        dir_fd = args[dir_fd_at] if dir_fd_at is not None and len(args) > dir_fd_at else -1
        return None if _missing(args[0], dir_fd) else args[:shown]

    return shows


def _made(args: tuple[Any, ...]) -> Any:
    return args[:1]


def _first_two(args: tuple[Any, ...]) -> Any:
    return args[:2]


def _missing(path: Any, dir_fd: Any) -> bool:
    """Whether nothing is at ``path``: changing, moving or removing it changes nothing (the call fails)."""
    if not isinstance(path, (str, bytes)):
        return False
    try:
        _lstat(path, dir_fd=dir_fd if type(dir_fd) is int and dir_fd >= 0 else None)
    except FileNotFoundError:
        return True
    except (OSError, ValueError, TypeError):
        return False
    return False


def _address(args: tuple[Any, ...]) -> Any:
    return args[1:2]  # args[0] is the socket object


def _command(args: tuple[Any, ...]) -> Any:
    return args[:2]  # the program and its arguments (not the environment: it holds secrets)


def _database(args: tuple[Any, ...]) -> Any:
    database = os.fspath(args[0]) if args and isinstance(args[0], (str, bytes, os.PathLike)) else args[:1]
    if isinstance(database, bytes):
        database = os.fsdecode(database)
    if isinstance(database, str) and (database in MEMORY_DATABASES or database.startswith("file::memory:")
                                      or "mode=memory" in database):
        return None
    return (database,)


def _signal(args: tuple[Any, ...]) -> Any:
    pid = args[0]
    return None if pid == _getpid() or _descendant(pid) else args[:2]


def _descendant(pid: int) -> bool:
    """Whether process ``pid`` is one this process started (its child or theirs): the recorded tree."""
    own = _getpid()
    for _ in range(16):
        if pid <= 1:
            return False
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                pid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == own:
            return True
    return False


# Audit events that change the world, and what of their arguments a report shows (None: this one is harmless,
# as a change to a path where nothing is: it fails, changing nothing).
WATCHED: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    "open": _open_changes,
    # (audit arguments: remove/rmdir (path, dir_fd), chmod (path, mode, dir_fd), chown and utime (path, …, dir_fd)
    # at 3, rename and link (src, dst, src_dir_fd, dst_dir_fd); truncate, chflags and the xattrs have none)
    **dict.fromkeys(("os.remove", "os.rmdir"), _changed(1, 1)),
    "os.chmod": _changed(1, 2),
    **dict.fromkeys(("os.chown", "os.utime"), _changed(1, 3)),
    **dict.fromkeys(("os.truncate", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr"), _changed(1, None)),
    **dict.fromkeys(("os.rename", "os.link"), _changed(2, 2)),
    **dict.fromkeys(("os.mkdir", "os.symlink"), _made),
    **dict.fromkeys(("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"), _address),
    **dict.fromkeys(("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
                     "socket.sethostname"), _first_two),
    **dict.fromkeys(("subprocess.Popen", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.forkpty",
                     "os.startfile", "webbrowser.open"), _command),
    **dict.fromkeys(("os.kill", "os.killpg"), _signal),
    "sqlite3.connect": _database,
}


def install(refuse: Refuse) -> None:
    """From now on, in this process and the processes it forks, refuse real effects outside our gate:
    ``refuse(event, shown_arguments)`` reports the effect and must raise (or end the process). An audit hook
    stays for the life of the process: install it only in a process that replays."""
    watched = WATCHED
    _replaying[:] = [_getpid()]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        shows = watched.get(event)
        if shows is None or (tls.gate and not tls.collecting):  # (a finalizer the collector runs is not ours)
            return
        if event == "os.kill" and args[0] in _replaying:  # a forked child signals the replay it came from
            return
        with internal:
            shown = shows(args)
        if shown is None:
            return
        if _getpid() != _replaying[-1]:  # a forked child that replays nothing: no engine answers for it
            from ..errors import UnrecordedCall

            raise UnrecordedCall(f"{event}{shown!r}: a forked process of the replay may not change the world")
        collecting, tls.collecting = tls.collecting, 0  # reporting it is our own work
        try:
            refuse(event, _plain(shown))
        finally:
            tls.collecting = collecting

    _refuse_unaudited(refuse)
    sys.addaudithook(hook)


_replaying: list[int] = []  # the processes of the tree down to this one, the last this one when it replays


def adopt() -> None:
    """This process, forked from a replay, replays its own part: its refusals are reported by its engine."""
    _replaying.append(_getpid())


def _refuse_unaudited(refuse: Refuse) -> None:
    """The ways to start a process that raise no audit event: ``_posixsubprocess.fork_exec`` (multiprocessing's
    spawn starts the interpreter through it)."""
    try:
        import _posixsubprocess
    except ImportError:
        return
    real = _posixsubprocess.fork_exec

    def fork_exec(*args: Any) -> Any:
        if not tls.gate:
            refuse("subprocess.fork_exec", _plain(tuple(args[:2])))
        return real(*args)

    _posixsubprocess.fork_exec = fork_exec


def _plain(value: Any) -> Any:
    """What a report can hold of an argument: plain values as they are, anything else as its repr."""
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)
