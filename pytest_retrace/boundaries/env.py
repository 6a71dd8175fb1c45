"""The environment: one snapshot of ``os.environ`` at start, restored before replay.

Reads then cost nothing while recording. Values whose names look secret are
redacted before the snapshot is written; the replayed program sees the
placeholder, so a program that prints a secret diverges instead of leaking it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

DEFAULT_REDACT = r"(?i)(secret|passw|token|api_?key|private_?key|credential|auth)"
PLACEHOLDER = "<redacted by pytest-retrace>"


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


def snapshot(pattern: str | None = DEFAULT_REDACT, drop: tuple[str, ...] = (),
             environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The environment to record (``environ``, or the current one), and the names whose values were redacted."""
    compiled = re.compile(pattern) if pattern else None
    env: dict[str, str] = {}
    redacted: list[str] = []
    for name, value in (os.environ if environ is None else environ).items():
        if name in drop:
            continue
        if compiled is not None and compiled.search(name):
            env[name] = PLACEHOLDER
            redacted.append(name)
        else:
            env[name] = value
    return env, sorted(redacted)


def restore(env: dict[str, str]) -> None:
    if os.environ == env:  # a fork server's child: restored once, before the fork
        return
    os.environ.clear()
    os.environ.update(env)
