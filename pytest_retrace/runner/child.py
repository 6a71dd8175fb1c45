"""The child's entry: a fresh interpreter that records or replays one recording, or serves forks of replays.

The launcher starts ``python -c CHILD_CODE`` with the hash seed fixed and the configuration in the
environment (``protocol.py``); :func:`main` runs here. Recording and replaying hand the program to its
kind (``pytest_retrace.kinds``); either way the child reports the program's outcome to the launcher
through a small JSON file, and the launcher, which saw the program's stdout and stderr pass by,
concludes. No other module imports this one.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any, NoReturn

from ..boundaries import Options, areas, env, install, machine
from ..engine import guard
from ..engine.divergence import Call, Divergence, DivergenceKind
from ..engine.importhook import when_imported, write_no_bytecode
from ..engine.patch import Patcher
from ..engine.replayer import Replayer
from ..engine.state import enter_gate, start_main_thread
from ..engine.watchdog import ProgressFile
from ..format import codec
from ..format.sealing import Sealer, keys_from_parent
from ..format.tape import Kind, TapeStatus, read_recording
from ..hooks import manager
from ..kinds import process
from ..kinds.entry import OutsideProject, Project, check_entry, code_folders, localized
from ..kinds.outcome import Outcome
from ..paths import use_root
from ..redaction import DEFAULT, Redaction
from .debugging import DEBUG_ENV, DebugSettings, Session
from .protocol import CHILD_ENV, LAUNCHER_ENV, ChildResult, ForkServerConfig, RecordConfig, ReplayConfig, decode_config
from .tree import ReplayTree, die_with_parent

_exit = os._exit  # taken before the process boundary replaces it: our own exits are not the program's


def kind_module(kind: Kind) -> ModuleType:
    """What prepares a replay of this kind and runs the recorded work again (imported only when needed: a
    process replay does not pay for the machinery of in-process recordings)."""
    if kind == Kind.CALL:
        from ..kinds import call

        return call
    if kind == Kind.WSGI:
        from ..kinds import request

        return request
    return process


def record(config: RecordConfig) -> NoReturn:
    def report(outcome: Outcome, events: int, recording_error: str | None, abandoned: bool) -> None:
        ChildResult(outcome=outcome, events=events, recording_error=recording_error,
                    abandoned=abandoned).write(config.result)

    sealer = Sealer.from_json(config.sealer, count=0) if config.sealer else None
    process.record(config.output, config.entry, config.argv, config.hash_seed, config.redaction or DEFAULT,
                   config.live_paths, config.tags, report, config.parent, sealer)


def die_with_launcher() -> None:
    """A killed launcher takes its child with it (``retrace record`` killed must not leave the program running
    unseen, nor a replay go on alone)."""
    launcher = os.environ.pop(LAUNCHER_ENV, None)
    if launcher is not None and not die_with_parent(int(launcher)):
        _exit(1)  # the launcher is already gone: nobody waits for this run


def prepare(header: dict[str, Any], project: Project, recording: str) -> tuple[dict[str, Any], Any]:
    """Check that the recording runs only the project's code (before anything else: a refused recording changes
    nothing), make the world what the recording started in (environment, time zone, interpreter path, folder),
    then let the kind prepare (an in-process recording's entry is imported: importing was no part of the
    recording). Returns the header as this checkout runs it (its code where it is here) and what the kind
    prepared. The fork server does this once, before it forks the replays."""
    location = check_entry(header, project, recording)
    header = localized(header, location)
    env.restore(header["environ"])
    machine.apply(header.get("machine"))
    sys.executable = header.get("executable", sys.executable)  # the program may start itself again
    if location.cwd is not None:
        os.chdir(location.cwd)
    use_root(location.keys_root, final=True)  # under this checkout's root, paths key as the recorded ones did
    return header, kind_module(Kind.of(header)).prepare_replay(header, project)


def replay_here(config: ReplayConfig) -> NoReturn:
    """Replay the recording in this process (a child the launcher started, or a fork of the fork server)."""
    session = debug_session(config)  # before the recorded environment replaces ours
    rec = read_recording(config.recording)
    if rec.status == TapeStatus.CORRUPT:  # a value the launcher, which does not decode them, could not see
        ChildResult(corrupt=str(rec.corrupt_error()), offset=rec.offset).write(config.result)
        _exit(0)
    header = rec.header
    kind = Kind.of(header)
    codec.run_program_constructors()  # from here on this process runs the recorded program's own code
    try:
        header, prepared = prepare(header, config.project, config.recording)
    except OutsideProject as exc:  # the launcher checked first; this interpreter's own path may differ
        raise SystemExit(f"retrace: {exc}") from None

    recorded = Outcome.from_json(rec.end or {})
    tree = ReplayTree(rec, config.result, config.stuck_timeout)
    diverged = tree.diverged if session is None else session.diverging(tree.diverged)
    answer_by_key = recorded.crashed
    engine = Replayer(rec.events(), on_divergence=diverged, truncated=rec.status == TapeStatus.TRUNCATED,
                      stuck_timeout=config.stuck_timeout, answer_by_key=answer_by_key, setup=rec.setup)
    if session is not None:
        session.attach(engine)
    engine.redaction = Redaction.from_header(header)  # what the program does now, redacted as recorded
    if config.progress:
        report = ProgressFile(config.progress, lambda: engine.consumed)
        if not process.give_the_stand_in(report.run):
            report.start()
    start_main_thread()
    install(engine, Patcher(), Options(live_paths=header.get("live_paths", []),
                                       code_folders=code_folders(header, config.project)))
    guard.install(engine.refuse)  # from here on, what the recording does not answer never happens
    if session is not None:
        session.started()

    def finalize(outcome: Outcome) -> None:
        if session is not None:
            session.finished(outcome)
        enter_gate()
        engine.finish()
        consumed = engine.consumed
        result = ChildResult(outcome=outcome, events_consumed=consumed, keyed=engine.keyed, setup=engine.setup)
        following = engine.unconsumed() if engine.keyed is None else None
        if following is not None:
            result.unconsumed = Divergence(DivergenceKind.MISSING_CALLS, following.index, following.tid,
                                           expected=Call(following.describe()))
        result.write(tree.result)

    if kind == Kind.PROCESS:
        end = process.ProcessEnd(finalize, header.get("pid", -1))
        tree.replays(engine, end, finalize)
        process.rerun_then_exit(header, end)
    finalize(kind_module(kind).rerun(prepared, header))
    process.flush_std()
    _exit(0)


def debug_session(config: ReplayConfig) -> Session | None:
    """The debugging session of a replay the launcher started to debug (``debugging.py``); None for a replay."""
    if DEBUG_ENV not in os.environ:
        return None
    settings = DebugSettings.from_environment()
    assert settings is not None
    return Session(settings, str(config.project.root))


def main() -> NoReturn:
    die_with_launcher()
    config = decode_config(os.environ.pop(CHILD_ENV))
    keys_from_parent()
    areas()  # recording and replay import the same modules, in the same order
    manager.preset(config.plugins)
    if isinstance(config, RecordConfig):
        record(config)
    write_no_bytecode()  # a replay writes nothing, not even the bytecode cache of what it imports
    # The app's request middleware or call decorator, imported again, records nothing: told so when the program
    # (or an in-process kind) imports their machinery, which a process recording and its replay never import.
    when_imported("pytest_retrace.kinds.inprocess", lambda inprocess: inprocess.replaying_here())
    if isinstance(config, ForkServerConfig):
        from . import forkserver

        forkserver.serve(config, prepare, replay_here)
        sys.exit(0)
    if not isinstance(config, ReplayConfig):  # a zygote: it forks a replay per recording (runner/zygote.py)
        from . import zygote

        zygote.serve(config, replay_here)
        sys.exit(0)
    replay_here(config)
