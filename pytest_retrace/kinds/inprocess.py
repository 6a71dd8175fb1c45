"""What per-call and per-request recordings share: a recording made inside a running process.

The first recording installs the boundaries for the rest of the process's life, with a
:class:`~pytest_retrace.engine.router.Router` that sends each call to the recording of the calling
thread; events gather in memory, and only a recording that is kept is written.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import random
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ..boundaries import Options, entropy, env, install
from ..boundaries.files import classifier_for
from ..engine.patch import Patcher
from ..engine.recorder import Recorder
from ..engine.router import Router
from ..engine.setup import PROCESS_LOG
from ..engine.state import end_call_thread, internal, outside_recordings, resume_call_thread, start_call_thread
from ..enums import StrEnum
from ..errors import RetraceError
from ..format.events import Setup
from ..format.sealing import PublicKey, Sealer, public_key_from
from ..format.storage import Spool, is_url
from ..format.tape import Kind, MemoryTape, TapeWriter, open_temp_beside, publish_beside
from ..redaction import Redaction
from .header import make_header
from .outcome import Outcome, Stream
from .writer import Job, rotate, spool_of, watch_shutdown, writer

log = logging.getLogger("pytest_retrace")
_sampler = random.Random()  # ours: drawing from the program's generator would change what it draws
_wall_clock = time.time  # taken before the clock boundary replaces it: our own reading is no event
os.register_at_fork(after_in_child=_sampler.seed)  # gunicorn's workers forked from one master draw apart


class Keep(StrEnum):
    """Which recordings a service keeps (besides a float: the share of calls or requests recorded)."""

    ALL = "all"
    ERRORS = "errors"  # only those that raised (or, for a request, answered 5xx)

    @classmethod
    def parse(cls, value: Any, who: str) -> Keep | float:
        """``value`` as a keep policy; a ValueError that names ``who`` when it is none."""
        if isinstance(value, float) and 0 <= value <= 1:
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise ValueError(f"{who}: keep={value!r} is not 'all', 'errors' or a share between 0.0 and 1.0")


def keeps(keep: Keep | float, failed: bool) -> bool:
    """Whether a recording that ended this way is written."""
    return keep != Keep.ERRORS or failed


def checked_tags(tags: dict[str, str] | None, who: str) -> dict[str, str] | None:
    """The tags a recorder was given, checked now (at set-up, not at a request): text keys and values."""
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items()):
        raise ValueError(f"{who}: tags must be a dict of text to text, like {{'team': 'billing'}}; got {tags!r}")
    return dict(tags)


def begin(keep: Keep | float) -> bool:
    """Whether to record this one (sampling; not inside another recording, nor in a replay)."""
    if _Installation.off or (isinstance(keep, float) and _sampler.random() >= keep):
        return False
    return outside_recordings()


class _Installation:
    """The router this process installed, once it recorded something."""

    router: Router | None = None
    patcher: Patcher | None = None
    lock = _thread.allocate_lock()  # not threading.Lock: boundaries replace that one
    off = False  # a replay: the app's middleware or decorator, imported again there, records nothing


def replaying_here() -> None:
    """This process replays: services and decorators its program sets up install nothing and record nothing."""
    _Installation.off = True


def install_early() -> None:
    """A service or decorator is set up: install the boundaries now, so that a connection the app opens before
    its first recorded request (at start-up, in an earlier request) is one the recordings can follow; and a
    server stopped right after its last answer still writes that answer's recording (``watch_shutdown``)."""
    _install_once()
    if not _Installation.off:
        watch_shutdown()


def _install_once() -> None:
    """The first recording (or service set up) installs the boundaries, for good, with a Router that sends each
    call to the recording of the calling thread."""
    if _Installation.router is not None or _Installation.off:
        return
    with _Installation.lock:
        if _Installation.router is None:
            router, patcher = Router(), Patcher()
            with internal:
                install(router, patcher, Options())
            _Installation.router, _Installation.patcher = router, patcher


def install_for_session() -> Callable[[], None] | None:
    """Install the boundaries now, before the program's modules are imported (a self-checking pytest session,
    before it collects): what a module binds at import (``from time import time``) is then a boundary's too.
    Returns what undoes them, or None when they were installed already (by a service: they stay)."""
    if _Installation.router is not None or _Installation.off:
        return None
    _install_once()

    def uninstall() -> None:
        with _Installation.lock:
            if _Installation.patcher is not None:
                _Installation.patcher.undo()
            _Installation.router = _Installation.patcher = None

    return uninstall


def declare_code(folders: list[str]) -> None:
    """Files under ``folders`` are code from now on (a service's templates and static files): read live, never
    events. Installs the boundaries if no recording did yet, so the declaration holds for the first one too."""
    if _Installation.off:
        return
    _install_once()
    classifier_for(()).add_code_folders(folders)  # the classifier _install_once's Options() installed


def warm_state() -> dict[str, str] | None:
    """What this warm process has cached that a replay, in a fresh one, would look up again with calls the
    recording lacks: the temporary folder (tempfile finds it once, trying folders with a file it creates: the
    first upload a service spools to disk)."""
    tempfile = sys.modules.get("tempfile")
    folder = getattr(tempfile, "tempdir", None)
    return {"tempdir": folder} if isinstance(folder, str) else None


