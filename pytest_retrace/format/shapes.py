"""The shapes a recording's HEADER and END frames must have.

A recording is untrusted input: the reader checks both once (:func:`header_problem`, :func:`end_problem`), so
that every command and the plugin can read their fields without meeting a missing key or a wrong type.
Keys not listed here are allowed (newer writers add some); listed ones must have their type.
"""

from __future__ import annotations

from typing import Any

from ..record import Record

_NONE = type(None)


class Field(Record):
    """One key of a frame's map: the types its value may have, whether it must be there, and for a map or a
    list, the types of its items (a map's keys are strings)."""

    __slots__ = ("name", "types", "required", "items")

    def __init__(self, name: str, types: tuple[type, ...], required: bool = False,
                 items: tuple[type, ...] | None = None) -> None:
        self.name = name
        self.types = types
        self.required = required
        self.items = items


HEADER_FIELDS = (
    Field("kind", (str,), required=True),
    Field("hash_seed", (int,), required=True),
    Field("entry", (dict,), required=True),
    Field("argv", (list,), required=True, items=(str,)),
    Field("cwd", (str,), required=True),
    Field("project_root", (str,)),  # 1.5+: cwd, the script and the import root are relative to it
    Field("environ", (dict,), required=True, items=(str,)),
    Field("format", (str,)),
    Field("retrace_version", (str,)),
    Field("python", (str,)),
    Field("implementation", (str,)),
    Field("platform", (str,)),
    Field("executable", (str,)),
    Field("pid", (int,)),
    Field("process", (str,)),  # a forked process's logical id (its recording is inside its parent's)
    Field("machine", (dict, _NONE)),
    Field("created_at", (str,)),
    Field("redaction", (dict, _NONE)),
    Field("live_paths", (list,), items=(str,)),
    Field("tags", (dict, _NONE)),
    Field("pin", (dict, _NONE)),
)
MACHINE_FIELDS = (Field("zone", (str, _NONE)), Field("zone_data", (bytes, _NONE)),
                  Field("locale", (dict, _NONE), items=(str,)))
ENTRY_FIELDS = (Field("script", (str,)), Field("module", (str,)), Field("function", (str,)), Field("app", (str,)),
                Field("root", (str, _NONE)), Field("code_folders", (list,), items=(str,)),
                Field("warm", (dict,), items=(str,)))
# What an in-process recording's entry holds besides: a request (WSGI environ, body) or a call (arguments).
KIND_ENTRY_FIELDS = {
    "wsgi": (Field("app", (str,), required=True), Field("environ", (dict,), required=True),
             Field("body", (bytes,), required=True), Field("closed", (bool,)), Field("taken", (int,))),
    "call": (Field("function", (str,), required=True), Field("args", (list,), required=True),
             Field("kwargs", (dict,), required=True)),
}
PIN_FIELDS = (Field("fingerprint", (str,)),)
STREAM_FIELDS = (Field("digest", (str,), required=True), Field("size", (int,), required=True),
                 Field("head", (bytes, str)))
EXCEPTION_FIELDS = (Field("type", (str,), required=True), Field("message", (str,), required=True),
                    Field("traceback", (list,), required=True, items=(list,)),
                    Field("fingerprint", (str,), required=True))
END_FIELDS = (
    Field("status", (int, _NONE), required=True),
    Field("events", (int, _NONE)),
    Field("exception", (dict, _NONE)),
    Field("stdout", (dict, _NONE)),
    Field("stderr", (dict, _NONE)),
    Field("returned", (dict, _NONE)),
    Field("recording_error", (str, _NONE)),
)
MAX_TRACEBACK_FRAMES = 5000  # of an END's exception: a writer keeps a deeper one's ends (ExceptionInfo.of)


def _problem(where: str, body: Any, fields: tuple[Field, ...]) -> str | None:
    if type(body) is not dict:
        return f"the {where} is not a map"
    if not all(type(k) is str for k in body):
        return f"the {where} has keys that are not strings"
    for field in fields:
        if field.name not in body:
            if field.required:
                return f"the {where} has no {field.name!r}"
            continue
        value = body[field.name]
        if type(value) is bool and bool not in field.types or not isinstance(value, field.types):
            return f"the {where}'s {field.name!r} is a {type(value).__name__}"
        if field.items is not None and value is not None:
            items: Any = value.values() if type(value) is dict else value
            keys_ok = type(value) is not dict or all(type(k) is str for k in value)
            if not keys_ok or not all(isinstance(item, field.items) for item in items):
                return f"the {where}'s {field.name!r} holds items of the wrong types"
    return None


def header_problem(body: Any) -> str | None:
    """What is wrong with a HEADER frame's body, or None."""
    problem = _problem("header", body, HEADER_FIELDS)
    if problem is None:
        problem = _problem("header's entry", body["entry"], ENTRY_FIELDS + KIND_ENTRY_FIELDS.get(body["kind"], ()))
    if problem is None and body["kind"] == "wsgi" and not all(type(k) is str for k in body["entry"]["environ"]):
        problem = "the header's entry's 'environ' has keys that are not strings"
    if problem is None and body["kind"] == "wsgi" and body["entry"].get("taken", 0) < 0:
        problem = "the header's entry takes fewer than no chunks of the response"
    if problem is None and body.get("machine") is not None:
        problem = _problem("header's machine", body["machine"], MACHINE_FIELDS)
    if problem is None and body.get("pin") is not None:
        problem = _problem("header's pin", body["pin"], PIN_FIELDS)
    return problem


def end_problem(body: Any) -> str | None:
    """What is wrong with an END frame's body, or None."""
    problem = _problem("END frame", body, END_FIELDS)
    if problem is not None:
        return problem
    for name in ("stdout", "stderr", "returned"):
        if body.get(name) is not None:
            problem = problem or _problem(f"END frame's {name}", body[name], STREAM_FIELDS)
    exception = body.get("exception")
    if problem is None and exception:
        problem = _problem("END frame's exception", exception, EXCEPTION_FIELDS)
        frames = exception["traceback"] if problem is None else []
        if len(frames) > MAX_TRACEBACK_FRAMES:
            problem = "the END frame's exception has more traceback frames than any run"
        elif not all(len(f) == 4 and type(f[0]) is str and type(f[1]) in (int, _NONE) and type(f[2]) is str
                     and type(f[3]) is str for f in frames):
            problem = "the END frame's exception has traceback frames that are not [file, line, function, text]"
    if problem is None and (body.get("events") or 0) < 0:
        problem = "the END frame counts fewer than no events"
    return problem
