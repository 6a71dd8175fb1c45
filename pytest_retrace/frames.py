"""Whose frames a traceback holds, and tracebacks rebuilt from recorded frames.

Three owners: pytest-retrace's own frames (never shown to a user), the library's (the interpreter's
prefixes, site-packages, frozen modules) and the program's. A crash is fingerprinted and named by the
program's frames: what a library does beneath the program's last frame is no part of where it crashed.

An exception raised inside a recorded external call is replayed with the traceback it had: the frames of
the library code that raised it are recorded (file, line, function, and the columns that tracebacks
underline), and on replay rebuilt as real frames of code compiled at those positions, so that every
traceback printer shows what it showed while recording (the technique Jinja2 uses for templates).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from types import CodeType, FrameType, TracebackType
from typing import Any

from .paths import under_root

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_OWN = os.path.join(PACKAGE_DIR, "")


def _library_prefixes() -> tuple[str, ...]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    try:
        prefixes.update(site.getsitepackages())
        prefixes.add(site.getusersitepackages())
    except AttributeError:  # site trimmed down (virtualenv's old site.py)
        pass
    found = {os.path.join(os.path.realpath(p), "") for p in prefixes if p}
    found |= {os.path.join(os.path.abspath(p), "") for p in prefixes if p}
    return tuple(sorted(found))


LIBRARY_PREFIXES = _library_prefixes()


def _named_folders() -> tuple[tuple[str, str], ...]:
    """Where library code lives, each folder (ending in a separator) with the name a portable frame gives it,
    deepest first: ``<site-packages>/flask/app.py`` reads alike on every machine and in every virtualenv."""
    paths = sysconfig.get_paths()
    named = [(folder, "<prefix>") for folder in LIBRARY_PREFIXES]
    named += [(paths[key], "<stdlib>") for key in ("stdlib", "platstdlib") if key in paths]
    site_packages = [paths[key] for key in ("purelib", "platlib") if key in paths]
    site_packages += getattr(site, "getsitepackages", list)()
    site_packages.append(getattr(site, "getusersitepackages", str)())
    named += [(folder, "<site-packages>") for folder in site_packages if folder]
    named.append((PACKAGE_DIR, "<pytest_retrace>"))
    found: dict[str, str] = {}  # the later, more precise name wins for a folder named twice
    for folder, name in named:
        for spelled in {os.path.abspath(folder), os.path.realpath(folder)}:
            found[os.path.join(spelled, "")] = name
    return tuple(sorted(found.items(), key=lambda item: -len(item[0])))


_NAMED_FOLDERS = _named_folders()
# Portable names of library frames (the project's own are relative to the project root).
LIBRARY_NAMES = tuple(f"{name}/" for name in sorted({name for _, name in _NAMED_FOLDERS}))


def is_own(filename: str) -> bool:
    return filename.startswith(_OWN)


def is_library(filename: str) -> bool:
    """A frame of pytest-retrace, of the interpreter's or an installed package's code, or of a frozen module
    (by its path, or by its portable name)."""
    return (filename.startswith(_OWN) or filename.startswith(LIBRARY_PREFIXES) or filename.startswith("<frozen ")
            or filename.startswith(LIBRARY_NAMES))


def portable(filename: str) -> str:
    """A frame's file name as a recorded outcome keeps it, the same on every machine and in every checkout: a
    file of the project relative to the project root, library code relative to where it is installed
    (``<stdlib>/json/decoder.py``, ``<site-packages>/flask/app.py``), anything else as it is."""
    if not filename.startswith("/"):
        return filename
    library = next(((folder, name) for folder, name in _NAMED_FOLDERS if filename.startswith(folder)), None)
    inside = under_root(filename)
    # The deeper folder wins: a virtualenv inside the project is library code, a project inside a prefix is not.
    if inside is not None and (library is None or len(filename) - len(inside) >= len(library[0])):
        return inside
    if library is not None:
        return f"{library[1]}/{filename[len(library[0]):]}"
    return filename


def program_frames(frames: list[list[Any]]) -> list[list[Any]]:
    """The program's own frames of a traceback (``[filename, …]`` lists); all of them if none is the program's
    (a program installed as a package)."""
    return [f for f in frames if not is_library(f[0])] or frames


def recorded_frames(tb: TracebackType | None) -> list[list[Any]]:
    """A traceback's frames but ours, as recorded: ``[filename, lineno, name, end_lineno, col, end_col]``
    (positions are None where the interpreter has none)."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if not is_own(code.co_filename):
            position: tuple[Any, ...] = (None, None, None)
            positions = getattr(code, "co_positions", None)
            if positions is not None and tb.tb_lasti >= 0:
                for index, where in enumerate(positions()):
                    if index == tb.tb_lasti // 2:
                        position = where[1:]
                        break
            frames.append([code.co_filename, tb.tb_lineno, code.co_name, *position])
        tb = tb.tb_next
    return frames


