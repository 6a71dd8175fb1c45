"""Descriptors that serve a data file's recorded bytes: what a recorded ``open``/``os.open`` hands the program.

A read of a regular data file records the file's content and stat as they were at open. While recording the
program reads the data file's own descriptor; on replay it gets a real descriptor holding the recorded bytes:
an anonymous memory file (Linux ``memfd``), else an unlinked temporary file, opened read-only as the data file
was. So ``fileno()``, ``mmap``, ``select`` and ``os.read/pread/lseek`` work natively on both sides; only
``os.fstat`` needs an answer of ours, the same on both sides: the data file's stat as recorded at open (not
the memory file's).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..engine.state import internal
from ..record import Record

# Taken at import, before any boundary replaces them: our own descriptor work is never recorded.
_os_open, _write, _close, _fstat, _lseek, _unlink = os.open, os.write, os.close, os.fstat, os.lseek, os.unlink
_ftruncate = os.ftruncate
_memfd_create = getattr(os, "memfd_create", None)
_READ_ONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class Snapshot(Record):
    """A regular data file as a recorded open found it: its bytes and its stat (None in recordings made
    before the stat was kept)."""

    __slots__ = ("content", "stat")

    def __init__(self, content: bytes, stat: os.stat_result | None) -> None:
        self.content = content
        self.stat = stat

    @staticmethod
    def value(content: bytes, stat: os.stat_result) -> list[Any]:
        """The event's value: ``[content, stat fields, stat's named extras]``, plain msgpack; the codec's
        generic form of a ``stat_result`` costs some 60 µs an event to encode, this one 2 µs."""
        fields, extras = stat.__reduce__()[1]  # type: ignore[str-unpack]  # (sequence, extras)
        return [content, list(fields), extras]

    @classmethod
    def of(cls, value: Any) -> Snapshot:
        """The snapshot an event's value holds (bare bytes in older recordings)."""
        if isinstance(value, (bytes, bytearray)):
            return cls(bytes(value), None)
        return cls(value[0], os.stat_result(value[1], value[2]))


class Served(Record):
    """A descriptor serving a data file: the identity (device, inode) of the file behind it, and the stat it
    answers."""

    __slots__ = ("device", "inode", "stat")

    def __init__(self, device: int, inode: int, stat: os.stat_result) -> None:
        self.device = device
        self.inode = inode
        self.stat = stat


# Memory files made on replay, remembered by identity; beyond this many the oldest are forgotten.
MADE_LIMIT = 1 << 16


class Descriptors:
    """The descriptors one installation serves.

    Numbers are reused after a close we do not see, so a number counts as ours only while the file behind it
    is still the one served. A memory file's identity is its own for good (its inode number is never given to
    another while it lives), so a duplicate of its descriptor (``os.dup``, ``fdopen``) answers alike; a data
    file's own descriptor (while recording) and a temporary file's are known by number only.
    """

    def __init__(self) -> None:
        self._by_number: dict[int, Served] = {}
        self._made: dict[tuple[int, int], os.stat_result] = {}

    def serve(self, snapshot: Snapshot, real: int | None = None) -> int:
        """The descriptor the program reads ``snapshot`` from: ``real``, the data file's own (while recording),
        else a new read-only one over the recorded bytes (on replay), positioned at 0."""
        stat = snapshot.stat
        if real is not None:
            if stat is not None:
                self._by_number[real] = Served(stat.st_dev, stat.st_ino, stat)
            return real
        fd, lasting = _anonymous(snapshot.content)
        if stat is not None:
            mine = _fstat(fd)
            if lasting:
                if len(self._made) >= MADE_LIMIT:
                    try:
                        del self._made[next(iter(self._made))]
                    except (KeyError, RuntimeError):  # another thread forgot one first
                        pass
                self._made[mine.st_dev, mine.st_ino] = stat
            else:
                self._by_number[fd] = Served(mine.st_dev, mine.st_ino, stat)
        return fd

    def stat(self, fd: int, now: os.stat_result) -> os.stat_result | None:
        """The recorded stat descriptor ``fd`` answers (``now``: what it answers for real), or None when it
        serves no data file (or no longer does)."""
        served = self._by_number.get(fd)
        if served is not None:
            if now.st_ino == served.inode and now.st_dev == served.device:
                return served.stat
            self._by_number.pop(fd, None)
        return self._made.get((now.st_dev, now.st_ino)) if self._made else None


T = TypeVar("T")


