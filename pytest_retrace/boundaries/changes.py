"""Changes to the file system: recorded with their outcome, never performed on replay.

``mkdir``, ``rmdir``, ``remove``/``unlink``, ``rename``/``replace``, ``chmod``/``chown``/``utime``, ``link``/
``symlink``, ``truncate``, ``mkfifo``/``mknod`` and extended attributes are events keyed by their arguments:
while recording they run, on replay the recorded outcome (None, or the error) is handed back. ``os.makedirs``,
``removedirs``, ``renames``, ``shutil``, ``tempfile`` and ``pathlib`` are built on these, so they follow.

A descriptor opened for writing (``os.open`` with a creating, truncating or writing flag; ``open()`` for
writing) is *written*: its ``os.write`` calls and its ``os.fstat`` are events. While recording the descriptor is
the file's own; on replay it is an anonymous memory file holding what the recorded open found (its size, and
its bytes when the descriptor can read), so ``fileno()``, ``os.fsync``, ``lseek`` and reading back what was
written work on both sides and the disk is never touched. What the program later reads back through a path is
a recorded read like any other.

Paths of every kind are changes (code and live paths too: a replay changes nothing); only our own work, inside
the gate, passes through. Calls given a ``dir_fd`` pass through: on replay the guard (``engine/guard.py``)
refuses them.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.base import payload
from ..engine.state import internal, tls
from ..paths import keyed
from .descriptors import ByIdentity, memory_file, read_all, write_all

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher

# Functions that change the file system, by the name the program calls them by.
CHANGES = ("mkdir", "rmdir", "remove", "unlink", "rename", "replace", "chmod", "chown", "lchown", "utime", "link",
           "symlink", "truncate", "mkfifo", "mknod", "setxattr", "removexattr")
# The same on a descriptor: an event when the descriptor is a written one, else they pass through.
ON_DESCRIPTORS = ("fchmod", "fchown", "ftruncate")
# Changes that make their path (changing one a recording made is no change to what was there before it).
_MAKING = ("mkdir", "mkfifo", "mknod", "symlink", "link")
# Reads of a path that a change may have made (a symlink's target, attributes), answered from the recording.
READS = ("readlink", "listxattr", "getxattr")
DIR_FDS = ("dir_fd", "src_dir_fd", "dst_dir_fd")
# os.open flags that write or create: such an open is a change.
WRITING = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_TMPFILE", 0))

_fstat, _close, _ftruncate, _REAL_UNLINK = os.fstat, os.close, os.ftruncate, os.unlink


def plain(value: Any) -> Any:
    """An argument as a call key holds it: a path-like as its path, one under the project root as ``<project>/…``
    (the same in every checkout)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return keyed(value)  # (only a path string is keyed: any other value is as it is)


def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    key = tuple(plain(a) for a in args)
    return key + (tuple(sorted((k, plain(v)) for k, v in kwargs.items())),) if kwargs else key


