"""The garbage collector's timing: code that runs when the collector decides is outside the recording.

When a cyclic collection runs depends on allocation counts, and pytest-retrace's own code allocates differently
while recording and while replaying; and when an object's last reference goes can depend on references our
machinery holds for a while (a recorded result waiting for the writer). Finalizers (``__del__`` of cyclic
garbage, ``weakref.finalize`` callbacks, at exit too) would then make their calls at other points of the event
stream. They run behind the gate instead, marked as the collector's (``tls.collecting``): their reads are real and
unrecorded in both runs, and on replay a real effect of theirs (a file written, a connection) is refused by the
replay guard and reported as the divergence it is, never performed. (A ``TemporaryDirectory`` left to its
finalizer finds nothing to remove on replay: its folder was never made.)
"""

from __future__ import annotations

import gc
import weakref
from typing import TYPE_CHECKING, Any

from ..engine.state import enter_gate, leave_gate, tls

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options


# The collector calls its callbacks in list order for both phases: ours open the gate before the first and close it
# after the last, so that the program's own callbacks (one timing collections) run behind it in both.


def _starting(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        enter_gate()
        tls.collecting += 1
        callbacks = gc.callbacks
        if callbacks[-1] is not _stopping:  # one appended since: it must run behind the gate at "stop" too
            callbacks.remove(_stopping)
            callbacks.append(_stopping)


def _stopping(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and tls.collecting:
        tls.collecting -= 1
        leave_gate()


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    gc.callbacks.insert(0, _starting)
    gc.callbacks.append(_stopping)

    def undo() -> None:
        gc.callbacks.remove(_starting)
        gc.callbacks.remove(_stopping)

    patcher.on_undo(undo)

    real_call = weakref.finalize.__call__

    def call(self: weakref.finalize, _: Any = None) -> Any:
        enter_gate()
        tls.collecting += 1
        try:
            return real_call(self, _)
        finally:
            tls.collecting -= 1
            leave_gate()

    patcher.set(weakref.finalize, "__call__", call)
