"""The plugins of our own hooks (``specs.py``): built-in library adapters and installed packages' plugins.

Start-up matters here: every record and replay runs this in a fresh interpreter.

- A built-in adapter is imported only when the program imports its library (:data:`BUILT_IN`): a program that
  never uses HTTP does not import ``http.client`` for the requests adapter.
- pluggy is imported only when some installed package has a plugin.
- Finding installed packages' plugins means reading every distribution's entry points (with
  ``importlib.metadata``, some 30 ms). The launcher does it and hands the list to each recording or replaying
  child (``preset``); and it keeps the answer in the user's cache folder (``plugin_cache``), keyed by what can
  change it, so that most runs only list the folders on ``sys.path``.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

from ..engine.state import internal
from ..format.codec import add_codec_source, register_codec

if TYPE_CHECKING:
    from types import ModuleType

    import pluggy

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from .options import Options

ENTRY_POINT_GROUP = "pytest_retrace"


class BuiltIn(NamedTuple):
    """A built-in adapter (a plugin module of our hooks) and the modules whose first import loads it."""

    module: str
    libraries: tuple[str, ...]


# The libraries here are the modules each adapter patches (or the first of them to be imported): the adapter is
# installed right after such a module is executed, before the program can call or bind anything from it.
BUILT_IN = (
    BuiltIn("pytest_retrace.adapters.requests_adapter", ("requests.adapters",)),
    BuiltIn("pytest_retrace.adapters.psycopg2_adapter", ("psycopg2",)),
    BuiltIn("pytest_retrace.adapters.sqlite3_adapter", ("sqlite3",)),
    BuiltIn("pytest_retrace.adapters.pools", ("sqlalchemy.pool.base", "sqlalchemy.engine.default",
                                              "django.db.backends.base.base")),
)


class _Plugins:
    """This process's plugin manager for installed packages' plugins (built on first use; None when there are
    none), and the plugin list the launcher found for it."""

    built = False
    manager: pluggy.PluginManager | None = None
    preset: list[str] | None = None


_plugins = _Plugins()


@functools.cache
def discover() -> list[str]:
    """Installed packages' plugins: the ``pytest_retrace`` entry points, as ``module[:attribute]`` (from the cache
    while nothing it depends on changed)."""
    from . import plugin_cache  # the launcher's: a child is handed the list

    return plugin_cache.cached(ENTRY_POINT_GROUP, _scan)


def _scan() -> list[str]:
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


def manager() -> pluggy.PluginManager | None:
    """The plugin manager of installed packages' plugins, built once per process, whose codecs are registered at
    once (a recording may be read before any boundary is installed); None when no package has a plugin (then
    pluggy is not even imported). Built-in adapters are not in it: they are installed when used."""
    if not _plugins.built:
        plugins = discover() if _plugins.preset is None else _plugins.preset
        if plugins:
            import pluggy

            from . import specs

            pm = pluggy.PluginManager(specs.PROJECT)
            pm.add_hookspecs(specs)
            for reference in plugins:
                pm.register(_load(reference), reference)
            pm.hook.retrace_register_codecs(register=register_codec)
            _plugins.manager = pm
        _plugins.built = True
    return _plugins.manager


def install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    """Installed packages' boundaries now; each built-in adapter once its library is imported (at once if it is)."""
    pm = manager()
    if pm is not None:
        pm.hook.retrace_install_boundaries(engine=engine, patcher=patcher, options=options)
    for adapter in reversed(BUILT_IN):  # in pluggy's order: the last registered first
        _install_when_used(adapter, engine, patcher, options)


def _install_when_used(adapter: BuiltIn, engine: Engine, patcher: Patcher, options: Options) -> None:
    done: list[bool] = []

    def install(library: ModuleType) -> None:
        if done:  # another of its libraries loaded it already
            return
        done.append(True)
        with internal:  # our own import and set-up: nothing of it is the program's
            plugin = importlib.import_module(adapter.module)
            plugin.retrace_install_boundaries(engine=engine, patcher=patcher, options=options)

    for library in adapter.libraries:
        patcher.when_imported(library, install)


def _all_codecs() -> None:
    """When a recording holds a value of a codec nobody registered yet: the built-in adapters' codecs too."""
    for adapter in BUILT_IN:
        register = getattr(importlib.import_module(adapter.module), "retrace_register_codecs", None)
        if register is not None:
            register(register=register_codec)
    manager()


# A recording may hold values of an installed package's codec before any boundary is installed.
add_codec_source(_all_codecs)
