"""The stdlib boundaries, one module per area of the outside world, and custom boundaries.

Above the engine and the hooks; below the recording kinds, which call :func:`install`. Library
adapters (``pytest_retrace.adapters``) sit beside them and are installed through the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine import state
from ..engine.state import internal
from ..hooks import manager
from ..hooks.specs import Options

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher

__all__ = ["Options", "install"]


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    """Install every boundary (stdlib areas, custom boundaries, library adapters) for ``engine``; ``patcher``
    undoes them."""
    from . import clock, collector, entropy, files, process, socket, sync, threads  # what a replay needs, when it does

    with internal:
        manager.manager()  # load plugins (reading package metadata) before any boundary is there to see it
    patcher.on_undo(state.install(engine))
    for area in (threads, sync, collector, clock, entropy, files, process, socket):
        area.install(engine, patcher, options)
    with internal:
        manager.install_boundaries(engine, patcher, options)  # library adapters: ours and installed packages'
