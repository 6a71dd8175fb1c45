"""The ``retrace`` command (also ``python -m pytest_retrace``): record, replay, pin, triage, show."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import RetraceError


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser, and its ``record`` parser (whose options end where the program starts)."""
    from ._version import __version__
    from .format.tape import FORMAT

    parser = argparse.ArgumentParser(prog="retrace", description="Record Python executions and replay them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (recording format {FORMAT})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rec = sub.add_parser("record", help="record a whole process: retrace record -o REC.retrace script.py args…",
                         usage="retrace record -o REC [options] (script.py | -m MODULE) [args …]",
                         epilog="Everything after the script or the module is the program's: "
                                "retrace record -o a.retrace -m pkg.tool --verbose passes --verbose to pkg.tool.")
    rec.add_argument("-o", "--output", metavar="REC", help="the recording file to write (required)")
    rec.add_argument("-m", dest="module", metavar="MODULE",
                     help="run a module, as python -m does; the arguments after it are the module's")
    rec.add_argument("--live", action="append", default=[], metavar="PATTERN",
                     help="paths (fnmatch) read for real on replay instead of recorded; repeatable")
    rec.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag for the header")
    rec.add_argument("--redact", action="append", default=[], metavar="PATTERN",
                     help="also redact values under names holding PATTERN (words of the name as `_x_api_key_`, "
                          "alternatives separated by |), besides the defaults (passwords, tokens, keys, cookies …); "
                          "repeatable")
    rec.add_argument("--no-redact", action="append", default=[], metavar="PATTERN",
                     help="do not apply this default name pattern or value pattern (e.g. `session`, `jwt`); "
                          "repeatable")
    rec.add_argument("--force", action="store_true", help="replace REC if it exists (refused otherwise)")
    rec.add_argument("--public-key", metavar="KEY",
                     help="encrypt the recording for this project public key (its text or a file holding it; "
                          "default: $RETRACE_PUBLIC_KEY); see retrace keygen")
    rec.add_argument("program", nargs=argparse.REMAINDER, help="script.py and its arguments")

    rep = sub.add_parser("replay", help="replay a recording and check it is faithful")
    rep.add_argument("recording", metavar="REC")
    rep.add_argument("--verdict", metavar="FILE", help="write the verdict as JSON to FILE")
    rep.add_argument("--stuck-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="how long threads may wait with no progress before the replay counts as stuck")
    rep.add_argument("--allow-outside-project", action="store_true",
                     help="run a recording whose script, module, function or folder is outside the project (the "
                          "nearest folder from here up holding pyproject.toml, setup.py, setup.cfg, .git, tox.ini or "
                          "pytest.ini, else this folder), or installed code; only for recordings you trust")
    rep.add_argument("--sandbox", action="store_true",
                     help="replay in a network namespace with no interface (unshare), beneath the replay guard")

    debug = sub.add_parser("debug", help="replay a recording under pdb: at its crash, or before event N; travel "
                                         "back and forth between events",
                           epilog="pdb commands besides pdb's own: events [N] (the recorded calls around the "
                                  "position), where (the stack, then the event position), goto N, back [N], "
                                  "forward [N]")
    debug.add_argument("recording", metavar="REC")
    debug.add_argument("--at", type=int, default=None, metavar="N",
                       help="stop just before event N (as retrace show numbers them) instead of at the crash")
    debug.add_argument("--dap", metavar="HOST:PORT",
                       help="serve the Debug Adapter Protocol (debugpy) on HOST:PORT for VS Code to attach to, "
                            "instead of pdb on this terminal")
    debug.add_argument("--allow-outside-project", action="store_true",
                       help="run a recording whose code is outside the project; only for recordings you trust")

    pin = sub.add_parser("pin", help="keep a crash recording as a regression case in the project")
    pin.add_argument("recording", metavar="REC")
    pin.add_argument("--into", metavar="DIR", default=os.environ.get("RETRACE_PIN_DIR", "tests/recordings"),
                     help="the project's regression folder (default: $RETRACE_PIN_DIR or tests/recordings)")

    triage = sub.add_parser("triage", help="group the crash recordings in a folder by crash fingerprint, and keep "
                                           "their incidents' status in DIR/.retrace-incidents.json")
    triage.add_argument("folder", metavar="DIR")
    triage.add_argument("--json", action="store_true", help="print JSON instead of text")

    show = sub.add_parser("show", help="print a recording's header and events")
    show.add_argument("recording", metavar="REC")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.add_argument("--limit", type=int, default=None, metavar="N", help="print at most N events")
    show.add_argument("--full", action="store_true", help="print every value whole (default: cut to the width)")
    show.add_argument("--width", type=int, default=None, metavar="COLUMNS",
                      help="fit values into lines this wide (default: the terminal's, or 120 when not a terminal)")

    for reading in (rep, debug, pin, triage, show):
        reading.add_argument("--key-file", metavar="FILE", action="append", default=[],
                             help="a private key that opens encrypted recordings (also $RETRACE_PRIVATE_KEY); "
                                  "repeatable")

    keygen = sub.add_parser("keygen", help="make a key pair for encrypted recordings")
    keygen.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="write the private key to FILE (mode 0600) and the public key to FILE.pub")

    mcp = sub.add_parser("mcp", help="serve the recordings to an agent: an MCP server on stdin/stdout")
    mcp.add_argument("--key-file", action="append", default=[], metavar="FILE",
                     help="a private key that opens sealed recordings (also $RETRACE_PRIVATE_KEY); repeatable")
    return parser, rec


