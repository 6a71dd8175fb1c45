"""Per-call recordings (DESIGN §3): ``@pytest_retrace.record_calls(directory=…, keep=…)`` on a function.

Each call of the decorated function (a job handler, a message consumer) is recorded on its own
into ``directory``: the entry point and its arguments, every external call the function makes on
the calling thread and the threads it starts, and the outcome — the return value (as a digest
and a readable head) or the exception. ``pytest --retrace-recordings=directory`` replays each one
by importing the function's module in a fresh interpreter and calling it with the recorded
arguments.

``keep``: ``"all"``; ``"errors"`` (only calls that raised); or a float, the share of calls
recorded (``0.1``: one in ten, drawn from a generator of our own, not the program's). ``max_files``
rotates: the oldest recordings go first. One call is recorded at a time per process; calls made
meanwhile on other threads run unrecorded. A recording that fails (an argument no codec can
hold, a full disk) is logged on the ``pytest_retrace`` logger and never breaks the call.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from . import boundaries, codec
from .engine import Recorder, internal, start_call_thread, tls
from .patch import Patcher
from .tape import TapeWriter

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("pytest_retrace")
_one_at_a_time = threading.Lock()
_sampler = random.Random()  # ours: drawing from the program's generator would change what it draws


def entry_point(function: Callable[..., Any]) -> dict[str, Any]:
    """How a fresh interpreter finds the function again: ``module:qualname``, and the sys.path root of its module."""
    module = sys.modules[function.__module__]
    root = None
    if getattr(module, "__file__", None):
        root = Path(module.__file__).resolve().parent  # type: ignore[arg-type]
        for _ in range(function.__module__.count(".") + (Path(module.__file__).stem == "__init__")):  # type: ignore[arg-type]
            root = root.parent
    return {"function": f"{function.__module__}:{function.__qualname__}", "root": None if root is None else str(root)}


def resolve(entry: dict[str, Any]) -> Callable[..., Any]:
    if entry.get("root") and entry["root"] not in sys.path:
        sys.path.insert(0, entry["root"])
    obj: Any = codec.resolve_type_path(entry["function"])
    return getattr(obj, "__wrapped__", obj)  # the function itself, not our recording wrapper


def returned_summary(value: Any) -> dict[str, Any]:
    """The return value as the outcome compares it: a digest of its encoded form, and a readable head."""
    try:
        data = codec.packb(value)
    except (codec.UnencodableValue, TypeError, ValueError, OverflowError):
        data = repr(value).encode("utf-8", "replace")
    return {"digest": hashlib.blake2b(data, digest_size=16).hexdigest(), "size": len(data),
            "head": repr(value)[:400]}


def call_outcome(function: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> tuple[Any, Exception | None, dict[str, Any]]:
    """Call ``function``: its return value, its exception (for the caller to raise), and the outcome."""
    from .session import describe_exception

    try:
        value = function(*args, **kwargs)
    except Exception as exc:
        return None, exc, {"status": 1, "exception": describe_exception(exc), "returned": None}
    return value, None, {"status": 0, "exception": None, "returned": returned_summary(value)}


def record_calls(directory: str | os.PathLike[str], keep: str | float = "all", max_files: int | None = None,
                 redact: str | None = None) -> Callable[[F], F]:
    """Record each call of the decorated function into ``directory`` (see the module's documentation)."""
    from .boundaries.env import DEFAULT_REDACT

    if not (keep in ("all", "errors") or (isinstance(keep, float) and 0 <= keep <= 1)):
        raise ValueError(f"record_calls: keep={keep!r} is not 'all', 'errors' or a share of calls between 0.0 and 1.0")
    folder = Path(directory)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if isinstance(keep, float) and _sampler.random() >= keep:
                return function(*args, **kwargs)
            if tls.tid is not None or not _one_at_a_time.acquire(blocking=False):
                return function(*args, **kwargs)  # inside a recording already, or another call is being recorded
            try:
                session = _start(function, args, kwargs, folder, redact if redact is not None else DEFAULT_REDACT)
            except Exception as exc:
                _one_at_a_time.release()
                log.warning("pytest-retrace: not recording this call of %s: %s", function.__qualname__, exc)
                return function(*args, **kwargs)
            outcome = None
            try:
                value, error, outcome = call_outcome(function, args, kwargs)
            finally:
                _finish(session, outcome, keep, folder, max_files)
                _one_at_a_time.release()
            if error is not None:
                raise error
            return value

        return recorded  # type: ignore[return-value]

    return decorate


def _start(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], folder: Path,
           redact: str) -> tuple[TapeWriter, Recorder, Patcher, Path]:
    from .session import make_header

    with internal:
        folder.mkdir(parents=True, exist_ok=True)
        entry = dict(entry_point(function), args=list(args), kwargs=dict(kwargs))
        codec.packb(entry)  # arguments no codec can hold: say so now, and run the call unrecorded
        seed = os.environ.get("PYTHONHASHSEED", "")
        header = make_header("call", entry, [], int(seed) if seed.isdigit() else 0, redact, [], {})
        name = f"{function.__qualname__}-{header['created_at'].replace(':', '')}-{os.urandom(4).hex()}.retrace"
        path = folder / name
        writer = TapeWriter(folder / f".{name}.part", header)
        engine = Recorder(writer.sink, writer.name_id)
        patcher = Patcher()
    start_call_thread()
    boundaries.install(engine, patcher, boundaries.Options())
    return writer, engine, patcher, path


def _finish(session: tuple[TapeWriter, Recorder, Patcher, Path], outcome: dict[str, Any] | None,
            keep: str | float, folder: Path, max_files: int | None) -> None:
    writer, engine, patcher, path = session
    tls.tid = None
    with internal:
        patcher.undo()
        try:
            outcome = outcome or {"status": 1, "exception": None, "returned": None}
            writer.close(dict(outcome, events=engine.events_in(writer.values_written), stdout=None, stderr=None))
            part = Path(writer.path)
            if keep == "errors" and outcome["exception"] is None:
                part.unlink()
                return
            part.replace(path)
            if max_files is not None:
                kept = sorted(folder.glob("*.retrace"), key=lambda p: p.stat().st_mtime)
                for old in kept[: max(0, len(kept) - max_files)]:
                    old.unlink(missing_ok=True)
        except Exception as exc:
            log.warning("pytest-retrace: the recording of a call could not be written to %s: %s", folder, exc)
