"""A cache of the entry-point scan, in the user's cache folder, keyed by everything the scan reads.

``importlib.metadata`` finds distributions by the names of the ``*.dist-info`` and ``*.egg-info`` folders in
the folders on ``sys.path`` (``EGG-INFO`` inside an ``.egg`` folder on it), and reads their
``entry_points.txt``. The key is those names with each ``entry_points.txt``'s modification time and size,
per ``sys.path`` entry, and the interpreter (with another finder that reports distributions on
``sys.meta_path``, the scan runs every time: its sources are not in the key). Installing
or removing a package, or rewriting its entry points in place (an editable install), changes it. Listing
the folders costs well under a millisecond, the scan some 30.

The cache is only ever a shortcut: a folder that cannot be written, a file that cannot be read or holds
anything unexpected, and the scan simply runs. ``RETRACE_CACHE_DIR`` moves it (empty: no cache).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from ..format.codec import blake2b

CACHE_ENV = "RETRACE_CACHE_DIR"
FILE = "plugins.json"
FORMAT = 1
KEEP = 8  # keys kept (most recent first): several projects and interpreters share the file


def cache_folder() -> str | None:
    """Where pytest-retrace keeps its caches: ``$RETRACE_CACHE_DIR``, else the platform's user cache folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return configured or None
    if sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    elif sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", "")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "pytest-retrace") if os.path.isabs(base) else None


def scan_key(group: str) -> str:
    """A digest of everything an entry-point scan of ``group`` depends on."""
    parts: list[object] = [FORMAT, group, sys.executable, sys.version]
    for entry in sys.path:
        parts.append(entry)
        parts.append(_folder_key(entry or "."))
    text = json.dumps(parts, separators=(",", ":"))
    return blake2b(text.encode("utf-8", "surrogateescape"), digest_size=20).hexdigest()


def _other_finders() -> bool:
    """Whether a finder besides the path-based one can report distributions (from places this key cannot see)."""
    from importlib.machinery import PathFinder

    return any(finder is not PathFinder and hasattr(finder, "find_distributions") for finder in sys.meta_path)


def _folder_key(folder: str) -> list[object]:
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries)
    except NotADirectoryError:  # a zip or an egg file: its distributions change with it
        return ["file", *_stamp(folder)]
    except OSError:
        return ["none"]
    key: list[object] = []
    is_egg = folder.lower().endswith(".egg")
    for name in names:
        low = name.lower()
        if low.endswith((".dist-info", ".egg-info")) or (is_egg and low == "egg-info"):
            key.append([name, *_stamp(os.path.join(folder, name, "entry_points.txt"))])
    return key


def _stamp(path: str) -> list[int]:
    try:
        st = os.stat(path)
    except OSError:
        return []
    return [st.st_mtime_ns, st.st_size]


def cached(group: str, scan: Callable[[], list[str]]) -> list[str]:
    """``scan()``'s answer, from the cache when its key still matches, else scanned and stored."""
    folder = cache_folder()
    if folder is None or _other_finders():
        return scan()
    path = os.path.join(folder, FILE)
    key = scan_key(group)
    entries = _read(path)
    for known, plugins in entries:
        if known == key:
            return plugins
    plugins = scan()
    _write(folder, path, [(key, plugins), *entries][:KEEP])
    return plugins


def _read(path: str) -> list[tuple[str, list[str]]]:
    """The cache's entries (key, plugins), or none when it is missing, unreadable or not what this version
    writes."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        return []
    return [(e[0], list(e[1])) for e in doc["entries"]
            if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], list)
            and all(isinstance(p, str) for p in e[1])]


def _write(folder: str, path: str, entries: list[tuple[str, list[str]]]) -> None:
    """Replace the cache file atomically (a concurrent reader sees the old one or the new one); give up quietly
    when the folder cannot be written."""
    temp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "entries": entries}, f)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
