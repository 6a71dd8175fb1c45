"""A debugging replay: the replay child stops at the replayed crash, at the first divergence, or just before event
N, and hands the program's frames to a debugger front (pdb on the user's terminal, ``debugger.py``).

The launcher (``launcher.debug_replay``) starts the child in the foreground, never in a zygote or fork server,
with :class:`DebugSettings` in :data:`DEBUG_ENV` and the terminal's descriptors passed on. Everything here is set
up before the boundaries are installed (the descriptors, the real ``fork``, ``read`` and ``write``), and the
debugger's own work runs behind the engine's gate while its refusing audit hook keeps what the user types from
touching the world (a replay touches nothing, debugged or not).

Stopping costs the normal replay nothing: a debugging replay reads its events through a :class:`StopCursor`,
which ends at the stop as the recording ends; the replayer's end-of-events path asks ``at_stop`` first.

Time travel (``retrace debug``): a single-threaded replay forks a *checkpoint* every K events (K =
total/MAX_CHECKPOINTS, at least MIN_INTERVAL; never more than MAX_CHECKPOINTS of them, and none while the machine
has less than MIN_FREE_MEMORY available: a checkpoint costs the pages the replay writes after it). A checkpoint is
the forking process itself, parked on its pipe; the fork goes on replaying. Going back to event T resumes the
nearest checkpoint at or before T: it forks again, and that fork replays forward to T (deterministic, so the state
is exact) with the program's output silenced up to there. A multi-threaded replay cannot fork checkpoints (a fork
keeps only the forking thread): it goes back by replaying from the start (the anchor, forked before the program
ran). The process the launcher started is that anchor: it ends when the session does, and the others with it.
"""

from __future__ import annotations

import array
import json
import mmap
import os
import random
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableSequence
from operator import length_hint
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any, NoReturn

from ..engine import guard
from ..engine.divergence import DIVERGED_EXIT
from ..engine.guard import WATCHED
from ..engine.stack import program_traceback
from ..engine.state import STATE, internal, outside_while_in, tls
from ..format.events import Event
from ..frames import PACKAGE_DIR
from ..kinds.outcome import ExceptionInfo, Outcome
from ..record import Record

if TYPE_CHECKING:
    from ..engine.replayer import Replayer

DEBUG_ENV = "_PYTEST_RETRACE_DEBUG"  # a debugging replay's settings, as JSON
QUIT_EXIT = 121  # the user quit the debugger: the launcher stops (pytest's session too)
RESTART_EXIT = 122  # a multi-threaded replay goes back: the launcher starts it again, to stop where it says
MAX_CHECKPOINTS = 32
MIN_INTERVAL = 1000  # events between checkpoints at least: a fork costs about what a thousand events do
MIN_FREE_MEMORY = 256 << 20
_SLOT = struct.Struct("<qq")  # a checkpoint's event position (-1: a free slot) and pid
_MESSAGE = struct.Struct("<qq")  # command, value
_RESUME, _DIE, _END = 1, 2, 3

# Taken before the boundaries replace them: the debugger's own effects are no part of the program's.
_fork, _read, _write, _dup, _dup2, _close, _exit = os.fork, os.read, os.write, os.dup, os.dup2, os.close, os._exit
_pipe, _getpid, _waitpid, _open = os.pipe, os.getpid, os.waitpid, os.open
_select, _signal = select.select, signal.signal
_sleep = time.sleep


