"""The plugin manager for our own hooks (``hookspecs.py``): built-in adapters and installed packages.

Finding installed packages' plugins means reading every package's metadata (some 20 ms); the
launcher does it once and hands the list to each recording or replaying child (``preset``).
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from .codec import register_codec

if TYPE_CHECKING:
    import pluggy

    from .boundaries import Options
    from .engine import Engine
    from .patch import Patcher

ENTRY_POINT_GROUP = "pytest_retrace"
BUILT_IN = ("pytest_retrace.adapters.requests_adapter", "pytest_retrace.adapters.dbapi")

_manager: list[pluggy.PluginManager] = []
_preset: list[list[str]] = []


@functools.cache
def discover() -> list[str]:
    """Installed packages' plugins: the ``pytest_retrace`` entry points, as ``module[:attribute]``."""
    from importlib.metadata import entry_points

    return sorted({ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})


def preset(plugins: list[str]) -> None:
    """Use this list of plugins (found by the launcher) instead of reading package metadata."""
    _preset[:] = [plugins]


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


def manager() -> pluggy.PluginManager:
    """The plugin manager, built once per process: built-in adapters, then installed packages' plugins,
    whose codecs are registered at once (a recording may be read before any boundary is installed)."""
    if not _manager:
        import pluggy  # here, not at the top: the launcher only discovers plugins

        from . import hookspecs

        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        for reference in (*BUILT_IN, *(_preset[0] if _preset else discover())):
            pm.register(_load(reference), reference)
        pm.hook.retrace_register_codecs(register=register_codec)
        _manager.append(pm)
    return _manager[0]


def install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    manager().hook.retrace_install_boundaries(engine=engine, patcher=patcher, options=options)
