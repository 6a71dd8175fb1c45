"""The engine as boundaries see it: every crossing into the outside world goes through an :class:`Engine`.

A boundary calls ``engine.call(name, args, fn, ...)`` (``args`` a tuple, or None): while recording,
``fn`` runs and the event ``(name, args) -> result`` is appended to the trace (:mod:`.recorder`);
while replaying, ``fn`` never runs and the recorded result is handed back after the call key
(name and normalized args) was checked against the recording (:mod:`.replayer`). In-process
recordings install a :class:`~.router.Router`, which sends each call to the recording of the
calling thread.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..format.codec import Digest
from ..redaction import DEFAULT, Redaction
from .standin import stand_in
from .state import STATE, tls

# Byte payloads up to this size are kept whole in call keys (readable diffs); larger ones become a Digest.
INLINE_BYTES = 1024

T = TypeVar("T", bound=type)


class Engine:
    """What boundaries see; :class:`~.recorder.Recorder`, :class:`~.replayer.Replayer` and
    :class:`~.router.Router` implement it."""

    # In-process recordings (Router): whether a thread of this recording started another, and whether
    # the recording is still under way.
    threaded = False
    open = True
    generator: Any = None  # its own generator behind the module-level random functions (see entropy)
    # What boundaries redact in call keys and recorded results: the recording's policy, read back from
    # its header on replay, so both sides redact alike and keys compare equal.
    redaction: Redaction = DEFAULT
    # Forked processes (process recordings): this process's logical id ("" the recorded program, "1" its first
    # fork, "1.2" that one's second), and what makes the engine a forked child's (set by the recording kind;
    # None: a forked child runs outside the recording).
    process = ""
    on_fork_child: Callable[[str], None] | None = None
    _forks = 0

    def next_process(self) -> str:
        """The logical id of the process this one forks now."""
        self._forks += 1
        return f"{self.process}.{self._forks}" if self.process else str(self._forks)

    def fork(self, real_fork: Callable[[], int]) -> int:
        """``os.fork``: in the parent the child's pid, in the child 0; the child's recording (or replay of its own
        part) goes on in the child (see the recorder and the replayer)."""
        return real_fork()

    def real_pid(self, pid: int) -> int | None:
        """The real process a pid the program holds stands for, when it is one this process forked (on replay
        the program sees the recorded pids); None for any other process."""
        return None

    def signal_child(self, pid: int, sig: int) -> None:
        """Replay: the program signalled ``pid`` here while recording; when it is a process this one forked, the
        replay's own child gets what the recorded one got (see the replayer)."""

    def call(self, name: str, args: Any, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def wrap_noarg(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """A fast replacement for an argument-less source (clocks): the hot path of recording."""
        raise NotImplementedError

    def passes(self) -> bool:
        """True when a call made on this thread now would pass straight through: a boundary whose call key
        costs something to build (a digest of the bytes sent) checks this first."""
        return not STATE.fast and (tls.gate > 0 or tls.tid is None)

    def sync(self, name: str, args: Any, redo: Callable[[Any], Any], fn: Callable[..., Any], *a: Any) -> Any:
        """A synchronization point (lock acquired, thread started or joined …): ``fn(*a)`` runs for real
        when recording and its result is the event's; replay waits for this thread's turn in the recorded
        order, then ``redo(recorded_result)`` performs the operation so that it gives that result."""
        raise NotImplementedError

    def blocking(self, name: str, args: Any, attempt: Callable[[float], bool]) -> None:
        """Replay: run a real blocking operation (``attempt(timeout)``) the recording says completed."""
        raise NotImplementedError

    def after_waiting(self, name: str, attempt: Callable[[float], bool]) -> None:
        """Wait for real (``attempt(timeout)`` until it returns True), then take an event ``name``: the point
        where this thread went on, in the recorded order."""
        while not attempt(1.0):
            pass
        self.call(name, None, nothing)

    def slot_of(self, tid: str) -> int:
        """The demultiplexer's number for logical thread ``tid``, a thread starting now (replay only)."""
        return 0

    def thread_ended(self, tid: str) -> None:
        """Logical thread ``tid`` is done (replay keeps track, for the report of a stuck replay)."""

    def park(self) -> None:
        """Replay: this thread is about to wait for another one outside any recorded call (a join)."""

    def internal_error(self, reason: str) -> bool:
        """Something of ours failed inside a boundary (``reason`` says what): whether the call may pass through
        to the original instead, the recording marked incomplete. A replay never may."""
        return False

    def assume_success(self, names: Iterable[str]) -> None:
        """Calls named ``names`` return nothing the program reads (an adapter's transaction control: commit,
        rollback, close): a crash recording replayed on the fixed code's new path assumes that such a call
        the recording never made succeeds (see :mod:`.keyed`)."""


def nothing() -> None:
    """An external call with nothing to do: its event marks a point in the recorded order."""
    return None


def payload(data: Any) -> Any:
    """The form a payload (bytes or str) takes in a call key: whole when small, else a Digest."""
    if isinstance(data, str):
        return data if len(data) <= INLINE_BYTES else Digest.of(data.encode("utf-8", "surrogatepass"))
    if len(data) <= INLINE_BYTES:
        return bytes(data)
    return Digest.of(bytes(data))


def with_engine(cls: T, engine: Engine, name: str | None = None, module: str | None = None) -> T:
    """The module-level boundary class ``cls`` (a stand-in for a library's class) as installed: a subclass
    that carries ``engine`` as ``_retrace_engine`` and the library class's name and module. Instances made
    while one recording lasts keep talking to its engine, as a plain class would keep its module's code.
    Its methods wear the library's faces (:func:`library_faces`)."""
    namespace: dict[str, Any] = {"_retrace_engine": engine, "__module__": module or cls.__module__,
                                 "__qualname__": name or cls.__qualname__}
    if "__slots__" in cls.__dict__:  # stay without a __dict__, as the library's class is
        namespace["__slots__"] = ()
    namespace.update(library_faces(cls))
    return type(name or cls.__name__, (cls,), namespace)  # type: ignore[return-value]


def wear_library_faces(cls: T) -> T:
    """Give the methods of our subclass ``cls`` of a library's class the faces of the methods they replace
    (:func:`library_faces`); for classes made at run time (an adapter's connection and cursor classes)."""
    for attr, value in library_faces(cls).items():
        setattr(cls, attr, value)
    return cls


def library_faces(cls: type) -> dict[str, Any]:
    """Stand-ins (:mod:`.standin`) for the methods that ``cls`` and its bases of ours define where the library
    class beneath them has a method of that name: they show the library's face, and leave our frames out of
    tracebacks (an ``IntegrityError`` from ``execute`` reads as it does plainly)."""
    library = next(base for base in cls.__mro__ if not base.__module__.startswith(_PACKAGE))
    faces: dict[str, Any] = {}
    for ours in reversed(cls.__mro__[: cls.__mro__.index(library)]):
        for attr, value in ours.__dict__.items():
            if isinstance(value, types.FunctionType) and (shown := _static(library, attr)) is not None:
                faces[attr] = stand_in(value, shown)
    return faces


_PACKAGE = __name__.split(".")[0] + "."


def _static(cls: type, name: str) -> Any:
    """``cls.name`` as its class dict holds it (None when no class of its MRO has it)."""
    for base in cls.__mro__:
        if name in base.__dict__:
            return base.__dict__[name]
    return None
