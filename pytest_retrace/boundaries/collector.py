"""The garbage collector's timing: code that runs when the collector decides is outside the recording.

When a cyclic collection runs depends on allocation counts, and pytest-retrace's own
code allocates differently while recording and while replaying; finalizers
(``__del__`` of cyclic garbage, ``weakref.finalize`` callbacks, at exit too) would
then make their calls at other points of the event stream. They run behind the gate
instead: their calls are real and unrecorded in both runs, like pytest-retrace's own.
"""

from __future__ import annotations

import gc
import weakref
from typing import TYPE_CHECKING, Any

from ..engine.state import enter_gate, leave_gate

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options


def _collecting(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        enter_gate()
    else:
        leave_gate()


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    gc.callbacks.append(_collecting)
    patcher.on_undo(lambda: gc.callbacks.remove(_collecting))

    real_call = weakref.finalize.__call__

    def call(self: weakref.finalize, _: Any = None) -> Any:
        enter_gate()
        try:
            return real_call(self, _)
        finally:
            leave_gate()

    patcher.set(weakref.finalize, "__call__", call)
