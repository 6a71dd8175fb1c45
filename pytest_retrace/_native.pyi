"""Native core of pytest-retrace: the replay demultiplexer (native/demux.cpp)."""

TIMED_OUT: int
EXHAUSTED: int
ABORTED: int

class Demux:
    """Hands recorded events to replaying threads in the recorded order."""

    def __init__(self, order: list[int]) -> None: ...
    def claim(self, tid: int, timeout: float) -> int:
        """Wait (GIL released) until the next event belongs to ``tid``; its index, or a negative status."""
    def turn(self, tid: int, timeout: float) -> int:
        """Like ``claim`` but hold the turn until ``advance()``."""
    def advance(self) -> None: ...
    def abort(self) -> None: ...
    @property
    def position(self) -> int: ...
    def expected(self) -> int: ...
    def __len__(self) -> int: ...
