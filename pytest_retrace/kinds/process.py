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
from types import SimpleNamespace
from typing import Any, NoReturn

from ..boundaries import Options, install
from ..boundaries.process import Ending, ends
from ..engine.patch import Patcher
from ..engine.recorder import Recorder
from ..engine.stack import main_module_runs_alone, program_traceback
from ..engine.state import enter_gate, mark_outside, start_main_thread
from ..format.sealing import Sealer
from ..format.tape import Kind, TapeWriter
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


def run_then_exit(entry: dict[str, Any], argv: list[str], finalize: Callable[[Outcome], None], pid: int,
                  parent: int | None = None) -> NoReturn:
    """Run the program and leave as it would. ``finalize(outcome)`` runs once, in this process only (a
    forked child inherits the handler but not the recording): after the program's own atexit handlers
    (atexit is last-in first-out, and ours is registered before the program runs), or just before the
    process goes without returning (``os._exit``, a fatal signal to itself), with what it had printed and
    not flushed lost as plainly. ``pid``: the process's id as the program sees it; ``parent``: its parent's."""
    ended = SimpleNamespace(outcome=Outcome(1))  # if the program never returns to us
    real_pid = _REAL_GETPID()
    finished: list[Outcome] = []

    def finish(outcome: Outcome) -> None:
        if not finished and _REAL_GETPID() == real_pid:
            finished.append(outcome)
            finalize(outcome)

    def at_exit() -> None:
        if _REAL_GETPID() == real_pid:
            flush_std()
            finish(ended.outcome)
            if ended.outcome.status < 0:  # after the program's atexit handlers, as Python does
                flush_std()
                leave_with(ended.outcome.status)

    atexit.register(at_exit)
    ends(Ending(lambda status: finish(Outcome(status)), pid, parent))
    ended.outcome = run_program(entry, argv)
    flush_std()
    status = ended.outcome.status
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

            run_then_exit(entry, argv, finalize, header["pid"], parent)
    report(Outcome(0), 0, problem, True)  # told before the program runs: it may leave by any way it likes
    run_then_exit(entry, argv, lambda outcome: None, header["pid"], parent)


# -- the replay side -------------------------------------------------------------------------------------


def prepare_replay(header: dict[str, Any], project: Project) -> None:
    """Park one idle OS thread for the replay's lifetime, where the recording had its writer thread.

    The program sees the same number of threads in both runs: Python 3.12+ warns on ``os.fork()``
    in a multi-threaded process, and that warning is output the replay must reproduce. (The script or module
    was checked to be the ``project``'s before: ``entry.check_entry``.)
    """
    parked = _thread.allocate_lock()
    parked.acquire()
    _thread.start_new_thread(parked.acquire, ())


def rerun_then_exit(header: dict[str, Any], finalize: Callable[[Outcome], None]) -> NoReturn:
    """Run the recorded program again (the engine installed answers its external calls), and leave as it does."""
    run_then_exit(header["entry"], header["argv"], finalize, header.get("pid", -1))