def _split_record(rec: argparse.ArgumentParser, tokens: list[str]) -> tuple[list[str], str | None, list[str]]:
    """``retrace record``'s own options, the module (``-m``), and the program's arguments: everything after the
    script or the module belongs to the program, as with ``python script.py …`` and ``python -m module …``
    (``--`` before the script, or right after the module, is still taken)."""
    # The options that take a value, from the parser itself (so that `-o x.py` is not read as the script).
    valued = {flag for action in rec._actions if action.nargs != 0 for flag in action.option_strings}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            return tokens[:index], None, tokens[index + 1 :]
        if token == "-m" or (token.startswith("-m") and not token.startswith("--")):
            module = token[2:] or (tokens[index + 1] if index + 1 < len(tokens) else "")
            rest = tokens[index + (1 if token[2:] else 2) :]
            if not module:
                rec.error("-m needs a module: retrace record -o REC.retrace -m MODULE args…")
            return tokens[:index], module, rest[1:] if rest[:1] == ["--"] else rest
        if not token.startswith("-") or token == "-":
            return tokens[:index], None, tokens[index:]
        index += 2 if token in valued else 1
    return tokens, None, []


def _record_command(args: argparse.Namespace, rec: argparse.ArgumentParser) -> int:
    from .runner.launcher import record

    program = args.program
    if args.module:
        _check_module(args.module)
        entry, argv = {"module": args.module}, [args.module, *program]
    elif program:
        entry, argv = {"script": program[0]}, program
    else:
        rec.error("name the program to record: retrace record -o REC.retrace script.py args… "
                  "(or -m MODULE args…)")
    if not args.output:
        rec.error("name the recording to write: retrace record -o REC.retrace script.py args… (the options of "
                  "retrace record come before the script or module: the ones after it are the program's)")
    tags = {}
    for tag in args.tag:
        key, sep, value = tag.partition("=")
        if not sep:
            rec.error(f"--tag {tag!r} is not KEY=VALUE")
        tags[key] = value
    from .format.sealing import public_key_from
    from .redaction import Redaction

    try:
        redaction = Redaction.configured(args.redact, args.no_redact)
    except ValueError as exc:
        raise RetraceError(f"{exc}; see `retrace record --help`") from None
    return record(args.output, entry, argv, live_paths=args.live, tags=tags, redaction=redaction,
                  public_key=public_key_from(args.public_key), force=args.force)


def _check_module(name: str) -> None:
    """Before recording ``-m name``: the module must be importable where the program will run (the current folder
    first, then the path), found without importing anything (a package's ``__init__`` is the program's code, to
    run recorded or not at all)."""
    from importlib.machinery import PathFinder
    from importlib.util import find_spec

    cwd = os.getcwd()
    path = [cwd, *(entry for entry in sys.path[1:] if entry)]  # sys.path[0] is this command's own folder
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        raise RetraceError(f"-m {name!r} is not a module name (dotted words, as for python -m); give the module, "
                           "or the script's path without -m")
    spec = PathFinder.find_spec(parts[0], path) or find_spec(parts[0])  # a built-in, or a frozen module
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            break
        spec = PathFinder.find_spec(".".join(parts[: depth + 1]), list(spec.submodule_search_locations))
    if spec is None or (len(parts) > 1 and spec.name != name):
        raise RetraceError(f"no module {name!r} to record: looked in {cwd} and on the Python path (python -c 'import "
                           "sys; print(sys.path)' lists it); check its name, run retrace from the folder that holds "
                           "it, or add that folder to PYTHONPATH")


