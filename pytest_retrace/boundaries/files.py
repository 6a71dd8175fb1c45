"""Files: reads of data files, their stat/listdir/scandir, and writes (as fingerprints).

A *data* file is any file that is not code. Code is Python sources, bytecode and
extension modules, everything under the interpreter's prefixes (stdlib,
site-packages), every file inside a package (a folder with an ``__init__.py`` at or
above it: templates, static files, SQL read with ``open_resource``) and every file in a
folder declared as code (a Flask app's template and static folders). Code is read live
and never an event, so a warm cache (a template loaded by an earlier request) cannot
change what a recording holds. Fidelity comes first: a data file beside a script, or in
a data folder outside packages, is data. Paths matching a project's live patterns are
read for real on replay instead.
Call keys hold a path under the project root as ``<project>/…`` (:func:`~pytest_retrace.paths.keyed`): the
same call in every checkout.

A read of a regular file (``open`` for reading, ``os.open`` read-only) records its
whole content and its stat at open; on both sides the program then reads a real
descriptor holding those bytes (:mod:`.descriptors`), so the file object is the
type a plain ``open`` returns and everything done with its descriptor behaves
alike. Other files (devices, FIFOs) record each read call.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import glob
import io
import itertools
import os
import pathlib
import stat as stat_module
from typing import TYPE_CHECKING, Any

from ..engine.state import tls
from ..frames import LIBRARY_PREFIXES, PACKAGE_DIR
from ..paths import keyed
from .changes import WRITING, ChangeBoundary
from .changes import install as install_changes
from .descriptors import Descriptors, Snapshot, memory_file, read_all
from .streams import RecordedStream, RecordedWriter, UpdatableFile

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyi", ".so", ".pyd", ".pth")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)  # what open() uses for reading
# open() modes that only read, and os.open flags that would change or create a file (or open no data):
# these keep the paths they had (writes are fingerprinted, the rest passes through).
READ_MODES = frozenset({"r", "rt", "tr", "rb", "br"})
NOT_READ_ONLY = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_EXCL
                 | getattr(os, "O_TMPFILE", 0) | getattr(os, "O_PATH", 0) | getattr(os, "O_DIRECTORY", 0))


_real_stat = os.stat  # the classifier looks at the file system itself, never through a boundary


class Classifier:
    """Tells data paths from code and live paths; answers are cached per absolute path."""

    def __init__(self, live_patterns: list[str]) -> None:
        ours = (os.path.join(PACKAGE_DIR, ""), os.path.join(os.path.realpath(PACKAGE_DIR), ""))
        self.prefixes = (*LIBRARY_PREFIXES, *ours)
        self.live_patterns = list(live_patterns)
        self._cache: dict[str, str] = {}
        self._packaged: dict[str, bool] = {}  # folder: whether it is, or is inside, a package
        self._clears = 0  # times the cache was cleared

    def add_code_folders(self, folders: list[str]) -> None:
        """Count every file under ``folders`` as code from now on (a service declares them as its app starts)."""
        new = tuple(os.path.join(os.path.abspath(f), "") for f in folders)
        if not set(new) <= set(self.prefixes):
            self.prefixes = (*self.prefixes, *(f for f in new if f not in self.prefixes))
            self._cache.clear()
            self._clears += 1

    def _in_package(self, folder: str) -> bool:
        """Whether ``folder`` (or a file, whose ``__init__.py`` is then not found) is a package or inside one."""
        known = self._packaged.get(folder)
        if known is None:
            try:
                _real_stat(os.path.join(folder, "__init__.py"))
                known = True
            except OSError:
                parent = os.path.dirname(folder)
                known = parent != folder and self._in_package(parent)
            if len(self._packaged) < 100_000:
                self._packaged[folder] = known
        return known

    def mark(self) -> tuple[int, int, int]:
        """Where its answers stand now, for :meth:`since`."""
        return len(self._cache), len(self._packaged), self._clears

    def since(self, mark: tuple[int, int, int]) -> list[Any]:
        """The answers it found since ``mark`` (all of them, if it forgot them meanwhile), for :meth:`learn`."""
        cached, packaged, _ = mark if mark[2] == self._clears else (0, 0, -1)
        return [list(itertools.islice(self._cache.items(), cached, None)),
                list(itertools.islice(self._packaged.items(), packaged, None))]

    def learn(self, answers: list[Any]) -> None:
        """Take these answers as its own (a self-check's fork: the replay classifies a path as the run did, though
        the run went on to change the disk: a folder that became a package, say)."""
        cache, packaged = answers  # [path, kind] and [folder, whether a package] pairs
        self._cache.update(cache)
        self._packaged.update(packaged)

    def kind(self, path: str | bytes) -> str:
        """``data``, ``code`` or ``live``."""
        text = os.fsdecode(path)
        absolute = text if text.startswith("/") else os.path.abspath(text)
        kind = self._cache.get(absolute)
        if kind is None:
            if (absolute.endswith(CODE_SUFFIXES) or absolute.startswith(self.prefixes)
                    or self._in_package(absolute)):
                kind = "code"
            elif any(fnmatch.fnmatch(absolute, p) or fnmatch.fnmatch(text, p) for p in self.live_patterns):
                kind = "live"
            else:
                kind = "data"
            if len(self._cache) < 100_000:
                self._cache[absolute] = kind
        return kind


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, bytes, os.PathLike))


class DirEntry:
    """A recorded ``os.DirEntry``: the answers ``os.scandir`` gave, served on both sides."""

    __slots__ = ("name", "path", "_is_dir", "_is_file", "_is_symlink", "_inode", "_is_dir_nf", "_is_file_nf")

    def __init__(self, directory: Any, state: list[Any]) -> None:
        self.name = state[0]
        self.path = os.path.join(directory, self.name)
        (self._is_dir, self._is_file, self._is_symlink, self._inode, self._is_dir_nf, self._is_file_nf) = state[1:]

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._is_dir if follow_symlinks else self._is_dir_nf

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._is_file if follow_symlinks else self._is_file_nf

    def is_symlink(self) -> bool:
        return self._is_symlink

    def is_junction(self) -> bool:  # (Python 3.12+: os.walk asks; a POSIX file system has none)
        return False

    def inode(self) -> int:
        return self._inode

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return os.stat(self.path, follow_symlinks=follow_symlinks)

    def __fspath__(self) -> Any:
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class ScandirIterator:
    """What ``os.scandir`` returns for a data directory: an iterator and context manager."""

    def __init__(self, entries: list[DirEntry]) -> None:
        self._entries = iter(entries)

    def __iter__(self) -> ScandirIterator:
        return self

    def __next__(self) -> DirEntry:
        return next(self._entries)

    def close(self) -> None:
        self._entries = iter(())

    def __enter__(self) -> ScandirIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entry_state(entry: os.DirEntry[Any]) -> list[Any]:
    def safe(fn: Any, *a: Any, **kw: Any) -> bool:
        try:
            return bool(fn(*a, **kw))
        except OSError:
            return False

    return [
        entry.name,
        safe(entry.is_dir),
        safe(entry.is_file),
        safe(entry.is_symlink),
        entry.inode(),
        safe(entry.is_dir, follow_symlinks=False),
        safe(entry.is_file, follow_symlinks=False),
    ]


@functools.lru_cache(maxsize=8)
def classifier_for(live_paths: tuple[str, ...]) -> Classifier:
    """One classifier per set of live patterns: a service recording request after request reuses it."""
    return Classifier(list(live_paths))


class FileBoundary:
    """The file system functions of one installation: reads of data files are events, writes fingerprinted."""

    def __init__(self, engine: Engine, classifier: Classifier, changes: ChangeBoundary) -> None:
        self._engine = engine
        self._classifier = classifier
        self._changes = changes
        self._open = io.open
        self._os_open, self._fstat = os.open, os.fstat
        self._stat, self._lstat = os.stat, os.lstat
        self._listdir, self._scandir = os.listdir, os.scandir
        self._descriptors = Descriptors()

    def _is_data(self, path: Any) -> bool:
        return not tls.gate and _is_path(path) and self._classifier.kind(os.fspath(path)) == "data"

    def _snapshot(self, file: Any, flags: int, holder: list[int], whole: bool = False) -> list[Any] | None:
        """Open ``file`` for real and read what a regular file holds now (None for other files). The
        descriptor, still at offset 0, goes into ``holder``: while recording the program reads the real file.
        ``whole``: a file object is wanted, which a directory cannot give."""
        fd = self._os_open(file, flags)
        try:
            stat = self._fstat(fd)
            content = read_all(fd, stat.st_size) if stat_module.S_ISREG(stat.st_mode) else None
        except BaseException:
            os.close(fd)
            raise
        if whole and stat_module.S_ISDIR(stat.st_mode):
            os.close(fd)
            self._open(file, "rb", buffering=0).close()  # raises open()'s own IsADirectoryError
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(file))  # (a race)
        holder.append(fd)
        self._changes.written.forget(fd)  # the number is a read's now (a file object closed it unseen)
        return None if content is None else Snapshot.value(content, stat)
    def open(  # noqa: A003 - it replaces the builtin
        self, file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None, errors: str | None = None,
        newline: str | None = None, closefd: bool = True, opener: Any = None,
    ) -> Any:
        real_open, engine = self._open, self._engine
        if opener is not None:  # the program opens: its opener's os.open is ours
            tls.opener += 1
            try:
                return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
            finally:
                tls.opener -= 1
        if tls.gate or not _is_path(file):
            return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        if mode in READ_MODES:
            if closefd and ("b" not in mode or encoding is errors is newline is None) and self._is_data(file):
                return self._open_for_reading(file, mode, buffering, encoding, errors, newline)
            return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        # Writing (a file of any kind: a replay changes nothing).
        path = os.fspath(file)
        self._changes.note_code(path, "open")
        text = "b" not in mode
        base = mode.replace("b", "").replace("t", "")
        if base.startswith("r") and "+" not in base:  # arguments open() refuses before it opens anything
            return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        if "+" in base:
            initial = b""
            if not base.startswith("w"):
                initial = engine.call("open", (keyed(path), base), _read_or_empty, real_open, path, base) or b""
            else:
                engine.call("open", (keyed(path), base), _touch, real_open, path)
            binary: Any = UpdatableFile(engine, path, mode, initial, real_open)
        else:
            files: list[Any] = []
            engine.call("open", (keyed(path), base), lambda: files.append(real_open(path, base + "b")))
            replayed = not files  # then a memory file takes the writes: fileno() and os.fsync work alike
            real = real_open(memory_file(b"", 0, os.O_WRONLY), base + "b") if replayed else files[0]
            self._changes.written.track(real.fileno(), keyed(path))
            binary = RecordedWriter(engine, path, mode, real, replayed)
        if not text:
            return binary
        wrapper = io.TextIOWrapper(
            binary, encoding, errors, newline, line_buffering=buffering == 1, write_through="r" not in base
        )
        wrapper.mode = mode  # type: ignore[misc]
        return wrapper

    def _open_for_reading(
        self, file: Any, mode: str, buffering: int, encoding: str | None, errors: str | None, newline: str | None,
    ) -> Any:
        path = os.fspath(file)
        holder: list[int] = []
        value = self._engine.call("open", (keyed(path), "r"), self._snapshot, file, _OPEN_FLAGS, holder, True)
        if value is None:
            real = self._open(holder[0], "rb") if holder else None
            binary = RecordedStream(self._engine, "file", keyed(path), real, "rb", path)
            if "b" in mode:
                return binary
            wrapper = io.TextIOWrapper(binary, encoding, errors, newline, line_buffering=buffering == 1)
            wrapper.mode = mode  # type: ignore[misc]
            return wrapper
        snapshot = Snapshot.of(value)
        if buffering == -1 and snapshot.stat is not None and snapshot.stat.st_blksize > 1:
            buffering = snapshot.stat.st_blksize  # the buffer the data file's own block size gives (peek, read1)
        fd = self._descriptors.serve(snapshot, holder[0] if holder else None)
        self._changes.written.forget(fd)
        opened = []

        def opener(_path: Any, _flags: int) -> int:
            opened.append(fd)
            return fd

        try:
            # The real open(), as the plain call makes it, over the descriptor: the same types, name, mode.
            return self._open(file, mode, buffering, encoding, errors, newline, True, opener)
        except BaseException:
            if not opened:
                os.close(fd)
            raise
    def os_open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & WRITING and dir_fd is None and not tls.gate and _is_path(path):
            return self._changes.open(path, flags, mode)
        if dir_fd is not None or flags & NOT_READ_ONLY or not self._is_data(path):
            return self._os_open(path, flags, mode, dir_fd=dir_fd)
        holder: list[int] = []
        value = self._engine.call("os.open", (keyed(os.fspath(path)),), self._snapshot, path, flags, holder)
        if value is None:  # not a regular file: its descriptor, unrecorded as before
            return holder[0] if holder else self._os_open(path, flags, mode)
        fd = self._descriptors.serve(Snapshot.of(value), holder[0] if holder else None)
        self._changes.written.forget(fd)
        return fd
    def fstat(self, fd: int) -> os.stat_result:
        written = self._changes.fstat(fd, self._fstat)
        if written is not None:
            return written
        now = self._fstat(fd)
        recorded = self._descriptors.stat(fd, now)
        return now if recorded is None else recorded
    def stat(self, path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> os.stat_result:
        if type(path) is int and dir_fd is None and follow_symlinks:  # a descriptor: perhaps serving a data file
            return self.fstat(path)
        if dir_fd is not None or not self._is_data(path):
            return self._stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        key = keyed(os.fspath(path))
        if follow_symlinks:
            return self._engine.call("os.stat", (key,), self._stat, path)  # type: ignore[no-any-return]
        return self._engine.call("os.lstat", (key,), self._lstat, path)  # type: ignore[no-any-return]
    def lstat(self, path: Any, *, dir_fd: int | None = None) -> os.stat_result:
        if dir_fd is not None or not self._is_data(path):
            return self._lstat(path, dir_fd=dir_fd)
        return self._engine.call("os.lstat", (keyed(os.fspath(path)),), self._lstat, path)  # type: ignore[no-any-return]
    def listdir(self, path: Any = None) -> list[Any]:
        if path is None:
            path = "."
        if not self._is_data(path):
            return self._listdir(path)
        return self._engine.call("os.listdir", (keyed(os.fspath(path)),), self._listdir, path)  # type: ignore[no-any-return]
    def scandir(self, path: Any = None) -> Any:
        if path is None:
            path = "."
        if not self._is_data(path):
            return self._scandir(path)
        real_scandir = self._scandir

        def entries() -> list[list[Any]]:
            with real_scandir(path) as it:
                return [_entry_state(e) for e in it]

        states = self._engine.call("os.scandir", (keyed(os.fspath(path)),), entries)
        return ScandirIterator([DirEntry(os.fspath(path), s) for s in states])


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    changes = ChangeBoundary(engine)
    classifier = classifier_for(tuple(options.live_paths))
    classifier.add_code_folders(options.code_folders)
    changes.is_code = lambda path: classifier.kind(path) == "code"
    files = FileBoundary(engine, classifier, changes)
    import builtins

    patcher.set(builtins, "open", files.open)
    patcher.set(io, "open", files.open)
    for fn in (files.stat, files.lstat, files.listdir, files.scandir, files.fstat):
        patcher.set(os, fn.__name__, fn)
    patcher.set(os, "open", files.os_open)
    install_changes(changes, patcher)
    # shutil copies between descriptors in the kernel when both files have one: while recording a written data
    # file's descriptor is real and the copy would bypass what fingerprints the write, on replay it is not.
    def copy_in_user_space(shutil: Any) -> None:
        for flag in ("_USE_CP_SENDFILE", "_USE_CP_COPY_FILE_RANGE"):  # (the second since Python 3.14)
            if getattr(shutil, flag, False):
                patcher.set(shutil, flag, False)

    patcher.when_imported("shutil", copy_in_user_space)
    # tokenize.open (linecache reads through it) holds the builtin open it found at import.
    def tokenize_opens_ours(tokenize: Any) -> None:
        if hasattr(tokenize, "_builtin_open"):
            patcher.set(tokenize, "_builtin_open", files.open)

    patcher.when_imported("tokenize", tokenize_opens_ours)
    # Some stdlib classes bind these functions at import: pathlib's accessor (Python 3.10),
    # glob's string globber (3.13+).
    accessor = (("stat", files.stat), ("open", files.open), ("listdir", files.listdir), ("scandir", files.scandir),
                *((name, getattr(os, name)) for name in ("chmod", "mkdir", "unlink", "link", "rmdir", "rename",
                                                          "replace", "symlink", "readlink")))
    bound_at_import: tuple[tuple[Any, tuple[tuple[str, Any], ...]], ...] = (
        (getattr(pathlib, "_NormalAccessor", None), accessor),
        (getattr(glob, "_StringGlobber", None), (("scandir", files.scandir), ("lstat", files.lstat))),
    )
    for owner, functions in bound_at_import:
        for name, fn in functions if owner is not None else ():
            if name in owner.__dict__:
                patcher.set(owner, name, staticmethod(fn))


def _read_or_empty(real_open: Any, path: Any, base: str) -> bytes:
    try:
        with real_open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        if base.startswith("a"):
            return b""
        raise


def _touch(real_open: Any, path: Any) -> None:
    with real_open(path, "wb"):
        pass
