"""Replaying: every external call is answered from the recorded events, in the recorded order."""

from __future__ import annotations

import _thread
import sys
import time
from collections.abc import Callable, Iterable, Iterator, MutableSequence
from operator import length_hint
from typing import Any, NoReturn

from ..format.codec import Raised, chained
from ..format.events import MAIN, Event, threads_of
from .base import Engine, nothing
from .demux import EXHAUSTED, TIMED_OUT, Demux
from .divergence import DIVERGED_EXIT, Call, Divergence, DivergenceKind, Preceding, ReplayDivergence
from .keyed import LIVE, KeyedAnswers, KeyedSummary
from .setup import Setup, SetupAnswers, SetupSummary
from .stack import replay_stack
from .standin import call_replayer, noarg_replayer
from .state import STATE, internal, tls
from .watchdog import ThreadBook, Watchdog

# How long a replaying thread waits in the demultiplexer before it looks again (only the watchdog
# decides that a replay is stuck).
WAIT_SLICE = 1.0
PRECEDING = 5  # matched events a divergence report shows
_UNTAKEN = object()  # a native fast path took no event off the cursor


def raise_recorded(raised: Raised) -> NoReturn:
    """Raise what a recorded call raised, with its recorded traceback and chain. Raising makes the exception
    the program is handling the context of the one raised: the recorded context goes back in its place, and
    the program's exception where the recording had the one the program handled then."""
    exc = raised.exception
    tls.raised = id(exc)  # the call's own exception, not an error of ours (see standin)
    context, suppress, innermost = chained(exc)
    live = sys.exc_info()[1]
    try:
        raise exc
    finally:
        if context is not None:
            exc.__context__ = context
        exc.__suppress_context__ = suppress
        if innermost is not None and innermost is not live:
            innermost.__context__ = live


# Readiness waits that timed out with nothing ready. A thread that polls in a loop until another thread sets a
# flag (socketserver's serve_forever and shutdown) may, on replay, see the flag one wait sooner or later than
# it did while recording: the flag is shared memory, not an event. Leaving such a wait out, or answering one
# the recording does not have with "nothing ready", is a schedule the program could have had and changes
# nothing it can see; any other difference still diverges.
_IDLE_WAITS: dict[str, list[Any]] = {  # and their empty answers
    "select.poll": [], "select.epoll": [], "select.select": [[], [], []]}
_IDLE_ANSWERS_IN_A_ROW = 2000  # then the wait is a divergence (a changed program that polls where it did not)
_real_sleep = time.sleep  # taken before the clock boundary replaces it


def _idle_wait(event: Event) -> bool:
    return event.name in _IDLE_WAITS and event.result == _IDLE_WAITS[event.name]


