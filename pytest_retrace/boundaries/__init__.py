"""The stdlib boundaries, one module per area of the outside world, and custom boundaries.

Above the engine and the hooks; below the recording kinds, which call :func:`install`. Library
adapters (``pytest_retrace.adapters``) sit beside them and are installed through the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine import state
from ..engine.state import internal
from ..hooks import manager
from ..hooks.options import Options

if TYPE_CHECKING:
    from types import ModuleType

    from ..engine.base import Engine
    from ..engine.patch import Patcher

__all__ = ["Options", "areas", "install"]


def areas() -> tuple[ModuleType, ...]:
    """The stdlib areas' modules, imported on first use (what a replay needs, when it does). A child imports
    them first thing, so that recording and replay leave the program the same ``sys.modules``, in the same
    order (programs walk it: ``inspect.getmodule`` stats every module's file)."""
    from . import (
        clock,
        collector,
        entropy,
        files,
        identity,
        locales,
        machine,
        process,
        signals,
        socket,
        sync,
        threads,
        tree,
    )

    # The tree before process: asyncio's wait for a subprocess (process) hands other pids on to the tree's.
    return (threads, sync, collector, clock, entropy, files, tree, process, signals, socket, machine, identity,
            locales)


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    """Install every boundary (stdlib areas, custom boundaries, library adapters) for ``engine``; ``patcher``
    undoes them."""
    with internal:
        manager.manager()  # load installed packages' plugins before any boundary is there to see it
    patcher.on_undo(state.install(engine))
    for area in areas():
        area.install(engine, patcher, options)
    with internal:
        manager.install_boundaries(engine, patcher, options)  # installed packages'; ours when their library is used