def rewarm(entry: dict[str, Any]) -> None:
    """Replay: cache again what the recorded process had cached (:func:`warm_state`)."""
    warm = entry.get("warm") or {}
    if "tempdir" in warm:
        import tempfile

        tempfile.tempdir = warm["tempdir"]


class Sealing(NamedTuple):
    """How a service's recordings are made: the redaction policy, the key they are sealed for, and whether any
    is made at all."""

    redaction: Redaction
    public_key: PublicKey | None
    records: bool


def sealing_policy(redaction: Redaction, public_key: str | None, who: str) -> Sealing:
    """With a project key (``public_key``, else ``$RETRACE_PUBLIC_KEY``) secrets are not replaced: they travel
    sealed, and the program needs them on replay. A key that cannot be used turns recording off, with an error
    logged: recording unsealed would write what the project asked to keep sealed, and the service must not fail
    for it."""
    try:
        key = public_key_from(public_key)
    except RetraceError as exc:
        log.error("pytest-retrace: %s records nothing: %s", who, exc)
        return Sealing(redaction, None, False)
    return Sealing(redaction if key is None else redaction.replace(replace_secrets=False), key, True)


class _EnvironmentSecrets:
    """What redacting the environment replaced (whole values, a DSN's user): a service's environment hardly ever
    changes, so it is found once per environment and policy, not per request. One tuple, replaced whole: requests
    on other threads read it at once."""

    last: tuple[Any, Any, dict[Any, Any], tuple[str, ...]] | None = None  # names, values, environment, known


def knowing_the_environment(redaction: Redaction, captured: dict[Any, Any]) -> Redaction:
    """``redaction``, also replacing what it replaced in the environment wherever it shows up: the replay runs with
    the redacted environment, and what the program passes on from it (a connect's ``user``) must key alike."""
    if not redaction.replace_secrets:
        return redaction
    last = _EnvironmentSecrets.last
    # A request's policy differs from its service's in ``known`` only: the patterns are the service's objects.
    if last is None or last[0] is not redaction.names or last[1] is not redaction.values or last[2] != captured:
        current = env.decode(captured)
        redacted, names = env.snapshot(redaction, environ=current)
        known = redaction.replace(known=()).knowing([current[n] for n in names], [redacted[n] for n in names]).known
        last = _EnvironmentSecrets.last = (redaction.names, redaction.values, captured, known)
    return redaction.also_known(last[3])


def destination(directory: str | os.PathLike[str]) -> tuple[Path, Spool | None]:
    """Where recordings go: ``directory``; or for a URL (``s3://bucket/prefix``) a local spool folder, and the
    spool that uploads from it on the writer thread. Raises StorageError for a URL no installed package opens."""
    text = os.fspath(directory)
    if not is_url(text):
        return Path(text), None
    spool = spool_of(text)
    return Path(spool.folder), spool


