"""Process recordings: a whole program, run as ``python script.py`` or ``python -m module`` would run it.

Both sides run in a fresh interpreter the runner starts (the hash seed must be fixed before an
interpreter starts). Recording writes the header and the events to the tape from a background
writer thread; replaying stands an idle thread in for that writer, so the program sees the same
threads. Either way the program's outcome is handed on at the very end, after the program's own
``atexit`` handlers.
"""

from __future__ import annotations

import _thread
import atexit
import os
import runpy
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..boundaries import Options, install
from ..boundaries.process import Ending, ends
from ..engine.patch import Patcher
from ..engine.recorder import Recorder
from ..engine.stack import main_module_runs_alone, program_traceback
from ..engine.state import enter_gate, mark_outside, start_main_thread
from ..format.sealing import Sealer
from ..format.tape import Kind, MemoryTape, TapeWriter, forked_path
from ..paths import use_root
from ..redaction import Redaction
from .entry import Project
from .header import make_header, recording_redaction
from .outcome import ExceptionInfo, Outcome, leave_with

_REAL_GETPID = os.getpid  # taken before the process boundary patches it


def run_program(entry: dict[str, Any], argv: list[str]) -> Outcome:
    """Run the program as ``python script.py`` / ``python -m module`` would, and return its outcome."""
    sys.argv = list(argv)
    main_module_runs_alone()
    try:
        if "module" in entry:
            sys.path[0] = os.getcwd()
            runpy.run_module(entry["module"], run_name="__main__", alter_sys=True)
        else:
            sys.path[0] = os.path.dirname(os.path.abspath(entry["script"]))
            runpy.run_path(os.path.abspath(entry["script"]), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return Outcome(0)
        if isinstance(code, int):
            return Outcome(code)
        print(code, file=sys.stderr)
        return Outcome(1)
    except BaseException as exc:  # the program's uncaught exception: print it as Python would
        # Python ends a program that Ctrl-C interrupted by SIGINT, after printing the traceback.
        outcome = Outcome(-signal.SIGINT if isinstance(exc, KeyboardInterrupt) else 1, ExceptionInfo.of(exc))
        tb = program_traceback(exc)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return outcome
    return Outcome(0)


def flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


class ProcessEnd:
    """How this process hands on its outcome: ``finalize(outcome)`` once, in this process only. A forked child
    inherits it and makes it its own (:meth:`forked`): its own recording or replay ends with it."""

    def __init__(self, finalize: Callable[[Outcome], None], pid: int, parent: int | None = None) -> None:
        self.outcome = Outcome(1)  # if the program never returns to us
        self.forked(finalize, pid, parent)

    def forked(self, finalize: Callable[[Outcome], None], pid: int, parent: int | None = None) -> None:
        """This process (a fork) ends by ``finalize``; ``pid``: its id as the program sees it."""
        self.finalize = finalize
        self.real_pid = _REAL_GETPID()
        self.finished = False
        ends(Ending(lambda status: self.finish(Outcome(status)), pid, parent))

    def finish(self, outcome: Outcome) -> None:
        if not self.finished and _REAL_GETPID() == self.real_pid:
            self.finished = True
            self.finalize(outcome)

    def at_exit(self) -> None:
        if _REAL_GETPID() == self.real_pid:
            flush_std()
            self.finish(self.outcome)
            status = self.outcome.status or 0
            if status < 0:  # after the program's atexit handlers, as Python does
                flush_std()
                leave_with(status)


def run_then_exit(entry: dict[str, Any], argv: list[str], end: ProcessEnd) -> NoReturn:
    """Run the program and leave as it would. ``end.finalize(outcome)`` runs once, in this process only: after
    the program's own atexit handlers (atexit is last-in first-out, and ours is registered before the program
    runs), or just before the process goes without returning (``os._exit``, a fatal signal to itself), with
    what it had printed and not flushed lost as plainly. A forked child comes back here too (it returns from
    the program as it does), with an ``end`` of its own."""
    atexit.register(end.at_exit)
    end.outcome = run_program(entry, argv)
    flush_std()
    status = end.outcome.status or 0
    sys.exit(status if status >= 0 else 128 - status)  # at_exit ends it by the signal first


Report = Callable[[Outcome, int, "str | None", bool], None]


def record(output: str, entry: dict[str, Any], argv: list[str], hash_seed: int, redaction: Redaction,
           live_paths: list[str], tags: dict[str, Any], report: Report, parent: int | None = None,
           sealer: Sealer | None = None) -> NoReturn:
    """Record the program into ``output``; at the end, ``report(outcome, events written, recording error,
    abandoned)``. END is not written here: the runner adds the output it saw pass by. ``parent``: the process
    that started the recording (the program's parent, as the user sees it). ``sealer``: encrypt the frames.

    A disk that refuses the recording never stops the program: it runs unrecorded (``abandoned``)."""
    header = make_header(Kind.PROCESS, entry, argv, hash_seed, redaction, live_paths, tags)
    use_root(header["project_root"])  # file calls key paths under it as the replay in another checkout will
    problem = "no file to write the recording to"
    if output:
        try:
            writer = TapeWriter(output, header, on_writer_thread=mark_outside, sealer=sealer)
        except OSError as exc:
            problem = f"cannot write {output}: {exc.strerror or exc}"
        else:
            engine = Recorder(writer)
            engine.redaction = recording_redaction(redaction, header, argv)
            start_main_thread()
            install(engine, Patcher(), Options(live_paths=live_paths))

            def finalize(outcome: Outcome) -> None:
                enter_gate()
                writer.close(end=None)
                report(outcome, engine.events_in(writer.values_written), writer.error, writer.io_failed)

            end = ProcessEnd(finalize, header["pid"], parent)
            engine.on_fork_child = _recording_forks(engine, header, output, sealer, end)
            run_then_exit(entry, argv, end)
    report(Outcome(0), 0, problem, True)  # told before the program runs: it may leave by any way it likes
    run_then_exit(entry, argv, ProcessEnd(lambda outcome: None, header["pid"], parent))


def _recording_forks(engine: Recorder, header: dict[str, Any], output: str, sealer: Sealer | None,
                     end: ProcessEnd) -> Callable[[str], None]:
    """What a forked child does first: record into a recording of its own (the same names, the parent's
    pending events dropped: they are the parent's), and end it when it ends."""

    def on_fork_child(label: str) -> None:
        parent_tape = engine.tape
        assert isinstance(parent_tape, TapeWriter)
        del engine.sink[:]
        inherited = MemoryTape()
        inherited.sink, inherited.table = engine.sink, parent_tape.table
        pid = _REAL_GETPID()
        child_header = {**header, "process": label, "pid": pid}
        child_sealer = Sealer.fresh(sealer.recipient) if sealer is not None and sealer.recipient else None
        try:
            # beside the program's; the launcher puts it inside the program's recording at the end
            writer = TapeWriter(forked_path(output, label), child_header, tape=inherited,
                                on_writer_thread=mark_outside, sealer=child_sealer)
        except OSError:  # the disk refuses: this process runs on unrecorded
            engine.on_fork_child = None
            return
        engine.forked_child(writer, label)
        start_main_thread()

        def finalize(outcome: Outcome) -> None:
            enter_gate()
            writer.close(end=lambda: outcome.to_end(engine.events_in(writer.values_written)))

        end.forked(finalize, pid)

    return on_fork_child


# -- the replay side -------------------------------------------------------------------------------------


def prepare_replay(header: dict[str, Any], project: Project) -> None:
    """Park one idle OS thread for the replay's lifetime, where the recording had its writer thread.

    The program sees the same number of threads in both runs: Python 3.12+ warns on ``os.fork()``
    in a multi-threaded process, and that warning is output the replay must reproduce. (The script or module
    was checked to be the ``project``'s before: ``entry.check_entry``.)
    """
    stand_in_for_the_writer()


def stand_in_for_the_writer() -> None:
    """An idle OS thread where the recording had its writer thread (a replayed forked child needs one too). It
    runs what :func:`give_the_stand_in` hands it, and nothing else."""
    parked = _thread.allocate_lock()
    parked.acquire()
    _StandIn.parked, _StandIn.work = parked, None
    _thread.start_new_thread(_stand_in, (parked,))


class _StandIn:
    parked: Any = None  # the lock the idle stand-in waits on, until it is given work
    work: Callable[[], None] | None = None


def _stand_in(parked: Any) -> None:
    parked.acquire()
    if _StandIn.work is not None:
        _StandIn.work()
    parked.acquire()  # done: idle for good (the lock is held), the thread count stays the recorded one


def give_the_stand_in(work: Callable[[], None]) -> bool:
    """Have the idle stand-in thread run ``work`` (the replay's progress report) rather than start one more thread,
    which the program could count; False when this process has no stand-in."""
    parked = _StandIn.parked
    if parked is None:
        return False
    _StandIn.parked, _StandIn.work = None, work
    parked.release()
    return True


def rerun_then_exit(header: dict[str, Any], end: ProcessEnd) -> NoReturn:
    """Run the recorded program again (the engine installed answers its external calls), and leave as it does."""
    run_then_exit(header["entry"], header["argv"], end)
