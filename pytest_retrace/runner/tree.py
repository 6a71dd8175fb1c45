"""The process tree of a replay: the processes the recorded program forked, each replaying its own part.

A process recording holds the recordings of the processes it forked (by logical id: ``1``, ``1.2``). When the
replay forks at the recorded point, the child makes the engine follow its own recording and reports to a file
of its own beside the replay's result (the launcher reads them all, see ``verdict.py``). A child dies with the
process that forked it: nothing of a replay outlives it.

A child that was killed while recording (its recording stops early) is killed at the same point of its own
replay: it waits there for the signal its parent's replay sends when the recording says it did. A signal
to a child whose recording ended on its own changed nothing it recorded, and is not sent.
"""

from __future__ import annotations

import _thread
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from ..engine import guard
from ..engine.divergence import DIVERGED_EXIT, Divergence, DivergenceKind
from ..engine.state import enter_gate, internal, start_main_thread
from ..errors import RecordingError
from ..format.tape import Recording, TapeStatus, forked_end, forked_path, read_recording_bytes
from ..kinds import process
from ..kinds.outcome import Outcome
from .protocol import ChildResult

if TYPE_CHECKING:
    from ..engine.replayer import Replayer

# Taken before the process boundary replaces them: our own bookkeeping is never recorded.
_exit, _getppid, _kill, _sleep = os._exit, os.getppid, os.kill, time.sleep
SIGNAL_WAIT_STEP = 0.005


class ReplayTree:
    """This replay's place in its process tree: where it reports (``result``), and what its forks do."""

    def __init__(self, rec: Recording, result: str, stuck_timeout: float) -> None:
        self.rec = rec
        self.root_result = result
        self.result = result  # this process's: a forked child reports to a file of its own
        self.label = ""  # this process's logical id ("": the recorded program)
        self.stuck_timeout = stuck_timeout
        self.engine: Replayer | None = None
        self.end: process.ProcessEnd | None = None
        self._finalize: Callable[[Outcome], None] | None = None

    def replays(self, engine: Replayer, end: process.ProcessEnd, finalize: Callable[[Outcome], None]) -> None:
        """``engine`` replays a process recording that ends by ``end``: its forks become replays of their own."""
        self.engine, self.end, self._finalize = engine, end, finalize
        engine.on_fork_child = self.forked
        engine.on_signal_child = self.signal_child

    def diverged(self, divergence: Divergence) -> NoReturn:
        """Report the divergence that ends this process's replay, and end it. A forked process whose recording
        stops early (it was killed there) waits at that point to be killed as it was."""
        enter_gate()
        process.flush_std()
        # Events before the diverging one are the ones the replay consumed faithfully.
        ChildResult(divergence=divergence, events_consumed=divergence.index).write(self.result)
        if self.label and divergence.kind == DivergenceKind.TRUNCATED:
            park()
        _exit(DIVERGED_EXIT)

    def forked(self, label: str) -> None:
        """In the child, just forked at the recorded point: replay the recording of process ``label``."""
        assert self.engine is not None and self.end is not None and self._finalize is not None
        with internal:
            die_with_parent(_getppid())
        self.label, self.result = label, forked_path(self.root_result, label)
        data = self.rec.processes.get(label)
        if data is None:  # it was killed before it recorded anything: it waits to be killed here too
            self.engine.on_fork_child = None
            park()
        try:
            child = read_recording_bytes(data, f"{self.rec.path} (process {label})")
            problem = str(child.corrupt_error()) if child.status == TapeStatus.CORRUPT else None
        except RecordingError as exc:
            problem = str(exc)
        if problem is not None:
            self.diverged(Divergence(DivergenceKind.DIED, self.engine.consumed, "0",
                                     summary=f"process {label}, forked here, cannot replay: {problem}"))
        recorded = Outcome.from_json(child.end or {})
        self.engine.forked_child(child.events(), label, truncated=child.status == TapeStatus.TRUNCATED,
                                 answer_by_key=recorded.crashed)
        start_main_thread()
        with internal:
            process.stand_in_for_the_writer()  # the same threads as the recorded child, which had its writer
        guard.adopt()
        self.end.forked(self._finalize, child.header.get("pid", -1))

    def signal_child(self, label: str, pid: int, sig: int) -> None:
        """The recording signalled its forked process ``label`` here; ``pid``: the replay's. A process whose
        recording ends on its own is not signalled (the signal changed nothing it recorded); one whose
        recording stops early is, once its replay got there."""
        data = self.rec.processes.get(label)
        if data is not None and forked_end(data) is not None:
            return
        with internal:
            reported = forked_path(self.root_result, label)
            deadline = time.monotonic() + self.stuck_timeout
            while data is not None and not os.path.exists(reported) and time.monotonic() < deadline:
                _sleep(SIGNAL_WAIT_STEP)
            try:
                _kill(pid, sig)
            except ProcessLookupError:
                pass


def park() -> NoReturn:
    """Do nothing until killed (by the process that forked this one, or with it)."""
    with internal:
        parked = _thread.allocate_lock()
        parked.acquire()
        parked.acquire()
    _exit(0)  # (never reached)


def die_with_parent(parent: int) -> bool:
    """Be killed when the parent process ends; False when ``parent`` is already gone."""
    try:
        from .._native import die_with_parent as native
    except ImportError:  # the pure-Python build: prctl through ctypes, on Linux
        return _die_with_parent_ctypes(parent)
    return bool(native(parent))


def _die_with_parent_ctypes(parent: int) -> bool:
    import ctypes
    import signal

    if not sys.platform.startswith("linux"):
        return True
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    return _getppid() == parent
