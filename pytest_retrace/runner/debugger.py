"""pdb on a debugging replay (``debugging.py``): the program's frames at a stop, on the user's terminal, with the
replay's position (``where``, ``events``) and time travel (``goto N``, ``back [N]``, ``forward [N]``)."""

from __future__ import annotations

import pdb
import sys
from types import FrameType, TracebackType
from typing import IO, Any, NoReturn, Protocol

from ..engine.state import internal
from ..format.events import Event, short_repr
from ..frames import PACKAGE_DIR

EVENTS_AROUND = 5  # events listed before and after the position


class Replay(Protocol):
    """What the debugger asks of the debugging replay it stops (``debugging.Session``)."""

    total: int
    ended: bool
    refusing: bool

    @property
    def position(self) -> int: ...

    def event(self, index: int) -> Event | None: ...

    def travel(self, target: int) -> str | None: ...

    def quit(self) -> NoReturn: ...


class ReplayDebugger(pdb.Pdb):
    """pdb whose stops are the replay's: every prompt runs behind the engine's gate (nothing the debugger does is
    the program's), with the user's expressions refused any real effect."""

    def __init__(self, session: Replay, stdin: IO[str], stdout: IO[str]) -> None:
        super().__init__(stdin=stdin, stdout=stdout, nosigint=True, skip=["pytest_retrace", "pytest_retrace.*"])
        self.session = session
        self.prompt = "(Pdb) "
        self.first_in: str | None = None  # --trace: the first stop is in this folder's code
        self.why: str | None = None
        self.stepping = False

    # -- where a stop comes from ----------------------------------------------------------------------------

    def stop_at(self, frame: FrameType | None, why: str) -> None:
        """Interact at ``frame`` (the program making a call, or diverging); then go on as the user said."""
        self.reset()
        self.why = why
        self.message(f"retrace: {why}")
        self.interaction(frame, None)
        if self.stoplineno != -1 or self.breaks:  # step, next or a breakpoint (not continue): trace from here on
            self._trace_from(frame)

    def post_mortem(self, tb: TracebackType, why: str) -> None:
        self.reset()
        self.why = why
        self.message(f"retrace: {why}")
        self.interaction(None, tb)

    def at_end(self, why: str) -> None:
        self.reset()
        self.why = why
        self.message(f"retrace: {why}")
        self.interaction(sys._getframe(), None)

    def trace_from_first_line(self, root: str) -> None:
        """Stop at the first line of the program's own code (``--trace``)."""
        self.reset()
        self.first_in = root.rstrip("/") + "/"
        self.why = "the program's first line"
        self._trace_from(sys._getframe(1))

    def _trace_from(self, frame: FrameType | None) -> None:
        if self.first_in is not None:
            self.set_step()
        while frame is not None:
            frame.f_trace = self.trace_dispatch
            self.botframe = frame
            frame = frame.f_back
        sys.settrace(self.trace_dispatch)

    # -- bdb's side -----------------------------------------------------------------------------------------

    def trace_dispatch(self, frame: FrameType, event: str, arg: Any) -> Any:  # type: ignore[override]
        with internal:
            return super().trace_dispatch(frame, event, arg)

    def stop_here(self, frame: FrameType) -> bool:
        filename = frame.f_code.co_filename
        if filename.startswith(PACKAGE_DIR) or (self.first_in is not None and not filename.startswith(self.first_in)):
            return False
        return super().stop_here(frame)

    def user_call(self, frame: FrameType, argument_list: Any) -> None:
        if self.first_in is None:  # --trace stops at the first line, not at the call before it
            super().user_call(frame, argument_list)

    def user_line(self, frame: FrameType) -> None:
        if self.first_in is not None:
            self.first_in = None
            self.message(f"retrace: stopped at the program's first line (event position #{self.session.position})")
        super().user_line(frame)

    def interaction(self, frame: FrameType | None, traceback: Any) -> None:
        self.session.refusing = True
        try:
            super().interaction(frame, traceback)
        finally:
            self.session.refusing = False

    # -- commands ---------------------------------------------------------------------------------------------

    def do_where(self, arg: str) -> None:
        """w(here)
        Print the stack trace, then the replay's event position."""
        super().do_where(arg)
        self._position()

    do_w = do_bt = do_where

    def _position(self) -> None:
        session = self.session
        position = session.position
        upcoming = session.event(position)
        following = f"; next: #{position} {upcoming.describe()}" if upcoming is not None and not session.ended else ""
        self.message(f"retrace: at event #{position} of {session.total}{following}")

    def do_events(self, arg: str) -> None:
        """events [N]
        The recorded calls around the replay's position (or around event N); '>' marks the next one."""
        session = self.session
        center: int | None = session.position
        if arg.strip():
            center = self._number(arg, "events")
        if center is None:
            return
        for index in range(max(0, center - EVENTS_AROUND), min(session.total, center + EVENTS_AROUND + 1)):
            event = session.event(index)
            assert event is not None
            mark = ">" if index == session.position and not session.ended else " "
            with internal:
                text = f"{event.describe()} -> {short_repr(event.result, 60)}"
            self.message(f"{mark} #{index:<6} [{event.tid}] {text if len(text) <= 160 else text[:157] + '...'}")

    def do_goto(self, arg: str) -> int | None:
        """goto N
        Go to just before event N (forward by replaying on, back by resuming a checkpoint)."""
        target = self._number(arg, "goto")
        return None if target is None else self._travel(target)

    def do_back(self, arg: str) -> int | None:
        """back [N]
        Go back N events (default 1): to just before event POSITION-N."""
        count = self._number(arg or "1", "back")
        return None if count is None else self._travel(self.session.position - count)

    def do_forward(self, arg: str) -> int | None:
        """forward [N]
        Go forward N events (default 1): to just before event POSITION+N."""
        count = self._number(arg or "1", "forward")
        return None if count is None else self._travel(self.session.position + count)

    def _travel(self, target: int) -> int | None:
        problem = self.session.travel(target)
        if problem is not None:
            self.error(problem)
            return None
        self.set_continue()
        return 1

    def _number(self, arg: str, command: str) -> int | None:
        try:
            return int(arg.strip())
        except ValueError:
            self.error(f"{command}: give an event number, not {arg.strip()!r}")
            return None

    def do_quit(self, arg: str) -> None:
        """q(uit)
        End the debugging replay (and, under pytest, the test session)."""
        self.session.quit()

    do_q = do_exit = do_quit

    def do_EOF(self, arg: str) -> None:
        self.message("")
        self.session.quit()

