"""The download cache: recordings from object storage, fetched once per content, collected under the rootdir.

- **The store** (``$RETRACE_CACHE_DIR/recordings``, else ``~/.cache/pytest-retrace/recordings``: a folder CI can
  keep between runs) holds each recording once, named by the digest of its bytes, mode 0600.
- **The index** beside it maps an object's URL and version (its ETag or checksum from the listing, else its time
  and size) to that digest: an unchanged bucket is listed, and nothing is downloaded; an object rewritten under its
  name has another version, and is fetched again. An object whose listing tells no version is always fetched.
- **The tree** (``<rootdir>/.pytest_cache/retrace/s3/bucket/prefix/x.retrace``) is what pytest collects: hard
  links into the store (copies across file systems), so a recording's node id names the object, the same on every
  machine and in every run (``-k``, ``--lf``, xdist and pytest-split work). pytest names files outside the rootdir
  by their path relative to the argument they were found under (older versions: absolute), which would drop the
  bucket and prefix, or differ between machines; under the rootdir they are named by their place there.

Several processes may fill one store at once (xdist workers, CI jobs on one machine): every file is written under a
temporary name and renamed into place, and a recording fetched twice is the same bytes under the same name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import IO, NamedTuple

from ..format.codec import blake2b
from ..format.storage import StoredObject, open_object
from ..hooks.plugin_cache import cache_folder

TREE = Path(".pytest_cache") / "retrace"  # under the rootdir
PARALLEL = 8  # downloads at once
_CHUNK = 1 << 20


class Fetched(NamedTuple):
    """What fetching a listing did: the collected files (in the listing's order), and how many were downloaded."""

    paths: list[Path]
    downloaded: int
    downloaded_bytes: int


class DownloadCache:
    """The store and index in ``store``, the tree in ``tree``."""

    def __init__(self, store: Path, tree: Path) -> None:
        self.store = store
        self.tree = tree

    @classmethod
    def for_rootdir(cls, rootdir: Path) -> DownloadCache:
        folder = cache_folder()
        tree = rootdir / TREE
        return cls(Path(folder) / "recordings" if folder else tree.parent / "retrace-store", tree)

    def fetch(self, objects: list[StoredObject], progress: Callable[[int, int, int], None] | None = None) -> Fetched:
        """Every object in the tree, downloading those the store does not hold; ``progress(downloaded, to_download,
        cached)`` hears of each one done."""
        _private_folder(self.store)
        _private_folder(self.tree)
        gitignore = self.tree / ".gitignore"  # recordings hold production data: never committed by accident
        if not gitignore.exists():
            _write_atomically(gitignore, lambda f: f.write(b"# created by pytest-retrace\n*\n"))
        blobs: dict[int, Path] = {}
        missing = []
        for index, obj in enumerate(objects):
            blob = self._known(obj)
            if blob is None:
                missing.append(index)
            else:
                blobs[index] = blob
        cached = len(blobs)
        downloaded = downloaded_bytes = 0
        if progress is not None:
            progress(0, len(missing), cached)
        if missing:
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(missing))) as pool:
                futures = {pool.submit(self._download, objects[index]): index for index in missing}
                for future in as_completed(futures):
                    blob = blobs[futures[future]] = future.result()
                    downloaded += 1
                    downloaded_bytes += blob.stat().st_size
                    if progress is not None:
                        progress(downloaded, len(missing), cached)
        return Fetched([self._materialise(obj, blobs[i]) for i, obj in enumerate(objects)], downloaded,
                       downloaded_bytes)

    def _index_path(self, obj: StoredObject) -> Path | None:
        if obj.version is None:
            return None
        key = blake2b(f"{obj.url}\0{obj.version}".encode("utf-8", "surrogateescape"), digest_size=20).hexdigest()
        return self.store / "index" / key

    def _known(self, obj: StoredObject) -> Path | None:
        """The stored recording this version of ``obj`` holds, when the store has it unchanged."""
        index = self._index_path(obj)
        if index is None:
            return None
        try:
            digest, size, mtime_ns = index.read_text().split()
            blob = self.store / f"{digest}.retrace"
            st = blob.stat()
        except (OSError, ValueError):
            return None
        # A stored file changed in place since (someone rewrote the collected copy, which is the same file) is
        # not the content its name says: fetched again.
        if (st.st_size, st.st_mtime_ns) != (int(size), int(mtime_ns)) or len(digest) != 40:
            return None
        return blob

    def _download(self, obj: StoredObject) -> Path:
        with _temporary(self.store, ".download.") as (fd, temp):  # mode 0600
            digest = blake2b(digest_size=20)
            with os.fdopen(fd, "wb") as out, open_object(obj.url) as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            blob = self.store / f"{digest.hexdigest()}.retrace"
            os.replace(temp, blob)  # the same bytes under the same name, whoever wins
        index = self._index_path(obj)
        if index is not None:
            st = blob.stat()
            _private_folder(index.parent)
            text = f"{digest.hexdigest()} {st.st_size} {st.st_mtime_ns}\n".encode()
            _write_atomically(index, lambda f: f.write(text))
        return blob

    def _materialise(self, obj: StoredObject, blob: Path) -> Path:
        target = self.tree / obj.name
        try:
            if os.path.samefile(blob, target):
                return target
        except OSError:
            pass
        _private_folder(target.parent)
        temp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.partial"
        try:
            os.link(blob, temp)
        except OSError:  # another file system, or no hard links there: a copy
            shutil.copyfile(blob, temp)
            os.chmod(temp, 0o600)
        os.replace(temp, target)
        # rename() between two links of one file does nothing: another process linked the same blob there first,
        # and the temporary name is left; it goes.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        return target

    def prune(self, folder: Path, keep: list[Path]) -> None:
        """Remove the recordings under ``folder`` (a prefix's place in the tree) that its listing no longer has."""
        kept = set(keep)
        for path in folder.rglob("*.retrace"):
            if path not in kept:
                try:
                    path.unlink()
                except FileNotFoundError:  # another process pruned it first
                    pass


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    with _temporary(path.parent, f".{path.name}.") as (fd, temp):
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(temp, path)


@contextlib.contextmanager
def _temporary(folder: Path, prefix: str) -> Iterator[tuple[int, str]]:
    """A new file in ``folder`` (mode 0600), open: removed when the block fails, else the block renames it."""
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=folder)
    try:
        yield fd, temp
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


class Progress:
    """``fetched N of M, X cached`` on one line of a terminal, rewritten as downloads finish (nothing when the
    output is not a terminal: the summary line says it all)."""

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stdout
        self.shown = False

    def __call__(self, downloaded: int, to_download: int, cached: int) -> None:
        if to_download and self.stream.isatty():
            self.stream.write(f"\rretrace: {self.label}: fetched {downloaded} of {to_download}, {cached} cached")
            self.stream.flush()
            self.shown = True

    def done(self, text: str) -> None:
        self.stream.write(("\r\x1b[K" if self.shown else "") + f"retrace: {self.label}: {text}\n")
        self.stream.flush()
