"""Where recordings come from: the entries of ``--retrace-recordings``, the ini's ``retrace_recordings`` and
``@pytest.mark.retrace(recordings=…)``, as local files to collect.

An entry is a ``.retrace`` file; a folder (searched for ``*.retrace`` at any depth); a glob pattern
(``recordings/**/checkout-*.retrace``, ``recordings/2026-12-*``: ``**`` is any depth of folders, a folder it
matches is searched); or an fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``file://…``, ``memory://…``) naming
a prefix, one object, or a glob, whose recordings are fetched through the download cache (``downloads.py``) before
any replay. An entry that gives no recording is a usage error that says which entry, what was looked for and what
to do.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from ..format.storage import SUFFIX, StorageError, has_magic, is_url, list_recordings
from .downloads import DownloadCache, Progress

_RECORD_SOME = "record some first (retrace record -o REC.retrace script.py)"


class Source(NamedTuple):
    """What an entry gives: what to hand pytest (a folder, or the files themselves), and each recording with its
    name (the id of a test parametrized over it)."""

    collect: list[Path]
    recordings: list[Path]
    names: list[str]


def resolve(entry: str | os.PathLike[str], base: Path, option: str, rootdir: Path, quiet: bool = False) -> Source:
    """The recordings ``entry`` names; a relative one is taken from ``base``. ``option`` starts any message;
    ``rootdir`` holds the fetched recordings' tree. Raises pytest.UsageError when it names none."""
    text = os.fspath(entry)
    if is_url(text):
        return _from_url(text, option, rootdir, quiet)
    path = Path(text) if Path(text).is_absolute() else base / text
    if has_magic(text):
        return _from_pattern(text, path, base, option)
    if not path.exists():
        raise pytest.UsageError(f"{option}: {text} does not exist; give a .retrace file, a folder of them, a glob "
                                "pattern or a URL")
    if path.is_file():
        if path.suffix != SUFFIX:
            raise pytest.UsageError(f"{option}: {text} is not a recording (recordings end in {SUFFIX})")
        return Source([path], [path], [_local_name(path, base)])
    found = sorted(path.rglob(f"*{SUFFIX}"))
    if not found:
        raise pytest.UsageError(f"{option}: no *{SUFFIX} recordings in {text}; {_RECORD_SOME}, or point at the "
                                "folder that holds them")
    return Source([path], found, [_local_name(p, base) for p in found])


def _local_name(path: Path, base: Path) -> str:
    return str(path.relative_to(base)) if path.is_relative_to(base) else path.name


def _from_pattern(text: str, pattern: Path, base: Path, option: str) -> Source:
    matched = sorted(glob.glob(str(pattern), recursive=True))
    found: set[Path] = set()
    for match in map(Path, matched):
        if match.is_dir():
            found.update(match.rglob(f"*{SUFFIX}"))
        elif match.suffix == SUFFIX:
            found.add(match)
    if not found:
        what = (f"it matches {len(matched)} files or folders, and none is a recording nor holds one" if matched
                else "it matches no file or folder")
        raise pytest.UsageError(f"{option}: the pattern {text} gives no *{SUFFIX} recording ({what}); check it "
                                f"(** matches any depth of folders; quote it, so that the shell leaves it alone), "
                                f"or {_RECORD_SOME}")
    ordered = sorted(found)
    return Source(ordered, ordered, [_local_name(p, base) for p in ordered])


def _from_url(url: str, option: str, rootdir: Path, quiet: bool) -> Source:
    try:
        listing = list_recordings(url)
    except StorageError as exc:
        raise pytest.UsageError(f"{option}: {exc}") from None
    if not listing.objects:
        raise pytest.UsageError(
            f"{option}: no recordings in {url}: looked for {listing.looked_for}; check the URL (a prefix, one "
            "object, or a glob; ** matches any depth of folders), or record some first "
            f"(RecordingMiddleware(app, \"{url}\"), @record_calls(\"{url}\"))")
    cache = DownloadCache.for_rootdir(rootdir)
    progress = Progress(url) if not quiet else None
    try:
        fetched = cache.fetch(listing.objects, progress)
    except StorageError as exc:
        raise pytest.UsageError(f"{option}: {exc}") from None
    except Exception as exc:  # a download refused or cut off: said, never our traceback
        raise pytest.UsageError(f"{option}: {url}: a recording could not be fetched: {type(exc).__name__}: {exc}; "
                                "check the credentials and that the storage answers") from None
    if progress is not None:
        size = f" ({_size(fetched.downloaded_bytes)})" if fetched.downloaded else ""
        progress.done(f"{len(fetched.paths)} recordings: {fetched.downloaded} fetched{size}, "
                      f"{len(fetched.paths) - fetched.downloaded} cached")
    names = [obj.name for obj in listing.objects]
    if listing.prefix is not None:
        folder = cache.tree / listing.prefix
        cache.prune(folder, fetched.paths)  # a recording gone from the bucket is no longer collected
        return Source([folder], fetched.paths, names)
    return Source(fetched.paths, fetched.paths, names)


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    return f"{count / 1000:.1f} kB" if count < 1_000_000 else f"{count / 1_000_000:.1f} MB"
