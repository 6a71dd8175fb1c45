"""``retrace show``: a recording as a person reads it (or as JSON).

The text lists the header, what was asked of the program by its kind — a process's command line, a
request's method, path, headers and body, a call's function and arguments — the events, and how the
run ended: a process's exit status and output, a request's response, a call's return value, a crash's
exception and traceback. Every value is shown whole when it fits the width, else cut readably
(:mod:`.fitting`); ``width`` None shows everything whole. Every line is passed through
:func:`~.report.printable`: a recording is untrusted, and its text never reaches the terminal raw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..fitting import Pair, Shape, cut_line, fit, fit_text, measure, parse_repr
from ..format.events import Event
from ..format.tape import Kind, Recording, TapeStatus
from .report import printable

HEAD_LINES = 5  # lines of a program's output or of a body shown unless the whole is asked for
INDENT = "  "
# The header's keys shown for every kind, in this order (a request's or a call's entry is shown by its kind).
HEADER_KEYS = ("kind", "entry", "argv", "cwd", "project_root", "created_at", "python", "platform", "hash_seed",
               "tags", "pin")
_BY_KIND = {"wsgi": ("environ", "body"), "call": ("args", "kwargs")}  # entry keys shown in the kind's own section


def show_json(rec: Recording, events: Sequence[Event]) -> dict[str, Any]:
    """The recording as ``retrace show --json`` prints it (values JSON has no form for as their repr)."""
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
    return _jsonable(doc)  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class TextView:
    """Writes a recording's text, line by line, to ``write``, fitting values to ``width`` (None: whole)."""

    def __init__(self, write: Callable[[str], Any], width: int | None) -> None:
        self._write = write
        self.width = width

    def line(self, text: str) -> None:
        self._write(printable(text) + "\n")

    def field(self, indent: str, label: str, value: Any, how: Callable[[Any, int | None], str] = fit) -> None:
        """``label`` and a value fitted into what the line leaves, ``how`` fits: a value (:func:`.fitting.fit`), a
        repr a recording stored (``fit_text``), plain text (``cut_line``)."""
        start = f"{indent}{label:<10} "
        self.line(start + how(value, None if self.width is None else self.width - len(start)))

    def lines(self, indent: str, text: str, held: int | None = None, total: int | None = None) -> None:
        """Text (a program's output, a body) as lines: its first ones unless the whole is asked for. ``held``
        of ``total``: the recording holds only the first ``held`` bytes of it."""
        rows = text.splitlines()
        shown = rows if self.width is None else rows[:HEAD_LINES]
        room = None if self.width is None else self.width - len(indent) - 2
        for row in shown:
            self.line(f"{indent}| {cut_line(row, room)}")
        if len(shown) < len(rows):
            self.line(f"{indent}… ({len(rows) - len(shown)} more lines; --full shows them)")
        if held is not None and total is not None and held < total:
            self.line(f"{indent}(the recording holds the first {held} of its {total} bytes)")

    def _short(self, *values: Any) -> bool:
        """Whether the values could all fit on one line (measured without making the text of big ones)."""
        return sum(measure(value, self.width or 0) for value in values) <= (self.width or 0)

    def call(self, prefix: str, name: str, args: Any, result: Any) -> None:
        """An event: ``name(args) -> result`` on one line when it fits whole, else the call cut to the width and
        the result on a line of its own."""
        width = self.width
        called = _call_shape(name, args)
        if width is None:
            self.line(f"{prefix}{fit(called, None)} -> {fit(result, None)}")
            return
        line = f"{prefix}{fit(called, None)} -> {fit(result, None)}" if self._short(called, result) else ""
        if line and len(line) <= width:
            self.line(line)
            return
        self.line(prefix + fit(called, width - len(prefix)))
        under = " " * len(prefix) + "-> "
        self.line(under + fit(result, width - len(under)))


def _call_shape(name: str, args: Any) -> Any:
    """A call as the fitting lays it out: its arguments side by side in ``name(…)``."""
    if args is None:
        items: list[Any] = []
    elif type(args) is tuple:
        items = list(args)
    else:
        items = [args]
    return Shape(f"{name}(", ")", items, len(items))


