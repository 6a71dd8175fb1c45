"""How a recorded run ended, and how a replay of it ended: :class:`Outcome` and its parts.

A recording's END frame holds the outcome (with the event count and any recording error); the
child of a replay reports the replay's; the verdict compares the two. A crash is described the
same way whichever way the program was started (plainly, recorded, replayed): the launcher's
frames are left out of its traceback, and its fingerprint survives unrelated edits.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from typing import Any, NoReturn

from ..engine.stack import program_traceback
from ..format import codec
from ..format.codec import blake2b
from ..format.shapes import MAX_TRACEBACK_FRAMES
from ..frames import portable, program_frames
from ..record import Record
from ..redaction import Redaction

_REAL_KILL, _REAL_GETPID = os.kill, os.getpid  # taken before the process boundary replaces them
OUTPUT_HEAD = 8192  # bytes of stdout/stderr kept in END, for diffs when a replay prints otherwise


class Stream(Record):
    """What passed by on a stream (stdout, stderr) or what a call returned: size, digest and its first bytes.
    ``head`` is bytes as recorded, text in a verdict."""

    __slots__ = ("digest", "size", "head")

    def __init__(self, digest: str, size: int, head: bytes | str = b"") -> None:
        self.digest = digest
        self.size = size
        self.head = head

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Stream | None:
        if data is None:
            return None
        return cls(data["digest"], data["size"], data.get("head", b""))

    def as_text(self) -> Stream:
        """The head decoded, as a verdict shows it."""
        head = self.head
        return self.replace(head=head.decode("utf-8", "replace")) if isinstance(head, bytes) else self


class ExceptionInfo(Record):
    """An uncaught exception: its type, message, the program's traceback and the crash fingerprint."""

    __slots__ = ("type", "message", "traceback", "fingerprint")

    def __init__(self, type: str, message: str, traceback: list[list[Any]], fingerprint: str) -> None:  # noqa: A002
        self.type = type
        self.message = message
        self.traceback = traceback
        self.fingerprint = fingerprint

    @classmethod
    def of(cls, exc: BaseException) -> ExceptionInfo:
        # Portable file names: a crash and its replay in another checkout, or on another machine, compare equal.
        frames = [[portable(f.filename), f.lineno, f.name, f.line or ""]
                  for f in traceback.extract_tb(program_traceback(exc))]
        if len(frames) > MAX_TRACEBACK_FRAMES:  # a deep recursion: its ends, within what a reader accepts
            half = MAX_TRACEBACK_FRAMES // 2
            frames = frames[:half] + frames[-half:]
        type_name = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
        return cls(type_name, str(exc), frames, crash_fingerprint(type_name, frames))

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ExceptionInfo | None:
        if not data:
            return None
        return cls(data["type"], data["message"], [list(f) for f in data["traceback"]], data["fingerprint"])

    def same_crash(self, other: ExceptionInfo | None) -> bool:
        return other is not None and (self.type, self.fingerprint) == (other.type, other.fingerprint)


def crash_fingerprint(type_name: str, frames: list[list[Any]]) -> str:
    """Stable across unrelated edits: the exception type and the chain of (file name, function) of the program's
    own frames (what a library did beneath them is not where the program crashed)."""
    h = blake2b(type_name.encode(), digest_size=8)
    for filename, _line, function, _text in program_frames(frames):
        h.update(f"|{os.path.basename(filename)}:{function}".encode())
    return h.hexdigest()


class Outcome(Record):
    """How a run ended: exit status (1 for a call or request that raised; minus the signal's number for a
    process killed by one, as :mod:`subprocess` says it), the uncaught exception, and the
    summaries of its output (a process) or of what it returned (a call, a request's response)."""

    __slots__ = ("status", "exception", "stdout", "stderr", "returned")

    def __init__(self, status: int | None, exception: ExceptionInfo | None = None, stdout: Stream | None = None,
                 stderr: Stream | None = None, returned: Stream | None = None) -> None:
        self.status = status
        self.exception = exception
        self.stdout = stdout
        self.stderr = stderr
        self.returned = returned

    @property
    def crashed(self) -> bool:
        return self.exception is not None or self.status not in (0, None)

    def to_json(self) -> dict[str, Any]:
        """The verdict's form: what a call returned only for a call or request (a process returns nothing)."""
        data = super().to_json()
        if self.returned is None:
            del data["returned"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(data.get("status"), ExceptionInfo.from_json(data.get("exception")),
                   Stream.from_json(data.get("stdout")), Stream.from_json(data.get("stderr")),
                   Stream.from_json(data.get("returned")))

    def to_end(self, events: int | None, recording_error: str | None = None) -> dict[str, Any]:
        """The END frame of a recording that ended this way."""
        end = self.to_json()
        end["events"] = events
        if recording_error:
            end["recording_error"] = recording_error
        return end

    def as_text(self) -> Outcome:
        """Every stream's head decoded, as a verdict shows it."""
        return self.replace(**{part: stream.as_text() for part in ("stdout", "stderr", "returned")
                                if (stream := getattr(self, part)) is not None})


def leave_with(status: int) -> NoReturn:
    """End this process as a run with ``status`` ended: a negative status is a death by that signal, passed on
    as the same signal (the parent shell or supervisor sees what it would have seen)."""
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        _REAL_KILL(_REAL_GETPID(), -status)
        time.sleep(1)  # the signal is delivered at once; this only covers one that is blocked
        status = 128 - status
    sys.exit(status)


def returned_summary(value: Any, redaction: Redaction) -> Stream:
    """A return value as an outcome compares it: a digest of its encoded form, and a readable head (with the
    secrets it shows redacted)."""
    try:
        data = codec.packb(value)
    except (codec.UnencodableValue, TypeError, ValueError, OverflowError):
        data = repr(value).encode("utf-8", "replace")
    return Stream(blake2b(data, digest_size=16).hexdigest(), len(data), redaction.fragment(repr(value)[:400]))
