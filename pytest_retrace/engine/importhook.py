"""Run a patch when a module is first imported, so unused areas cost nothing at start-up.

A program that never imports ``ssl`` should not pay for loading OpenSSL just so that
its TLS sockets could be recorded. ``when_imported("ssl", patch)`` patches at once
if ``ssl`` is already loaded, and otherwise right after its first import.

The finder and loader follow the import protocol without deriving from ``importlib.abc``, whose import
brings ``importlib.resources``, ``tempfile`` and more into every recorded process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_pending: dict[str, list[Callable[[ModuleType], None]]] = {}


class _Finder:
    """A meta path finder that finds nothing itself: for a watched module it asks the other finders, then wraps
    the loader."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if name not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, name)  # type: ignore[assignment]  # a Loader by protocol
                return spec
        return None


class _Loader:
    """The module's own loader, running the callbacks after it executed the module. Everything else (``get_data``,
    ``get_source``, ``get_resource_reader`` …) is the wrapped loader's: the program sees its module's loader work
    as it does plainly."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def __getattr__(self, name: str) -> Any:
        if name == "_loader":  # not set yet (a copy being made): no endless recursion
            raise AttributeError(name)
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        for callback in _pending.pop(self._name, []):
            callback(module)


_FINDER = _Finder()


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> Callable[[], None]:
    """Call ``callback(module)`` now if ``name`` is imported, else right after its first import.

    Returns a function that cancels the callback if it has not run yet.
    """
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return _nothing
    _pending.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

    def cancel() -> None:
        callbacks = _pending.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)

    return cancel


def _nothing() -> None:
    return None


def write_no_bytecode() -> None:
    """From now on imports write no bytecode cache (a replay writes nothing), with ``sys.dont_write_bytecode`` left
    as the program's interpreter set it: a replayed program that reads it sees what the recorded one saw. The cache
    is written in one place, a source loader's ``set_data``; it does nothing now."""
    from importlib.machinery import SourceFileLoader

    def set_data(self: Any, path: str, data: bytes, *, _mode: int = 0o666) -> None:
        return None

    SourceFileLoader.set_data = set_data  # type: ignore[method-assign,assignment]