def show_text(rec: Recording, events: Sequence[Event], view: TextView) -> None:
    h = rec.header
    kind = h.get("kind")
    view.line(f"recording  {rec.path}  ({rec.status}{': ' + rec.problem if rec.problem else ''})")
    for key in HEADER_KEYS:
        value = h.get(key)
        if key == "entry" and isinstance(value, dict) and kind in _BY_KIND:
            value = {k: v for k, v in value.items() if k not in _BY_KIND[kind]}
        view.field(INDENT, key, value)
    redaction = h.get("redaction") or {}
    view.field(INDENT, "environ", f"{len(h['environ'])} variables, redacted: {redaction.get('redacted')}", cut_line)
    entry = h.get("entry") or {}
    if kind == Kind.WSGI:
        _request(view, entry)
    elif kind == Kind.CALL:
        _called(view, entry)
    marked = set(rec.setup.marked) if rec.setup else set()
    view.line(f"events ({len(rec.events())}{', * sets a connection up' if marked else ''}):")
    for e in events:
        view.call(f" {'*' if e.index in marked else ' '}#{e.index:<5} [{e.tid}] ", e.name, e.args, e.result)
    if len(events) < len(rec.events()):
        view.line(f"  … ({len(rec.events()) - len(events)} more events; without --limit they are shown)")
    if rec.end is not None:
        _end(view, rec.end, kind)
    elif rec.status == TapeStatus.TRUNCATED:
        view.line("end: none (the recorded process was killed before it finished: the recording stops here)")
    if rec.setup is not None and rec.setup.log:
        view.line(f"connection set-up log ({len(rec.setup.log)} calls; answers a replay that opens afresh a "
                  "connection the recording found open):")
        for name, args, results in rec.setup.log:
            view.call("  ", name, args, results[0])
    if rec.processes:
        _processes(view, rec)


def _request(view: TextView, entry: dict[str, Any]) -> None:
    environ = entry.get("environ") or {}
    query = environ.get("QUERY_STRING") or ""
    target = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}" + (f"?{query}" if query else "")
    view.line(f"request    {environ.get('REQUEST_METHOD', '?')} {target}  {environ.get('SERVER_PROTOCOL', '')}"
              .rstrip())
    for name, value in _request_headers(environ):
        view.field(INDENT, "header", f"{name}: {value}", cut_line)
    _body(view, entry.get("body") or b"", None)


def _request_headers(environ: dict[str, Any]) -> list[tuple[str, Any]]:
    """A WSGI environ's HTTP headers, named as the client sent them (``HTTP_X_TRACE`` is ``X-Trace``)."""
    headers = []
    for key, value in environ.items():
        name = key[5:] if key.startswith("HTTP_") else key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else None
        if name is not None:
            headers.append(("-".join(part.capitalize() for part in name.split("_")), value))
    return headers


def _body(view: TextView, body: bytes, total: int | None) -> None:
    """A request's or a response's body: as lines of text when it is UTF-8, else as bytes; ``total``: its size
    when the recording holds only its first bytes."""
    size = len(body) if total is None else total
    if not body:
        view.line(f"  body       {'empty' if not size else f'{size} bytes, none of them held'}")
        return
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:  # binary, or text cut inside a character: shown as bytes
        view.field(INDENT, "body", body)
        return
    view.line(f"  body       {size} bytes:")
    view.lines("    ", text, len(body), size)


def _called(view: TextView, entry: dict[str, Any]) -> None:
    """A call recording's call: the function with its arguments, keyword ones as ``name=value``."""
    arguments = list(entry.get("args") or [])
    arguments += [Pair(_Name(k), v, "=") for k, v in (entry.get("kwargs") or {}).items()]
    view.field("", "call", Shape(f"{entry.get('function')}(", ")", arguments, len(arguments)))


