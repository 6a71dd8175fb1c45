"""The header every recording starts with: what ran, where, and the world it ran in."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

from .._version import __version__
from ..boundaries import env
from ..enums import StrEnum
from ..errors import RecordingError
from ..format.tape import FORMAT


class Kind(StrEnum):
    """What a recording holds: a whole process, one call of a function, or one WSGI request."""

    PROCESS = "process"
    CALL = "call"
    WSGI = "wsgi"

    @classmethod
    def of(cls, header: dict[str, Any]) -> Kind:
        """The kind a header names; a RecordingError when it names none we know."""
        kind = header.get("kind", cls.PROCESS)
        try:
            return cls(kind)
        except ValueError:
            raise RecordingError(f"the recording is of an unknown kind {kind!r} (known: {', '.join(cls)}); "
                                 "it was written by a newer pytest-retrace, or it is damaged") from None

    @property
    def in_process(self) -> bool:
        """Recorded inside a running process (replayed by calling its entry point, not by running a program)."""
        return self is not Kind.PROCESS


def make_header(kind: Kind, entry: dict[str, Any], argv: list[str], hash_seed: int, redact: str | None,
                live_paths: list[str], tags: dict[str, Any], environ: dict[str, str] | None = None,
                created_at: str | None = None) -> dict[str, Any]:
    """The header of a recording of any kind. ``environ`` and ``created_at``:
    as they were when the recording started, when that was earlier than now."""
    environ, redacted = env.snapshot(redact, environ=environ)
    return {
        "format": FORMAT,
        "retrace_version": __version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "executable": sys.executable,
        "hash_seed": hash_seed,
        "kind": str(kind),
        "entry": entry,
        "argv": argv,
        "cwd": os.getcwd(),
        "environ": environ,
        "created_at": created_at or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "redaction": {"pattern": redact, "redacted": redacted},
        "live_paths": live_paths,
        "tags": tags,
        "pin": None,
    }
