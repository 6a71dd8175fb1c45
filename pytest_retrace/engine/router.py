"""The engine in-process recordings install once, for the process's life."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..format.codec import Raised
from ..redaction import DEFAULT, Redaction
from .base import Engine
from .setup import PROCESS_LOG
from .state import internal, tls


class Router(Engine):
    """Installing boundaries for every request would cost more than most requests: in-process recordings
    install them once, with a Router. Each call goes to the engine of the recording the calling thread
    belongs to (``tls.engine``, set by :func:`~.state.start_call_thread` and inherited by the threads it
    starts) while that recording is open, so several requests can be recorded at once, each into its own
    recording; every other call passes straight through."""

    @staticmethod
    def _target() -> Engine | None:
        engine = tls.engine
        return engine if engine is not None and engine.open else None

    @property  # type: ignore[override]
    def redaction(self) -> Redaction:
        engine = self._target()
        return DEFAULT if engine is None else engine.redaction

    @redaction.setter
    def redaction(self, value: Redaction) -> None:
        raise AttributeError("a Router redacts as the recording of the calling thread does")

    # call, routed and passes run for every call of the process (a server's own socket reads pass through them):
    # _target inlined.
    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        engine = tls.engine
        if engine is not None and not engine.open:
            engine = None
        if tls.setup and not tls.gate:
            return _setting_up(engine, name, args, fn, *a, **kw)
        return fn(*a, **kw) if engine is None else engine.call(name, args, fn, *a, **kw)

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def routed() -> Any:
            engine = tls.engine
            if engine is not None and not engine.open:
                engine = None
            if tls.setup and not tls.gate:
                return _setting_up(engine, name, None, fn)
            return fn() if engine is None else engine.call(name, None, fn)

        return routed

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        engine = self._target()
        return fn(*a) if engine is None else engine.sync(name, args, redo, fn, *a)

    def internal_error(self, reason: str) -> bool:
        engine = self._target()
        return True if engine is None else engine.internal_error(reason)

    def passes(self) -> bool:
        engine = tls.engine
        return engine is None or not engine.open or engine.passes()

    def blocking(self, name: str, args: Any, attempt: Callable[[float], bool]) -> None:
        engine = self._target()
        if engine is not None:
            engine.blocking(name, args, attempt)

    def after_waiting(self, name: str, attempt: Callable[[float], bool]) -> None:
        engine = self._target()
        if engine is None:
            super().after_waiting(name, attempt)  # waits for real; its event passes straight through
        else:
            engine.after_waiting(name, attempt)

    def slot_of(self, tid: str) -> int:
        engine = self._target()
        return 0 if engine is None else engine.slot_of(tid)

    def thread_ended(self, tid: str) -> None:
        engine = self._target()
        if engine is not None:
            engine.thread_ended(tid)

    def park(self) -> None:
        engine = self._target()
        if engine is not None:
            engine.park()


def _setting_up(engine: Engine | None, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    """A call made while a connection is set up: recorded as any other by the thread's recording (which notes that
    its event is a set-up one), and remembered in the process's set-up log, in or outside a recording."""
    marked = getattr(engine, "setup_marked", None)
    index = engine.events_in(len(engine.sink)) if marked is not None else None  # type: ignore[union-attr]
    try:
        result = fn(*a, **kw) if engine is None else engine.call(name, args, fn, *a, **kw)
    except BaseException as exc:
        with internal:
            PROCESS_LOG.add(name, args, Raised(exc))
        if marked is not None:
            marked.append(index)
        raise
    with internal:
        PROCESS_LOG.add(name, args, result)
    if marked is not None:
        marked.append(index)
    return result
