"""The ``retrace`` command (also ``python -m pytest_retrace``): record, replay, pin, triage, show."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .errors import RetraceError


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__
    from .format.tape import FORMAT

    parser = argparse.ArgumentParser(prog="retrace", description="Record Python executions and replay them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (recording format {FORMAT})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rec = sub.add_parser("record", help="record a whole process: retrace record -o REC.retrace script.py args…")
    rec.add_argument("-o", "--output", required=True, metavar="REC", help="the recording file to write")
    rec.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m does")
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
    rec.add_argument("program", nargs=argparse.REMAINDER, help="script.py and its arguments (after --)")

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

    pin = sub.add_parser("pin", help="keep a crash recording as a regression case in the project")
    pin.add_argument("recording", metavar="REC")
    pin.add_argument("--into", metavar="DIR", default=os.environ.get("RETRACE_PIN_DIR", "tests/recordings"),
                     help="the project's regression folder (default: $RETRACE_PIN_DIR or tests/recordings)")

    triage = sub.add_parser("triage", help="group the crash recordings in a folder by crash fingerprint")
    triage.add_argument("folder", metavar="DIR")
    triage.add_argument("--json", action="store_true", help="print JSON instead of text")

    show = sub.add_parser("show", help="print a recording's header and events")
    show.add_argument("recording", metavar="REC")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.add_argument("--limit", type=int, default=None, metavar="N", help="print at most N events")

    for reading in (rep, pin, triage, show):
        reading.add_argument("--key-file", metavar="FILE", action="append", default=[],
                             help="a private key that opens encrypted recordings (also $RETRACE_PRIVATE_KEY); "
                                  "repeatable")

    keygen = sub.add_parser("keygen", help="make a key pair for encrypted recordings")
    keygen.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="write the private key to FILE (mode 0600) and the public key to FILE.pub")
    return parser


def _record_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .runner.launcher import record

    program = list(args.program)
    if program and program[0] == "--":
        program = program[1:]
    if args.module:
        entry, argv = {"module": args.module}, [args.module, *program]
    elif program:
        entry, argv = {"script": program[0]}, program
    else:
        parser.error("record: name the program to record: retrace record -o REC.retrace [--] script.py args…")
    tags = {}
    for tag in args.tag:
        key, sep, value = tag.partition("=")
        if not sep:
            parser.error(f"record: --tag {tag!r} is not KEY=VALUE")
        tags[key] = value
    from .format.sealing import public_key_from
    from .redaction import Redaction

    try:
        redaction = Redaction.configured(args.redact, args.no_redact)
    except ValueError as exc:
        raise RetraceError(f"{exc}; see `retrace record --help`") from None
    return record(args.output, entry, argv, live_paths=args.live, tags=tags, redaction=redaction,
                  public_key=public_key_from(args.public_key), force=args.force)


def _keygen_command(args: argparse.Namespace) -> int:
    from .format.sealing import PRIVATE_ENV, PUBLIC_ENV, PrivateKey

    private_path, public_path = args.output, args.output + ".pub"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise RetraceError(f"{path} already exists; choose another name (an existing key is never replaced)")
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
    from .front.pinning import pin

    target = pin(args.recording, args.into)
    print(f"pinned {args.recording} as {target}")
    print(f"it fails while the crash still happens: pytest --retrace-recordings={target}")
    return 0


def _triage_command(args: argparse.Namespace) -> int:
    from .front.pinning import triage
    from .front.report import printable

    if not os.path.isdir(args.folder):
        raise RetraceError(f"{args.folder} is not a folder; give the folder that holds the recordings")
    unreadable: list[str] = []
    groups = triage(args.folder, unreadable)
    if args.json:
        json.dump([g.to_json() for g in groups], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not groups:
        print(f"no crash recordings in {args.folder}")
    for g in [] if args.json else groups:
        crash = g.crash
        pinned = "  (pinned)" if g.pinned else ""
        # Values from the files: a crafted one must not send escape sequences to the terminal.
        print(printable(f"{g.count:>5} x  {crash.type}: {crash.message}{pinned}"))
        print(printable(f"         at {crash.place}, fingerprint {crash.fingerprint}, first {g.first_seen}, "
                        f"last {g.last_seen}"))
        if not g.pinned:
            print(printable(f"         retrace pin {g.recordings[0]}"))
    for problem in unreadable:  # the others were triaged; these are errors all the same
        sys.stderr.write(f"retrace triage: {problem}\n")
    return 2 if unreadable else 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _show_command(args: argparse.Namespace) -> int:
    from .format.tape import TapeStatus, read_recording
    from .hooks import manager  # noqa: F401  (installed packages' codecs, for the values they recorded)

    rec = read_recording(args.recording)
    events = rec.events()[: args.limit] if args.limit is not None else rec.events()
    if args.json:
        doc = {
            "status": rec.status,
            "problem": rec.problem,
            "offset": rec.offset,
            "header": rec.header,
            "events": [{"index": e.index, "thread": e.tid, "name": e.name, "args": e.args, "result": e.result}
                       for e in events],
            "end": rec.end,
        }
        if rec.setup is not None:  # which events set a connection up, and the service's set-up log
            doc["setup"] = {"events": rec.setup.marked,
                            "log": [{"name": n, "args": a, "results": r} for n, a, r in rec.setup.log]}
        json.dump(_jsonable(doc), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _show_text(rec, events)
    if rec.status == TapeStatus.CORRUPT:  # what could be read is shown; the file is still an error
        raise rec.corrupt_error()
    return 0


def _show_text(rec: Any, events: Sequence[Any]) -> None:
    from .format.events import describe_call, short_repr
    from .front.report import printable

    def print(line: str) -> None:  # noqa: A001 - every line holds values from the file: never raw escapes
        sys.stdout.write(printable(line) + "\n")

    h = rec.header
    print(f"recording  {rec.path}  ({rec.status}{': ' + rec.problem if rec.problem else ''})")
    for key in ("kind", "entry", "argv", "cwd", "project_root", "created_at", "python", "platform", "hash_seed", "tags",
                "pin"):
        print(f"  {key:<10} {short_repr(h.get(key), 2000)}")
    redaction = h.get("redaction") or {}
    print(f"  {'environ':<11}{len(h['environ'])} variables, redacted: {short_repr(redaction.get('redacted'), 400)}")
    print(f"events ({len(rec.events())}{', * sets a connection up' if rec.setup and rec.setup.marked else ''}):")
    marked = set(rec.setup.marked) if rec.setup else set()
    for e in events:
        star = "*" if e.index in marked else " "
        print(f" {star}#{e.index:<5} [{e.tid}] {describe_call(e.name, e.args)} -> {short_repr(e.result)}")
    if rec.end is not None:
        end = rec.end
        print(f"end: exit status {end.get('status')}, {end.get('events')} events")
        if end.get("exception"):
            exc = end["exception"]
            print(f"  crash {exc['type'][:200]}: {exc['message'][:400]}  (fingerprint {exc['fingerprint'][:40]})")
        for stream in ("stdout", "stderr"):
            s = end.get(stream) or {}
            print(f"  {stream}: {s.get('size')} bytes, blake2b {s.get('digest')}")
    if rec.setup is not None and rec.setup.log:
        print(f"connection set-up log ({len(rec.setup.log)} calls; answers a replay that opens afresh a connection "
              "the recording found open):")
        for name, args, results in rec.setup.log:
            print(f"  {describe_call(name, args)} -> {short_repr(results[0])}")
    if rec.processes:
        from .errors import RecordingError
        from .format.tape import TapeStatus, read_recording_bytes

        print(f"forked processes ({len(rec.processes)}):")
        for label, data in rec.processes.items():
            try:
                child = read_recording_bytes(data, f"process {label}")
            except RecordingError as exc:
                print(f"  {label:<7} {exc}")
                continue
            ended = "killed (no end)" if child.end is None else f"exit status {child.end.get('status')}"
            print(f"  {label:<7} pid {child.header.get('pid')}, {len(child.events())} events, {ended}"
                  f"{'' if child.status != TapeStatus.CORRUPT else ', ' + str(child.problem)}")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    commands = {"replay": _replay_command, "pin": _pin_command, "triage": _triage_command, "show": _show_command,
                "keygen": _keygen_command}
    try:
        if getattr(args, "key_file", None):
            from .format.sealing import add_private_key_file

            for path in args.key_file:
                add_private_key_file(path)
        status = _record_command(args, parser) if args.command == "record" else commands[args.command](args)
    except RetraceError as exc:
        sys.stderr.write(f"retrace {args.command}: {exc}\n")
        return 2
    except BrokenPipeError:  # the reader went away (`retrace show REC | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # as a program killed by SIGPIPE
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


if __name__ == "__main__":
    sys.exit(main())