class DebugSettings(Record):
    """What a debugging replay stops at and where it talks. ``terminal``: the descriptors (in, out) of the
    user's terminal, passed to the child; ``at``: stop just before this event (None: only at the crash or the
    divergence); ``trace``: stop at the program's first line; ``travel``: fork checkpoints (``retrace debug``);
    ``dap``: serve the Debug Adapter Protocol on HOST:PORT instead of pdb; ``inspect``: answer an agent's question
    as JSON instead (``inspector.Question``'s fields)."""

    __slots__ = ("terminal", "at", "trace", "travel", "dap", "restart", "quiet", "inspect")

    def __init__(self, terminal: list[int] | None = None, at: int | None = None, trace: bool = False,
                 travel: bool = False, dap: str | None = None, restart: int | None = None,
                 quiet: bool = False, inspect: dict[str, Any] | None = None) -> None:
        self.terminal = list(terminal) if terminal is not None else None
        self.at = at
        self.trace = trace
        self.travel = travel
        self.dap = dap
        # a multi-threaded replay goes back by starting again: it writes the event to stop at to this descriptor
        self.restart = restart
        self.quiet = quiet  # started again: the program's output is silent up to the stop (it was seen)
        self.inspect = inspect

    @property
    def descriptors(self) -> list[int]:
        """The descriptors the child is handed."""
        return [*(self.terminal or ()), *([] if self.restart is None else [self.restart])]

    def to_env(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_environment(cls) -> DebugSettings | None:
        text = os.environ.pop(DEBUG_ENV, None)
        return None if text is None else cls(**json.loads(text))


class StopCursor:
    """The replay's cursor over its events that ends at ``stop`` (None: at the end), and tells ``passing`` of each
    position it passes (a checkpoint may be forked there)."""

    def __init__(self, events: MutableSequence[Event]) -> None:
        self.events = events
        self.inner = iter(events)
        self.stop: int | None = None
        self.passing: Callable[[int], None] | None = None

    @property
    def position(self) -> int:
        return len(self.events) - length_hint(self.inner)

    def __iter__(self) -> StopCursor:
        return self

    def __next__(self) -> Event:
        position = len(self.events) - length_hint(self.inner)
        if self.passing is not None:
            self.passing(position)  # may come back in a resumed fork, with a stop of its own
        if self.stop is not None and position >= self.stop:
            raise StopIteration
        return next(self.inner)

    def __length_hint__(self) -> int:
        return length_hint(self.inner)

    def __setstate__(self, position: int) -> None:
        self.inner.__setstate__(position)  # type: ignore[attr-defined]

    def follow(self, events: MutableSequence[Event]) -> None:
        self.events = events
        self.inner.follow(events)  # type: ignore[attr-defined]


class StopDemux:
    """A multi-threaded replay's demultiplexer, stopping the thread whose turn event ``stop`` is (the others wait
    for their turns meanwhile): ``stopping(index)`` is told before that thread goes on."""

    def __init__(self, demux: Any, stopping: Callable[[int], None]) -> None:
        self.inner = demux
        self.stop: int | None = None
        self.stopping = stopping

    def claim(self, slot: int, timeout: float) -> int:
        return self._at(self.inner.claim(slot, timeout))

    def turn(self, slot: int, timeout: float) -> int:
        return self._at(self.inner.turn(slot, timeout))

    def _at(self, index: int) -> int:
        if index >= 0 and index == self.stop:
            self.stop = None
            self.stopping(index)
        return index

    @property
    def position(self) -> int:
        return self.inner.position  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)