_REGISTRIES: weakref.WeakSet[ByIdentity[Any]] = weakref.WeakSet()


def replacing(fds: list[int]) -> Callable[[], None]:
    """Descriptors ``fds`` are about to be made to refer to copies of their files (a self-check's fork takes its
    own): what every registry knows of them now. Returns what makes the registries know the copies so."""
    known = [(registry, fd, value) for registry in list(_REGISTRIES) for fd in fds
             if (value := registry.get(fd)) is not None]

    def again() -> None:
        for registry, fd, value in known:
            registry.track(fd, value)

    return again


class ByIdentity(Generic[T]):
    """Descriptors known by number, each with what it is to us, for as long as the file behind the number is the
    one it was: a number is reused after a close we do not see (a file object's), so its identity (device, inode)
    is checked when asked."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[T, int, int]] = {}
        _REGISTRIES.add(self)

    def track(self, fd: int, value: T) -> None:
        try:
            now = _fstat(fd)
        except OSError:
            return
        self._known[fd] = (value, now.st_dev, now.st_ino)

    def get(self, fd: Any) -> T | None:
        """What descriptor ``fd`` is to us now (None: nothing)."""
        known = self._known.get(fd) if type(fd) is int else None
        if known is None:
            return None
        try:
            now = _fstat(fd)
        except OSError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != known[1:]:
            self._known.pop(fd, None)
            return None
        return known[0]

    def forget(self, fd: int) -> None:
        self._known.pop(fd, None)


def _anonymous(content: bytes, writable: bool = False) -> tuple[int, bool]:
    """A descriptor over ``content`` at offset 0 (read-only unless ``writable``), and whether its file is a
    memory file (an identity of its own)."""
    if _memfd_create is not None:
        try:
            fd = _memfd_create("retrace", os.MFD_CLOEXEC)
        except OSError:  # refused (a sandbox's seccomp filter): the temporary file below
            pass
        else:
            try:
                write_all(fd, content)
                if writable:
                    _lseek(fd, 0, os.SEEK_SET)
                    return fd, True
                # Read-only as the data file was: os.write on it fails, mmap refuses ACCESS_WRITE.
                return _reopened(fd, f"/proc/self/fd/{fd}", _READ_ONLY), True
            except OSError:  # no /proc: the memory file itself, rewound
                _lseek(fd, 0, os.SEEK_SET)
                return fd, True
    import tempfile

    with internal:
        fd, name = tempfile.mkstemp(prefix=".retrace-")
    try:
        write_all(fd, content)
        if writable:
            _lseek(fd, 0, os.SEEK_SET)
            return fd, False
        return _reopened(fd, name, _READ_ONLY), False
    finally:
        with internal:
            _unlink(name)


def memory_file(content: bytes, size: int, flags: int) -> int:
    """A descriptor standing in, on replay, for a file opened for writing with ``flags``: an anonymous memory
    file of ``size`` bytes that begins with ``content``, opened with the access and append mode of ``flags``
    (its number the lowest free one, as the program's own open would have got)."""
    with internal:  # our own work: the replay guard lets it through
        fd, _ = _anonymous(content, writable=True)
        if size > len(content):
            _ftruncate(fd, size)
        wanted = flags & (os.O_ACCMODE | os.O_APPEND)
        if wanted != os.O_RDWR:
            try:
                return _reopened(fd, f"/proc/self/fd/{fd}", wanted | getattr(os, "O_CLOEXEC", 0))
            except OSError:  # no /proc: the memory file as it is, readable and writable
                pass
        return fd


def _reopened(fd: int, path: str, flags: int) -> int:
    """``path`` (the file behind ``fd``) opened again with ``flags`` under the number of ``fd``, which it
    replaces."""
    again = _os_open(path, flags)
    try:
        return os.dup2(again, fd, inheritable=False)
    finally:
        _close(again)


def write_all(fd: int, content: bytes | memoryview) -> None:
    view = memoryview(content)
    while view:
        view = view[_write(fd, view):]


def read_all(fd: int, size: int) -> bytes:
    """What descriptor ``fd`` holds from offset 0 on (``size``: what its stat says), its offset left alone."""
    chunks: list[bytes] = []
    offset = 0
    while True:
        want = size - offset + 1 if offset < size else 1 << 16
        chunk = os.pread(fd, want, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
        if offset == size and len(chunk) < want:  # the size stat gave and not a byte more: the end, one read
            return b"".join(chunks)  # (files of /proc and /sys say 0 and may read short: read to the end)