class ChangeBoundary:
    """The file system changes of one installation."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # The descriptors opened for writing: the path each was opened as.
        self.written: ByIdentity[str | bytes] = ByIdentity()
        self._os_open = os.open
        self.is_code: Callable[[str | bytes], bool] | None = None  # the installation's classifier says

    def note_code(self, path: Any, name: str) -> None:
        """A recording changes ``path`` (by ``name``, a change's or ``open``): say so to it when the path counts
        as code and was there before it (see Recorder.code_changed); one it makes is its own to change."""
        if self.is_code is None or not isinstance(path, (str, bytes, os.PathLike)):
            return
        recording = tls.engine if tls.engine is not None else self._engine
        noted, made = getattr(recording, "code_changed", None), getattr(recording, "code_made", None)
        if noted is None or made is None:  # not a recording
            return
        with internal:
            text = os.path.abspath(os.fsdecode(path))
            if text in made or not self.is_code(text):
                return
            if name in _MAKING or (name == "open" and not os.path.lexists(text)):
                made.add(text)
            else:
                noted.append(text)

    def change(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        """``os.<name>`` as an event (``real``: the function it replaces)."""
        engine, written = self._engine, self.written
        event = f"os.{name}"

        def changed(*args: Any, **kwargs: Any) -> Any:
            # Passing through (a service's own threads, outside every recording): no key to build.
            if tls.gate or engine.passes() or (kwargs and any(kwargs.get(k) is not None for k in DIR_FDS)):
                return real(*args, **kwargs)
            if args and type(args[0]) is int:  # a descriptor given for the path: a written one is known by path
                path = written.get(args[0])
                if path is None:
                    return real(*args, **kwargs)
                return engine.call(event, (path, *_key(args[1:], kwargs)), real, *args, **kwargs)
            self.note_code(args[0] if args else None, name)
            return engine.call(event, _key(args, kwargs), real, *args, **kwargs)

        changed.__name__ = changed.__qualname__ = name
        return changed

    def on_descriptor(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        """``os.f<name>`` (fchmod, fchown, ftruncate) on a written descriptor as an event; on replay the memory
        file behind it is changed alike (a truncation shows in what is read back), the disk never."""
        engine, written = self._engine, self.written
        event = f"os.{name}"

        def changed(fd: int, *args: Any) -> Any:
            path = None if tls.gate else written.get(fd)
            if path is None:
                return real(fd, *args)
            done: list[bool] = []

            def run() -> None:
                done.append(True)
                real(fd, *args)

            engine.call(event, (path, *args), run)
            if not done and name == "ftruncate":  # replayed: the memory file follows
                with internal:
                    _ftruncate(fd, *args)
            return None

        changed.__name__ = changed.__qualname__ = name
        return changed

    def read(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        """A read of what a change may have made (``readlink``, extended attributes): an event."""
        engine = self._engine
        event = f"os.{name}"

        def read(*args: Any, **kwargs: Any) -> Any:
            if tls.gate or not args or type(args[0]) is int or kwargs.get("dir_fd") is not None:
                return real(*args, **kwargs)
            return engine.call(event, _key(args, kwargs), real, *args, **kwargs)

        read.__name__ = read.__qualname__ = name
        return read

    def open(self, path: Any, flags: int, mode: int) -> int:  # noqa: A003 - os.open's writing side
        """``os.open`` with a writing or creating flag: an event whose value is what the program can see of the
        file through the descriptor (its size; its bytes when it reads too)."""
        key = keyed(os.fspath(path))
        holder: list[int] = []
        self.note_code(path, "open")

        def opened() -> list[Any]:
            fd = self._os_open(path, flags, mode)
            holder.append(fd)
            try:
                now = _fstat(fd)
                readable = flags & os.O_ACCMODE != os.O_WRONLY and stat_module.S_ISREG(now.st_mode)
                return [now.st_size, read_all(fd, now.st_size) if readable and now.st_size else None]
            except BaseException:
                _close(fd)
                raise

        size, content = self._engine.call("os.open", (key, flags, mode), opened)
        fd = holder[0] if holder else memory_file(content or b"", size, flags)
        self.written.track(fd, key)
        return fd

    def write(self, real: Callable[[int, Any], int]) -> Callable[[int, Any], int]:
        """``os.write``: on a written descriptor an event; on replay the memory file takes the bytes too."""
        engine, written = self._engine, self.written

        def write(fd: int, data: Any) -> int:
            path = None if tls.gate else written.get(fd)
            if path is None:
                return real(fd, data)
            done: list[bool] = []

            def run() -> int:
                done.append(True)
                return real(fd, data)

            count: int = engine.call("os.write", (path, payload(data)), run)
            if not done:  # replayed: what the recording wrote goes to the memory file
                write_all(fd, memoryview(data).cast("B")[:count])
            return count

        return write

    def fstat(self, fd: int, real: Callable[[int], os.stat_result]) -> os.stat_result | None:
        """The stat of a written descriptor as an event (None: ``fd`` is no written descriptor)."""
        path = None if tls.gate else self.written.get(fd)
        if path is None:
            return None
        return self._engine.call("os.fstat", (path,), real, fd)  # type: ignore[no-any-return]

    def close(self, real: Callable[[int], None]) -> Callable[[int], None]:
        written = self.written

        def close(fd: int) -> None:
            written.forget(fd)
            real(fd)

        return close


def install(changes: ChangeBoundary, patcher: Patcher) -> None:
    """Install the changes (``os.open`` and ``os.fstat`` are the files boundary's, which hands writing opens and
    written descriptors to ``changes``)."""
    for name in CHANGES:
        if hasattr(os, name):
            patcher.set(os, name, changes.change(name, getattr(os, name)))
    for name in ON_DESCRIPTORS:
        if hasattr(os, name):
            patcher.set(os, name, changes.on_descriptor(name, getattr(os, name)))
    for name in READS:
        if hasattr(os, name):
            patcher.set(os, name, changes.read(name, getattr(os, name)))
    patcher.set(os, "write", changes.write(os.write))
    patcher.set(os, "close", changes.close(os.close))
    patcher.when_imported("shutil", lambda shutil: _remove_trees_by_path(shutil, patcher))
    patcher.when_imported("tempfile", lambda tempfile: _unlink_by_name(tempfile, patcher))


def _unlink_by_name(tempfile: Any, patcher: Patcher) -> None:
    """A named temporary file is removed at close by the ``os.unlink`` its closer took as a default argument at
    import (``close``, Python 3.12+ ``cleanup``): the installed one instead."""
    closer = getattr(tempfile, "_TemporaryFileCloser", None)
    unlink = os.unlink
    for name in ("close", "cleanup"):
        function = vars(closer).get(name) if closer is not None else None
        defaults = getattr(function, "__defaults__", None)
        if defaults and any(d is _REAL_UNLINK for d in defaults):
            patcher.set(function, "__defaults__", tuple(unlink if d is _REAL_UNLINK else d for d in defaults))


def _remove_trees_by_path(shutil: Any, patcher: Patcher) -> None:
    """``shutil.rmtree`` removes a tree through descriptors of its folders (``unlink(name, dir_fd=…)``), which no
    path-keyed event can answer: it removes by path instead, as it does where those calls are missing."""
    if getattr(shutil, "_use_fd_functions", False):
        patcher.set(shutil, "_use_fd_functions", False)
    if "_rmtree_impl" in vars(shutil) and hasattr(shutil, "_rmtree_unsafe"):  # Python 3.13+: chosen at import
        patcher.set(shutil, "_rmtree_impl", shutil._rmtree_unsafe)