def rebuilt_traceback(frames: list[list[Any]]) -> TracebackType | None:
    """A traceback whose entries read as the recorded ``frames`` do (file, line, function, underlined span)."""
    tb = None
    for frame in reversed(frames):
        try:
            real, lasti = _fabricated_frame(*frame)
        except Exception:  # noqa: BLE001 - an unreadable frame is left out rather than failing the replay
            continue
        tb = TracebackType(tb, real, lasti, frame[1])
    return tb


# A recording is untrusted input: positions beyond these are no source's, and are not built.
MAX_LINE, MAX_COLUMN, MAX_SPAN = 1_000_000, 10_000, 100
# Code of each shape of call (lines spanned, columns), compiled once near line 1; a frame takes a copy with its
# file, name and first line (a copy costs far less than a compile). Bounded: a file may hold many shapes.
_SHAPES: dict[tuple[Any, ...], tuple[CodeType, int]] = {}
_MAX_SHAPES = 1024


def _fabricated_frame(filename: str, lineno: int, name: str, end_lineno: int | None = None,
                      col: int | None = None, end_col: int | None = None) -> tuple[FrameType, int]:
    numbers = [n for n in (lineno, end_lineno, col, end_col) if n is not None]
    in_range = all(type(n) is int and 0 <= n <= MAX_LINE for n in numbers) and lineno >= 1
    if not in_range or max(col or 0, end_col or 0) > MAX_COLUMN or not isinstance(filename, str) or (
            not isinstance(name, str)):
        raise ValueError(f"a recorded frame at {lineno}:{col} is out of any source's range")
    if (end_lineno or lineno) - lineno > MAX_SPAN:
        end_lineno = col = end_col = None  # a span that long is shown without its columns
    shape = (None if end_lineno is None else end_lineno - lineno, col, end_col)
    compiled = _SHAPES.get(shape)
    if compiled is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        source, first = _source_at(lineno, end_lineno, col, end_col)
        compiled = _SHAPES[shape] = (compile(source, "<retrace>", "exec"), first)
    template, first = compiled
    # Moved down to its line: line numbers are kept relative to the first, so a frame at line 1,000,000 costs
    # what one at line 2 does.
    code = template.replace(co_filename=filename, co_name=name, co_firstlineno=template.co_firstlineno + lineno - first)
    if sys.version_info >= (3, 11):
        code = code.replace(co_qualname=name)
    try:
        exec(code, {"r": len, "__name__": name})  # len() without an argument raises, from C: no frame of its own
    except TypeError as exc:
        tb = exc.__traceback__.tb_next  # type: ignore[union-attr]
        assert tb is not None
        return tb.tb_frame, tb.tb_lasti
    raise AssertionError("unreachable")


def _source_at(lineno: int, end_lineno: int | None, col: int | None, end_col: int | None) -> tuple[str, int]:
    """Source whose call ``r(…)`` spans the recorded positions (byte columns, as the interpreter keeps them),
    so that a traceback underlines the real line as it did, and the line it puts the call on (the code is
    then moved to ``lineno``)."""
    if col is None or end_col is None or end_lineno is None or end_lineno < lineno:
        return "r()", 1
    if end_lineno == lineno:
        width = end_col - col
        call = "r(" + " " * (width - 3) + ")" if width >= 3 else "r()"
    else:
        call = "r(" + "\n" * (end_lineno - lineno) + " " * max(end_col - 1, 0) + ")"
    if col == 0:
        return call, 1
    return "if 1:\n" + " " * col + call, 2