def _keygen_command(args: argparse.Namespace) -> int:
    from .format.sealing import PRIVATE_ENV, PUBLIC_ENV, PrivateKey

    private_path, public_path = args.output, args.output + ".pub"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise RetraceError(f"{path} already exists; choose another name (an existing key is never replaced)")
    folder = os.path.dirname(os.path.abspath(private_path))
    if not os.path.isdir(folder):
        raise RetraceError(f"cannot write {private_path}: the folder {folder} does not exist; create it first")
    key = PrivateKey.generate()
    with open(os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(key.text() + "\n")
    with open(os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w") as f:
        f.write(key.public.text() + "\n")
    print(f"private key: {private_path} (keep it secret: it opens every recording sealed for this pair)")
    print(f"public key:  {public_path} (id {key.public.id})")
    print(f"record with: {PUBLIC_ENV}={public_path}, or retrace record --public-key {public_path}")
    print(f"replay with: {PRIVATE_ENV}={private_path} (a CI secret), or --key-file {private_path}")
    return 0


def _debug_command(args: argparse.Namespace) -> int:
    from .kinds.entry import Project
    from .paths import project_root_of
    from .runner.debugging import DebugSettings
    from .runner.launcher import DebugQuit, debug_replay
    from .runner.verdict import Status

    if args.dap is None and not (os.isatty(0) and os.isatty(1)):
        raise RetraceError("pdb needs a terminal: run retrace debug from one (or serve VS Code with --dap HOST:PORT)")
    if args.dap is not None:
        _check_listening(args.dap)
    _check_events(args.recording, args.at, args.dap is not None)
    if args.at is not None and args.at < 0:
        raise RetraceError(f"--at {args.at}: events are numbered from 0 (retrace show lists them)")
    project = Project(project_root_of(os.getcwd()), args.allow_outside_project, "--allow-outside-project")
    sys.stdout.flush()
    terminal = [os.dup(0), os.dup(1)]
    try:
        # Travel forks the replay: a DAP client stays with the process it attached to, so --dap replays forward only.
        settings = DebugSettings(terminal, at=args.at, travel=args.dap is None, dap=args.dap)
        verdict = debug_replay(args.recording, project, settings)
    except DebugQuit:
        return 0
    finally:
        for fd in terminal:
            os.close(fd)
    if verdict.status == Status.CORRUPT:
        raise RetraceError(verdict.problem or f"{args.recording}: corrupt recording")
    if verdict.divergence is not None:  # what it called where, said again after the session (a DAP client's too)
        from .engine.divergence import DIVERGED_EXIT
        from .front.report import format_verdict

        sys.stderr.write(format_verdict(verdict) + "\n")
        return DIVERGED_EXIT
    replayed = verdict.replayed
    ended = "" if replayed is None else (
        f" by {replayed.exception.type}: {replayed.exception.message}" if replayed.exception is not None
        else f" with exit status {replayed.status}")
    sys.stderr.write(f"retrace debug: the replay ended{ended}\n")
    return 0


def _check_listening(address: str) -> None:
    """--dap HOST:PORT names a place this machine can listen on now: said here, before the replay starts (debugpy
    failing to listen there leaves its threads, and the replay, waiting)."""
    import socket

    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise RetraceError(f"--dap {address}: give HOST:PORT with a port from 0 to 65535 (e.g. 127.0.0.1:5678)")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as debugpy's own listener does
            probe.bind((host.strip("[]") or "127.0.0.1", int(port)))
    except OSError as exc:
        raise RetraceError(f"--dap {address}: cannot listen there ({exc.strerror or exc}); give a free port on "
                           "an address of this machine, or port 0 for any free one") from None


def _check_events(path: str, at: int | None, dap: bool) -> None:
    """What the session is asked to do with the recording's events is possible: ``--at`` names one of them, and
    ``--dap`` has a single-threaded recording (debugpy starts the program's threads through its own wrappers,
    around the replay's, and they would run live)."""
    from .errors import RecordingError
    from .format.events import threads_of
    from .format.tape import TapeStatus, read_recording

    try:
        rec = read_recording(path, events=dap)  # counted only, unless their threads are asked for
        if rec.status == TapeStatus.CORRUPT:
            return
        threads = threads_of(rec.events()) if dap else None
    except RecordingError:  # the replay says what is wrong with it
        return
    if at is not None and at >= rec.count:
        raise RetraceError(f"--at {at}: {path} has events #0 to #{rec.count - 1} (retrace show lists them)")
    if threads is not None:
        raise RetraceError(f"--dap: {path} was recorded with {len(set(threads))} threads, and a DAP session "
                           "replays single-threaded recordings only; debug it with pdb: retrace debug "
                           f"{path}")


def _replay_command(args: argparse.Namespace) -> int:
    from .engine.divergence import DIVERGED_EXIT
    from .errors import RecordingError
    from .format.tape import TapeStatus, read_recording
    from .kinds.entry import Project
    from .paths import project_root_of
    from .runner.launcher import replay
    from .runner.verdict import Verdict, unreadable

    # A damaged recording is no replay of a crash (which exits 1): it is an error, and the verdict says so.
    try:
        rec = read_recording(args.recording, events=False)  # the child reads them
        problem = rec.corrupt_error() if rec.status == TapeStatus.CORRUPT else None
    except RecordingError as exc:
        rec, problem = None, exc
    verdict: Verdict
    if problem is not None:
        verdict = unreadable(args.recording, str(problem), rec.offset if rec is not None else None)
    else:
        # The project is the one the replay runs in (found upwards, as recording finds it): a recording runs only
        # its code, and its code paths resolve against its root.
        project = Project(project_root_of(os.getcwd()), args.allow_outside_project, "--allow-outside-project")
        verdict = replay(args.recording, project, stuck_timeout=args.stuck_timeout, sandbox=args.sandbox)
    if args.verdict:
        with open(args.verdict, "w") as f:
            json.dump(verdict.to_json(), f, indent=2, default=repr)
    if problem is not None:
        raise RecordingError(str(problem))
    if verdict.faithful:
        assert verdict.replayed is not None
        return int(verdict.replayed.status or 0)
    if verdict.status == "corrupt":
        raise RecordingError(verdict.problem or f"{args.recording}: corrupt recording")
    from .front.report import format_verdict  # only for a replay that was not faithful

    sys.stderr.write(format_verdict(verdict) + "\n")
    return DIVERGED_EXIT


def _pin_command(args: argparse.Namespace) -> int:
    from .front.incidents import record_pin, states_of_pin
    from .front.pinning import pin

    states = states_of_pin(args.recording, args.into)  # a damaged state stops the pin before it copies anything
    target = pin(args.recording, args.into)
    record_pin(args.recording, target, states)
    print(f"pinned {args.recording} as {target}")
    print(f"its incident is pinned in {', '.join(os.path.relpath(path) for path in states)}")
    print(f"it fails while the crash still happens: pytest --retrace-recordings={target}")
    return 0


def _triage_command(args: argparse.Namespace) -> int:
    from .front.incidents import IncidentStatus, triage
    from .front.report import printable

    if not os.path.isdir(args.folder):
        raise RetraceError(f"{args.folder} is not a folder; give the folder that holds the recordings")
    unreadable: list[str] = []
    incidents = triage(args.folder, unreadable)
    if args.json:
        json.dump([incident.to_json() for incident in incidents], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not incidents:
        from .front.pinning import recordings_in

        found = sum(1 for _ in recordings_in(Path(args.folder)))
        read = f"{found - len(unreadable)} of {found} recordings read" if unreadable else f"{found} recordings"
        print(f"no crash recordings in {args.folder} ({read})" if found else
              f"no recordings (*.retrace) in {args.folder} or its subfolders")
    for incident in [] if args.json else incidents:
        # Values from the files: a crafted one must not send escape sequences to the terminal.
        print(printable(f"{incident.count:>5} x  {incident.exception}: {incident.message}"))
        print(printable(f"         at {incident.place}, fingerprint {incident.fingerprint}, "
                        f"first {incident.first_seen}, last {incident.last_seen}"))
        since = f" since {incident.history[-1].at}" if incident.history else ""
        if incident.status == IncidentStatus.NEW:
            pin = (f"retrace pin {os.path.normpath(os.path.join(args.folder, incident.recordings[0]))}"
                   if incident.recordings else
                   "none of its recordings is left to pin")
            print(printable(f"         new: {pin}"))
        else:
            print(printable(f"         {incident.status}{since}: pinned as "
                            f"{os.path.normpath(os.path.join(args.folder, incident.pinned or '?'))}"))
    for problem in unreadable:  # the others were triaged; these are errors all the same
        sys.stderr.write(f"retrace triage: {problem}\n")
    if unreadable:  # exit 2: some recordings were not triaged (the ones read were)
        sys.stderr.write(f"retrace triage: {len(unreadable)} recordings could not be triaged (above): open sealed "
                         "ones with --key-file; a damaged one can only be recorded again\n")
    return 2 if unreadable else 0


def _mcp_command(args: argparse.Namespace) -> int:
    from .front.mcp_server import serve

    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError as exc:  # the optional extra is missing
        raise RetraceError(f"the MCP server needs the mcp package ({exc}); install it with "
                           "pip install 'pytest-retrace[mcp]'") from None
    serve()
    return 0


def _show_command(args: argparse.Namespace) -> int:
    from .format.tape import TapeStatus, read_recording
    from .front.show import TextView, show_json, show_text
    from .hooks import manager  # noqa: F401  (installed packages' codecs, for the values they recorded)

    width = None if args.full or args.json else _width(args.width)  # a usage error before the file is read
    rec = read_recording(args.recording)
    events = rec.events()[: args.limit] if args.limit is not None else rec.events()
    if args.json:
        json.dump(show_json(rec, events), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        show_text(rec, events, TextView(sys.stdout.write, width))
    if rec.status == TapeStatus.CORRUPT:  # what could be read is shown; the file is still an error
        raise rec.corrupt_error()
    return 0


def _width(asked: int | None) -> int:
    """The width values are fitted to: as asked, else the terminal's, else 120 (a pipe, a file)."""
    if asked is not None:
        if asked < 40:
            raise RetraceError(f"--width {asked} is too narrow to show a recording; give 40 or more, or --full")
        return asked
    if sys.stdout.isatty():
        import shutil

        return max(shutil.get_terminal_size().columns, 40)
    return 120


SIGPIPE_EXIT = 128 + 13  # a reader that went away (`retrace show REC | head`): as a program SIGPIPE ended


def main(argv: list[str] | None = None) -> int:
    tokens = sys.argv[1:] if argv is None else list(argv)
    parser, rec = _parser()
    try:
        if tokens[:1] == ["record"]:  # the program's arguments are not the command's
            own, module, program = _split_record(rec, tokens[1:])
            args = parser.parse_args(["record", *own])
            args.module, args.program = module, program
        else:
            args = parser.parse_args(tokens)
    except SystemExit:  # --help, --version, or a usage error, which argparse printed
        if _reader_went_away():
            return SIGPIPE_EXIT
        raise
    commands = {"replay": _replay_command, "debug": _debug_command, "pin": _pin_command, "triage": _triage_command,
                "show": _show_command, "keygen": _keygen_command, "mcp": _mcp_command}
    try:
        if getattr(args, "key_file", None):
            from .format.sealing import add_private_key_file

            for path in args.key_file:
                add_private_key_file(path)
        status = _record_command(args, rec) if args.command == "record" else commands[args.command](args)
        sys.stdout.flush()  # a reader that went away is found here, not at the interpreter's exit
    except RetraceError as exc:
        sys.stderr.write(f"retrace {args.command}: {exc}\n")
        return 2
    except BrokenPipeError:
        _reader_went_away()
        return SIGPIPE_EXIT
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, not a traceback that reads like the program's
        if os.environ.get("RETRACE_DEBUG"):
            raise
        sys.stderr.write(f"retrace {args.command}: internal error: {type(exc).__name__}: {exc} (please report it; "
                         "RETRACE_DEBUG=1 shows the traceback)\n")
        return 2
    if status < 0:  # the program was killed by a signal: so is this process
        from .kinds.outcome import leave_with
        from .runner.launcher import remove_results

        remove_results()
        leave_with(status)
    return status


def _reader_went_away() -> bool:
    """Whether the reader of our output is gone (what was printed is out otherwise); when it is, nothing more
    is said, and nothing is left for the exit's flush to fail on."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
