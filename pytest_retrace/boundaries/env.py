"""The environment: one snapshot of ``os.environ`` at start, restored before replay.

Reads then cost nothing while recording. Values whose names look secret are
redacted before the snapshot is written; the replayed program sees the
placeholder, so a program that prints a secret diverges instead of leaking it.
"""

from __future__ import annotations

import os
import re

DEFAULT_REDACT = r"(?i)(secret|passw|token|api_?key|private_?key|credential|auth)"
PLACEHOLDER = "<redacted by pytest-retrace>"


def snapshot(pattern: str | None = DEFAULT_REDACT, drop: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    """The environment to record, and the names whose values were redacted."""
    compiled = re.compile(pattern) if pattern else None
    env: dict[str, str] = {}
    redacted: list[str] = []
    for name, value in os.environ.items():
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
