"""Per-call recordings (DESIGN §3): ``@pytest_retrace.record_calls(directory=…, keep=…)`` on a function.

Each call of the decorated function (a job handler, a message consumer) is recorded on its own
into ``directory``: the entry point and its arguments, every external call the function makes on
the calling thread and the threads it starts, and the outcome — the return value (as a digest
and a readable head) or the exception. ``pytest --retrace-recordings=directory`` replays each one
by calling the function with the recorded arguments in a clean process (a fork of a server that
imported the module once: ``forkserver.py``).

The first recording installs the boundaries for the rest of the process's life, with a
:class:`~pytest_retrace.engine.Router` that sends each call to the recording of the calling
thread; events gather in memory, and only a recording that is kept is written.

``keep``: ``"all"``; ``"errors"`` (only calls that raised); or a float, the share of calls
recorded (``0.1``: one in ten, drawn from a generator of our own, not the program's).
``max_files`` / ``max_bytes`` rotate: the oldest recordings go first. Each recorded call is one
recording: calls on other threads at the same time are recorded each on
its own. A recording that fails (an argument no codec can hold, a full disk) is logged on the
``pytest_retrace`` logger and never breaks the call.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from . import boundaries, codec
from .boundaries import entropy
from .boundaries import env as env_boundary
from .engine import Recorder, Router, end_call_thread, internal, outside_recordings, start_call_thread, tls
from .patch import Patcher
from .tape import NameTable, TapeWriter

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("pytest_retrace")
_sampler = random.Random()  # ours: drawing from the program's generator would change what it draws


def module_root(name: str) -> str | None:
    """The sys.path entry a fresh interpreter needs to import module ``name`` as this one did."""
    file = getattr(sys.modules[name], "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    for _ in range(name.count(".") + (Path(file).stem == "__init__")):
        root = root.parent
    return str(root)


def importable_name(module: str) -> str:
    """The name a fresh interpreter imports ``module`` by: a script run as ``__main__`` by its file name."""
    file = getattr(sys.modules[module], "__file__", None)
    return Path(file).stem if module == "__main__" and file else module


def entry_point(function: Callable[..., Any]) -> dict[str, Any]:
    """How a fresh interpreter finds the function again: ``module:qualname``, and the root of its module."""
    name = importable_name(function.__module__)
    return {"function": f"{name}:{function.__qualname__}", "root": module_root(function.__module__)}


def resolve(entry: dict[str, Any]) -> Callable[..., Any]:
    if entry.get("root") and entry["root"] not in sys.path:
        sys.path.insert(0, entry["root"])
    try:
        obj: Any = codec.resolve_type_path(entry["function"])
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"retrace: cannot find {entry['function']!r}, the entry point of this recording "
                         f"({type(exc).__name__}: {exc}); replay where its module is importable "
                         f"(recorded from {entry.get('root') or 'an unknown folder'})") from None
    return getattr(obj, "__wrapped__", obj)  # the function itself, not our recording wrapper


def returned_summary(value: Any) -> dict[str, Any]:
    """The return value as the outcome compares it: a digest of its encoded form, and a readable head."""
    try:
        data = codec.packb(value)
    except (codec.UnencodableValue, TypeError, ValueError, OverflowError):
        data = repr(value).encode("utf-8", "replace")
    return {"digest": hashlib.blake2b(data, digest_size=16).hexdigest(), "size": len(data),
            "head": repr(value)[:400]}


def call_outcome(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 summarize: bool = True) -> tuple[Any, Exception | None, dict[str, Any]]:
    """Call ``function``: its return value, its exception (for the caller to raise), and the outcome (without
    the return value's summary unless ``summarize``: a recording that is dropped needs none)."""
    from .session import describe_exception

    try:
        value = function(*args, **kwargs)
    except Exception as exc:
        return None, exc, {"status": 1, "exception": describe_exception(exc), "returned": None}
    return value, None, {"status": 0, "exception": None, "returned": returned_summary(value) if summarize else None}


def check_keep(keep: str | float, who: str) -> str | float:
    if not (keep in ("all", "errors") or (isinstance(keep, float) and 0 <= keep <= 1)):
        raise ValueError(f"{who}: keep={keep!r} is not 'all', 'errors' or a share between 0.0 and 1.0")
    return keep


def begin(keep: str | float) -> bool:
    """Whether to record this one (sampling; not inside another recording)."""
    if isinstance(keep, float) and _sampler.random() >= keep:
        return False
    return outside_recordings()


_installed: list[Router] = []  # the router this process installed, once it recorded something
_installing = threading.Lock()  # created before any boundary exists: a real lock


def _install_once() -> None:
    """The first recording installs the boundaries, for good, with a Router that sends each call to the
    recording of the calling thread."""
    if _installed:
        return
    with _installing:
        if not _installed:
            router = Router()
            with internal:
                boundaries.install(router, Patcher(), boundaries.Options())
            _installed.append(router)


class InProcessRecording:
    """One recording made inside a running process, on the calling thread: a call, or a request.

    Events gather in memory; only a recording that is kept is written (a keep="errors" service drops
    most of them, and must not pay for files it deletes)."""

    def __init__(self, kind: str, entry: dict[str, Any] | Callable[[], dict[str, Any]], stem: str, folder: Path,
                 redact: str | None) -> None:
        """``entry``: what the header holds of the call or request, or a function that builds it if the
        recording is kept."""
        try:
            with internal:
                self.kind, self.entry, self.stem, self.folder, self.redact = kind, entry, stem, folder, redact
                self.environ = env_boundary.capture()
                self.created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                self.table = NameTable()
                self.sink: list[Any] = []
                self.engine = Recorder(self.sink, self.table.name_id)
                self._children = 0  # threads started so far, kept while suspended
            _install_once()
            start_call_thread(self.engine)
            # Requests recorded at once must not draw from each other's module-level generator.
            self.engine.generator = entropy.own_generator(self.engine)
        except BaseException:
            end_call_thread()
            raise

    def suspend(self) -> None:
        """The thread goes on with work that is not the recording's (a server between chunks of a streamed
        response): its calls pass through until :meth:`resume`."""
        self._children = tls.children
        end_call_thread()

    def resume(self) -> None:
        start_call_thread(self.engine)
        tls.children = self._children

    def finish(self, outcome: dict[str, Any], keep_it: bool, max_files: int | None = None,
               max_bytes: int | None = None, summary: Callable[[], dict[str, Any]] | None = None) -> None:
        """End the recording: write it when it is kept, with ``summary()`` as what the call returned; rotate.
        Never raises: logs."""
        end_call_thread()
        self.engine.open = False  # threads it started that run on are outside it from now on
        if not keep_it:
            return
        try:
            with internal:
                self._write(outcome, summary, max_files, max_bytes)
        except Exception as exc:
            log.warning("pytest-retrace: a recording could not be written to %s: %s", self.folder, exc)

    def _write(self, outcome: dict[str, Any], summary: Callable[[], dict[str, Any]] | None, max_files: int | None,
               max_bytes: int | None) -> None:
        from .session import make_header

        if summary is not None:
            outcome = dict(outcome, returned=summary())
        seed = os.environ.get("PYTHONHASHSEED", "")
        entry = self.entry() if callable(self.entry) else self.entry
        header = make_header(self.kind, entry, [], int(seed) if seed.isdigit() else 0,
                             env_boundary.DEFAULT_REDACT if self.redact is None else self.redact, [], {},
                             environ=env_boundary.decode(self.environ), created_at=self.created_at)
        name = f"{self.stem}-{self.created_at.replace(':', '')}-{os.urandom(4).hex()}.retrace"
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f".{name}.part"
        writer = TapeWriter(part, header, background=False, table=self.table, sink=self.sink)
        events = self.engine.events_in(len(self.sink))
        writer.close(dict(outcome, events=events, stdout=None, stderr=None))
        part.replace(self.folder / name)
        _rotate(self.folder, max_files, max_bytes)


def _rotate(folder: Path, max_files: int | None, max_bytes: int | None) -> None:
    """Drop the oldest recordings beyond ``max_files`` files or ``max_bytes`` bytes in all."""
    if max_files is None and max_bytes is None:
        return
    kept = sorted(folder.glob("*.retrace"), key=lambda p: p.stat().st_mtime, reverse=True)
    total = 0
    for index, path in enumerate(kept):
        total += path.stat().st_size
        if (max_files is not None and index >= max_files) or (max_bytes is not None and total > max_bytes):
            path.unlink(missing_ok=True)


def record_calls(directory: str | os.PathLike[str], keep: str | float = "all", max_files: int | None = None,
                 max_bytes: int | None = None, redact: str | None = None) -> Callable[[F], F]:
    """Record each call of the decorated function into ``directory`` (see the module's documentation)."""
    check_keep(keep, "record_calls")
    folder = Path(directory)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if not begin(keep):
                return function(*args, **kwargs)
            try:
                with internal:
                    # The arguments as they are now (the call may change them), through the codec: one no
                    # codec can hold is said now, and the call runs unrecorded.
                    entry = codec.unpackb(codec.packb(dict(entry_point(function), args=list(args),
                                                           kwargs=dict(kwargs))))
                recording = InProcessRecording("call", entry, function.__qualname__, folder, redact)
            except Exception as exc:
                log.warning("pytest-retrace: not recording this call of %s: %s", function.__qualname__, exc)
                return function(*args, **kwargs)
            outcome = {"status": 1, "exception": None, "returned": None}  # if the call is interrupted
            value, error = None, None
            try:
                value, error, outcome = call_outcome(function, args, kwargs, summarize=False)
            finally:
                recording.finish(outcome, keep != "errors" or outcome["exception"] is not None, max_files, max_bytes,
                                 summary=None if error is not None else lambda: returned_summary(value))
            if error is not None:
                raise error
            return value

        return recorded  # type: ignore[return-value]

    return decorate
