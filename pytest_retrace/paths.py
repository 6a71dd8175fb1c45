"""Paths that travel: a recording made in ``/srv/app`` replays in any checkout of the project.

The *project root* is the nearest folder, from the entry's ``sys.path`` root upwards, that holds a project
marker (``pyproject.toml``, ``setup.py``, ``setup.cfg``, ``.git``, ``tox.ini``, ``pytest.ini``); else the entry's
root itself. A recording stores the paths of code relative to it (the header's working folder, script and import
root), and the paths the program names in file calls under it as ``<project>/…`` (so a data file opened by an
absolute path computed from ``__file__`` is the same call in every checkout). On replay both resolve against the
replaying project's root.

The root in use is process-wide (:func:`use_root`): recording sets the recorded program's, replay the replaying
checkout's, and file boundaries key paths with :func:`keyed`. Unset, paths are keyed as given.
"""

from __future__ import annotations

import os
from typing import Any

MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git", "tox.ini", "pytest.ini")
PROJECT = "<project>"  # how a path under the project root starts in call keys and argv


def project_root_of(folder: str | os.PathLike[str]) -> str:
    """The project root above ``folder`` (an absolute folder; itself included): the nearest one holding a project
    marker, else ``folder``."""
    start = os.path.abspath(folder)
    here = start
    while True:
        if any(os.path.lexists(os.path.join(here, marker)) for marker in MARKERS):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return start
        here = parent


def _spellings(root: str) -> tuple[str, ...]:
    """The root as given and with symlinks resolved (``__file__`` keeps the one, ``os.getcwd()`` gives the other)."""
    given, real = os.path.normpath(os.path.abspath(root)), os.path.realpath(root)
    return (given,) if given == real else (given, real)


def relative_to(path: str, root: str) -> str | None:
    """``path`` (absolute) relative to ``root`` in POSIX form (``.`` for the root itself), or None when it is not
    inside it under either spelling of both."""
    normal = os.path.normpath(path)
    for spelled in {normal, os.path.realpath(path)}:
        for base in _spellings(root):
            if spelled == base:
                return "."
            if spelled.startswith(base.rstrip(os.sep) + os.sep):
                return spelled[len(base.rstrip(os.sep)) + 1:].replace(os.sep, "/")
    return None


def escapes(relative: str) -> bool:
    """Whether a recorded project-relative path leaves the project (``..`` above it, or absolute)."""
    normal = os.path.normpath(relative)
    return os.path.isabs(relative) or normal == os.pardir or normal.startswith(os.pardir + os.sep)


class _Current:
    """The project root file calls are keyed against in this process (None: keys hold paths as given), and
    whether it is final (a replay's: the app it imports, which would name its own, does not change it)."""

    roots: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    final = False


def use_root(root: str | None, final: bool = False) -> None:
    """Key paths under ``root`` as ``<project>/…`` from now on, in this process (None: as given). ``final``: for
    the rest of the process (a replay's root); a root that is final already is kept otherwise."""
    if _Current.final and not final:
        return
    _Current.roots = tuple(r for r in _spellings(root) if r != os.sep) if root else ()
    _Current.prefixes = tuple(r.rstrip(os.sep) + os.sep for r in _Current.roots)
    _Current.final = final


def current_root() -> str | None:
    return _Current.roots[0] if _Current.roots else None


def under_root(path: str) -> str | None:
    """An absolute path relative to the root in use (``.`` for the root itself), or None when it is not under it.
    By its text alone: it runs inside recordings, where a file system call would be an event."""
    if path in _Current.roots:
        return "."
    for prefix in _Current.prefixes:
        if path.startswith(prefix):
            return path[len(prefix):]
    return None


def keyed(path: Any) -> Any:
    """An absolute path under the project root as ``<project>/…`` (a relative path, or one elsewhere, as given):
    the form a file call's key holds it in, the same in every checkout."""
    if not _Current.roots or not isinstance(path, (str, bytes)):
        return path
    if isinstance(path, bytes):
        text = os.fsdecode(path)
        mapped = keyed(text)
        return path if mapped is text else os.fsencode(mapped)
    inside = under_root(path) if path.startswith("/") else None
    if inside is None:
        return path
    return PROJECT if inside == "." else f"{PROJECT}/{inside}"


def portable_argument(value: str, root: str) -> str:
    """A program argument that is a path under ``root`` as ``<project>/…`` (any other as it is): the replay
    gets the path under its own project root (:func:`expanded`)."""
    inside = relative_to(value, root) if value.startswith("/") else None
    if inside is None:
        return value
    return PROJECT if inside == "." else f"{PROJECT}/{inside}"


def expanded(value: str, root: str) -> str:
    """A recorded ``<project>/…`` value (an argument) as a path under ``root``; any other value as it is."""
    if value == PROJECT:
        return root
    if value.startswith(PROJECT + "/"):
        return os.path.join(root, value[len(PROJECT) + 1:])
    return value
