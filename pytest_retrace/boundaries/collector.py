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
from collections.abc import MutableSequence
from typing import TYPE_CHECKING, Any

from ..engine.state import enter_gate, leave_gate, tls

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options


# The collector calls its callbacks in list order for both phases: ours open the gate before the first and close it
# after the last, so that the program's own callbacks (one timing collections) run behind it in both. The program
# sees and changes ``gc.callbacks`` through :class:`_Callbacks`, which keeps ours at the ends (hypothesis inserts
# its own first).
_REAL = gc.callbacks  # the list the collector calls


def _starting(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        enter_gate()
        tls.collecting += 1


def _stopping(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and tls.collecting:
        tls.collecting -= 1
        leave_gate()


def outermost() -> None:
    """Put our callbacks back at the ends of the list (first and last), should anything have come before or after
    them (a change made to the collector's list before ours were installed, or bypassing ``gc.callbacks``)."""
    if _starting in _REAL and (_REAL[0] is not _starting or _REAL[-1] is not _stopping):
        _REAL[:] = _framed(_theirs())


def _theirs() -> list[Any]:
    return [c for c in _REAL if c is not _starting and c is not _stopping]


def _framed(theirs: list[Any]) -> list[Any]:
    return [_starting] * _REAL.count(_starting) + theirs + [_stopping] * _REAL.count(_stopping)


class _Callbacks(MutableSequence[Any]):
    """``gc.callbacks`` as the program sees it: the collector's list without ours; what it changes there, the
    collector's list gets, between ours."""

    def __len__(self) -> int:
        return len(_theirs())

    def __getitem__(self, index: Any) -> Any:
        return _theirs()[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        theirs = _theirs()
        theirs[index] = value
        _REAL[:] = _framed(theirs)

    def __delitem__(self, index: Any) -> None:
        theirs = _theirs()
        del theirs[index]
        _REAL[:] = _framed(theirs)

    def insert(self, index: int, value: Any) -> None:
        theirs = _theirs()
        theirs.insert(index, value)
        _REAL[:] = _framed(theirs)

    def __eq__(self, other: object) -> bool:
        return _theirs() == (list(other) if isinstance(other, (list, _Callbacks)) else other)

    def __repr__(self) -> str:
        return repr(_theirs())


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    _REAL.insert(0, _starting)
    _REAL.append(_stopping)

    def undo() -> None:
        _REAL.remove(_starting)
        _REAL.remove(_stopping)

    patcher.on_undo(undo)
    if gc.callbacks is _REAL:
        patcher.set(gc, "callbacks", _Callbacks())

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