class Checkpoints:
    """The session's checkpoints, in memory shared by all its processes (an anonymous shared mapping and one pipe
    per slot, made by the first process before any fork), so any of them finds any checkpoint."""

    def __init__(self) -> None:
        self.table = mmap.mmap(-1, _SLOT.size * (MAX_CHECKPOINTS + 1))
        self.pipes = [_pipe() for _ in range(MAX_CHECKPOINTS + 1)]
        for slot in range(MAX_CHECKPOINTS + 1):
            self._put(slot, -1, 0)
        self.alive_r, self.alive_w = _pipe()  # only the anchor holds the write end: its end is everyone's
        self.holding = True  # this process holds it (is the anchor)

    def let_go(self) -> None:
        """In a fork: only the anchor holds the write end of ``alive``."""
        if self.holding:
            _close(self.alive_w)
            self.holding = False

    def _put(self, slot: int, position: int, pid: int) -> None:
        _SLOT.pack_into(self.table, slot * _SLOT.size, position, pid)

    def entries(self) -> list[tuple[int, int, int]]:
        """(slot, position, pid) of each checkpoint."""
        found = []
        for slot in range(MAX_CHECKPOINTS + 1):
            position, pid = _SLOT.unpack_from(self.table, slot * _SLOT.size)
            if position >= 0:
                found.append((slot, position, pid))
        return found

    def add(self, position: int) -> int | None:
        """A free slot for a checkpoint at ``position``; None when there is one there already, or no room."""
        entries = self.entries()
        if any(p == position for _, p, _ in entries) or len(entries) > MAX_CHECKPOINTS:
            return None
        taken = {slot for slot, _, _ in entries}
        slot = next(s for s in range(MAX_CHECKPOINTS + 1) if s not in taken)
        self._put(slot, position, _getpid())
        return slot

    def nearest(self, target: int) -> tuple[int, int] | None:
        """(slot, position) of the checkpoint nearest at or before ``target``."""
        before = [(position, slot) for slot, position, _ in self.entries() if position <= target]
        if not before:
            return None
        position, slot = max(before)
        return slot, position

    def send(self, slot: int, command: int, value: int = 0) -> None:
        _write(self.pipes[slot][1], _MESSAGE.pack(command, value))

    def park(self, slot: int) -> int:
        """Wait here as the checkpoint in ``slot`` until told to resume: returns (in a fresh fork, which goes on
        replaying) the event to stop at. Ends this process when told to, or when the anchor has gone."""
        with internal:
            return self._park(slot)

    def _park(self, slot: int) -> int:
        _signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the live replay
        read_end = self.pipes[slot][0]
        while True:
            ready, _, _ = _select([read_end, self.alive_r], [], [], 1.0)
            _reap()
            if self.alive_r in ready:
                _exit(0)
            if read_end not in ready:
                continue
            command, value = _MESSAGE.unpack(_read_exactly(read_end, _MESSAGE.size))
            if command == _END:
                self._put(slot, -1, 0)
                _exit(value)
            if command == _DIE:
                self._put(slot, -1, 0)
                _exit(0)
            if _fork_replay() == 0:
                self.let_go()
                _signal(signal.SIGINT, signal.default_int_handler)
                return value


def _fork_replay() -> int:
    """Fork; the fork goes on as the same replay (a fork of the program is outside its recording: not this one)."""
    saved = (tls.tid, tls.engine, STATE.single_thread, STATE.threaded, STATE.fast)
    # threading makes its registry's lock anew in a fork, of the class the sync boundary put in: it would be
    # replayed, where the recording had the interpreter's own
    registry = threading._active_limbo_lock  # type: ignore[attr-defined]
    # random reseeds its module-level generator in every fork (os.register_at_fork): the replay goes on with the
    # program's draws, from where they were.
    with internal:
        draws = random._inst.getstate()  # type: ignore[attr-defined]
    pid = _fork()
    if pid == 0:
        tls.tid, tls.engine, STATE.single_thread, STATE.threaded, STATE.fast = saved
        threading._active_limbo_lock = registry  # type: ignore[attr-defined]
        with internal:
            random._inst.setstate(draws)  # type: ignore[attr-defined]
        guard.adopt()
    return pid


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = _read(fd, size - len(data))
        if not chunk:
            _exit(0)
        data += chunk
    return data


def _reap() -> None:
    try:
        while _waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _drained(patience: float = 2.0) -> None:
    """Wait until the launcher has taken what the program printed off its pipes (it passes it on to the terminal
    the prompt is on): the prompt comes after the program's output, as when run plainly."""
    import fcntl
    import termios

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - the program's stream, in whatever state it left it
            pass
    waiting = array.array("i", [0])
    deadline = time.monotonic() + patience
    for fd in (1, 2):
        while time.monotonic() < deadline:
            try:
                fcntl.ioctl(fd, termios.FIONREAD, waiting)
            except OSError:
                break
            if not waiting[0]:
                break
            _sleep(0.005)
    _sleep(0.02)  # the launcher's pump writes what it took


def _memory_available() -> int:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return MIN_FREE_MEMORY  # unknown: assume enough


