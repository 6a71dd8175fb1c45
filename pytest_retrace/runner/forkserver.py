"""Fast replay of request and call recordings: import the app once, fork a clean child per recording.

A cold replay starts an interpreter and imports the app (Flask, the service's modules) for every
recording, which costs far more than replaying one request. Recordings of one service share what
that start-up depends on (interpreter, hash seed, working folder, environment, entry point), so
for each such group the launcher starts one *fork server*: a fresh interpreter, prepared exactly
as a cold replay prepares itself up to the point where it would call the app (environment
restored, folder changed, entry point imported). For each recording it forks; the child replays
that recording (the child entry's ``replay_here``, handed to :func:`serve`) with its stdout/stderr sent
to files of its own, writes its result, and exits. The server is never touched by a replay, so
every child starts from the same state a cold replay would reach.

When the server cannot be used (no ``os.fork``, the app starts threads while it is imported, the
entry point does not import, the server died), the launcher falls back to a cold replay, which then
reports whatever went wrong in the usual way.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from typing import IO, Any, NoReturn

from ..engine.state import internal
from ..format.sealing import keys_for_child
from ..format.tape import Kind, read_recording
from ..hooks import manager
from ..kinds.entry import OutsideProject, Project, locate
from .protocol import CHILD_CODE, CHILD_ENV, ForkServerConfig, ReplayConfig, decode_config, encode_config

MAX_SERVERS = 4  # groups of recordings served at once by one pytest process; the oldest server goes first

_exit = os._exit  # taken before the process boundary replaces it: our own exits are not the program's


def server_key(header: dict[str, Any], project: Project, recording: str) -> str | None:
    """What the servers of a recording's group have in common (its code's folders as this checkout has them);
    None for recordings no server replays."""
    if not Kind.of(header).in_process or not hasattr(os, "fork"):
        return None
    entry = header["entry"]
    try:
        location = locate(header, project, recording)
    except OutsideProject:
        return None  # refused: the cold replay says why
    shared = [header["hash_seed"], location.cwd, header.get("executable"), entry.get("app") or entry.get("function"),
              location.root, location.keys_root, sorted(header["environ"].items())]
    return hashlib.blake2b(json.dumps(shared).encode(), digest_size=16).hexdigest()


class ForkServer:
    """The launcher's handle on one fork server process."""

    def __init__(self, recording: str, hash_seed: int, project: Project) -> None:
        self.folder = tempfile.mkdtemp(prefix="retrace-forkserver-")
        answers, self._answer_fd = os.pipe()
        self.answers = os.fdopen(answers, "r")
        config = ForkServerConfig(os.path.abspath(recording), self._answer_fd, project, manager.discover())
        env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
        env[CHILD_ENV] = encode_config(config)
        keys_for_child(env)
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD_CODE], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(self._answer_fd,), text=True)
        os.close(self._answer_fd)
        hello = self._answer()
        self.ready = bool(hello and hello.get("ready"))
        self.why_not = (hello or {}).get("why", "the fork server ended before it was ready")
        self.runs = 0

    def _answer(self) -> dict[str, Any] | None:
        line = self.answers.readline()
        return json.loads(line) if line else None

    def run(self, config: ReplayConfig) -> tuple[int, bytes, bytes] | None:
        """Replay one recording (``config`` as a replaying child takes it) in a fresh fork: the exit status and
        the child's stdout and stderr, or None when the server is gone."""
        self.runs += 1
        out, err = (os.path.join(self.folder, f"{self.runs}.{name}") for name in ("stdout", "stderr"))
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(encode_config(config.replace(stdout=out, stderr=err)) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        answer = self._answer()
        if answer is None:
            return None
        outputs = []
        for path in (out, err):
            try:
                with open(path, "rb") as f:
                    outputs.append(f.read())
                os.unlink(path)
            except FileNotFoundError:
                outputs.append(b"")
        return int(answer["returncode"]), outputs[0], outputs[1]

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.answers.close()
        try:
            os.rmdir(self.folder)
        except OSError:
            pass


_servers: OrderedDict[str, ForkServer | None] = OrderedDict()


def server_for(path: str, header: dict[str, Any], project: Project) -> ForkServer | None:
    """The running fork server for this recording's group (started now if need be) that runs ``project``'s code,
    or None: replay cold."""
    key = server_key(header, project, path)
    if key is None or os.environ.get("RETRACE_NO_FORKSERVER"):
        return None
    if key in _servers:
        _servers.move_to_end(key)
        return _servers[key]
    while len(_servers) >= MAX_SERVERS:
        _, oldest = _servers.popitem(last=False)
        if oldest is not None:
            oldest.close()
    server = ForkServer(path, header["hash_seed"], project)
    if not server.ready:
        server.close()
    # A server that could not start is remembered as None: the group replays cold, without trying again.
    _servers[key] = server if server.ready else None
    return _servers[key]


def forget(header: dict[str, Any], project: Project, recording: str) -> None:
    """The group's server failed: stop it, and replay the group cold from now on."""
    key = server_key(header, project, recording)
    server = _servers.get(key) if key is not None else None
    if key is not None and server is not None:
        server.close()
        _servers[key] = None


@atexit.register
def close_all() -> None:
    while _servers:
        _, server = _servers.popitem()
        if server is not None:
            server.close()


# The server side, in the fork server's interpreter.

def _other_threads() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) > 1
    except OSError:
        import threading

        return threading.active_count() > 1


