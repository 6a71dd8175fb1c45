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
from typing import Any

from ..engine.state import internal
from ..record import Record

# Taken at import, before any boundary replaces them: our own descriptor work is never recorded.
_os_open, _write, _close, _fstat, _lseek, _unlink = os.open, os.write, os.close, os.fstat, os.lseek, os.unlink
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
    """A descriptor we made: the identity of the file behind it, and the stat it answers."""

    __slots__ = ("device", "inode", "stat")

    def __init__(self, device: int, inode: int, stat: os.stat_result) -> None:
        self.device = device
        self.inode = inode
        self.stat = stat


class Descriptors:
    """The descriptors one installation serves, by number."""

    def __init__(self) -> None:
        self._served: dict[int, Served] = {}

    def serve(self, snapshot: Snapshot, real: int | None = None) -> int:
        """The descriptor the program reads ``snapshot`` from: ``real``, the data file's own (while recording),
        else a new read-only one over the recorded bytes (on replay), positioned at 0."""
        if real is not None:
            fd, mine = real, snapshot.stat
        else:
            fd = _anonymous(snapshot.content)
            mine = _fstat(fd) if snapshot.stat is not None else None
        if snapshot.stat is not None and mine is not None:
            self._served[fd] = Served(mine.st_dev, mine.st_ino, snapshot.stat)
        return fd

    def stat(self, fd: int) -> os.stat_result | None:
        """The recorded stat that descriptor ``fd`` answers, or None when it is not (or no longer) ours:
        numbers are reused after a close we do not see, so the file behind the number is checked."""
        served = self._served.get(fd)
        if served is None:
            return None
        try:
            now = _fstat(fd)
        except OSError:
            now = None
        if now is not None and now.st_ino == served.inode and now.st_dev == served.device:
            return served.stat
        self._served.pop(fd, None)
        return None


def _anonymous(content: bytes) -> int:
    if _memfd_create is not None:
        try:
            writable = _memfd_create("retrace", os.MFD_CLOEXEC)
        except OSError:  # refused (a sandbox's seccomp filter): the temporary file below
            pass
        else:
            try:
                _write_all(writable, content)
                # Read-only as the data file was: os.write on it fails, mmap refuses ACCESS_WRITE.
                return _read_only_in_place(writable, f"/proc/self/fd/{writable}")
            except OSError:  # no /proc: the memory file itself, rewound
                _lseek(writable, 0, os.SEEK_SET)
                return writable
    import tempfile

    with internal:
        writable, name = tempfile.mkstemp(prefix=".retrace-")
    try:
        _write_all(writable, content)
        return _read_only_in_place(writable, name)
    finally:
        _unlink(name)


def _read_only_in_place(writable: int, path: str) -> int:
    """``path`` opened read-only under the number of ``writable``, which it replaces: the lowest free number,
    the one the program's own open would have got."""
    read_only = _os_open(path, _READ_ONLY)
    try:
        return os.dup2(read_only, writable, inheritable=False)
    finally:
        _close(read_only)


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[_write(fd, view):]