class Replayer(Engine):
    """Answers every external call from the recorded events, in the recorded order.

    A recording made on one thread is replayed with a plain cursor; one with several
    threads goes through the demultiplexer, which hands each thread its turn.

    With ``answer_by_key`` (recordings of a crash), the first divergence does not end the
    replay: from there on calls are answered by call key (:mod:`.keyed`).

    ``on_divergence`` is told of the divergence that ends the replay and must not return (a
    process replay reports and exits); by default it raises :class:`ReplayDivergence`.
    """

    # Asynchronous events: recorded events that no call of the program asks for, because they happen to it
    # between two of its calls (a signal handler starting). ``asynchronous[event.name](event)`` runs one where
    # the replay meets it, instead of the call the program makes there, which is then checked against the
    # events that follow (see boundaries/signals.py, which sets it).
    asynchronous: dict[str, Callable[[Event], None]] | None = None

    def __init__(
        self,
        events: MutableSequence[Event] | list[Event],
        on_divergence: Callable[[Divergence], None] | None = None,
        truncated: bool = False,
        stuck_timeout: float = 10.0,
        answer_by_key: bool = False,
        setup: Setup | None = None,
    ) -> None:
        """``setup``: the recording's connection set-up (in-process recordings carry it, see engine/setup.py)."""
        # A recording's events as the reader hands them over (made one at a time as they are read, see
        # format/events.py), or a list of our own.
        self.events: MutableSequence[Event] = list(events) if isinstance(events, (list, tuple)) else events
        self._setup = SetupAnswers(setup) if setup is not None else None
        self._cursor = iter(self.events)
        if call_replayer is not None:  # the common case of call() in C; the rest in _call
            self.call = call_replayer(self, self._cursor, STATE, self._call, Raised, LIVE, _UNTAKEN)  # type: ignore
        self.on_divergence = on_divergence or self._raise
        # How a signal the recording sent a forked child reaches the replay's (its logical id, real pid, signal).
        self.on_signal_child: Callable[[str, int, int], None] | None = None
        # What prepares the events a forked child follows, as the ones of the replay were (see boundaries/signals).
        self.follows: Callable[[MutableSequence[Event]], None] | None = None
        self.stuck_timeout = stuck_timeout
        self._succeed: set[str] = set()  # calls assumed to succeed when answering by key (assume_success)
        self._follow(truncated, answer_by_key)

    def _follow(self, truncated: bool, answer_by_key: bool) -> None:
        """Set out to follow ``self.events`` from the first."""
        self.truncated = truncated
        tids = threads_of(self.events)
        self.single_thread = tids is None
        self.in_order = self.single_thread  # the hot path's switch: single-threaded, in recorded order
        # The demultiplexer numbers threads; logical ids map to numbers in order of first appearance.
        self._slots: dict[Any, int] = {MAIN: 0}
        for tid in tids or ():
            if tid not in self._slots:
                self._slots[tid] = len(self._slots)
        self._order = [] if tids is None else [self._slots[tid] for tid in tids]
        self.demux = None if self.single_thread else Demux(self._order)
        self._idle_answers: dict[str, int] = {}  # timed-out waits answered in a row, by thread (see _turn)
        self.threads = ThreadBook(MAIN)
        self._stuck: Divergence | None = None
        self._credit: dict[str, int] = {}  # per thread: "joined" events taken ahead (see after_waiting)
        self.answer_by_key = answer_by_key
        self._keyed: KeyedAnswers | None = None
        self._forked: dict[int, tuple[int, str]] = {}  # the processes it forked: recorded pid -> real pid, id
        self._watchdog = None
        if self.demux is not None:
            self._watchdog = Watchdog(self.stuck_timeout, self._progress, self._on_stuck)

    # -- processes --------------------------------------------------------------------------------------

    def fork(self, real_fork: Callable[[], int]) -> int:
        if tls.gate or tls.tid is None or self.on_fork_child is None:
            return real_fork()
        label = self.next_process()
        demux = self.demux if self._keyed is None else None
        # The fork happens at the recorded point: its turn is held while the process really forks.
        event = self._turn("os.fork", None, take=False) if demux is not None else self.next_event("os.fork", None)
        try:
            recorded = event.result
            if type(recorded) is Raised:
                raise_recorded(recorded)
            pid = real_fork()
        finally:
            if demux is not None:
                demux.advance()
        if pid == 0:
            self.on_fork_child(label)
            return 0
        self._forked[recorded] = (pid, label)
        return recorded  # type: ignore[no-any-return]

    def real_pid(self, pid: int) -> int | None:
        forked = self._forked.get(pid)
        return None if forked is None else forked[0]

    def signal_child(self, pid: int, sig: int) -> None:
        forked = self._forked.get(pid)
        if forked is not None and self.on_signal_child is not None:
            self.on_signal_child(forked[1], forked[0], sig)

    def forked_child(self, events: MutableSequence[Event], label: str, truncated: bool, answer_by_key: bool) -> None:
        """In a forked child of the replay: follow ``events``, the child's own recording, from its first, as
        process ``label``. The cursor is the parent's (the native fast paths hold it), set back over them."""
        with internal:
            if isinstance(self.events, list):
                self.events[:] = events
                self._cursor.__setstate__(0)  # type: ignore[attr-defined]
            else:  # the reader's events, and their own cursor
                self.events = events
                self._cursor.follow(events)  # type: ignore[attr-defined]
            if self.follows is not None:
                self.follows(self.events)
            self.process, self._forks = label, 0
            self._follow(truncated, answer_by_key)

    @staticmethod
    def _raise(divergence: Divergence) -> None:
        raise ReplayDivergence(divergence)

    @property
    def consumed(self) -> int:
        if self.demux is None:
            return len(self.events) - length_hint(self._cursor)
        return self.demux.position

    @property
    def keyed(self) -> KeyedSummary | None:
        """How calls were answered once the replay answers by call key (a crash recording after its first
        divergence); None while it follows the recording."""
        return None if self._keyed is None else self._keyed.summary

    def assume_success(self, names: Iterable[str]) -> None:
        self._succeed.update(names)

    def finish(self) -> None:
        """The replay is over: stop watching for a stuck replay."""
        if self._watchdog is not None:
            self._watchdog.finish()

    # -- threads ----------------------------------------------------------------------------------------

    def slot_of(self, tid: str) -> int:
        with internal:
            self.threads.started(tid)
            return self._slots.setdefault(tid, len(self._slots))

    def thread_ended(self, tid: str) -> None:
        self.threads.states[tid] = "finished"
        self.park()

    def park(self) -> None:
        if self.demux is not None and tls.tid is not None:
            self.demux.park(tls.slot)

    def _turn(self, name: str, args: Any, take: bool) -> Event:
        """Wait for this thread's turn in the recorded order; the event, checked against the call."""
        tid = tls.tid
        assert tid is not None and self.demux is not None
        states = self.threads.states
        states[tid] = ("waits for its turn to call", name, args)  # formatted only for a report
        if name in _IDLE_WAITS and self._waits_for_nothing(name, args, tid):
            del states[tid]
            _real_sleep(0.001)  # the thread loops back to its flag: let the others get to setting it
            return Event(-1, name, args, _IDLE_WAITS[name], tid)
        self._idle_answers.pop(tid, None)
        wait = self.demux.claim if take else self.demux.turn
        while True:
            while (index := wait(tls.slot, WAIT_SLICE)) == TIMED_OUT:
                pass  # the watchdog decides when waiting has become stuck
            if index < 0:
                break
            event = self.events[index]
            if event.name == name and event.args == args:
                del states[tid]
                return event
            if self._runs(event) is not None:  # a signal handler: it runs here, then on to this call's turn
                del states[tid]
                self._happens(event, held=not take)
                states[tid] = ("waits for its turn to call", name, args)
                continue
            if not _idle_wait(event) and not self._passes_over(event):
                del states[tid]
                return self.diverge(DivergenceKind.MISMATCH, event, name, args, tid)
            if not take:
                self.demux.advance()  # the recorded wait is left out: on to this thread's next event
        del states[tid]
        if index == EXHAUSTED:
            return self._exhausted(name, args, tid)
        return self._stopped()

    def _following(self) -> int | None:
        """The index of the calling thread's next recorded event, if it has one."""
        if self.demux is None:
            position = self.consumed
            return position if position < len(self.events) else None
        slot, order = tls.slot, self._order
        return next((i for i in range(self.demux.position, len(order)) if order[i] == slot), None)

    def _is_next(self, index: int | None, name: str, args: Any) -> bool:
        return index is not None and self.events[index].name == name and self.events[index].args == args

    def _waits_for_nothing(self, name: str, args: Any, tid: str) -> bool:
        """A timed-out wait the recording does not have here: this thread's next event is another call."""
        following = self._following()
        if following is None or self._is_next(following, name, args):
            return False
        answered = self._idle_answers[tid] = self._idle_answers.get(tid, 0) + 1
        return answered <= _IDLE_ANSWERS_IN_A_ROW

    def next_event(self, name: str, args: Any) -> Event:
        if self._keyed is not None:
            with internal:
                return self._keyed.answer(name, args)
        if tls.setup and self._setup is not None:
            with internal:
                answer = None if self._is_next(self._following(), name, args) else self._setup.answer(name, args)
            if answer is not None:  # setting up a connection the recorded request found open
                return answer
        tid = tls.tid
        if self.demux is not None:
            return self._turn(name, args, take=True)
        if tid != MAIN:
            return self.diverge(DivergenceKind.THREAD, None, name, args, tid)
        event = next(self._cursor, None)
        if event is None or event.name != name or event.args != args:
            return self._recheck(event, name, args)
        return event

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        if tls.gate or tls.tid is None:
            return fn(*a)
        if self.demux is None or self._keyed is not None:
            return self._redo(self.next_event(name, args), redo)
        # The turn is held while the operation runs, so no other thread's event slips in between.
        try:
            return self._redo(self._turn(name, args, take=False), redo)
        finally:
            self.demux.advance()

    @staticmethod
    def _redo(event: Event, redo: Callable[[Any], Any]) -> Any:
        result = event.result
        if type(result) is Raised:
            raise_recorded(result)
        return redo(result)  # redo runs real operations only: nothing in it is recorded or replayed

    def blocking(self, name: str, args: Any, attempt: Callable[[float], bool]) -> None:
        """Run a real blocking operation that the recording says completed (the watchdog sees if it never does)."""
        tid = tls.tid
        assert tid is not None
        states = self.threads.states
        states[tid] = ("holds its turn, inside", name, args)
        while not attempt(WAIT_SLICE):
            if self.demux is not None and self._stuck is not None:
                self._stopped()
        del states[tid]

    def after_waiting(self, name: str, attempt: Callable[[float], bool]) -> None:
        # A program that joins a set of threads joins them in id() order, which differs between runs: the
        # thread it waits for may need turns that come after this thread's next "joined" events. While it
        # waits, it takes those events when their turn comes (so the others get theirs) and keeps them as
        # credit for the waits to come.
        if self.demux is None or self._keyed is not None or tls.tid is None or tls.gate:
            return super().after_waiting(name, attempt)
        tid, demux, states = tls.tid, self.demux, self.threads.states
        waiting = ("waits for a thread to end, then calls", name, None)
        states[tid] = waiting
        while not attempt(0.005):
            position = demux.position
            if demux.expected() == tls.slot and position < len(self.events) and self.events[position].name == name:
                self.call(name, None, nothing)
                self._credit[tid] = self._credit.get(tid, 0) + 1
                states[tid] = waiting
            elif demux.expected() == tls.slot and position < len(self.events) and self._runs(self.events[position]):
                index = demux.claim(tls.slot, WAIT_SLICE)  # a signal handler while waiting: it runs here
                if index >= 0:
                    self._happens(self.events[index])
                states[tid] = waiting
        states.pop(tid, None)
        if self._credit.get(tid, 0):
            self._credit[tid] -= 1
        else:
            self.call(name, None, nothing)

    # -- a stuck replay ---------------------------------------------------------------------------------

    def _progress(self) -> tuple[int, list[tuple[int, int, int]]]:
        """What moves while a replay makes progress: the event position and the threads running program code."""
        assert self.demux is not None
        return self.demux.position, self.threads.moving()

    def _on_stuck(self) -> None:
        """The watchdog (on its own thread) found the replay stuck."""
        divergence = self.divergence(DivergenceKind.STUCK, None, None, None, None)
        try:
            self.on_divergence(divergence)  # a process replay ends here
        except BaseException:
            self._stuck = divergence  # an in-process replay: the first waiting thread raises it
        assert self.demux is not None
        self.demux.abort()

    def _stopped(self) -> NoReturn:
        """The watchdog found the replay stuck: deliver its report once, then end this thread quietly."""
        divergence, self._stuck = self._stuck, None
        if divergence:
            self.on_divergence(divergence)
        parked = _thread.allocate_lock()
        parked.acquire()
        parked.acquire(True, self.stuck_timeout)  # the process is ending; don't add tracebacks to its output
        raise SystemExit(DIVERGED_EXIT)

    # -- answering calls --------------------------------------------------------------------------------

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        return self._call(_UNTAKEN, name, args, fn, *a, **kw)

    def _call(self, event: Any, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        """``call``, given the event its native fast path took off the cursor (None: none was left), or _UNTAKEN."""
        if event is _UNTAKEN:
            if STATE.fast and self.in_order:
                event = next(self._cursor, None)
            elif tls.gate or tls.tid is None:
                return fn(*a, **kw)
            else:
                event = self.next_event(name, args)
                return self._answer(event, fn, a, kw)
        if event is None or event.name != name or event.args != args:
            event = self._recheck(event, name, args)
        return self._answer(event, fn, a, kw)

    @staticmethod
    def _answer(event: Event, fn: Callable[..., Any], a: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        result = event.result
        if type(result) is Raised:
            raise_recorded(result)
        if result is LIVE:
            return fn(*a, **kw)
        return result

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        state = STATE
        cursor = self._cursor

        def slow(event: Any = _UNTAKEN) -> Any:
            """The event taken off the cursor (None: none was left), or _UNTAKEN when the caller took none."""
            if event is _UNTAKEN:
                if state.fast and self.in_order:
                    event = next(cursor, None)
                elif tls.gate or tls.tid is None:
                    return fn()
                else:
                    event = self.next_event(name, None)
            if event is None or event.name != name or event.args is not None:
                event = self._recheck(event, name, None)
            result = event.result
            if type(result) is Raised:
                raise_recorded(result)
            if result is LIVE:
                return fn()
            return result

        if noarg_replayer is not None:
            return noarg_replayer(fn, self, cursor, name, state, slow, Raised, LIVE)  # type: ignore[no-any-return]

        def replayed() -> Any:
            return slow(next(cursor, None) if state.fast and self.in_order else _UNTAKEN)

        return replayed

    def _recheck(self, event: Event | None, name: str, args: Any) -> Event:
        """The main thread of a single-threaded replay calls ``name`` where the recording has ``event``."""
        if event is None:
            return self._exhausted(name, args, MAIN)
        if self._happens(event) or self._passes_over(event):  # the call goes on to the events after it
            return self.next_event(name, args)
        return self.diverge(DivergenceKind.MISMATCH, event, name, args, MAIN)

    def _passes_over(self, event: Event) -> bool:
        """Whether ``event``, where the program makes another call, is one of connection set-up that the replay
        need not make (its connection was open already). Not while the replay sets up a connection itself: then
        the two set-ups differ, a divergence."""
        if self._setup is None or self._keyed is not None or tls.setup:
            return False
        with internal:
            return self._setup.passes_over(event)

    @property
    def setup(self) -> SetupSummary | None:
        """How the replay met connection set-up the recording did not hold in order; None when it never did."""
        summary = None if self._setup is None else self._setup.summary
        return summary if summary is not None and (summary.answered or summary.passed_over) else None

    def unconsumed(self) -> Event | None:
        """The first recorded event the replay did not consume, set-up ones it need not make left aside."""
        for event in self.events[self.consumed :]:
            if self._keyed is not None or not self._passes_over(event):
                return event
        return None

    def _runs(self, event: Event) -> Callable[[Event], None] | None:
        """What runs ``event`` if it is an asynchronous event of the calling thread (see :attr:`asynchronous`)."""
        if self.asynchronous is None or self._keyed is not None or event.tid != tls.tid:
            return None
        return self.asynchronous.get(event.name)

    def _happens(self, event: Event, held: bool = False) -> bool:
        """Run ``event``, taken off the recording where the calling thread makes another call, if it is an
        asynchronous one; ``held``: the demultiplexer's turn is held for it (given, not yet passed on)."""
        run = self._runs(event)
        if run is None:
            return False
        if held:
            assert self.demux is not None
            self.demux.advance()
        run(event)
        return True

    def take(self, event: Event) -> bool:
        """Take the asynchronous ``event`` off the recording now, between two calls, when it is the calling
        thread's next event (a signal handler whose recorded place the program has reached, see
        boundaries/signals.py); False when it is not."""
        if self._keyed is not None or event.tid != tls.tid:
            return False
        if self.demux is None:
            if self.consumed != event.index:
                return False
            next(self._cursor)
            return True
        if self._following() != event.index:
            return False
        slot = tls.slot
        while (index := self.demux.claim(slot, WAIT_SLICE)) == TIMED_OUT:
            pass
        if index < 0:
            self._stopped() if index != EXHAUSTED else self._exhausted(event.name, event.args, tls.tid)
        return True

    # A debugging replay's stop (runner/debugging.py): told when the cursor that ``follow_with`` gave it reaches its
    # stop, as at the recording's end; True when it moved the stop on and the call goes on to its event.
    at_stop: Callable[[], bool] | None = None

    def follow_with(self, cursor: Iterator[Event]) -> None:
        """Read the events through ``cursor`` (one that stops before a given event), before the boundaries are
        installed: the normal replay pays nothing for a debugger's stops."""
        self._cursor = cursor
        if call_replayer is not None:
            self.call = call_replayer(self, cursor, STATE, self._call, Raised, LIVE, _UNTAKEN)  # type: ignore

    def _exhausted(self, name: str, args: Any, tid: Any) -> Event:
        if self.at_stop is not None and self.at_stop():
            return self.next_event(name, args)
        kind = DivergenceKind.TRUNCATED if self.truncated else DivergenceKind.EXTRA_CALL
        return self.diverge(kind, None, name, args, tid)

    def refuse(self, name: str, args: Any) -> NoReturn:
        """The replay guard saw a real effect that no recorded call answered (``name``: the audit event): the
        recording holds no such call, so here the replay diverges (on a crash recording's new path, the
        program gets an UnrecordedCall)."""
        name = f"unrecorded {name}"
        if tls.tid is None:  # a thread the recording does not know
            with internal:
                position = self.consumed
                expected = self.events[position] if position < len(self.events) else None
            self.diverge(DivergenceKind.MISMATCH if expected else DivergenceKind.EXTRA_CALL, expected, name, args,
                         None)
        self.next_event(name, args)  # never the recorded one: the divergence (or UnrecordedCall)
        raise AssertionError("no recorded call answers a refused effect")  # pragma: no cover

    # -- divergence -------------------------------------------------------------------------------------

    def diverge(self, kind: DivergenceKind, expected: Event | None, name: str, args: Any, tid: Any) -> Event:
        """Report the first divergence; a crash recording goes on answering by call key."""
        divergence = self.divergence(kind, expected, name, args, tid)
        if not self.answer_by_key or kind in (DivergenceKind.TRUNCATED, DivergenceKind.STUCK):
            if self.demux is not None:
                self.demux.abort()
            self.on_divergence(divergence)
            raise AssertionError("on_divergence must not return")  # pragma: no cover
        with internal:
            start = expected.index if expected is not None else self.consumed
            self._keyed = KeyedAnswers(self.events[start:], divergence, self._succeed)
        self.in_order = False
        return self.next_event(name, args)

    def divergence(self, kind: DivergenceKind, expected: Event | None, name: str | None, args: Any,
                   tid: Any) -> Divergence:
        """The divergence at this call (``name`` None: at no call, a stuck replay), with the events before it."""
        with internal:
            index = expected.index if expected is not None else self.consumed
            if kind == DivergenceKind.STUCK and index < len(self.events):  # stuck waiting for this event's thread
                expected = self.events[index]
                tid = expected.tid
            return Divergence(
                kind, index, tid,
                expected=Call.of(expected.name, expected.args) if expected is not None else None,
                actual=Call.of(name, args) if name is not None else None,
                stack=replay_stack() if name is not None else [],
                preceding=[Preceding.of(e) for e in self.events[max(0, index - PRECEDING) : index]],
                threads=self.threads.report(self.events, self.consumed) if kind == DivergenceKind.STUCK else None,
                summary=_stuck_for(self.stuck_timeout) if kind == DivergenceKind.STUCK else None,
            )


def _stuck_for(timeout: float) -> str:
    return f"no thread made progress for {timeout:g} second{'' if timeout == 1 else 's'}"
