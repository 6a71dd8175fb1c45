"""The ``retrace`` command (also ``python -m pytest_retrace``): record, replay, pin, triage, show."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .errors import RetraceError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrace", description="Record Python executions and replay them.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rec = sub.add_parser("record", help="record a whole process: retrace record -o REC.retrace script.py args…")
    rec.add_argument("-o", "--output", required=True, metavar="REC", help="the recording file to write")
    rec.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m does")
    rec.add_argument("--live", action="append", default=[], metavar="PATTERN",
                     help="paths (fnmatch) read for real on replay instead of recorded; repeatable")
    rec.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag for the header")
    rec.add_argument("--redact", action="append", default=[], metavar="PATTERN",
                     help="also redact values under names matching PATTERN (a regular expression over the name "
                          "as `_x_api_key_`), besides the defaults (passwords, tokens, keys, cookies …); repeatable")
    rec.add_argument("--no-redact", action="append", default=[], metavar="PATTERN",
                     help="do not apply this default name pattern or value pattern (e.g. `session`, `jwt`); "
                          "repeatable")
    rec.add_argument("program", nargs=argparse.REMAINDER, help="script.py and its arguments (after --)")

    rep = sub.add_parser("replay", help="replay a recording and check it is faithful")
    rep.add_argument("recording", metavar="REC")
    rep.add_argument("--verdict", metavar="FILE", help="write the verdict as JSON to FILE")
    rep.add_argument("--stuck-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="how long threads may wait with no progress before the replay counts as stuck")

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
    from .redaction import Redaction

    try:
        redaction = Redaction.configured(args.redact, args.no_redact)
    except ValueError as exc:
        raise RetraceError(f"{exc}; see `retrace record --help`") from None
    return record(args.output, entry, argv, live_paths=args.live, tags=tags, redaction=redaction)


def _replay_command(args: argparse.Namespace) -> int:
    from .engine.divergence import DIVERGED_EXIT
    from .front.report import format_verdict
    from .runner.launcher import replay

    verdict = replay(args.recording, stuck_timeout=args.stuck_timeout)
    if args.verdict:
        with open(args.verdict, "w") as f:
            json.dump(verdict.to_json(), f, indent=2, default=repr)
    if verdict.faithful:
        assert verdict.replayed is not None
        return int(verdict.replayed.status or 0)
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

    if not os.path.isdir(args.folder):
        raise RetraceError(f"{args.folder} is not a folder; give the folder that holds the recordings")
    groups = triage(args.folder)
    if args.json:
        json.dump([g.to_json() for g in groups], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not groups:
        print(f"no crash recordings in {args.folder}")
        return 0
    for g in groups:
        crash = g.crash
        pinned = "  (pinned)" if g.pinned else ""
        print(f"{g.count:>5} x  {crash.type}: {crash.message}{pinned}")
        print(f"         at {crash.place}, fingerprint {crash.fingerprint}, first {g.first_seen}, "
              f"last {g.last_seen}")
        if not g.pinned:
            print(f"         retrace pin {g.recordings[0]}")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _show_command(args: argparse.Namespace) -> int:
    from .format.events import describe_call, short_repr
    from .format.tape import read_recording
    from .hooks import manager  # noqa: F401  (installed packages' codecs, for the values they recorded)

    rec = read_recording(args.recording)
    events = rec.events()[: args.limit] if args.limit is not None else rec.events()
    if args.json:
        doc = {
            "status": rec.status,
            "problem": rec.problem,
            "header": rec.header,
            "events": [{"index": e.index, "thread": e.tid, "name": e.name, "args": e.args, "result": e.result}
                       for e in events],
            "end": rec.end,
        }
        json.dump(_jsonable(doc), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    h = rec.header
    print(f"recording  {rec.path}  ({rec.status}{': ' + rec.problem if rec.problem else ''})")
    for key in ("kind", "entry", "argv", "cwd", "created_at", "python", "platform", "hash_seed", "tags", "pin"):
        print(f"  {key:<11}{h.get(key)!r}")
    print(f"  {'environ':<11}{len(h.get('environ', {}))} variables, redacted: {h['redaction']['redacted']}")
    print(f"events ({len(rec.events())}):")
    for e in events:
        print(f"  #{e.index:<5} [{e.tid}] {describe_call(e.name, e.args)} -> {short_repr(e.result)}")
    if rec.end is not None:
        end = rec.end
        print(f"end: exit status {end.get('status')}, {end.get('events')} events")
        if end.get("exception"):
            exc = end["exception"]
            print(f"  crash {exc['type']}: {exc['message']}  (fingerprint {exc['fingerprint']})")
        for stream in ("stdout", "stderr"):
            s = end.get(stream) or {}
            print(f"  {stream}: {s.get('size')} bytes, blake2b {s.get('digest')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    commands = {"replay": _replay_command, "pin": _pin_command, "triage": _triage_command, "show": _show_command}
    try:
        status = _record_command(args, parser) if args.command == "record" else commands[args.command](args)
    except RetraceError as exc:
        sys.stderr.write(f"retrace {args.command}: {exc}\n")
        return 2
    if status < 0:  # the program was killed by a signal: so is this process
        from .kinds.outcome import leave_with

        leave_with(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
