"""Recordings in object storage: fsspec URLs (``s3://bucket/prefix``, ``gs://…``, ``file://…``, ``memory://…``).

The reading side lists what a URL names (a prefix, one object, or a glob) as :class:`StoredObject` records;
the download cache (``front/downloads.py``) fetches them. The writing side is a :class:`Spool`: recordings are
written as always into a local folder, and uploaded from there on the writer thread; what fails to upload stays
and is tried again.

fsspec (and s3fs, gcsfs …) are imported only when a URL is used: ``pip install 'pytest-retrace[s3]'``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from ..errors import RetraceError

log = logging.getLogger("pytest_retrace")
SUFFIX = ".retrace"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_VERSION_KEYS = ("ETag", "etag", "md5Hash", "crc32c", "checksum", "VersionId")  # what names the content
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")  # else when it was written


class StorageError(RetraceError):
    """A URL that cannot be listed, read or written (no fsspec, an unknown scheme, a refused request …)."""


def is_url(entry: str) -> bool:
    return bool(_URL.match(entry))


def has_magic(text: str) -> bool:
    """Whether ``text`` is a glob pattern."""
    return any(c in text for c in "*?[")


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path inside it."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise StorageError(f"{url}: reading recordings from a URL needs fsspec (and s3fs for s3://): "
                           "pip install 'pytest-retrace[s3]'") from None
    try:
        return url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:  # a scheme whose package is missing, or none knows
        raise StorageError(f"{url}: {exc}") from None


def scheme(url: str) -> str:
    return url.partition("://")[0].lower()


class StoredObject(NamedTuple):
    """One recording in a bucket: where it is, what it is called on every machine, and what names its content."""

    url: str  # to fetch it
    name: str  # scheme/bucket/key: its stable name (node ids, the materialised file)
    size: int
    version: str | None  # changes when the object's bytes do (ETag, checksum, else time and size); None: unknown


def stored_name(url_scheme: str, path: str) -> str:
    """The object's stable name, ``s3/bucket/prefix/x.retrace``. Keys come from a listing, which is untrusted:
    one that would climb out of the folder it is fetched into is refused."""
    parts = PurePosixPath(path.lstrip("/")).parts
    if not parts or any(part in ("..", ".") for part in parts) or "\\" in path or "\0" in path:
        raise StorageError(f"{url_scheme}://{path}: this object's name is not usable as a file name (it has "
                           "'..' or '.' parts); rename or remove it in the bucket")
    return "/".join((url_scheme, *parts))


def _version(info: dict[str, Any]) -> str | None:
    for key in _VERSION_KEYS:
        if info.get(key):
            return f"{key}={info[key]}/size={info.get('size')}"
    for key in _TIME_KEYS:
        if info.get(key):
            return f"{key}={info[key]}/size={info.get('size')}"
    return None


class Listing(NamedTuple):
    """What a URL names: its recordings, sorted by name; what was looked for (for a message when there are none);
    and, when the URL is a prefix, its stable name (the folder the recordings go in)."""

    objects: list[StoredObject]
    looked_for: str
    prefix: str | None


def list_recordings(url: str) -> Listing:
    """The recordings ``url`` names: a prefix, searched below for ``*.retrace``; one object; or a glob (``**``
    any depth of folders). Raises StorageError when the URL cannot be listed."""
    fs, path = filesystem(url)
    url_scheme = scheme(url)
    prefix = None
    try:
        if has_magic(path):
            looked_for = f"objects matching {url}"
            infos: dict[str, dict[str, Any]] = {}
            for key, info in fs.glob(path, detail=True).items():
                if info.get("type") == "directory":
                    infos.update(fs.find(key, detail=True))
                else:
                    infos[key] = info
        else:
            looked_for = f"*{SUFFIX} objects under {url}"
            # Listed, not looked at first: a prefix (the usual case) needs only the right to list the bucket.
            infos = fs.find(path, detail=True)
            if not infos:
                return Listing([], f"{looked_for} (there is no such object or prefix)", None)
            if list(infos) == [path.rstrip("/")]:
                looked_for = f"the object {url}"
                if not path.endswith(SUFFIX):
                    return Listing([], f"{looked_for} (it is not a recording: recordings end in {SUFFIX})", None)
            else:
                prefix = "/".join((url_scheme, *PurePosixPath(path.strip("/")).parts))
    except Exception as exc:  # credentials, a refused connection, a missing bucket: said, never our traceback
        raise StorageError(f"{url}: cannot list it: {type(exc).__name__}: {exc}") from None
    found = []
    for key, info in sorted(infos.items()):
        if key.endswith(SUFFIX) and info.get("type", "file") == "file":
            found.append(StoredObject(fs.unstrip_protocol(key), stored_name(url_scheme, key),
                                      int(info.get("size") or 0), _version(info)))
    return Listing(found, looked_for, prefix)


def open_object(url: str) -> Any:
    """``url`` open for reading (binary)."""
    fs, path = filesystem(url)
    return fs.open(path, "rb")


# -- the writing side ------------------------------------------------------------------------------------


class Spool:
    """A local folder of recordings on their way to ``url``: written there as always, then uploaded (and removed)
    by :meth:`upload`, on the writer thread. What fails stays, and goes with the next upload."""

    def __init__(self, url: str, folder: str) -> None:
        self.url = url.rstrip("/")
        self.folder = folder
        self.failed = 0  # recordings that could not be uploaded at the last try

    def pending(self) -> list[str]:
        """The finished recordings waiting in the spool, oldest first (temporary files are not finished)."""
        try:
            with os.scandir(self.folder) as entries:
                found = [(e.stat().st_mtime_ns, e.name) for e in entries
                         if e.name.endswith(SUFFIX) and not e.name.startswith(".")]
        except FileNotFoundError:
            return []
        return [name for _, name in sorted(found)]

    def upload(self, deadline: float | None = None) -> int:
        """Upload every pending recording (until ``deadline``, a ``time.monotonic()`` value); returns how many
        are still waiting, after logging them."""
        names = self.pending()
        if not names:
            self.failed = 0
            return 0
        failed, problem = 0, ""
        try:
            fs, path = filesystem(self.url)
        except StorageError as exc:
            failed, problem, names = len(names), str(exc), []
        for index, name in enumerate(names):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                failed += len(names) - index
                problem = problem or "no time left"
                break
            local = os.path.join(self.folder, name)
            try:
                # An async file system (s3fs, gcsfs) is given the time left; a plain one is quick.
                timeout = {"timeout": left} if left is not None and getattr(fs, "async_impl", False) else {}
                _put(fs, local, path.rstrip("/"), name, timeout)
            except FileNotFoundError as exc:
                if not os.path.exists(local):  # another process of this spool uploaded it meanwhile
                    continue
                failed += 1  # the target is missing (a bucket that is not there)
                problem = f"{type(exc).__name__}: {exc}"
                continue
            except Exception as exc:
                failed += 1
                problem = f"{type(exc).__name__}: {exc}"
                continue
            try:
                os.unlink(local)
            except FileNotFoundError:
                pass
        if failed:
            log.warning("pytest-retrace: %d recordings could not be uploaded to %s (%s); they wait in %s and are "
                        "tried again at the next recording and at exit", failed, self.url, problem, self.folder)
        elif self.failed:
            log.warning("pytest-retrace: the recordings waiting in %s are uploaded to %s", self.folder, self.url)
        self.failed = failed
        return failed


def _put(fs: Any, local: str, folder: str, name: str, options: dict[str, Any]) -> None:
    """Upload ``local`` as ``folder/name``. On a file system with folders (file://, sftp://) a missing folder is
    made, as an object store's prefix needs no making; a bucket is never made."""
    try:
        fs.put_file(local, f"{folder}/{name}", **options)
    except FileNotFoundError:
        if not os.path.exists(local) or not _has_folders(fs):
            raise
        fs.makedirs(folder, exist_ok=True)
        fs.put_file(local, f"{folder}/{name}", **options)


def _has_folders(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return bool({"file", "local", "sftp", "ssh"} & set(protocols))


_SPOOLS: dict[str, Spool] = {}


def spool_for(url: str, folder: str) -> Spool:
    """The spool of ``url`` in ``folder`` (one per folder in a process: what is left in it, from this run or an
    earlier one, goes with the next upload)."""
    spool = _SPOOLS.get(folder)
    if spool is None:
        spool = _SPOOLS[folder] = Spool(url, folder)
    return spool


def spools() -> Iterator[Spool]:
    return iter(list(_SPOOLS.values()))
