"""Hooks through which an installed package adds boundaries and value codecs.

A package names a module in its entry points::

    [project.entry-points.pytest_retrace]
    mylib = "mylib.retrace_plugin"

and implements any of these hooks there with ``@pytest_retrace.hookimpl``. They run in every
recorded and every replayed process, before the program starts. pytest-retrace's own library
adapters (requests, DB-API) are plugins of the same kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from .options import Options

__all__ = ["PROJECT", "Options", "hookimpl", "hookspec", "retrace_install_boundaries", "retrace_register_codecs"]

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..engine.base import Engine
    from ..engine.patch import Patcher

PROJECT = "pytest_retrace"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def retrace_register_codecs(register: Callable[[str, type, Callable[[Any], Any], Callable[[Any], Any]], None]) -> None:
    """Teach the trace values of new types: ``register(name, type, encode, decode)``, where ``encode`` maps a
    value to something the trace holds already (plain values, lists, dicts …) and ``decode`` maps it back.
    ``name`` is stored in recordings: keep it stable."""


@hookspec
def retrace_install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    """Install boundaries: replace functions with ``patcher.set`` (or ``patcher.when_imported`` for a module
    not imported yet) by wrappers that go through ``engine.call(name, args, real_function, *a, **kw)``.
    Everything patched is undone when the recording or replay ends. Calls that return nothing the program
    reads (transaction control) can be declared with ``engine.assume_success(names)``: a crash recording
    replayed on the fixed code's new path then assumes that such a call it never recorded succeeds."""