class Session:
    """One debugging replay, on the child's side: where it stops and what the debugger front is told."""

    def __init__(self, settings: DebugSettings, project_root: str) -> None:
        self.settings = settings
        self.project_root = project_root
        self.engine: Replayer | None = None
        self.cursor: StopCursor | None = None  # a single-threaded replay's
        self.demux: StopDemux | None = None  # a multi-threaded one's
        self.held: int | None = None  # the event a multi-threaded replay stopped before
        self.crash: BaseException | None = None
        self.reporting: Callable[[], Any] | None = None  # the divergence's report, once the replay diverged
        self.ended = False  # the program has ended: no going forward from here
        self.refusing = False  # the user's expressions are evaluated: real effects are refused
        self.checkpoints: Checkpoints | None = None
        self.interval = MIN_INTERVAL
        self.silenced: tuple[int, int] | None = None  # the program's stdout and stderr, while replaying to a target
        self.terminal_in, self.terminal_out = self._terminal()
        from .debugger import ReplayDebugger  # here: pdb is imported only by a debugging replay

        self.debugger: Any = ReplayDebugger(self, self.terminal_in, self.terminal_out)
        if settings.inspect is not None:  # an agent's question: answered as JSON (inspector.py), no terminal
            from .inspector import Inspector, Question

            self.debugger = Inspector(Question.from_json(settings.inspect), self, project_root)
        if settings.dap is not None:
            self._serve_dap(settings.dap)

    def _serve_dap(self, address: str) -> None:
        """Serve the Debug Adapter Protocol (debugpy's adapter, in this process) and wait for a client to attach
        and configure its breakpoints; before the boundaries are in, so debugpy's own socket is no replayed one."""
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # its warning would be the program's output
        # Its tracer in Python, not Cython: what it calls between the program's lines (os.lstat for a frame's file)
        # then has a frame of debugpy's on the stack, which puts it outside the recording (state.outside_while_in).
        os.environ["PYDEVD_USE_CYTHON"] = "NO"
        os.environ["PYDEVD_USE_FRAME_EVAL"] = "NO"
        try:
            import debugpy
        except ImportError:
            raise SystemExit("retrace debug: --dap needs debugpy: pip install 'pytest-retrace[debug]'") from None
        outside_while_in((os.path.dirname(debugpy.__file__) + os.sep,))
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise SystemExit(f"retrace debug: --dap {address}: give HOST:PORT (e.g. 127.0.0.1:5678)")
        listening = debugpy.listen((host or "127.0.0.1", int(port)), in_process_debug_adapter=True)
        self.debugger.message(f"retrace: waiting for a DAP client (VS Code: attach to {listening[0]}:{listening[1]})")
        self.terminal_out.flush()
        import pydevd  # debugpy's engine, on the path now

        suspended = pydevd.PyDB.do_wait_suspend
        session = self

        def do_wait_suspend(*args: Any, **kwargs: Any) -> Any:
            """A thread stopped at a breakpoint serves the client's requests (stack, variables, evaluations): that
            is the debugger's work, behind the gate, and what the user evaluates touches nothing."""
            with internal:
                session.refusing = True
                try:
                    return suspended(*args, **kwargs)
                finally:
                    session.refusing = False

        pydevd.PyDB.do_wait_suspend = do_wait_suspend
        debugpy.wait_for_client()

    def _terminal(self) -> tuple[IO[str], IO[str]]:
        terminal = self.settings.terminal
        if terminal is None:
            return sys.__stdin__, sys.__stdout__  # type: ignore[return-value]
        return (open(terminal[0], closefd=False, encoding="utf-8", errors="replace"),
                open(terminal[1], "w", closefd=False, encoding="utf-8", errors="replace"))

    # -- set-up, before the boundaries are installed ------------------------------------------------------

    def attach(self, engine: Replayer) -> None:
        """Read ``engine``'s events through a stop cursor (single-threaded replays; a multi-threaded one stops at
        its crash or divergence only)."""
        self.engine = engine
        self.total = len(engine.events)
        _remember_crashes(self)
        if engine.demux is not None:  # no checkpoints: a fork keeps only the forking thread
            self.demux = engine.demux = StopDemux(engine.demux, self._turn_stop)  # type: ignore[assignment]
        else:
            self.cursor = StopCursor(engine.events)
            engine.follow_with(self.cursor)
            engine.at_stop = self.at_stop
            if self.settings.travel:
                self.interval = max(MIN_INTERVAL, -(-self.total // MAX_CHECKPOINTS))
        self._stop_before(self.settings.at)

    def _stop_before(self, target: int | None) -> None:
        if self.cursor is not None:
            self.cursor.stop = target
        elif self.demux is not None:
            self.demux.stop = target

    def _turn_stop(self, index: int) -> None:
        self.held = index  # the demultiplexer counts the event taken already
        try:
            self.stop(f"stopped before event #{index}: {self._describe(index)}")
        finally:
            self.held = None

    def diverging(self, report: Callable[[Any], None]) -> Callable[[Any], None]:
        """The replay's divergence report, after a stop at the program frame that diverged."""

        def diverged(divergence: Any) -> None:
            self.reporting = lambda: report(divergence)
            self.stop(f"the replay diverged at event #{divergence.index}: the program called "
                      f"{divergence.actual.call if divergence.actual else '?'} where the recording has "
                      f"{divergence.expected.call if divergence.expected else 'no more calls'}")
            self._report()

        return diverged

    def _report(self) -> NoReturn:
        """End the session with the divergence's report, however the user left the stop (continue, a step, quit):
        the program goes no further, and the launcher (through the anchor) hears how it ended."""
        assert self.reporting is not None
        self.refusing = False  # the report is ours, not an expression of the user's (quit is typed at the prompt)
        with internal:
            sys.settrace(None)  # a step asked at the stop would trace the report
            if self.checkpoints is not None:
                self.checkpoints.send(0, _END, DIVERGED_EXIT)
        self.reporting()
        _exit(DIVERGED_EXIT)  # the report ends the process; never here

    def started(self) -> None:
        """The boundaries are in: the program is about to run."""
        sys.addaudithook(self._refuse)
        if self.settings.inspect is not None:
            self.debugger.start(self.engine)
        if self.settings.dap is not None:
            import debugpy

            with internal:
                debugpy.debug_this_thread()  # trace the program's frames from here (ours ran before the client came)
        if self.settings.quiet:
            with internal:
                self._silence()
        if self.settings.travel and self.cursor is not None:
            self.checkpoints = Checkpoints()
            self._anchor()
            if self.cursor is not None:
                self.cursor.passing = self._passing
        if self.settings.trace:
            self.debugger.trace_from_first_line(self.project_root)

    def _anchor(self) -> None:
        """The launcher's child parks here as the checkpoint before the first event: the session's anchor."""
        assert self.checkpoints is not None
        slot = self.checkpoints.add(0)
        assert slot is not None
        if _fork_replay() != 0:
            self._resumed(self.checkpoints.park(slot))  # park returns in a fork resumed to go back
            return
        self.checkpoints.let_go()

    # -- positions ------------------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        assert self.engine is not None
        return self.engine.consumed if self.held is None else self.held

    def event(self, index: int) -> Event | None:
        assert self.engine is not None
        with internal:
            return self.engine.events[index] if 0 <= index < self.total else None

    def _passing(self, position: int) -> None:
        """The cursor hands out the event at ``position``: fork a checkpoint there every ``interval`` events."""
        if position % self.interval or position == 0 or self.checkpoints is None:
            return
        with internal:
            if _memory_available() < MIN_FREE_MEMORY:
                return
            slot = self.checkpoints.add(position)
            if slot is None:
                return
            if _fork_replay() == 0:
                return  # the fork goes on replaying
            self._resumed(self.checkpoints.park(slot))

    def _resumed(self, target: int) -> None:
        """A fork of a checkpoint, sent to stop at ``target``: replay up to it silently (its output was seen)."""
        self._stop_before(target)
        self.ended = False
        with internal:
            self._silence()

    def _silence(self) -> None:
        if self.silenced is None:
            sys.stdout.flush()
            sys.stderr.flush()
            null = _open(os.devnull, os.O_WRONLY)
            self.silenced = (_dup(1), _dup(2))
            _dup2(null, 1)
            _dup2(null, 2)
            _close(null)

    def _speak(self) -> None:
        """Arrived: the program's output goes where it went again, and what it printed is out before the prompt."""
        if self.silenced is None:
            _drained()
        else:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:
                pass
            _dup2(self.silenced[0], 1)
            _dup2(self.silenced[1], 2)
            _close(self.silenced[0])
            _close(self.silenced[1])
            self.silenced = None

    # -- stops ----------------------------------------------------------------------------------------------

    def at_stop(self) -> bool:
        """The cursor reached its stop (the replayer asks at the end of the events): stop, then go on."""
        cursor = self.cursor
        if cursor is None or cursor.stop is None or cursor.position >= self.total:
            return False
        position = cursor.stop
        cursor.stop = None
        self.stop(f"stopped before event #{position}: {self._describe(position)}")
        return True

    def stop(self, why: str, frame: FrameType | None = None) -> None:
        """Hand the program's innermost frame to the debugger (a DAP client: stopped here, the program's frames
        beneath)."""
        with internal:
            self._speak()
            if self.settings.dap is None:
                self.debugger.stop_at(frame or program_frame(), why)
                return
            self.debugger.message(f"retrace: {why}")

    def finished(self, outcome: Outcome) -> None:
        """The program ended: post-mortem on its exception when it crashed; the session ends after."""
        self.ended = True
        crash = self.crash
        with internal:
            self._speak()
            if outcome.crashed and crash is not None and self.settings.dap is not None:
                self.debugger.message(f"retrace: the replay ended by the program's {type(crash).__name__}: {crash}")
            elif outcome.crashed and crash is not None:
                tb = program_traceback(crash)
                if tb is not None:
                    self.debugger.post_mortem(tb, f"the replay ended by the program's {type(crash).__name__}: {crash}")
            elif self.settings.travel or self.settings.inspect is not None:
                self.debugger.at_end(f"the program ended (exit status {outcome.status}) after event #{self.position}")
            if self.checkpoints is not None:
                status = outcome.status or 0
                self.checkpoints.send(0, _END, status if status >= 0 else 128 - status)

    def _describe(self, position: int) -> str:
        event = self.event(position)
        return "the end of the recording" if event is None else f"{event.describe()} (thread {event.tid})"

    # -- travel ---------------------------------------------------------------------------------------------

    def travel(self, target: int) -> str | None:
        """Go to just before event ``target``: forward by replaying on, back by resuming a checkpoint. Returns
        a reason when it cannot (the caller goes on where it is); None: the debugger continues to the target."""
        if not 0 <= target < self.total:
            return f"there is no event #{target}: the recording has events #0 to #{self.total - 1}"
        position = self.position
        if target >= position and not self.ended:
            self._stop_before(target)
            return None
        restart = self.settings.restart
        if self.checkpoints is None and restart is None:
            return "going back needs time travel: run `retrace debug REC` (pytest --pdb replays forward only)"
        if self.checkpoints is None:
            assert restart is not None
            self.debugger.message("retrace: this replay has several threads, so no checkpoints (a fork keeps only "
                                  "the forking thread): going back replays from the start")
            _write(restart, b"%d" % target)
            _exit(RESTART_EXIT)
        nearest = self.checkpoints.nearest(target)
        assert nearest is not None  # the anchor stands before the first event
        slot, _ = nearest
        self.checkpoints.send(slot, _RESUME, target)
        _exit(0)  # the resumed fork takes the terminal from here

    def quit(self) -> NoReturn:
        if self.reporting is not None and self.settings.travel:  # retrace debug: quitting at a divergence reports
            self._report()                                          # it (pytest's q ends the whole session)
        if self.checkpoints is not None:
            self.checkpoints.send(0, _END, QUIT_EXIT)
        _exit(QUIT_EXIT)

    # -- the user's expressions touch nothing -----------------------------------------------------------------

    def _refuse(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.refusing:
            return
        shows = WATCHED.get(event)
        if shows is None:
            return
        self.refusing = False
        try:
            shown = shows(args)
        finally:
            self.refusing = True
        if shown is not None:
            raise PermissionError(f"{event}{shown!r}: refused, a replay touches nothing (not even from the debugger)")


def _remember_crashes(session: Session) -> None:
    """Every kind describes the program's uncaught exception with ``ExceptionInfo.of``: the session keeps the
    exception itself, for its post-mortem."""
    describe = ExceptionInfo.of.__func__  # type: ignore[attr-defined]

    def of(cls: type[ExceptionInfo], exc: BaseException) -> ExceptionInfo:
        session.crash = exc
        return describe(cls, exc)  # type: ignore[no-any-return]

    ExceptionInfo.of = classmethod(of)  # type: ignore[method-assign, assignment]


def program_frame() -> FrameType | None:
    """The innermost frame that is not pytest-retrace's own: where the program stands."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
        frame = frame.f_back
    return frame


def traceback_frames(tb: TracebackType | None) -> Iterator[FrameType]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next
