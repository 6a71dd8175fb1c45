"""Entry points of in-process recordings: how a fresh interpreter finds the recorded function or app again."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..format.codec import resolve_type_path


def module_root(name: str) -> str | None:
    """The sys.path entry a fresh interpreter needs to import module ``name`` as this one did."""
    file = getattr(sys.modules[name], "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    for _ in range(name.count(".") + (Path(file).stem == "__init__")):
        root = root.parent
    return str(root)


def importable_name(module: str) -> str:
    """The name a fresh interpreter imports ``module`` by: a script run as ``__main__`` by its file name."""
    file = getattr(sys.modules[module], "__file__", None)
    return Path(file).stem if module == "__main__" and file else module


def entry_point(function: Callable[..., Any]) -> dict[str, Any]:
    """How a fresh interpreter finds the function again: ``module:qualname``, and the root of its module."""
    name = importable_name(function.__module__)
    return {"function": f"{name}:{function.__qualname__}", "root": module_root(function.__module__)}


def resolve(entry: dict[str, Any]) -> Callable[..., Any]:
    """The recorded function (or WSGI app) of a header's ``entry``, imported. Raises SystemExit with the
    reason when it cannot be found."""
    if "app" in entry:  # a request recording names its app
        entry = {"function": entry["app"], "root": entry["root"]}
    if entry.get("root") and entry["root"] not in sys.path:
        sys.path.insert(0, entry["root"])
    try:
        obj: Any = resolve_type_path(entry["function"])
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"retrace: cannot find {entry['function']!r}, the entry point of this recording "
                         f"({type(exc).__name__}: {exc}); replay where its module is importable "
                         f"(recorded from {entry.get('root') or 'an unknown folder'})") from None
    return getattr(obj, "__wrapped__", obj)  # type: ignore[no-any-return]  # the function, not our wrapper
