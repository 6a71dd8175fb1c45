"""The stdlib boundaries, one module per area of the outside world."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine
    from ..patch import Patcher


class Options:
    """What a project can configure about where the boundary sits."""

    def __init__(self, live_paths: list[str] | None = None) -> None:
        self.live_paths = list(live_paths or [])  # fnmatch patterns read live on replay, never recorded


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    from .. import custom, plugins
    from ..engine import internal
    from . import clock, collector, entropy, files, process, socket, sync, threads

    with internal:
        plugins.manager()  # load plugins (reading package metadata) before any boundary is there to see it
    for area in (threads, sync, collector, clock, entropy, files, process, socket, custom):
        area.install(engine, patcher, options)
    with internal:
        plugins.install_boundaries(engine, patcher, options)  # library adapters: ours and installed packages'

