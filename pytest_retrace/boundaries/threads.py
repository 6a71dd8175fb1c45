"""Threads, as far as the engine needs them today: which threads belong to the recording.

A thread started while the engine runs gets the next logical id in its parent's flow
and is recorded; threads that were there before are not. Until a second thread starts,
every event belongs to the main thread and the hot path skips thread-local state.
(Ids of the ``parent.n`` form and synchronization events are DESIGN §4's work.)
"""

from __future__ import annotations

import _thread
import threading
from typing import TYPE_CHECKING, Any

from ..engine import threads_started, tls

if TYPE_CHECKING:
    from ..engine import Engine
    from ..patch import Patcher
    from . import Options


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    real_start = _thread.start_new_thread

    def start_new_thread(function: Any, args: Any, kwargs: Any = None) -> int:
        threads_started()
        tid = engine.next_tid() if tls.tid >= 0 else -1  # a thread outside the recording starts outside too

        def run(*a: Any, **kw: Any) -> Any:
            tls.tid = tid
            return function(*a, **kw)

        return real_start(run, args, kwargs) if kwargs is not None else real_start(run, args)

    start_new_thread.__doc__ = real_start.__doc__
    patcher.set(_thread, "start_new_thread", start_new_thread)
    patcher.set(_thread, "start_new", start_new_thread)
    patcher.set(threading, "_start_new_thread", start_new_thread)