def _say(answers: IO[str], **message: Any) -> None:
    answers.write(json.dumps(message) + "\n")
    answers.flush()


def load_replay_machinery() -> None:
    """Import what a replay imports on its way, so that the server's children start with it loaded."""
    import encodings.idna  # noqa: F401  (HTTP stacks look this codec up on their first request)

    from ..boundaries import clock, collector, custom, entropy, files, process, socket, sync, threads  # noqa: F401
    from ..engine import demux, replayer  # noqa: F401
    from ..kinds import call, request  # noqa: F401

    with internal:
        manager.manager()


def warm_caches(header: dict[str, Any]) -> None:
    """Fill what every replay of the group would fill for itself first (our own caches, which the program does not
    see): the compiled name patterns of the recordings' redaction policy."""
    from ..redaction import Redaction

    with internal:
        Redaction.from_header(header).matches("retrace")


def serve(config: ForkServerConfig, prepare: Callable[[dict[str, Any], Project, str], Any],
          replay_here: Callable[[ReplayConfig], NoReturn]) -> None:
    """Prepare as a cold replay would (``prepare``, the child entry's), then fork one replay (``replay_here``) per
    command read from stdin."""
    import signal

    answers = os.fdopen(config.answers, "w")
    header = read_recording(config.recording, events=False).header
    try:
        prepare(header, config.project, config.recording)
    except BaseException as exc:  # not the project's, or the entry point does not import: it explains itself
        _say(answers, ready=False, why=str(exc))
        return
    load_replay_machinery()
    warm_caches(header)
    if _other_threads():
        _say(answers, ready=False, why="importing the app started threads, and a fork would lose them")
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the replaying child and the launcher
    gc.freeze()  # a child's collections then leave the server's objects alone: fewer pages copied
    _say(answers, ready=True)
    for line in sys.stdin:
        command = decode_config(line)
        assert isinstance(command, ReplayConfig)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _replay_in_child(command, answers, replay_here)
        _, status = os.waitpid(pid, 0)
        _say(answers, returncode=os.waitstatus_to_exitcode(status))


def _replay_in_child(command: ReplayConfig, answers: IO[str], replay_here: Callable[[ReplayConfig], NoReturn]) -> None:
    import signal

    try:
        answers.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # stdin: the server's command pipe, which a replay must not read from.
        for fd, path in ((0, os.devnull), (1, command.stdout), (2, command.stderr)):
            assert path is not None
            target = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        replay_here(command)
    except SystemExit as exc:  # a replay that could not start says why (its stderr goes to the report)
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    except BaseException:  # an error of ours before the replay could report
        import traceback

        sys.stderr.write("retrace: the replay could not start in the fork server:\n")
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        _exit(1)  # replay_here leaves with os._exit itself; this is for when it could not start
