"""Stand-ins: a boundary's replacement of a library callable, wearing the original's face.

Recording must be invisible, wherever the program keeps the callable it was handed. A stand-in
(``native/transparent.cpp``) runs the replacement but answers every attribute as the original does
(``__name__``, ``__qualname__``, ``__module__``, ``__doc__``, the signature, ``__class__`` for
``isinstance`` and ``inspect``), reprs and pickles as it does, and binds as it does: the
replacement of a builtin (``time.localtime``, stored by ``logging.Formatter`` as a class attribute)
never becomes a method, the replacement of a method binds like one. Being a C object, it adds no
frame to a traceback, and an exception leaving it has pytest-retrace's frames cut out: the program
sees the traceback the plain call would have given.

``PYTEST_RETRACE_OWN_FRAMES=1`` keeps our frames in tracebacks (to debug pytest-retrace itself).
Without the native module, a pure-Python stand-in does the same but for the frames.
"""

from __future__ import annotations

import os
import types
from typing import Any

from ..frames import PACKAGE_DIR

OWN_FRAMES_ENV = "PYTEST_RETRACE_OWN_FRAMES"

_EVERYONES = frozenset({"__class__", "__doc__", "__module__", "__dir__", "__sizeof__"})


class PyStandIn:
    """The pure-Python twin of the native stand-in, for when the extension could not be built: the same face,
    but its own frames stay in tracebacks."""

    __slots__ = ("__retrace_impl__", "__retrace_original__", "__weakref__")

    def __init__(self, impl: Any, original: Any) -> None:
        object.__setattr__(self, "__retrace_impl__", impl)
        object.__setattr__(self, "__retrace_original__", original)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__retrace_impl__(*args, **kwargs)

    def __getattribute__(self, name: str) -> Any:
        if name in _EVERYONES or not hasattr(type(self), name):
            return getattr(object.__getattribute__(self, "__retrace_original__"), name)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__retrace_original__, name, value)

    def __repr__(self) -> str:
        return repr(self.__retrace_original__)

    def __reduce__(self) -> Any:
        return self.__retrace_original__.__qualname__


class PyMethodStandIn(PyStandIn):
    __slots__ = ()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else types.MethodType(self, obj)


StandIn: Any
MethodStandIn: Any
try:
    from ._native import MethodStandIn, StandIn, set_own_prefix

    set_own_prefix(None if os.environ.get(OWN_FRAMES_ENV, "") not in ("", "0") else os.path.join(PACKAGE_DIR, ""))
except ImportError:  # the extension could not be built on this platform
    StandIn, MethodStandIn = PyStandIn, PyMethodStandIn

# What binds when stored on a class: plain functions and the method descriptors of C types. Builtin
# functions (time.time) and bound methods do not.
_BINDING = (types.FunctionType, types.MethodDescriptorType, types.WrapperDescriptorType, MethodStandIn)


def stand_in(impl: Any, original: Any) -> Any:
    """``impl`` in ``original``'s place, looking and binding as ``original`` does."""
    return (MethodStandIn if isinstance(original, _BINDING) else StandIn)(impl, original)


def is_stand_in(value: Any) -> bool:
    return isinstance(value, StandIn)


def replacing(value: Any, original: Any) -> Any:
    """What a boundary installs in ``original``'s place when it hands over ``value``: a function, a bound
    method or a class standing for a function becomes a stand-in; a classmethod's or staticmethod's
    function too, inside it; anything else (a subclass of the library's class) goes in as it is."""
    if isinstance(value, (types.FunctionType, types.MethodType)):
        return stand_in(value, original)
    if isinstance(value, (classmethod, staticmethod)) and isinstance(value.__func__, types.FunctionType):
        inner = original.__func__ if isinstance(original, (classmethod, staticmethod)) else original
        return type(value)(StandIn(value.__func__, inner))
    if isinstance(value, type) and not isinstance(original, type) and callable(original):
        return StandIn(value, original)
    return value