class InProcessRecording:
    """One recording made inside a running process, on the calling thread: a call, or a request.

    Events gather in memory; only a recording that is kept is written (a keep="errors" service drops
    most of them, and must not pay for files it deletes). Setting one up is on every recorded request's path:
    what only a kept recording needs (its header, the redacted request, its name) is captured as it stands
    (references, copies) and made on the writer thread."""

    __slots__ = ("kind", "entry", "stem", "folder", "redaction", "public_key", "environ", "started", "tape",
                 "engine", "_children", "spool", "tags", "holder", "__weakref__")

    def __init__(self, kind: Kind, entry: dict[str, Any] | Callable[[], dict[str, Any]],
                 stem: str | Callable[[], str], folder: Path, redaction: Redaction,
                 public_key: PublicKey | None = None, carried: Callable[[Redaction], Redaction] | None = None,
                 spool: Spool | None = None, tags: dict[str, str] | None = None) -> None:
        """``entry``: what the header holds of the call or request (redacted), or a function that builds it if
        the recording is kept; ``stem``: the start of the file's name, or a function that makes it then.
        ``public_key``: seal the recording for it. ``spool``: upload it from ``folder`` once written. ``tags``: the
        header's (shared, never changed)."""
        # Nothing here crosses a boundary (no gate needed): copies, our own clock, objects of ours.
        self.kind, self.entry, self.stem, self.folder = kind, entry, stem, folder
        self.redaction = redaction
        self.public_key = public_key
        self.tags = tags
        self.spool = spool
        environ = self.environ = env.capture()
        self.started = _wall_clock()  # formatted only if the recording is kept
        tape = self.tape = MemoryTape()
        engine = self.engine = Recorder(tape)
        # Made on first use: what the request carries (parsing its headers) and what the environment's
        # redaction replaced (found once per environment).
        engine.redact_later(_LaterRedaction(redaction, carried, environ))
        self._children = 0  # threads started so far, kept while suspended
        # What holds the recording open once its own code is done (a request's response body, until the server
        # closes it), and can end it when the process exits first: see RecordingWriter.flush.
        self.holder: weakref.ref[Any] | None = None
        if _Installation.router is None:
            _install_once()
        recordings = writer()
        recordings.opened(self)
        try:
            start_call_thread(engine)
            # Requests recorded at once must not draw from each other's module-level generator.
            engine.generator = entropy.own_generator(engine)
        except BaseException:
            end_call_thread()
            recordings.closed(self)
            raise

    def suspend(self) -> None:
        """The thread goes on with work that is not the recording's (a server between chunks of a streamed
        response): its calls pass through until :meth:`resume`."""
        self._children = end_call_thread()

    def resume(self) -> None:
        resume_call_thread(self.engine, self._children)

    def drop(self, detached: bool = False) -> None:
        """End the recording, not kept: nothing of it is written (a keep="errors" service's every good answer).
        ``detached``: ended from outside its thread (it is suspended), whose state is left alone."""
        if not detached:
            end_call_thread()
        self.engine.open = False  # threads it started that run on are outside it from now on
        writer().closed(self)

    def finish(self, outcome: Outcome, keep_it: bool, max_files: int | None = None,
               max_bytes: int | None = None, summary: Callable[[], Stream] | None = None,
               detached: bool = False) -> None:
        """End the recording: when it is kept, take ``summary()`` as what the call returned (now: the caller may
        change it next) and hand the recording to this process's writer, which writes it and rotates. Never
        raises: logs. ``detached``: as :meth:`drop`'s."""
        if not keep_it:
            self.drop(detached)
            return
        if not detached:
            end_call_thread()
        self.engine.open = False  # threads it started that run on are outside it from now on
        try:
            with internal:
                if summary is not None:
                    outcome = Outcome(outcome.status, outcome.exception, returned=summary())
                # The recording as it ends now: a thread it started may go on adding to the engine's sink.
                self.tape.sink = self.tape.sink[:]
                events = self.engine.events_in(len(self.tape.sink))
                # The connections' set-up goes with it (as it stands now): its replay opens afresh the ones it
                # found open.
                setup = Setup(self.engine.setup_marked, PROCESS_LOG.snapshot())
                writer().submit(Job(lambda: self._write(outcome, events, setup, max_files, max_bytes),
                                    self.folder))
        except Exception as exc:
            log.warning("pytest-retrace: a recording could not be written to %s: %s", self.folder, exc)
        finally:
            writer().closed(self)  # after the hand-over: a stopping process waits for one or the other

    def _write(self, outcome: Outcome, events: int, setup: Setup, max_files: int | None,
               max_bytes: int | None) -> None:
        """On the writer thread: the file, its upload (with those that failed before), then rotation (of what is
        left in a spool)."""
        created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started))
        entry = self.entry() if callable(self.entry) else self.entry
        stem = self.stem() if callable(self.stem) else self.stem
        name = f"{stem}-{created_at.replace(':', '')}-{os.urandom(4).hex()}.retrace"
        write_recording(self.folder / name, self.kind, entry, self.tape, outcome, events, setup, self.redaction,
                        self.environ, self.started, self.public_key, tags=self.tags)
        if self.spool is not None:
            self.spool.upload()
        rotate(self.folder, max_files, max_bytes)


class _LaterRedaction:
    """What a recording keys its calls with, made when a call first asks (most never do): its policy, knowing the
    secrets the request carries and those the environment's redaction replaced."""

    __slots__ = ("redaction", "carried", "environ")

    def __init__(self, redaction: Redaction, carried: Callable[[Redaction], Redaction] | None,
                 environ: dict[Any, Any]) -> None:
        self.redaction, self.carried, self.environ = redaction, carried, environ

    def __call__(self) -> Redaction:
        redaction = self.redaction if self.carried is None else self.carried(self.redaction)
        return knowing_the_environment(redaction, self.environ)


def write_recording(path: Path, kind: Kind, entry: dict[str, Any], tape: MemoryTape, outcome: Outcome, events: int,
                    setup: Setup, redaction: Redaction, environ: dict[Any, Any], started: float,
                    public_key: PublicKey | None = None, replace: bool = False,
                    tags: dict[str, str] | None = None) -> None:
    """Write an in-process recording made into ``tape`` (``events`` of it), begun at wall-clock time ``started``
    in the captured environment ``environ``: under a temporary name until it is whole, then never over another
    file unless told to ``replace`` it. Raises OSError when it cannot be written."""
    created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
    seed = os.environ.get("PYTHONHASHSEED", "")
    header = make_header(kind, entry, [], int(seed) if seed.isdigit() else 0, redaction, [], tags or {},
                         environ=env.decode(environ), created_at=created_at)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # recordings hold production data
    fd, temp = open_temp_beside(path)
    try:
        sealer = Sealer.fresh(public_key) if public_key is not None else None
        writer_ = TapeWriter(temp, header, background=False, tape=tape, sealer=sealer, fd=fd)
        writer_.close(outcome.to_end(events), setup if setup.marked or setup.log else None)
        if writer_.io_failed:
            raise OSError(writer_.error)
        if replace:
            os.replace(temp, path)
        else:  # another process (or a clock that went back) may have taken the name: never over it
            publish_beside(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