class _Name:
    """A keyword argument's name, shown as it is (not quoted)."""

    __slots__ = ("name",)

    def __init__(self, name: Any) -> None:
        self.name = str(name)

    def __repr__(self) -> str:
        return self.name


def _end(view: TextView, end: dict[str, Any], kind: Any) -> None:
    view.line(f"end: exit status {end.get('status')}, {end.get('events')} events")
    if end.get("recording_error"):
        view.field(INDENT, "incomplete", end["recording_error"], cut_line)
    exc = end.get("exception")
    if exc:
        view.line(f"  crash {cut_line(exc['type'] + ': ' + exc['message'], _less(view.width, 30))}  "
                  f"(fingerprint {exc['fingerprint'][:40]})")
        if exc["traceback"]:
            view.line("    Traceback (most recent call last):")
        for filename, lineno, function, text in exc["traceback"]:
            view.line(f'      File "{filename}", line {lineno}, in {function}')
            if text:
                view.line(f"        {cut_line(text, _less(view.width, 8))}")
    returned = end.get("returned")
    if kind == Kind.WSGI and returned:
        _response(view, returned)
    elif returned:
        view.field(INDENT, "returned", str(returned.get("head", "")), fit_text)
        view.line(f"  {'':<10} {returned['size']} bytes encoded, blake2b {returned['digest']}")
    for stream in ("stdout", "stderr"):
        s = end.get(stream)
        if s is None:
            continue
        view.line(f"  {stream}: {s['size']} bytes, blake2b {s['digest']}")
        head = s.get("head") or b""
        if head:
            text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
            view.lines("    ", text, len(head), s["size"])


def _response(view: TextView, returned: dict[str, Any]) -> None:
    """A request's response: the recording keeps its status, headers and the first bytes of its body as the
    repr of ``[status, headers, body]`` (cut short by older writers: then shown as it is)."""
    head = returned.get("head", "")
    parts = _response_parts(head) if isinstance(head, str) else None
    if parts is None:
        view.field(INDENT, "response", str(head), fit_text)
        view.line(f"  {'':<10} {returned['size']} bytes of body, blake2b {returned['digest']}")
        return
    status, headers, body = parts
    view.line(f"response   {status}")
    for header in headers.items:
        pair = header.items if isinstance(header, Shape) else None
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair):
            view.field(INDENT, "header", f"{pair[0]}: {pair[1]}", cut_line)
    _body(view, body, returned["size"])
    view.line(f"  digest     blake2b {returned['digest']} (of the status, the headers and the whole body)")


def _response_parts(head: str) -> list[Any] | None:
    """``[status, headers, body]`` from a response's stored repr; one cut short (older writers cut it at 400
    characters, inside the body as a rule) is closed again, its body then the part the recording holds."""
    for trim in range(4):  # a cut inside an escape (\\x4) leaves up to 3 characters of it
        for ending in ("", "']", '"]'):
            parsed = parse_repr(head[: len(head) - trim] + ending)
            parts = parsed.items if isinstance(parsed, Shape) else None
            if (isinstance(parts, list) and len(parts) == 3 and isinstance(parts[0], str)
                    and isinstance(parts[1], Shape) and isinstance(parts[2], bytes)):
                return parts
        if len(head) < 400:  # only an older writer's head, cut at 400, needs closing
            break
    return None


def _less(width: int | None, by: int) -> int | None:
    return None if width is None else width - by


def _processes(view: TextView, rec: Recording) -> None:
    from ..errors import RecordingError
    from ..format.tape import read_recording_bytes

    view.line(f"forked processes ({len(rec.processes)}):")
    for label, data in rec.processes.items():
        try:
            child = read_recording_bytes(data, f"process {label}")
        except RecordingError as exc:
            view.line(f"  {label:<7} {exc}")
            continue
        ended = "killed (no end)" if child.end is None else f"exit status {child.end.get('status')}"
        view.line(f"  {label:<7} pid {child.header.get('pid')}, {len(child.events())} events, {ended}"
                  f"{'' if child.status != TapeStatus.CORRUPT else ', ' + str(child.problem)}")
