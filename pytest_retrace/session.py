"""The child side of a process recording or replay: runs the program under the engine.

The launcher (``launcher.py``) starts a fresh interpreter with the right hash seed
and calls :func:`main` there. Recording writes the header and events to the tape;
replaying answers every external call from the recording. Either way the child
reports the program's outcome to the launcher through a small JSON file, and the
launcher, which saw the program's stdout and stderr pass by, concludes.
"""

from __future__ import annotations

import _thread
import atexit
import hashlib
import json
import os
import platform
import runpy
import sys
import time
import traceback
from typing import Any, NoReturn

from . import __version__, boundaries, plugins
from .boundaries import env as env_boundary
from .engine import Recorder, Replayer, enter_gate, internal, launcher_frame, start_main_thread
from .patch import Patcher
from .protocol import CHILD_ENV, DIVERGED_EXIT
from .tape import FORMAT, TapeWriter, read_recording

_REAL_GETPID = os.getpid  # taken before the process boundary patches it


def _program_traceback(exc: BaseException) -> Any:
    tb = exc.__traceback__
    while tb is not None and launcher_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def crash_fingerprint(type_name: str, frames: list[list[Any]]) -> str:
    """Stable across unrelated edits: the exception type and the chain of (file name, function)."""
    h = hashlib.blake2b(type_name.encode(), digest_size=8)
    for filename, _line, function, _text in frames:
        h.update(f"|{os.path.basename(filename)}:{function}".encode())
    return h.hexdigest()


def describe_exception(exc: BaseException) -> dict[str, Any]:
    frames = [[f.filename, f.lineno, f.name, f.line or ""] for f in traceback.extract_tb(_program_traceback(exc))]
    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    return {
        "type": type_name,
        "message": str(exc),
        "traceback": frames,
        "fingerprint": crash_fingerprint(type_name, frames),
    }


def run_program(entry: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """Run the program as ``python script.py`` / ``python -m module`` would, and return its outcome."""
    sys.argv = list(argv)
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
            return {"status": 0, "exception": None}
        if isinstance(code, int):
            return {"status": code, "exception": None}
        print(code, file=sys.stderr)
        return {"status": 1, "exception": None}
    except BaseException as exc:  # the program's uncaught exception: print it as Python would
        outcome = {"status": 1, "exception": describe_exception(exc)}
        tb = _program_traceback(exc)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return outcome
    return {"status": 0, "exception": None}


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _write_result(path: str, result: dict[str, Any]) -> None:
    with internal:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, default=repr)
        os.replace(tmp, path)


def _run_then_exit(entry: dict[str, Any], argv: list[str], finalize: Any) -> NoReturn:
    """Run the program and leave as it would. ``finalize(outcome)`` runs after the program's own
    atexit handlers (atexit is last-in first-out, and ours is registered before the program runs),
    and only in this process: a forked child inherits the handler but not the recording."""
    outcome: dict[str, Any] = {"status": 1, "exception": None}
    pid = _REAL_GETPID()
    atexit.register(lambda: _REAL_GETPID() == pid and finalize(outcome))
    outcome.update(run_program(entry, argv))
    _flush_std()
    sys.exit(outcome["status"])


def make_header(kind: str, entry: dict[str, Any], argv: list[str], hash_seed: int, redact: str | None,
                live_paths: list[str], tags: dict[str, Any], environ: dict[str, str] | None = None,
                created_at: str | None = None) -> dict[str, Any]:
    """The header of a recording of any kind: what ran, where, and the world it ran in (``environ`` and
    ``created_at``: as they were when it started, when that was earlier than now)."""
    environ, redacted = env_boundary.snapshot(redact, environ=environ)
    return {
        "format": FORMAT,
        "retrace_version": __version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "executable": sys.executable,
        "hash_seed": hash_seed,
        "kind": kind,
        "entry": entry,
        "argv": argv,
        "cwd": os.getcwd(),
        "environ": environ,
        "created_at": created_at or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "redaction": {"pattern": redact, "redacted": redacted},
        "live_paths": live_paths,
        "tags": tags,
        "pin": None,
    }


