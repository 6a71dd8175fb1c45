"""The parent side of process recordings and replays.

Starts the program in a fresh interpreter (the hash seed must be fixed before an
interpreter starts), passes its stdout and stderr through while fingerprinting
them, and writes END (record) or concludes a verdict (replay).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from ..errors import RecordingError, RetraceError
from ..format.sealing import PublicKey, Sealer, keys_for_child
from ..format.tape import (
    HEADER_SIZE,
    Kind,
    Recording,
    TapeStatus,
    append_end,
    forked_beside,
    publish,
    publish_beside,
    read_recording,
    temp_beside,
)
from ..hooks import manager
from ..kinds.entry import EntryGone, Location, OutsideProject, Project, check_entry, locate
from ..kinds.outcome import OUTPUT_HEAD, Stream
from ..redaction import DEFAULT, Redaction
from .debugging import DEBUG_ENV, QUIT_EXIT, RESTART_EXIT, DebugSettings
from .progress import ProgressLine, on_terminal, stderr_line
from .protocol import CHILD_CODE, CHILD_ENV, LAUNCHER_ENV, ChildResult, RecordConfig, ReplayConfig, encode_config
from .verdict import Verdict, conclude, unreadable


class Moved(NamedTuple):
    """A replay in another checkout than the recording's: the replaying project's root, as the program may spell
    it, and the recorded one. Its output compares as if it named the recorded root (a traceback names the files
    of the checkout it runs in); the user sees it as it is."""

    here: tuple[bytes, ...]
    there: bytes

    @classmethod
    def between(cls, header: dict[str, Any], location: Location) -> Moved | None:
        recorded = header.get("project_root")
        if not isinstance(recorded, str) or location.keys_root is None or location.base == recorded:
            return None
        spellings = {os.path.abspath(location.base), os.path.realpath(location.base)} - {os.path.abspath(recorded)}
        return cls(tuple(sorted((os.fsencode(s) for s in spellings), key=len, reverse=True)), os.fsencode(recorded))

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        """``data`` rewritten, and its tail held back: a start of the root that the next chunk may complete."""
        for here in self.here:
            data = data.replace(here, self.there)
        for size in range(min(len(data), max(map(len, self.here)) - 1), 0, -1):
            if any(here.startswith(data[-size:]) for here in self.here):
                return data[:-size], data[-size:]
        return data, b""


class Output:
    """One output stream of the program as it passed by: size, digest, its head (or all of it). ``moved``: a
    replay in another checkout, whose output is compared as if it ran in the recorded one."""

    def __init__(self, keep_all: bool = False, moved: Moved | None = None) -> None:
        self.size = 0
        self.head = bytearray()
        self._limit = None if keep_all else OUTPUT_HEAD
        self._hash = hashlib.blake2b(digest_size=16)
        self._moved = moved
        self._held = b""

    def feed(self, chunk: bytes) -> None:
        if self._moved is not None:
            chunk, self._held = self._moved.split(self._held + chunk)
        self._add(chunk)

    def _add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._hash.update(chunk)
        if self._limit is None:
            self.head += chunk
        elif len(self.head) < self._limit:
            self.head += chunk[: self._limit - len(self.head)]

    def summary(self) -> Stream:
        held, self._held = self._held, b""
        self._add(held)
        return Stream(self._hash.hexdigest(), self.size, bytes(self.head[:OUTPUT_HEAD]))


def _pump(source: BinaryIO, sink: BinaryIO | None, output: Output) -> None:
    fd = source.fileno()
    while chunk := os.read(fd, 65536):
        sink = _pass_on(chunk, sink, output)


def _sinks(passthrough: bool, line: ProgressLine | None) -> tuple[Any, Any]:
    """Where the program's stdout and stderr pass on to: ours with ``passthrough`` (else nowhere), beneath the
    progress ``line`` where that is on the same terminal."""
    if not passthrough:
        return None, None
    sinks = (sys.stdout.buffer, sys.stderr.buffer)
    if line is None:
        return sinks
    out, err = (line.beneath(sink) if on_terminal(sink) else sink for sink in sinks)
    return out, err


def _pass_on(chunk: bytes, sink: BinaryIO | None, output: Output) -> BinaryIO | None:
    """What the program printed, to its digest and on to ``sink``; the sink still open afterwards, or None."""
    output.feed(chunk)
    if sink is not None:
        try:
            sink.write(chunk)
            sink.flush()
        except (BrokenPipeError, ValueError):
            return None
    return sink


def hash_seed_from_environment() -> int:
    """The seed the user asked for with PYTHONHASHSEED, or a fresh one (never 'random' hashing)."""
    value = os.environ.get("PYTHONHASHSEED", "random")
    if value.isdigit() and int(value) <= 4294967295:
        return int(value)
    return random.SystemRandom().randrange(1, 4294967296)


MACHINE_ID = "/etc/machine-id"


def hash_seed_for(entry: dict[str, str], cwd: str) -> int:
    """The hash seed to record a program with: the user's (``PYTHONHASHSEED``; ``random``: a fresh one for this
    recording), else the project's on this machine. One seed for all of a project's recordings lets replays
    share one started interpreter (``zygote.py``): a seed can only be set when an interpreter starts.

    The project's seed is derived from its root (:func:`~pytest_retrace.kinds.entry.code_paths`), keyed with
    this machine's id where it has one: stable across runs, different between projects and machines, not
    guessable from outside the machine (hash randomisation guards servers against inputs built to collide)."""
    from ..kinds.entry import code_paths  # here: the import lines above are another change's to make

    if "PYTHONHASHSEED" in os.environ:
        return hash_seed_from_environment()
    try:
        with open(MACHINE_ID, "rb") as f:
            machine_key = f.read(64).strip()
    except OSError:
        machine_key = b""
    root = os.path.realpath(code_paths(entry, cwd).project_root)
    digest = hashlib.blake2b(os.fsencode(root), key=machine_key, person=b"retrace-seed", digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % 4294967295  # never 0: that would turn randomisation off


class ChildRun(NamedTuple):
    returncode: int
    stdout: Output
    stderr: Output
    result: ChildResult | None
    processes: dict[str, ChildResult | None] = {}  # noqa: RUF012 - what forked processes reported, by logical id


def run_child(config: RecordConfig | ReplayConfig, hash_seed: int, passthrough: bool = True,
              keep_output: bool = False, startup: dict[str, str | None] | None = None,
              prefix: list[str] | None = None, moved: Moved | None = None,
              line: ProgressLine | None = None, debug: DebugSettings | None = None) -> ChildRun:
    """Run the child with ``config``; its output passes through to ours unless told not to (beneath the progress
    ``line``), and is kept whole in the result when ``keep_output``. ``startup``: variables the interpreter starts with
    set (None: unset) over ours (a replay's: the recorded locale, which decides encodings at start).
    ``prefix``: the command the interpreter runs under (a sandbox). ``moved``: a replay in another checkout
    (:class:`Moved`). ``debug``: a debugging replay, given the user's terminal (its stdin is not the program's)."""
    result_path = _result_path()
    env = child_environ(hash_seed, startup)
    env[CHILD_ENV] = encode_config(config.replace(result=result_path, plugins=manager.discover()))
    stdout, stderr = Output(keep_output, moved), Output(keep_output, moved)
    if debug is not None:
        env[DEBUG_ENV] = debug.to_env()
    proc = subprocess.Popen([*(prefix or []), sys.executable, "-c", CHILD_CODE], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL if debug is not None else None,
                            pass_fds=debug.descriptors if debug is not None else ())
    pumps = _pumps(proc.stdout, proc.stderr, stdout, stderr, _sinks(passthrough, line))  # type: ignore[arg-type]
    with _signals_go_to(proc, forward=isinstance(config, RecordConfig)):
        returncode = proc.wait()
    for t in pumps:
        t.join()
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return ChildRun(returncode, stdout, stderr, ChildResult.read(result_path), _forked_results(result_path))


def child_environ(hash_seed: int, startup: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment a child starts with, but its configuration: ours, with the ``startup`` variables
    (:func:`run_child`), the hash seed, the launcher's pid and the keys handed over."""
    env = dict(os.environ)
    for name, value in (startup or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env["PYTHONHASHSEED"] = str(hash_seed)
    env[LAUNCHER_ENV] = str(os.getpid())
    keys_for_child(env)
    return env


def _drain(out: BinaryIO, err: BinaryIO, stdout: Output, stderr: Output, sinks: tuple[Any, Any]) -> None:
    """Take a child's stdout and stderr as they pass by (and on to ``sinks``, :func:`_sinks`) until both end, in
    this thread: starting two threads per replay costs more than a small replay where the CPU is busy."""
    import selectors

    with selectors.DefaultSelector() as selector:
        for source, sink, output in ((out, sinks[0], stdout), (err, sinks[1], stderr)):
            selector.register(source, selectors.EVENT_READ, [sink, output])
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                key.data[0] = _pass_on(chunk, *key.data)


def _pumps(out: BinaryIO, err: BinaryIO, stdout: Output, stderr: Output,
           sinks: tuple[Any, Any]) -> list[threading.Thread]:
    """Threads, started, that take a child's stdout and stderr as they pass by (and on to ``sinks``,
    :func:`_sinks`)."""
    pumps = [threading.Thread(target=_pump, args=(source, sink, output), daemon=True)
             for source, sink, output in ((out, sinks[0], stdout), (err, sinks[1], stderr))]
    for t in pumps:
        t.start()
    return pumps


def _run_in_zygote(config: ReplayConfig, hash_seed: int, startup: dict[str, str | None], prefix: list[str] | None,
                   passthrough: bool, keep_output: bool, moved: Moved | None,
                   line: ProgressLine | None) -> ChildRun | None:
    """Replay a process recording in a fork of the zygote started as a cold replay would start
    (``zygote.py``); None when there is none to use, and the replay must start cold."""
    from . import zygote  # here: a single replay from the command line starts no zygote

    try:
        cwd = os.getcwd()  # where a cold child would start
    except OSError:  # the folder is gone: a cold child starts in it all the same
        return None
    env = child_environ(hash_seed, startup)
    server = zygote.zygote_for(env, prefix or [], manager.discover())
    if server is None:
        return None
    result_path = _result_path()
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    stdout, stderr = Output(keep_output, moved), Output(keep_output, moved)
    with open(out_r, "rb", buffering=0) as out, open(err_r, "rb", buffering=0) as err:
        try:
            sent = server.send(config.replace(result=result_path, cwd=cwd), out_w, err_w)
        finally:
            os.close(out_w)  # the fork holds them now: its end is their end
            os.close(err_w)
        with _signals_go_to(None, forward=False):
            if sent:  # to the pipes' end: the fork (and its forks) ended
                _drain(out, err, stdout, stderr, _sinks(passthrough, line))
            returncode = server.ran() if sent else None
    result, processes = ChildResult.read(result_path), _forked_results(result_path)
    if returncode is None:  # the zygote died under the replay: what it left says nothing
        zygote.forget(env, prefix or [])
        return None
    return ChildRun(returncode, stdout, stderr, result, processes)


def _forked_results(result_path: str) -> dict[str, ChildResult | None]:
    """What the processes a replay forked reported (each beside the replay's own result), by logical id."""
    return {label: ChildResult.read(path) for label, path in forked_beside(result_path).items()}


@contextlib.contextmanager
def _signals_go_to(proc: subprocess.Popen[bytes] | None, forward: bool) -> Iterator[None]:
    """While the child runs, Ctrl-C reaches it from the terminal and the launcher waits for it to decide. With
    ``forward`` (``retrace record``, which stands for the program it records) a SIGTERM or SIGHUP sent to the
    launcher is passed on to the program, which decides as when run plainly. Only the main thread can set
    handlers; elsewhere signals keep theirs (the child still dies with the launcher)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def pass_on(signum: int, frame: Any) -> None:
        try:
            proc.send_signal(signum)  # type: ignore[union-attr]  # forward: there is a process
        except OSError:
            pass

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    for signum in (signal.SIGTERM, signal.SIGHUP) if forward else ():
        previous[signum] = signal.signal(signum, pass_on)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_forked(config: ReplayConfig, header: dict[str, Any], passthrough: bool,
                keep_output: bool, moved: Moved | None, line: ProgressLine | None) -> ChildRun | None:
    """Replay a request or call recording in a fork of its group's fork server (see ``forkserver.py``);
    None when there is none to use, and the replay must start cold."""
    from . import forkserver  # here: a single replay from the command line never forks

    server = forkserver.server_for(config.recording, header, config.project)
    if server is None:
        return None
    result_path = _result_path()
    ran = server.run(config.replace(result=result_path))
    if ran is None:
        forkserver.forget(header, config.project, config.recording)
        return None
    returncode, out, err = ran
    outputs = (Output(keep_output, moved), Output(keep_output, moved))
    for output, data, sink in zip(outputs, (out, err), _sinks(passthrough, line), strict=True):
        if data:
            _pass_on(data, sink, output)
    return ChildRun(returncode, outputs[0], outputs[1], ChildResult.read(result_path))


def _result_path() -> str:
    """A fresh path for the child to write its result to, in a folder of this process's own (0700): nothing to
    create per replay, and the results of the processes a replay forked are found beside it by listing a small
    folder rather than the machine's temporary one."""
    if _Results.folder is None or _Results.pid != os.getpid():  # a forked launcher gets a folder of its own
        _Results.folder, _Results.pid = tempfile.mkdtemp(prefix="retrace-results-"), os.getpid()
        import atexit

        atexit.register(_remove_results, _Results.folder, _Results.pid)
    _Results.count += 1
    return os.path.join(_Results.folder, f"{_Results.count}.json")


class _Results:
    folder: str | None = None
    pid = 0
    count = 0


def _remove_results(folder: str, pid: int) -> None:
    if os.getpid() == pid:  # not in a fork that inherited the handler: the folder is its parent's
        shutil.rmtree(folder, ignore_errors=True)


def remove_results() -> None:
    """Remove this process's folder of results now: it is about to end the way its program did, by a signal,
    with no exit handler run (a replay leaves nothing behind)."""
    if _Results.folder is not None:
        _remove_results(_Results.folder, _Results.pid)


def check_kind(rec: Recording) -> None:
    """The recording must be of a kind this pytest-retrace replays."""
    try:
        Kind.of(rec.header)
    except RecordingError as exc:
        raise RecordingError(f"{rec.path}: {exc}") from None


def check_script(entry: dict[str, str], cwd: str) -> None:
    """Before recording: the program's script must be there (a recording holds what it read, not the program)."""
    script = entry.get("script")
    path = os.path.join(cwd, script) if script is not None else ""
    if script is not None and not os.path.isfile(path):
        found = "is a folder, not a script" if os.path.isdir(path) else "does not exist"
        raise RetraceError(f"no program {script!r} to record: {os.path.normpath(path)} {found}; check its path (from "
                           f"{cwd}), or record a module with -m MODULE")


def check_program(header: dict[str, Any], project: Project, recording: str | None = None) -> None:
    """Before a replay: what the recording would run must be ``project``'s own code (:class:`OutsideProject`),
    and it must be there (a recording holds what the program read, not the program itself). ``recording``: the
    file's path."""
    location = check_entry(header, project, recording)
    script = (header.get("entry") or {}).get("script")
    if location.script is not None and not os.path.isfile(location.script):
        recorded = header.get("project_root")
        where = f" (recorded in the project {recorded})" if recorded else ""
        raise EntryGone(
            f"no program {script!r} in {location.base}{where}: replay runs the recorded program's code as this "
            f"checkout has it, and it has no {location.script}; replay from a checkout of the project that has the "
            f"script, or pass {project.allow_option} to run it where it was recorded (if you trust this recording)"
        )


def record(
    output: str,
    entry: dict[str, str],
    argv: list[str],
    live_paths: list[str] | None = None,
    tags: dict[str, str] | None = None,
    redaction: Redaction | None = None,
    public_key: PublicKey | None = None,
    force: bool = False,
) -> int:
    """Record one run of a program into ``output``; returns the program's exit status (negative: the signal
    that killed it). The recording is written under a temporary name (0600) and put in place at the end;
    an existing ``output`` is refused unless ``force``. ``public_key``: seal the recording for it.

    A disk that refuses the recording never stops or changes the program: the recording is abandoned with
    a one-line warning, and the program's exit status is returned all the same."""
    check_script(entry, os.getcwd())
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise RetraceError(f"cannot write the recording {output}: the folder {folder} does not exist; create it first")
    if os.path.lexists(output) and not force:
        raise RetraceError(f"{output} already exists; choose another name, or pass --force to replace it")
    try:
        temp = temp_beside(output)
    except OSError as exc:
        _warn(output, f"cannot write in {folder}: {exc.strerror or exc}; the program runs unrecorded")
        temp = ""
    sealer = None
    if public_key is not None:  # secrets travel sealed: the program needs them on replay
        sealer = Sealer.fresh(public_key)
        redaction = (redaction or DEFAULT).replace(replace_secrets=False)
    seed = hash_seed_for(entry, os.getcwd())
    config = RecordConfig(temp, entry, argv, seed, live_paths or [], tags or {}, redaction, parent=os.getppid(),
                          sealer=sealer.to_json() if sealer else None)
    run = run_child(config, seed)
    if temp:
        _finish_recording(run, temp, output, sealer, force)
    return run.returncode  # negative: killed by that signal


def _finish_recording(run: ChildRun, temp: str, output: str, sealer: Sealer | None, force: bool) -> None:
    """Add END to what the child wrote and put it in place; or abandon it, when the disk refused it."""
    result = run.result
    if result is not None and result.abandoned:
        _forked_recordings(temp)
        _discard(temp)
        _warn(output, f"{result.recording_error}; the recording is abandoned")
        return
    error = result.recording_error if result is not None else None
    end = None
    if result is not None and result.outcome is not None:
        outcome = result.outcome.replace(stdout=run.stdout.summary(), stderr=run.stderr.summary())
        end = outcome.to_end(result.events, error)
    processes = _forked_recordings(temp)
    if end is not None or processes:
        try:
            append_end(temp, end, sealer, processes)
        except OSError as exc:  # a full disk: the program's run is not ours to fail
            _discard(temp)
            _warn(output, f"writing its end failed: {exc.strerror or exc}; the recording is abandoned")
            return
    # No result: the program was killed before it could report; what it recorded stays, truncated.
    if result is None and _size(temp) < HEADER_SIZE:
        _discard(temp)
        _warn(output, "the program ended before anything was recorded; there is no recording")
        return
    try:
        if force:
            publish(temp, output, force=True)
            placed = output
        else:
            placed = publish_beside(temp, output)
    except OSError as exc:
        _warn(output, f"cannot put the recording in place: {exc.strerror or exc}; it is kept as {temp}")
        return
    if placed != output:
        _warn(output, f"another recorder wrote {output} meanwhile; this recording is kept as {placed}")
    if error:
        _warn(placed, f"the recording is incomplete and will not replay: {error}")


def _forked_recordings(temp: str) -> dict[str, bytes]:
    """The recordings the processes the program forked wrote beside its own, by logical id, in fork order
    (taken away: they go inside the recording)."""
    found = {}
    for label, path in forked_beside(temp).items():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        _discard(path)
        if len(data) >= HEADER_SIZE:  # else it was killed before it recorded anything
            found[label] = data
    return found


def _warn(output: str, problem: str) -> None:
    sys.stderr.write(f"retrace record: warning: {output}: {problem}\n")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def sandbox_prefix() -> list[str]:
    """How to run a replay in a network namespace of its own, with no interface at all (``--retrace-sandbox``):
    ``unshare -n`` as root, else in a user namespace where unprivileged ones are allowed. Raises RetraceError
    where neither is possible."""
    if not _SANDBOX:
        tried = []
        for prefix in (["unshare", "-n", "--"], ["unshare", "-rn", "--"]) if shutil.which("unshare") else ():
            if prefix[1] == "-n" and os.geteuid() != 0:
                continue
            probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
            if probe.returncode == 0:
                _SANDBOX.append(prefix)
                break
            tried.append(f"{' '.join(prefix[:2])}: {probe.stderr.strip() or probe.returncode}")
        else:
            raise RetraceError("the replay sandbox needs network namespaces, which this machine does not give ("
                               + ("; ".join(tried) or "no unshare command") + "); replay without the sandbox, or "
                               "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
    return _SANDBOX[0]


_SANDBOX: list[list[str]] = []


def replay(path: str, project: Project, stuck_timeout: float = 10.0, passthrough: bool = True,
           keep_output: bool = False, recording: Recording | None = None, forked: bool = False,
           sandbox: bool = False, zygote: bool = True, progress: ProgressLine | None = None) -> Verdict:
    """Replay a recording in a fresh interpreter and return its verdict (with what the replay printed, whole
    when ``keep_output``). It runs only ``project``'s code: a recording that points elsewhere raises
    :class:`OutsideProject` before anything runs (unless the project allows it).

    ``recording`` is the file already read and checked (the plugin reads and checks it in setup). With ``forked``
    (the plugin, which replays many), a request or call recording is replayed in a fork of a server
    that imported its app once (``forkserver.py``), and a process recording in a fork of a zygote started as its
    cold replay would start (``zygote.py``), unless ``zygote`` is False. With ``sandbox`` the replay runs in a
    network namespace with no interface (:func:`sandbox_prefix`): a process recording's zygote too, a request or
    call recording cold. A replay that runs long shows its progress on ``progress`` (``runner/progress.py``); by
    default on our stderr when the program's output passes through and stderr is a terminal.
    Raises :class:`RecordingError` when ``path`` is no readable recording at all.
    """
    rec = recording if recording is not None else checked_recording(path, project)
    unusable = _unusable(path, rec)
    if unusable is not None:
        return unusable
    prefix = sandbox_prefix() if sandbox else None
    moved = Moved.between(rec.header, locate(rec.header, project, path))
    from ..boundaries import machine  # only here: recording does not import the boundaries in the launcher

    startup = machine.startup_environ(rec.header)
    line = progress if progress is not None or not passthrough else stderr_line()
    with line.watching(path, rec.count) if line is not None else contextlib.nullcontext() as counted:
        config = ReplayConfig(os.path.abspath(path), project, stuck_timeout, progress=counted)
        run = None
        if forked and Kind.of(rec.header) == Kind.PROCESS:
            if zygote:
                run = _run_in_zygote(config, rec.header["hash_seed"], startup, prefix, passthrough, keep_output, moved,
                                     line)
        elif forked and not sandbox:
            run = _run_forked(config, rec.header, passthrough, keep_output, moved, line)
        if run is None:
            run = run_child(config, rec.header["hash_seed"], passthrough, keep_output, startup=startup, prefix=prefix,
                            moved=moved, line=line)
    verdict = conclude(rec, run.returncode, run.stdout.summary(), run.stderr.summary(), run.result, run.processes)
    verdict.stdout, verdict.stderr = bytes(run.stdout.head), bytes(run.stderr.head)
    return verdict


def checked_recording(path: str, project: Project) -> Recording:
    """The recording at ``path``, read without its events (the child reads them), of a kind this pytest-retrace
    replays and running only ``project``'s code."""
    rec = read_recording(path, events=False)
    check_kind(rec)
    try:
        check_program(rec.header, project, path)
    except OutsideProject as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return rec


def _unusable(path: str, rec: Recording) -> Verdict | None:
    """The verdict on a recording that cannot replay at all; None when it can."""
    if rec.status == TapeStatus.CORRUPT:
        return unreadable(path, f"{path}: corrupt recording: {rec.problem}", rec.offset)
    if rec.end is not None and rec.end.get("recording_error"):
        return unreadable(path, f"{path}: the recording is incomplete: {rec.end['recording_error']}")
    return None


class DebugQuit(Exception):
    """The user quit the debugger of a debugging replay."""


DEBUG_STUCK_TIMEOUT = 7 * 86400.0  # a thread waits while the user reads a prompt: that is no stuck replay


def debug_replay(path: str, project: Project, settings: DebugSettings, recording: Recording | None = None,
                 passthrough: bool = True) -> Verdict:
    """Replay a recording in a foreground child under a debugger (``debugging.py``) that talks on the terminal
    ``settings.terminal`` names; its verdict, as :func:`replay` gives it. Raises :class:`DebugQuit` when the
    user quit the debugger."""
    rec = recording if recording is not None else checked_recording(path, project)
    unusable = _unusable(path, rec)
    if unusable is not None:
        return unusable
    from ..boundaries import machine

    config = ReplayConfig(os.path.abspath(path), project, DEBUG_STUCK_TIMEOUT)
    while True:
        restart = os.pipe() if settings.travel else None
        if restart is not None:
            settings = settings.replace(restart=restart[1])
        try:
            run = run_child(config, rec.header["hash_seed"], passthrough, startup=machine.startup_environ(rec.header),
                            moved=Moved.between(rec.header, locate(rec.header, project, path)), debug=settings)
        finally:
            if restart is not None:
                os.close(restart[1])
        target = os.read(restart[0], 32) if restart is not None else b""
        if restart is not None:
            os.close(restart[0])
        if run.returncode == QUIT_EXIT:
            raise DebugQuit(path)
        if run.returncode != RESTART_EXIT or not target.isdigit():
            break
        settings = settings.replace(at=int(target), quiet=True, restart=None)  # back, in a multi-threaded replay
    return conclude(rec, run.returncode, run.stdout.summary(), run.stderr.summary(), run.result, run.processes)
