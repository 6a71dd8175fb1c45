"""Native core of pytest-retrace: the replay demultiplexer (native/demux.cpp), the boundaries' stand-ins and the
engine's hot paths (native/transparent.cpp), the event reader (native/events.cpp)."""

from collections.abc import Iterator
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

def call_recorder(recorder: Any, state: Any, tls: Any, ids: dict[str, int], slow: Any, raised: Any) -> Any:
    """The recorder's ``call(name, args, fn, *a, **kw)``: on the hot path, in C."""

def in_native_call() -> bool:
    """Whether an external call that the recorder's native ``call`` runs is under way."""

def scan_events(payload: bytes, names: int, first: int) -> tuple[int, list[int]]:
    """How many events an EVENTS frame's payload holds, and ``[start, end, is_key]`` of each ext value in it,
    checked without decoding; ValueError when malformed."""

class EventCursor(Iterator[Any]):
    """A position in an :class:`EventList`; the replay's fast paths read it."""

    def __next__(self) -> Any: ...
    def __length_hint__(self) -> int: ...
    def __setstate__(self, position: int) -> None: ...
    def follow(self, events: EventList) -> None: ...

class EventList:
    """The events of decoded flat streams, each made into an Event when asked for."""

    def __init__(self, frames: list[list[Any]], names: list[str], first: int, event: type, deferred: type) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int | slice) -> Any: ...
    def __setitem__(self, index: int, value: Any) -> None: ...
    def __iter__(self) -> EventCursor: ...
    def tids(self) -> list[str]: ...
    def single_thread(self) -> bool: ...
    def defer(self, indices: list[int]) -> None: ...
    def indices_of(self, name: str) -> list[int]: ...

def die_with_parent(parent: int) -> bool: ...