def record(config: dict[str, Any]) -> NoReturn:
    header = make_header("process", config["entry"], config["argv"], config["hash_seed"],
                         config.get("redact", env_boundary.DEFAULT_REDACT), config.get("live_paths", []),
                         config.get("tags", {}))
    writer = TapeWriter(config["output"], header)
    engine = Recorder(writer.sink, writer.name_id)
    start_main_thread()
    boundaries.install(engine, Patcher(), boundaries.Options(live_paths=config.get("live_paths", [])))

    def finalize(outcome: dict[str, Any]) -> None:
        enter_gate()
        _flush_std()
        writer.close(end=None)
        _write_result(config["result"], {"outcome": outcome, "events": engine.events_in(writer.values_written),
                                         "recording_error": writer.error})

    _run_then_exit(config["entry"], config["argv"], finalize)


def replay(config: dict[str, Any]) -> NoReturn:
    rec = read_recording(config["recording"])
    header = rec.header
    env_boundary.restore(header["environ"])
    sys.executable = header.get("executable", sys.executable)  # the program may start itself again
    if os.path.isdir(header["cwd"]):
        os.chdir(header["cwd"])

    def diverged(report: dict[str, Any]) -> NoReturn:
        enter_gate()
        _flush_std()
        # Events before the diverging one are the ones the replay consumed faithfully.
        _write_result(config["result"], {"divergence": report, "events_consumed": report["index"]})
        os._exit(DIVERGED_EXIT)

    call = header.get("kind") in ("call", "wsgi")
    if call:  # import it now: importing was not part of the recorded call or request
        from .calls import resolve

        entry = header["entry"]
        function = resolve({"function": entry["app"], "root": entry["root"]} if "app" in entry else entry)
    else:
        _stand_in_for_the_writer_thread()
    end = rec.end or {}
    crashed = bool(end.get("exception")) or end.get("status") not in (0, None)
    engine = Replayer(rec.events(), on_divergence=diverged, truncated=rec.status == "truncated",
                      stuck_timeout=float(config.get("stuck_timeout", 10.0)), answer_by_key=crashed)
    start_main_thread()
    boundaries.install(engine, Patcher(), boundaries.Options(live_paths=header.get("live_paths", [])))

    def finalize(outcome: dict[str, Any]) -> None:
        enter_gate()
        engine.finish()
        _flush_std()
        consumed = engine.consumed
        result: dict[str, Any] = {"outcome": outcome, "events_consumed": consumed}
        if engine.keyed:
            result["keyed"] = {"first_divergence": engine.first_divergence,
                               "answered_by_key": engine.answered_by_key, "unanswered": engine.unanswered,
                               "answered_live": engine.answered_live}
        elif consumed < len(engine.events):
            nxt = engine.events[consumed]
            result["next_expected"] = {"index": consumed, "thread": nxt.tid, "call": nxt.describe()}
        _write_result(config["result"], result)

    if call:
        if header["kind"] == "wsgi":
            from .wsgi import crash_catcher, replay_environ, request_outcome

            environ = replay_environ(entry["environ"], entry["body"])
            outcome = request_outcome(function, environ, crash_catcher(function))
        else:
            from .calls import call_outcome

            _, _, outcome = call_outcome(function, tuple(entry["args"]), entry["kwargs"])
        finalize(outcome)
        _flush_std()
        os._exit(0)
    _run_then_exit(header["entry"], header["argv"], finalize)


def _stand_in_for_the_writer_thread() -> None:
    """Park one idle OS thread for the replay's lifetime, where the recording had its writer thread.

    The program sees the same number of threads in both runs: Python 3.12+ warns on ``os.fork()``
    in a multi-threaded process, and that warning is output the replay must reproduce.
    """
    parked = _thread.allocate_lock()
    parked.acquire()
    _thread.start_new_thread(parked.acquire, ())


def main() -> NoReturn:
    config = json.loads(os.environ.pop(CHILD_ENV))
    plugins.preset(config.get("plugins", []))
    if config["mode"] == "record":
        record(config)
    if config["mode"] == "forkserver":
        from .forkserver import serve

        serve(config)
        sys.exit(0)
    replay(config)


def load_replay_machinery() -> None:
    """Import what a replay imports on its way, so that a fork server's children start with it loaded."""
    import encodings.idna  # noqa: F401  (HTTP stacks look this codec up on their first request)

    from . import custom, demux, wsgi  # noqa: F401
    from .boundaries import clock, collector, entropy, files, process, socket, sync, threads  # noqa: F401

    with internal:
        plugins.manager()
