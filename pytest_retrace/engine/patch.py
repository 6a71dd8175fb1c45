"""Installing and removing boundary patches.

Module attributes and Python classes are patched with setattr. Built-in C types
(``datetime.datetime``) refuse setattr, so their method is written into the
type's own dict and the type's method cache invalidated, which is what the
interpreter itself does when a heap type's attribute changes. What goes in is
a stand-in for what was there (:mod:`.standin`), so the program cannot tell.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .importhook import when_imported
from .standin import replacing

_MISSING = object()


def _type_dict(cls: type) -> dict[str, Any]:
    (real,) = [r for r in gc.get_referents(cls.__dict__) if isinstance(r, dict)]
    return real


def set_type_attr(cls: type, name: str, value: Any) -> None:
    """Set an attribute on a type even when it is a built-in (immutable) type."""
    try:
        setattr(cls, name, value)
    except TypeError:
        _type_dict(cls)[name] = value
        ctypes.pythonapi.PyType_Modified(ctypes.py_object(cls))


def _inherited(cls: type, name: str) -> Any:
    """What ``cls.name`` is found as in a base class's dict (descriptors unresolved)."""
    for base in cls.__mro__[1:]:
        if name in base.__dict__:
            return base.__dict__[name]
    return _MISSING


class Patcher:
    """Applies patches and remembers how to undo them, in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []
        self._cleanups: list[Callable[[], None]] = []

    def when_imported(self, module: str, patch: Callable[[ModuleType], None]) -> None:
        """Apply ``patch`` once ``module`` is imported (now, if it is); undone like the rest."""
        self._cleanups.append(when_imported(module, patch))

    def on_undo(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` when the patches are undone."""
        self._cleanups.append(cleanup)

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """Replace ``owner.name`` with a stand-in running ``value``; returns the original."""
        original = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name, _MISSING)
        self._undo.append((owner, name, original))
        shown = _inherited(owner, name) if original is _MISSING and isinstance(owner, type) else original
        if shown is not _MISSING:
            value = replacing(value, shown)
        if isinstance(owner, type):
            set_type_attr(owner, name, value)
        else:
            setattr(owner, name, value)
        return getattr(owner, name) if original is _MISSING else original

    def undo(self) -> None:
        while self._cleanups:
            self._cleanups.pop()()
        while self._undo:
            owner, name, original = self._undo.pop()
            if original is _MISSING:
                if isinstance(owner, type):
                    _type_dict(owner).pop(name, None)
                    ctypes.pythonapi.PyType_Modified(ctypes.py_object(owner))
                else:
                    delattr(owner, name)
            elif isinstance(owner, type):
                set_type_attr(owner, name, original)
            else:
                setattr(owner, name, original)
