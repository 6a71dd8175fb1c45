"""The environment: one snapshot of ``os.environ`` at start, restored before replay.

Reads then cost nothing while recording. Values whose names look secret, and the secret parts of values
shaped like credentials (a ``DATABASE_URL``'s password), are redacted before the snapshot is written
(:mod:`pytest_retrace.redaction`); the replayed program sees the placeholder, so a program that prints a
secret diverges instead of leaking it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..redaction import DEFAULT, PLACEHOLDER, Redaction

__all__ = ["PLACEHOLDER", "capture", "decode", "restore", "snapshot"]


def capture() -> dict[Any, Any]:
    """The environment as it is now, for :func:`snapshot` later: a copy of ``os.environ``'s own store,
    which decodes nothing (a request recording takes one per request and keeps few)."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if data is not None else dict(os.environ)


def decode(captured: dict[Any, Any]) -> dict[str, str]:
    if getattr(os.environ, "_data", None) is None:
        return dict(captured)
    key, value = os.environ.decodekey, os.environ.decodevalue  # type: ignore[attr-defined]
    return {key(k): value(v) for k, v in captured.items()}


def snapshot(redaction: Redaction = DEFAULT, drop: tuple[str, ...] = (),
             environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The environment to record (``environ``, or the current one), and the names whose values were redacted."""
    current = os.environ if environ is None else environ
    kept = {name: value for name, value in current.items() if name not in drop}
    # A service takes one per request, and its environment hardly ever changes: redact it once (a comparison
    # of two dicts costs a few microseconds, redacting every variable hundreds).
    global _last_snapshot
    last = _last_snapshot
    if last is not None and last[0] is redaction and last[1] == kept:
        return dict(last[2]), list(last[3])
    redacted, names = redaction.environ(kept)
    _last_snapshot = (redaction, kept, redacted, names)
    return dict(redacted), list(names)


_last_snapshot: tuple[Redaction, dict[str, str], dict[str, str], list[str]] | None = None


def restore(env: dict[str, str]) -> None:
    if os.environ == env:  # a fork server's child: restored once, before the fork
        return
    os.environ.clear()
    os.environ.update(env)
