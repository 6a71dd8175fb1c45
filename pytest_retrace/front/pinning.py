"""Pinning crash recordings as regression cases: what a recorded crash was, and the pinned copy of it."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import RecordingError, RetraceError
from ..format.tape import Recording, TapeStatus, read_recording, rewrite
from ..frames import program_frames
from ..kinds.outcome import Outcome
from ..record import Record
from .report import printable


class Crash(Record):
    """How a recorded run crashed: the exception type (or ``exitN``), its message, where (file stem and
    function of the program's last own frame), and the crash fingerprint."""

    __slots__ = ("type", "message", "place", "fingerprint")

    def __init__(self, type: str, message: str, place: str, fingerprint: str) -> None:  # noqa: A002
        self.type = type
        self.message = message
        self.place = place
        self.fingerprint = fingerprint


def crash_of(rec: Recording) -> Crash | None:
    """The crash a complete recording ended with; None if it did not."""
    outcome = Outcome.from_json(rec.end or {})
    exc = outcome.exception
    if exc is not None:
        frames = exc.traceback
        own = program_frames(frames)
        place = f"{Path(own[-1][0]).stem}-{own[-1][2]}" if own else "unknown"
        return Crash(exc.type, exc.message, place, exc.fingerprint)
    status = outcome.status
    if status in (0, None):
        return None
    entry = rec.header.get("entry", {})
    where = entry.get("script") or entry.get("module") or "program"
    digest = hashlib.blake2b(f"exit {status} {where}".encode(), digest_size=8).hexdigest()
    return Crash(f"exit{status}", f"exit status {status}", Path(where).stem, digest)


_FINGERPRINT = re.compile(r"[0-9a-f]{8,128}")


def _slug(text: str, limit: int = 60) -> str:
    """A part of a file name made from text a recording holds: only [A-Za-z0-9_] (so no dots, no separators:
    ``-`` joins the parts), bounded."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(text))[:limit].strip("_") or "x"


def recordings_in(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.rglob("*.retrace"))


def pin(path: str | os.PathLike[str], into: str | os.PathLike[str]) -> Path:
    """Copy a crash recording into ``into`` as a pinned regression case; returns its new path."""
    rec = read_recording(path)
    if rec.status == TapeStatus.CORRUPT:
        raise rec.corrupt_error()
    if rec.status != TapeStatus.COMPLETE:
        raise RetraceError(f"{path}: a {rec.status} recording cannot be pinned ({rec.problem}); record the crash again")
    crash = crash_of(rec)
    if crash is None:
        raise RetraceError(f"{path}: the recorded run did not crash (exit status 0); only crashes are pinned")
    if not isinstance(crash.fingerprint, str) or not _FINGERPRINT.fullmatch(crash.fingerprint):
        shown = printable(repr(crash.fingerprint))[:80]
        raise RecordingError(f"{path}: corrupt recording: its crash fingerprint {shown} is not a hex digest; "
                             "record the crash again")
    folder = Path(into)
    _make_folder(folder)
    for existing in recordings_in(folder):
        try:
            pinned = (read_recording(existing, events=False).header.get("pin") or {}).get("fingerprint")
        except RetraceError:  # not a recording (or damaged before its header): it pins nothing
            continue
        if pinned == crash.fingerprint:
            raise RetraceError(printable(
                f"{path}: this crash ({crash.type} in {crash.place}, fingerprint {crash.fingerprint}) "
                f"is already pinned as {existing}; nothing to do"
            ))
    short_type = crash.type.rsplit(".", 1)[-1]
    target = folder / f"{_slug(short_type)}-{_slug(crash.place)}-{crash.fingerprint[:8]}.retrace"
    if target.resolve().parent != folder.resolve():  # the name is sanitized: this only guards the rule
        raise RetraceError(f"{path}: the pinned name {printable(target.name)} would leave {folder}")
    header = dict(rec.header, pin={
        "fingerprint": crash.fingerprint,
        "exception": crash.type,
        "message": crash.message,
        "place": crash.place,
        "pinned_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": os.path.abspath(path),
    })
    rewrite(path, header=header, into=target)
    return target


def _make_folder(folder: Path) -> None:
    """The regression folder, with the folders above it that are missing: created 0700 (recordings hold
    production data)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for part in reversed(missing):
        part.mkdir(mode=0o700, exist_ok=True)
