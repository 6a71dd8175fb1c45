"""Native core of pytest-retrace: the replay demultiplexer (native/demux.cpp) and the boundaries' stand-ins
(native/transparent.cpp)."""

from typing import Any

TIMED_OUT: int
EXHAUSTED: int
ABORTED: int

class Demux:
    """Hands recorded events to replaying threads in the recorded order."""

    def __init__(self, order: list[int], grace: float = 0.05) -> None: ...
    def claim(self, tid: int, timeout: float) -> int:
        """Wait (GIL released) until the next event belongs to ``tid``; its index, or a negative status."""
    def turn(self, tid: int, timeout: float) -> int:
        """Like ``claim`` but hold the turn until ``advance()``."""
    def advance(self) -> None: ...
    def park(self, tid: int) -> None: ...
    def abort(self) -> None: ...
    @property
    def position(self) -> int: ...
    def expected(self) -> int: ...
    def __len__(self) -> int: ...

class StandIn:
    """A library callable's replacement that looks and behaves like it (never binds); native/transparent.cpp."""

    __retrace_impl__: Any
    __retrace_original__: Any
    def __init__(self, impl: Any, original: Any) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

class MethodStandIn(StandIn):
    """A library method's replacement that looks and behaves like it (binds as a method)."""

    def __get__(self, obj: Any, owner: Any = None) -> Any: ...

def set_own_prefix(prefix: str | None) -> None:
    """Frames of files under ``prefix`` are cut from tracebacks leaving a stand-in (None: cut nothing)."""

def set_error_hook(hook: Any) -> None:
    """``hook(stand_in, exception, args, kwargs)`` runs when a replacement raises: it returns the exception itself
    for it to go on as it was, or what the call returns instead."""

def pass_through(stand_in: StandIn) -> None:
    """From now on the stand-in calls its original: the replacement is out of the way."""

def exec_as_main(code: Any, globals: dict[str, Any], locals: Any = None) -> None:
    """``exec(code, globals[, locals])`` at the bottom of the thread's stack: the code's frame has no caller."""

def noarg_recorder(source: Any, code: int, sink: list[Any], state: Any, slow: Any) -> Any:
    """The recording stand-in of an argument-less source (a clock): the common case in C."""

def noarg_replayer(source: Any, replayer: Any, cursor: Any, name: str, state: Any, slow: Any, raised_type: type,
                   live: Any) -> Any:
    """The replaying stand-in of an argument-less source: the next event answers, in C, when it can."""

def call_replayer(replayer: Any, cursor: Any, state: Any, slow: Any, raised_type: type, live: Any,
                  untaken: Any) -> Any:
    """The replayer's ``call(name, args, fn, *a, **kw)``: the next event answers, in C, when it can."""

def die_with_parent(parent: int) -> bool: ...
