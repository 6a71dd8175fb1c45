"""The plugin manager for our own hooks (``specs.py``): built-in adapters and installed packages.

Finding installed packages' plugins means reading every package's metadata (some 20 ms); the
launcher does it once and hands the list to each recording or replaying child (``preset``).
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from ..format.codec import add_codec_source, register_codec

if TYPE_CHECKING:
    import pluggy

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from .specs import Options

ENTRY_POINT_GROUP = "pytest_retrace"
BUILT_IN = ("pytest_retrace.adapters.requests_adapter", "pytest_retrace.adapters.psycopg2_adapter",
            "pytest_retrace.adapters.sqlite3_adapter", "pytest_retrace.adapters.pools")


class _Plugins:
    """This process's plugin manager, built on first use, and the plugin list the launcher found for it."""

    manager: pluggy.PluginManager | None = None
    preset: list[str] | None = None


_plugins = _Plugins()


@functools.cache
def discover() -> list[str]:
    """Installed packages' plugins: the ``pytest_retrace`` entry points, as ``module[:attribute]``."""
    from importlib.metadata import entry_points

    return sorted({ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})


def preset(plugins: list[str]) -> None:
    """Use this list of plugins (found by the launcher) instead of reading package metadata."""
    _plugins.preset = list(plugins)


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


def manager() -> pluggy.PluginManager:
    """The plugin manager, built once per process: built-in adapters, then installed packages' plugins,
    whose codecs are registered at once (a recording may be read before any boundary is installed)."""
    if _plugins.manager is None:
        import pluggy  # here, not at the top: the launcher only discovers plugins

        from . import specs

        pm = pluggy.PluginManager(specs.PROJECT)
        pm.add_hookspecs(specs)
        for reference in (*BUILT_IN, *(discover() if _plugins.preset is None else _plugins.preset)):
            pm.register(_load(reference), reference)
        pm.hook.retrace_register_codecs(register=register_codec)
        _plugins.manager = pm
    return _plugins.manager


def install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    manager().hook.retrace_install_boundaries(engine=engine, patcher=patcher, options=options)


# A recording may hold values of an installed package's codec before any boundary is installed.
add_codec_source(manager)
