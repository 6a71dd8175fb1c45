"""The stdlib boundaries, one module per area of the outside world."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine
    from ..patch import Patcher


@dataclass
class Options:
    """What a project can configure about where the boundary sits."""

    live_paths: list[str] = field(default_factory=list)  # fnmatch patterns read live on replay, never recorded


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    from . import clock, entropy, files, process, socket, threads

    for area in (threads, clock, entropy, files, process, socket):
        area.install(engine, patcher, options)
