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
Without the native module, a pure-Python stand-in does the same but for the frames, and an error of ours
reaches the program.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from ..frames import PACKAGE_DIR, is_own
from .state import STATE, tls

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
        if name in _EVERYONES or not any(name in vars(cls) for cls in type(self).__mro__):
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
    from .._native import (
        MethodStandIn,
        StandIn,
        call_recorder,
        call_replayer,
        in_native_call,
        noarg_recorder,
        noarg_replayer,
        pass_through,
        set_error_hook,
        set_own_prefix,
    )

    set_own_prefix(None if os.environ.get(OWN_FRAMES_ENV, "") not in ("", "0") else os.path.join(PACKAGE_DIR, ""))
except ImportError:  # the extension could not be built on this platform
    StandIn, MethodStandIn = PyStandIn, PyMethodStandIn
    set_error_hook = pass_through = noarg_recorder = noarg_replayer = call_replayer = None  # type: ignore[assignment]
    call_recorder = None  # type: ignore[assignment]

    def in_native_call() -> bool:
        return False

# Exceptions that only a bug of ours raises from our own frames: a real call raises TypeError, ValueError,
# OSError … from C called in our frames too, and those are the program's.
_BUGS = (AttributeError, KeyError, IndexError, NameError, AssertionError, ZeroDivisionError, RecursionError)
_warned: list[str] = []


def _after_error(stand_in: Any, exc: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A replacement raised. The call's own exception (raised by the real call, or by the recording on replay)
    goes on, as does anything but an error of ours. An error of ours while recording must not change the
    program: the original answers, this boundary passes through from now on, the recording is marked
    incomplete, and one warning goes to the real stderr."""
    if tls.raised == id(exc) or not isinstance(exc, _BUGS) or not _raised_by_us(exc):
        return exc
    engine = STATE.installed
    name = getattr(stand_in.__retrace_original__, "__qualname__", "?")
    reason = f"pytest-retrace failed inside {name}: {type(exc).__name__}: {exc}"
    if engine is None or not engine.internal_error(reason):
        return exc
    pass_through(stand_in)
    if not _warned and sys.__stderr__ is not None:
        _warned.append(reason)
        sys.__stderr__.write(f"pytest-retrace: warning: {reason}; {name} is no longer recorded, the recording "
                             "is incomplete (PYTEST_RETRACE_OWN_FRAMES=1 shows where)\n")
    return stand_in.__retrace_original__(*args, **kwargs)


def _raised_by_us(exc: BaseException) -> bool:
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return is_own(tb.tb_frame.f_code.co_filename)


if set_error_hook is not None:
    set_error_hook(_after_error)

# What binds when stored on a class: plain functions and the method descriptors of C types. Builtin
# functions (time.time) and bound methods do not.
_BINDING = (types.FunctionType, types.MethodDescriptorType, types.WrapperDescriptorType, MethodStandIn)


def stand_in(impl: Any, original: Any) -> Any:
    """``impl`` in ``original``'s place, looking and binding as ``original`` does."""
    return (MethodStandIn if isinstance(original, _BINDING) else StandIn)(impl, original)


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
