"""The header every recording starts with: what ran, where, and the world it ran in."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .._version import __version__
from ..boundaries import env, machine
from ..format.sealing import KEY_VARIABLES
from ..format.tape import FORMAT, Kind
from ..paths import portable_argument
from ..redaction import PLACEHOLDER, Redaction
from .entry import code_paths


def _platform() -> str:
    """This machine as ``platform.platform()`` names it on Linux (``Linux-6.1.0-18-amd64-x86_64-with-glibc2.36``),
    from ``os.uname()`` and the C library's version: ``platform.platform()`` itself starts ``uname -p`` in a
    subprocess for the processor's name, on every recording."""
    system, _, release, _, machine = os.uname()
    parts = [system, release, machine]
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"; unknown name elsewhere than glibc
    except (AttributeError, ValueError, OSError):
        libc = None
    if libc:
        parts += ["with", libc.replace(" ", "")]
    return "-".join(part.strip().replace(" ", "_").replace("/", "-") for part in parts if part)


# Taken once, as the module is imported: never while boundaries are installed (an in-process recording makes
# its headers with os.uname() recorded).
PLATFORM = _platform()
PYTHON = sys.version.split()[0]  # as platform.python_version() has it ("3.13.0rc1")


def make_header(kind: Kind, entry: dict[str, Any], argv: list[str], hash_seed: int, redaction: Redaction,
                live_paths: list[str], tags: dict[str, Any], environ: dict[str, str] | None = None,
                created_at: str | None = None) -> dict[str, Any]:
    """The header of a recording of any kind. ``environ`` and ``created_at``:
    as they were when the recording started, when that was earlier than now. The environment and ``argv``
    are redacted (the replayed program sees them so); ``entry`` comes redacted by its kind. Paths of code are
    stored relative to the project root (``kinds.entry.code_paths``), and so are argv's paths under it."""
    environ, redacted = env.snapshot(redaction, environ=environ)
    for name in KEY_VARIABLES & environ.keys():  # a private key is never recorded, sealed or not
        environ[name] = PLACEHOLDER
        redacted = sorted({*redacted, name})
    argv, flags = redaction.argv(argv)
    paths = code_paths(entry, os.getcwd())
    return {
        "format": FORMAT,
        "retrace_version": __version__,
        "python": PYTHON,
        "implementation": sys.implementation.name,
        "platform": PLATFORM,
        "executable": sys.executable,
        "hash_seed": hash_seed,
        "kind": str(kind),
        "entry": paths.entry,
        "argv": [portable_argument(arg, paths.project_root) for arg in argv],  # the path in any checkout
        "cwd": paths.cwd,
        "project_root": paths.project_root,  # where it was recorded: the paths above are relative to it
        "pid": os.getpid(),  # the process that recorded: a signal it sends itself is its own on replay too
        "environ": environ,
        "machine": machine.describe(),
        "created_at": created_at or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "redaction": redaction.to_header(redacted + flags),
        "live_paths": live_paths,
        "tags": tags,
        "pin": None,
    }


def recording_redaction(redaction: Redaction, header: dict[str, Any], argv: list[str]) -> Redaction:
    """The policy a process recording applies from its start on: ``redaction``, also knowing the values the
    header redacted whole (the current environment's, ``argv``'s), to replace them wherever they show up."""
    recorded = header["environ"]
    names = [name for name in recorded if name in os.environ]
    return redaction.knowing([os.environ[n] for n in names] + argv, [recorded[n] for n in names] + header["argv"])

