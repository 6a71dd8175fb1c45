"""Threads, as far as the engine needs them today: knowing when a second thread starts.

Until then every event belongs to the main thread and the hot path skips
thread-local state. (Logical thread ids and synchronization events are the
demultiplexer's work, DESIGN §4.)
"""

from __future__ import annotations

import _thread
import threading
from typing import TYPE_CHECKING, Any

from ..engine import threads_started

if TYPE_CHECKING:
    from ..engine import Engine
    from ..patch import Patcher
    from . import Options


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    real_start = _thread.start_new_thread

    def start_new_thread(function: Any, args: Any, kwargs: Any = None) -> int:
        threads_started()
        return real_start(function, args, kwargs) if kwargs is not None else real_start(function, args)

    start_new_thread.__doc__ = real_start.__doc__
    patcher.set(_thread, "start_new_thread", start_new_thread)
    patcher.set(_thread, "start_new", start_new_thread)
    patcher.set(threading, "_start_new_thread", start_new_thread)
