"""Per-call recordings: ``@pytest_retrace.record_calls(directory=…, keep=…)`` on a function.

Each call of the decorated function (a job handler, a message consumer) is recorded on its own
into ``directory``: the entry point and its arguments, every external call the function makes on
the calling thread and the threads it starts, and the outcome — the return value (as a digest
and a readable head) or the exception. ``pytest --retrace-recordings=directory`` replays each one
by calling the function with the recorded arguments in a clean process (a fork of a server that
imported the module once: see the runner's fork server).

The recording machinery is shared with request recordings (``inprocess.py``): boundaries
installed once, events in memory, only kept recordings written.

``keep``: ``"all"``; ``"errors"`` (only calls that raised); or a float, the share of calls
recorded (``0.1``: one in ten, drawn from a generator of our own, not the program's).
``max_files`` / ``max_bytes`` rotate: the oldest recordings go first. Each recorded call is one
recording: calls on other threads at the same time are recorded each on
its own. A recording that fails (an argument no codec can hold, a full disk) is logged on the
``pytest_retrace`` logger and never breaks the call.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, TypeVar

from ..engine.state import internal
from ..format import codec
from ..format.tape import Kind
from ..redaction import Redaction
from .entry import Project, entry_point, resolve, use_project_of
from .inprocess import (
    InProcessRecording,
    Keep,
    begin,
    checked_tags,
    destination,
    install_early,
    keeps,
    log,
    rewarm,
    sealing_policy,
    warm_state,
)
from .outcome import ExceptionInfo, Outcome, returned_summary

F = TypeVar("F", bound=Callable[..., Any])


def call_outcome(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 redaction: Redaction, summarize: bool = True) -> tuple[Any, Exception | None, Outcome]:
    """Call ``function``: its return value, its exception (for the caller to raise), and the outcome (without
    the return value's summary unless ``summarize``: a recording that is dropped needs none)."""
    try:
        value = function(*args, **kwargs)
    except Exception as exc:
        return None, exc, Outcome(1, ExceptionInfo.of(exc))
    return value, None, Outcome(0, returned=returned_summary(value, redaction) if summarize else None)


def _secret_positions(function: Callable[..., Any], redaction: Redaction) -> Callable[[int], bool]:
    """Whether the argument passed at a position goes to a parameter with a secret name (``handle(user,
    password)`` called as ``handle("u", "pw")``)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no signature to read: arguments are judged by their shape alone
        return lambda index: False
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    rest = next((p.name for p in parameters if p.kind is p.VAR_POSITIONAL), None)
    secret = [redaction.matches(name) for name in named]
    rest_secret = rest is not None and redaction.matches(rest)
    return lambda index: secret[index] if index < len(secret) else rest_secret


def record_calls(directory: str | os.PathLike[str], keep: str | float = "all", max_files: int | None = None,
                 max_bytes: int | None = None, redact: Redaction | str | list[str] | None = None,
                 public_key: str | None = None, tags: dict[str, str] | None = None) -> Callable[[F], F]:
    """Record each call of the decorated function into ``directory``, a folder or a URL (``s3://bucket/prefix``,
    uploaded from a local spool on the writer thread; see the module's documentation).
    ``redact``: name patterns to redact besides the defaults, or a whole :class:`~pytest_retrace.redaction.Redaction`
    policy. Keyword arguments with secret names and secret-shaped values in the arguments are recorded
    redacted, and the replayed call gets them so. ``public_key``: seal every recording for this project key
    (its text or a file holding it; default ``$RETRACE_PUBLIC_KEY``); secrets then travel sealed instead.
    ``tags``: KEY=VALUE pairs every recording's header holds, which pytest selects replays by."""
    policy = Keep.parse(keep, "record_calls")
    tags = checked_tags(tags, "record_calls")
    folder, spool = destination(directory)  # a URL: a spool folder, uploaded from
    redaction, sealed_for, records = sealing_policy(Redaction.of(redact), public_key, "record_calls")
    if not records:
        policy = 0.0
    else:
        install_early()

    def decorate(function: F) -> F:
        secret_positions = _secret_positions(function, redaction)
        use_project_of(lambda: entry_point(function))

        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if not begin(policy):
                return function(*args, **kwargs)
            try:
                with internal:
                    # The arguments as they are now (the call may change them), through the codec: one no
                    # codec can hold is said now, and the call runs unrecorded.
                    positional = [redaction.data(a, secret_positions(i)) for i, a in enumerate(args)]
                    warm = warm_state()
                    entry = codec.unpackb(codec.packb(dict(entry_point(function), args=positional,
                                                           kwargs=redaction.data(dict(kwargs)),
                                                           **({"warm": warm} if warm else {}))))
                recording = InProcessRecording(Kind.CALL, entry, function.__qualname__, folder, redaction,
                                               sealed_for, spool=spool, tags=tags)
            except Exception as exc:
                log.warning("pytest-retrace: not recording this call of %s: %s", function.__qualname__, exc)
                return function(*args, **kwargs)
            outcome = Outcome(1)  # if the call is interrupted
            value, error = None, None
            try:
                value, error, outcome = call_outcome(function, args, kwargs, redaction, summarize=False)
            finally:
                recording.finish(outcome, keeps(policy, outcome.exception is not None), max_files, max_bytes,
                                 summary=None if error is not None else lambda: returned_summary(value, redaction))
            if error is not None:
                raise error
            return value

        return recorded  # type: ignore[return-value]

    return decorate


# -- the replay side -------------------------------------------------------------------------------------


def prepare_replay(header: dict[str, Any], project: Project) -> Callable[..., Any]:
    """Import the recorded function (the project's own) before the replay starts (importing was no part of the
    recorded call)."""
    return resolve(header["entry"], project)


def rerun(function: Callable[..., Any], header: dict[str, Any]) -> Outcome:
    """Call the function again with the recorded arguments; how the call ended."""
    entry = header["entry"]
    rewarm(entry)
    return call_outcome(function, tuple(entry["args"]), entry["kwargs"], Redaction.from_header(header))[2]
