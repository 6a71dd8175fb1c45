"""Value encoding of the trace: msgpack plus ext types, never pickle.

Plain values (None, bool, int, float, str, bytes, list, dict) are msgpack's own.
Everything else a boundary may hand back gets an ext type below; a type with no
encoding is an error at record time (:class:`UnencodableValue`), named with the
boundary that produced it. Projects add their own through registered codecs.
"""

from __future__ import annotations

import _thread
import datetime as _dt
import decimal
import enum
import importlib
import os
import pathlib
import re
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

from ..frames import rebuilt_traceback, recorded_frames

try:  # hashlib's own, without loading OpenSSL: some milliseconds of every start, for the one hash we use
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

# Ext type codes. Append only: they are part of the file format.
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_DATETIME = 4
EXT_DATE = 5
EXT_TIME = 6
EXT_TIMEDELTA = 7
EXT_DECIMAL = 8
EXT_UUID = 9
EXT_COMPLEX = 10
EXT_BIGINT = 11
EXT_EXCEPTION = 12
EXT_CODEC = 13
EXT_DIGEST = 14
EXT_RAISED = 15
EXT_BYTEARRAY = 16  # reserved: msgpack itself packs bytearray and memoryview as bin, read back as bytes
EXT_ENUM = 17
EXT_REF = 18  # a value stored once in the recording's VALUES frames (format 1.6): its index, big-endian


class UnencodableValue(TypeError):
    """A value crossed a boundary that the trace format cannot hold."""

    def __init__(self, value: object, boundary: str | None = None, role: str = "returned by") -> None:
        self.value = value
        self.value_type = f"{type(value).__module__}.{type(value).__qualname__}"
        self.boundary = boundary
        where = f" {role} boundary {boundary!r}" if boundary else ""
        super().__init__(
            f"cannot record a value of type {self.value_type}{where}: register a codec for it "
            "(pytest_retrace.format.codec.register_codec or the retrace_register_codecs hook), or mark the function "
            "that returns it as a @pytest_retrace.boundary that returns plain values"
        )


class Digest:
    """Stands for a large value (socket payloads, written file contents): size and hash, plus a preview."""

    __slots__ = ("size", "blake2b", "head")

    def __init__(self, size: int, blake2b: str, head: bytes = b"") -> None:
        self.size = size
        self.blake2b = blake2b
        self.head = head

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls(len(data), blake2b(data, digest_size=16).hexdigest(), bytes(data[:48]))

    @classmethod
    def secret(cls, data: bytes) -> Digest:
        """A digest with no preview: for credentials, which must match on replay but never sit in a file."""
        return cls(len(data), blake2b(data, digest_size=16).hexdigest())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Digest) and (self.size, self.blake2b) == (other.size, other.blake2b)

    def __hash__(self) -> int:
        return hash((self.size, self.blake2b))

    def __repr__(self) -> str:
        return f"<{self.size} bytes blake2b={self.blake2b[:12]} head={self.head!r}>"


class Raised:
    """Marks an event whose external call raised instead of returning.

    Recording, it keeps the frames the exception's traceback has when the call raises (they grow as the
    exception goes on up through the program), and those of the exceptions chained to it inside the call:
    a replay raises it again with the same traceback and chain (:func:`chained`).

    Read from a file, the exception is rebuilt when first asked for: rebuilding imports the module
    that defines its type, and a replay must not import a library before the program does."""

    __slots__ = ("_exception", "_packed", "_frames")

    def __init__(self, exception: BaseException | None = None, packed: bytes | None = None,
                 inside: Callable[[BaseException], bool] | None = None) -> None:
        self._exception = exception
        self._packed = packed
        self._frames = None if exception is None else _chain_frames(exception, inside)

    @property
    def exception(self) -> BaseException:
        if self._exception is None:
            try:
                exc = settled(unpackb(self._packed), final=True)  # type: ignore[arg-type]
            except (ValueError, TypeError) as bad:  # read_recording checked it; a Raised made some other way
                exc = RecordedError(f"a recorded exception that cannot be read: {bad}")
            if not isinstance(exc, BaseException):
                exc = RecordedError(f"a recorded exception that is none: {short(exc)}")
            self._exception = exc
        return self._exception

    def __repr__(self) -> str:
        return f"Raised({self.exception!r})"


def _chain_frames(exc: BaseException, inside: Callable[[BaseException], bool] | None) -> dict[int, list[list[Any]]]:
    """Recorded frames of ``exc`` and of the exceptions chained to it (cause, context) that were raised inside
    the call, by id: the chain ends at an exception the program was handling when it made the call."""
    frames: dict[int, list[list[Any]]] = {}
    pending = [exc]
    while pending and len(frames) < _MAX_CHAIN:
        current = pending.pop()
        if id(current) in frames:
            continue
        frames[id(current)] = recorded_frames(current.__traceback__)
        pending += [linked for linked in (current.__cause__, current.__context__)
                    if linked is not None and (inside is None or inside(linked))]
    return frames


_MAX_CHAIN = 16
LIVE_CONTEXT = "live"  # a recorded exception's context was the exception the program was handling


def chained(exc: BaseException) -> tuple[BaseException | None, bool, BaseException | None]:
    """What a replay restores after raising ``exc`` (raising chains the exception being handled as its
    context): the recorded context, whether the context is suppressed, and the innermost recorded exception
    whose context is the one the program is handling now (None when no such link was recorded)."""
    innermost = None
    link: BaseException | None = exc
    seen = 0
    while link is not None and seen < _MAX_CHAIN:
        if getattr(link, "__retrace_live_context__", False):
            innermost = link
        link = link.__context__
        seen += 1
    return exc.__context__, exc.__suppress_context__, innermost


class RecordedError(Exception):
    """Stands in on replay for a recorded exception whose type cannot be rebuilt here."""


class Codec(NamedTuple):
    name: str
    type: type
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_CODECS_BY_NAME: dict[str, Codec] = {}
_CODECS_BY_TYPE: dict[type, Codec] = {}
# Called, in order, when a recording holds a value of a codec not registered yet: each may register more
# (the hooks' plugin manager loads installed packages' plugins, whose codecs register as it loads them).
_CODEC_SOURCES: list[Callable[[], object]] = []


def register_codec(name: str, type_: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
    """Teach the trace to hold values of ``type_``: ``encode`` maps one to encodable state, ``decode`` back."""
    codec = Codec(name, type_, encode, decode)
    _CODECS_BY_NAME[name] = codec
    _CODECS_BY_TYPE[type_] = codec


def _path_codec(cls: type[pathlib.PurePath]) -> None:
    """Paths travel as their text (a test's ``tmp_path``, a path a boundary hands back): making one runs no
    program code."""
    register_codec(f"pathlib.{cls.__name__}", cls, str, lambda text: cls(_str(text)))


for _path_type in (pathlib.PurePosixPath, pathlib.PureWindowsPath, type(pathlib.Path())):
    _path_codec(_path_type)


def add_codec_source(load: Callable[[], object]) -> None:
    """Call ``load()`` when a recording holds a value of a codec nobody registered yet (see ``_CODEC_SOURCES``)."""
    if load not in _CODEC_SOURCES:
        _CODEC_SOURCES.append(load)


def type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


# -- type paths read from a recording: classes only, from modules already imported or allowed -------------

# A recording is untrusted input (DESIGN §2): a type path in it may name only an exception class, an Enum or
# a structseq type, and its module must be imported already or be one of these, which are safe to import
# (they define the exceptions and enums boundaries hand back, and do nothing else on import). Exact names:
# a package's every submodule is not (its ``__main__`` runs a program when imported). Packages add theirs
# with allow_type_module().
_TYPE_MODULES: set[str] = {
    "builtins", "errno", "socket", "ssl", "select", "selectors", "http", "http.client", "urllib.error",
    "json", "json.decoder", "subprocess", "sqlite3", "concurrent.futures", "concurrent.futures._base",
    "asyncio", "asyncio.exceptions", "email.errors", "zoneinfo", "decimal", "uuid", "enum", "signal", "os",
    "time", "queue", "psycopg2", "psycopg2.errors", "psycopg2.extensions", "requests.exceptions",
    "urllib3.exceptions",
    # the machine and the user: C modules that only define their functions and structseq types when imported
    # (os.uname_result and os.times_result are posix's; pwd.struct_passwd, grp.struct_group, resource.struct_rusage)
    "posix", "pwd", "grp", "resource",
}
_TYPE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,15}")
MAX_QUALNAME_PARTS = 8


def allow_type_module(name: str) -> None:
    """Let recordings name exception and enum classes of module ``name`` (that module only, not its
    submodules) even before the program imports it: reading such a value then imports ``name``. For packages
    whose values a boundary hands back (a plugin's ``retrace_register_codecs`` hook is a good place to call
    this). A module that does anything but define things when imported must not be allowed."""
    if not _TYPE_PATH.fullmatch(name) or any(part.startswith("__") for part in name.split(".")):
        raise ValueError(f"{name!r} is not a module name that may be allowed")
    _TYPE_MODULES.add(name)


def _allowed_module(name: str) -> bool:
    return name in _TYPE_MODULES


class TypeUse(enum.Enum):
    """What a class named by a recording is for: each use admits its own classes only."""

    EXCEPTION = "exception"
    ENUM = "enum"
    STRUCTSEQ = "structseq"


def _is_structseq_type(cls: type) -> bool:
    """A real structseq type (os.stat_result, time.struct_time): made in C, whose constructor runs no Python."""
    return (cls.__base__ is tuple and type(cls.__dict__.get("n_sequence_fields")) is int
            and isinstance(cls.__dict__.get("__new__"), types.BuiltinFunctionType))


_ADMITS: dict[TypeUse, Callable[[type], bool]] = {
    TypeUse.EXCEPTION: lambda cls: issubclass(cls, BaseException),
    TypeUse.ENUM: lambda cls: issubclass(cls, enum.Enum),
    TypeUse.STRUCTSEQ: _is_structseq_type,
}


class Resolved(NamedTuple):
    cls: type
    trusted: bool  # its module was imported by the program (or by us earlier for the program), not only by us


_IMPORTED_BY_US: set[str] = set()
_state = _thread._local()  # per thread: how deep the ext values being decoded nest, and whether to resolve


def resolve_class(path: object, use: TypeUse) -> Resolved | None:
    """The class a recorded type path names, when it is one ``use`` admits and its module is imported or
    allowed; None when it cannot be resolved now (a later try may succeed once the program has imported its
    module). Raises :class:`MalformedValue` for a path that is no type path at all. Never calls anything
    the path names: attributes are read from ``__dict__``s, and only the final class is accepted."""
    if not isinstance(path, str) or ":" not in path or len(path) > 1000:
        raise MalformedValue(f"a malformed type path {short(path)}")
    module_name, _, qualname = path.partition(":")
    parts = qualname.split(".")
    if not _TYPE_PATH.fullmatch(module_name) or (
            len(parts) > MAX_QUALNAME_PARTS or not all(p.isidentifier() for p in parts)):
        return None  # a class defined in a function ("<locals>") is never found again either
    inspecting = getattr(_state, "inspect_only", False)  # checking only: nothing imported, nothing made
    module = sys.modules.get(module_name)
    trusted = module is not None and module_name not in _IMPORTED_BY_US
    if module is None:
        if inspecting or not _allowed_module(module_name):
            return None
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - a module missing here: the value cannot be rebuilt
            return None
        _IMPORTED_BY_US.add(module_name)
    obj: Any = module
    for part in parts:
        namespace = getattr(obj, "__dict__", None)
        if not isinstance(namespace, (dict, types.MappingProxyType)) or part not in namespace:
            return None
        obj = namespace[part]
    if not isinstance(obj, type) or not _ADMITS[use](obj):
        raise MalformedValue(f"{path} is not a{'n' if use is not TypeUse.STRUCTSEQ else ''} {use.value} class; "
                             "a recording names no other types")
    return None if inspecting else Resolved(obj, trusted)


# -- time zones ----------------------------------------------------------------------------------------


def _encode_tz(tz: _dt.tzinfo | None, when: _dt.datetime | None) -> Any:
    if tz is None:
        return None
    key = getattr(tz, "key", None)
    if key is not None and type(tz).__module__ == "zoneinfo":
        return ["zone", key]
    offset = tz.utcoffset(when)
    if offset is None:
        return None
    name = tz.tzname(when) if tz is not _dt.timezone.utc else None
    return ["offset", offset.days * 86400 + offset.seconds, offset.microseconds, name]


_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,3}")


def _zone(key: str) -> _dt.tzinfo:
    """The time zone ``key`` names, found in the system's time zone folders or an installed ``tzdata``. Not a
    ``tzdata`` of the folder the reader runs in: zoneinfo imports the package it finds, and a recording must not
    get anything imported by naming a zone."""
    import sysconfig
    import zoneinfo
    from importlib.util import find_spec

    if not _ZONE_KEY.fullmatch(key) or ".." in key:
        raise MalformedValue(f"a time zone key that names no zone: {short(key)}")
    if not any(os.path.isfile(os.path.join(folder, key)) for folder in zoneinfo.TZPATH):
        spec = find_spec("tzdata") if "tzdata" not in sys.modules else None  # finding imports nothing
        installed = [os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")]
        origin = os.path.realpath(spec.origin) if spec is not None and spec.origin else ""
        if "tzdata" not in sys.modules and not any(origin.startswith(folder + os.sep) for folder in installed):
            raise MalformedValue(f"the time zone {key!r} is not known on this machine (no tzdata for it)")
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise MalformedValue(f"the time zone {key!r} is not known on this machine: {exc}") from None


def _decode_tz(state: Any) -> _dt.tzinfo | None:
    if state is None:
        return None
    if type(state) is not list or not state:
        raise MalformedValue(f"a time zone that is not [form, …]: {short(state)}")
    if state[0] == "zone" and len(state) == 2 and type(state[1]) is str and len(state[1]) < 256:
        return _zone(state[1])
    if state[0] != "offset" or len(state) != 4:
        raise MalformedValue(f"a time zone that is neither a zone nor an offset: {short(state)}")
    _, seconds, micros, name = state
    offset = _dt.timedelta(seconds=_int(seconds), microseconds=_int(micros))
    if offset == _dt.timedelta(0) and name is None:
        return _dt.timezone.utc
    return _dt.timezone(offset, _str(name)) if name is not None else _dt.timezone(offset)


# -- exceptions ------------------------------------------------------------------------------------------

_EXCEPTION_ATTRS = ("errno", "strerror", "filename", "filename2", "returncode", "cmd", "output", "stderr",
                    "pgcode", "pgerror")


def _encode_exception(exc: BaseException, frames: dict[int, list[list[Any]]] | None = None) -> list[Any]:
    """``[type path, args, message, attributes, chain]``: the chain (traceback frames, cause, context, notes) only
    for an exception raised by a recorded call (``frames`` from :class:`Raised`)."""
    try:
        args = packb(exc.args)
    except (UnencodableValue, TypeError, ValueError):
        args = packb(tuple(repr(a) for a in exc.args))
    attrs = {}
    for name in _EXCEPTION_ATTRS:
        value = getattr(exc, name, None)
        if value is not None:
            try:
                attrs[name] = packb(value)
            except (UnencodableValue, TypeError, ValueError):
                pass
    state: list[Any] = [type_path(type(exc)), args, str(exc), attrs]
    if frames is not None and id(exc) in frames:
        def linked(other: BaseException | None) -> Any:
            if other is None:
                return None
            if id(other) not in frames:
                return LIVE_CONTEXT
            return msgpack.ExtType(EXT_EXCEPTION, packb(_encode_exception(other, frames)))

        notes = getattr(exc, "__notes__", None)
        state.append({"frames": frames[id(exc)], "cause": linked(exc.__cause__), "context": linked(exc.__context__),
                      "suppress": exc.__suppress_context__,
                      "notes": [str(n) for n in notes] if isinstance(notes, list) else None})
    return state


def _decode_exception(data: bytes, final: bool = False) -> Any:
    """The exception ``data`` holds; a :class:`Deferred` when its class cannot be resolved now (``final``: a
    :class:`RecordedError` instead, carrying the recorded type path and message)."""
    state = unpackb(data)
    if type(state) is not list or len(state) not in (4, 5):
        raise MalformedValue("an exception that is not [type, arguments, message, attributes, chain]")
    path, args_packed, message, attrs = state[:4]
    chain = state[4] if len(state) == 5 else None
    if type(args_packed) is not bytes or type(message) is not str or type(attrs) is not dict or (
            chain is not None and type(chain) is not dict):
        raise MalformedValue(f"an exception of {short(path)} with parts of the wrong types")
    args = unpackb(args_packed)
    if type(args) not in (tuple, list):
        raise MalformedValue(f"an exception of {short(path)} whose arguments are no sequence")
    values = {}
    for name, packed in attrs.items():
        if name not in _EXCEPTION_ATTRS or type(packed) is not bytes:
            raise MalformedValue(f"an exception of {short(path)} with an unknown attribute {short(name)}")
        values[name] = settled(unpackb(packed), final=True)
    if chain is not None:
        _check_chain(chain)
    resolved = resolve_class(path, TypeUse.EXCEPTION)
    if resolved is None and not final:
        return Deferred(EXT_EXCEPTION, data, TypeUse.EXCEPTION, path, message)
    exc: BaseException
    if resolved is None:
        exc = RecordedError(f"{path.replace(':', '.')}: {message}")
        exc.recorded_type = path  # type: ignore[attr-defined]
    else:
        exc = _built(resolved, tuple(settled(args, final=True)), values, message)
    if chain is not None:
        _restore_chain(exc, chain)
    return exc


def _built(resolved: Resolved, args: tuple[Any, ...], attrs: dict[str, Any], message: str) -> BaseException:
    """The exception, made the way its class makes it when that is safe (see :func:`_runs_python`)."""
    cls = resolved.cls
    exc = _made(resolved, cls, args, attrs)
    readonly = {}
    for name, value in attrs.items():
        try:
            setattr(exc, name, value)
        except (AttributeError, TypeError):
            readonly[name] = value
    if readonly:  # read-only in C (psycopg2's pgcode): a subclass of the same name carries them
        exc = _made(resolved, _same_face(cls, readonly), args, attrs)
    try:
        face = str(exc)
    except Exception:  # noqa: BLE001 - a __str__ that needs what its __init__ would have set
        face = None
    if face != message:  # arguments that could not be recorded as they were: the message stays
        exc = _made(resolved, _same_face(type(exc), {"__str__": lambda self, message=message: message}), args, attrs)
    return exc


_program_constructors = False  # set by a replay, for the program's own exception classes (see _made)


def run_program_constructors() -> None:
    """In a replay, rebuild the program's own exceptions with their own constructors (the program runs its
    own code anyway). Anywhere else (``retrace show``, the pytest process) a recording never gets a Python
    constructor called: whatever module is imported there, its classes are not the recording's to run."""
    global _program_constructors
    _program_constructors = True


def _made(resolved: Resolved, cls: type, args: tuple[Any, ...], attrs: dict[str, Any]) -> BaseException:
    if (resolved.trusted and _program_constructors) or not _runs_python(cls):
        try:
            if issubclass(cls, OSError) and "errno" in attrs:
                extra = [attrs[n] for n in ("filename", "filename2") if n in attrs]
                return cls(attrs["errno"], attrs.get("strerror"), *extra)  # type: ignore[no-any-return]
            return cls(*args)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - its arguments were recorded by their reprs
            pass
    return _bare(cls, args)


def _runs_python(cls: type) -> bool:
    """Whether making an instance of ``cls`` runs Python code of its own (an ``__init__`` or ``__new__``)."""
    return any(isinstance(base.__dict__.get(name), (types.FunctionType, staticmethod, classmethod))
               for base in cls.__mro__ for name in ("__new__", "__init__"))


def _bare(cls: type, args: tuple[Any, ...]) -> BaseException:
    """An instance made without running any constructor of its own: by the first built-in ``__new__`` of its
    bases, with its arguments set afterwards."""
    new = next(base.__dict__["__new__"] for base in cls.__mro__
               if isinstance(base.__dict__.get("__new__"), types.BuiltinFunctionType))
    exc: BaseException = new(cls)
    exc.args = args
    return exc


def _same_face(cls: type, namespace: dict[str, Any]) -> type:
    """A subclass of ``cls`` that prints as ``cls`` does (a traceback names ``module.qualname``)."""
    return type(cls.__name__, (cls,), {**namespace, "__module__": cls.__module__, "__qualname__": cls.__qualname__})


MAX_TRACEBACK = 1100  # recorded frames of one exception: a RecursionError's traceback has about 1000


def _check_chain(chain: dict[str, Any]) -> None:
    frames = chain.get("frames") or []
    notes = chain.get("notes")
    if type(frames) is not list or len(frames) > MAX_TRACEBACK or not all(type(f) is list for f in frames) or (
            notes is not None and (type(notes) is not list or not all(type(n) is str for n in notes))):
        raise MalformedValue("an exception whose recorded traceback or notes are malformed")


def _restore_chain(exc: BaseException, chain: dict[str, Any]) -> None:
    frames = chain.get("frames") or []
    notes = chain.get("notes")
    exc.__traceback__ = rebuilt_traceback(frames)
    cause, context = settled(chain.get("cause"), final=True), settled(chain.get("context"), final=True)
    if isinstance(cause, BaseException):
        exc.__cause__ = cause
    if isinstance(context, BaseException):
        exc.__context__ = context
    elif context == LIVE_CONTEXT:
        exc.__retrace_live_context__ = True  # type: ignore[attr-defined]
    exc.__suppress_context__ = bool(chain.get("suppress"))
    if notes is not None:
        exc.__notes__ = list(notes)  # type: ignore[attr-defined]


# -- structseq (os.stat_result, time.struct_time …) ----------------------------------------------------


def _is_structseq(obj: object) -> bool:
    return hasattr(type(obj), "n_sequence_fields") and isinstance(obj, tuple)


def _encode_structseq(obj: Any) -> list[Any]:
    _, (sequence, extra) = obj.__reduce__()
    return [type_path(type(obj)), packb(tuple(sequence)), packb(dict(extra))]


def _decode_structseq(state: Any, data: bytes) -> Any:
    if type(state) is not list or len(state) != 3 or type(state[1]) is not bytes or type(state[2]) is not bytes:
        raise MalformedValue("a structseq value that is not [type, fields, extra fields]")
    resolved = resolve_class(state[0], TypeUse.STRUCTSEQ)
    sequence, extra = settled(unpackb(state[1]), final=True), settled(unpackb(state[2]), final=True)
    if type(sequence) not in (tuple, list) or type(extra) is not dict:
        raise MalformedValue(f"a {short(state[0])} value whose fields are malformed")
    if resolved is None:
        return Deferred(EXT_CODEC, data, TypeUse.STRUCTSEQ, state[0], short(tuple(sequence)))
    return resolved.cls(sequence, extra)


# -- the ext hooks -------------------------------------------------------------------------------------


def _default(obj: Any) -> msgpack.ExtType:
    t = type(obj)
    if t is tuple:
        return msgpack.ExtType(EXT_TUPLE, packb(list(obj)))
    if t is _dt.datetime:
        return msgpack.ExtType(
            EXT_DATETIME,
            packb([obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond,
                   obj.fold, _encode_tz(obj.tzinfo, obj)]),
        )
    if t is _dt.date:
        return msgpack.ExtType(EXT_DATE, packb(obj.toordinal()))
    if t is _dt.time:
        return msgpack.ExtType(
            EXT_TIME,
            packb([obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold, _encode_tz(obj.tzinfo, None)]),
        )
    if t is _dt.timedelta:
        return msgpack.ExtType(EXT_TIMEDELTA, packb([obj.days, obj.seconds, obj.microseconds]))
    if t is set or t is frozenset:
        return msgpack.ExtType(EXT_SET if t is set else EXT_FROZENSET, packb(list(obj)))
    if t is decimal.Decimal:
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode())
    if t is uuid.UUID:
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if t is complex:
        return msgpack.ExtType(EXT_COMPLEX, packb([obj.real, obj.imag]))
    if t is Digest:
        return msgpack.ExtType(EXT_DIGEST, packb([obj.size, obj.blake2b, obj.head]))
    if t is Raised:
        if obj._packed is not None:
            return msgpack.ExtType(EXT_RAISED, obj._packed)
        state = _encode_exception(obj.exception, obj._frames)
        return msgpack.ExtType(EXT_RAISED, packb(msgpack.ExtType(EXT_EXCEPTION, packb(state))))
    if t is Deferred:
        return msgpack.ExtType(obj.code, obj.data)
    if t is InternedTuple:  # packed in place: no table here (a call key, a nested value, another file)
        return msgpack.ExtType(EXT_TUPLE, packb(list(obj)))
    if t is InternedStr:
        return str(obj)
    if t is InternedBytes:
        return bytes(obj)
    codec = _CODECS_BY_TYPE.get(t)
    if codec is not None:
        return msgpack.ExtType(EXT_CODEC, packb([codec.name, codec.encode(obj)]))
    if isinstance(obj, enum.Enum):
        return msgpack.ExtType(EXT_ENUM, packb([type_path(t), obj.value]))
    if isinstance(obj, BaseException):
        return msgpack.ExtType(EXT_EXCEPTION, packb(_encode_exception(obj)))
    if t is int:  # only reaches here when it does not fit 64 bits
        return msgpack.ExtType(EXT_BIGINT, str(obj).encode())
    if _is_structseq(obj):
        return msgpack.ExtType(EXT_CODEC, packb(["structseq", _encode_structseq(obj)]))
    # Subclasses of plain types (str/int enums are handled above) travel as their base type.
    base: Any
    for base in (bool, int, float, str, bytes, list, dict):
        if isinstance(obj, base):
            return base(obj)  # type: ignore[no-any-return]
    raise UnencodableValue(obj)


def _decode_codec(data: bytes) -> Any:
    state = unpackb(data)
    if type(state) is not list or len(state) != 2 or type(state[0]) is not str:
        raise MalformedValue("a codec value that is not [codec name, state]")
    name, payload = state
    if name == "structseq":
        return _decode_structseq(payload, data)
    codec = _CODECS_BY_NAME.get(name)
    for load in _CODEC_SOURCES if codec is None else ():
        load()
        codec = _CODECS_BY_NAME.get(name)
        if codec is not None:
            break
    if codec is None:
        raise MalformedValue(
            f"the recording holds a value of codec {short(name)}, which is not registered here: install or "
            "import the package that registers it before replaying"
        )
    return codec.decode(payload)


def _decode_enum(data: bytes) -> Any:
    state = unpackb(data)
    if type(state) is not list or len(state) != 2:
        raise MalformedValue("an enum value that is not [type, value]")
    path, value = state
    resolved = resolve_class(path, TypeUse.ENUM)
    if resolved is None:
        return Deferred(EXT_ENUM, data, TypeUse.ENUM, path, short(value))
    return resolved.cls(value)


def _decode_datetime(s: Any) -> _dt.datetime:
    if type(s) is not list or len(s) != 9:
        raise MalformedValue("a datetime that is not [year … microsecond, fold, zone]")
    n = [_int(v) for v in s[:8]]
    return _dt.datetime(n[0], n[1], n[2], n[3], n[4], n[5], n[6], tzinfo=_decode_tz(s[8]), fold=n[7])


def _decode_time(s: Any) -> _dt.time:
    if type(s) is not list or len(s) != 6:
        raise MalformedValue("a time that is not [hour … microsecond, fold, zone]")
    n = [_int(v) for v in s[:5]]
    return _dt.time(n[0], n[1], n[2], n[3], tzinfo=_decode_tz(s[5]), fold=n[4])


def _ints(data: bytes, count: int) -> list[int]:
    values = unpackb(data)
    if type(values) is not list or len(values) != count:
        raise MalformedValue(f"{short(values)} is not {count} numbers")
    return [_int(v) for v in values]


def _int(value: Any) -> int:
    if type(value) is not int:
        raise MalformedValue(f"{short(value)} where a whole number belongs")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise MalformedValue(f"{short(value)} where a string belongs")
    return value


def _list(data: bytes) -> list[Any]:
    values = unpackb(data)
    if type(values) is not list:
        raise MalformedValue(f"{short(values)} where a sequence belongs")
    return values


MAX_NUMBER_TEXT = 4300  # digits of a big int or Decimal: Python's own default limit for int(str)
_BIGINT = re.compile(rb"-?[0-9]{1,%d}" % MAX_NUMBER_TEXT)


def _decode_bigint(data: bytes) -> int:
    if not _BIGINT.fullmatch(data):
        raise MalformedValue(f"a big int that is not up to {MAX_NUMBER_TEXT} digits")
    return int(data)


def _decode_decimal(data: bytes) -> decimal.Decimal:
    if len(data) > MAX_NUMBER_TEXT:
        raise MalformedValue(f"a Decimal longer than {MAX_NUMBER_TEXT} characters")
    return decimal.Decimal(data.decode("ascii"))


def _decode_digest(data: bytes) -> Digest:
    values = unpackb(data)
    if type(values) is not list or len(values) != 3 or type(values[1]) is not str or type(values[2]) is not bytes:
        raise MalformedValue("a digest that is not [size, hash, head]")
    return Digest(_int(values[0]), values[1], values[2])


def _decode_complex(data: bytes) -> complex:
    values = unpackb(data)
    if type(values) is not list or len(values) != 2 or not all(type(v) in (int, float) for v in values):
        raise MalformedValue("a complex number that is not [real, imaginary]")
    return complex(*values)


def _decode_raised(data: bytes) -> Raised:
    """Checked now (without resolving any type: a replay must not import a library before the program does),
    rebuilt when first raised."""
    inspecting = getattr(_state, "inspect_only", False)
    _state.inspect_only = True
    try:
        checked = unpackb(data)
    finally:
        _state.inspect_only = inspecting
    if not isinstance(checked, (BaseException, Deferred)) or (
            isinstance(checked, Deferred) and checked.use is not TypeUse.EXCEPTION):
        raise MalformedValue("a raised call whose exception is none")
    return Raised(packed=data)


_DECODERS: dict[int, Callable[[bytes], Any]] = {
    EXT_TUPLE: lambda d: tuple(_list(d)),
    EXT_SET: lambda d: set(_list(d)),
    EXT_FROZENSET: lambda d: frozenset(_list(d)),
    EXT_DATETIME: lambda d: _decode_datetime(unpackb(d)),
    EXT_DATE: lambda d: _dt.date.fromordinal(_int(unpackb(d))),
    EXT_TIME: lambda d: _decode_time(unpackb(d)),
    EXT_TIMEDELTA: lambda d: _dt.timedelta(*_ints(d, 3)),
    EXT_DECIMAL: _decode_decimal,
    EXT_UUID: lambda d: uuid.UUID(bytes=d),
    EXT_COMPLEX: _decode_complex,
    EXT_BIGINT: _decode_bigint,
    EXT_EXCEPTION: _decode_exception,
    EXT_CODEC: _decode_codec,
    EXT_DIGEST: _decode_digest,
    EXT_RAISED: _decode_raised,
    EXT_ENUM: _decode_enum,
}
_EXT_NAMES = {code: name[4:].lower() for name, code in globals().items() if name.startswith("EXT_")}
MAX_EXT_DEPTH = 48  # ext values inside ext values: each level is a nested unpack on the C stack
MAX_DEPTH = 200  # containers inside containers, across ext values


class MalformedValue(ValueError):
    """A value in a recording that no writer of ours produces: the recording is corrupt."""


def ext_hook(code: int, data: bytes) -> Any:
    decoder = _DECODERS.get(code)
    if decoder is None:
        if code == EXT_REF:  # only a frame's own values refer to the table (Decoding.ext_hook resolves them)
            raise MalformedValue("a reference to a stored value inside an encoded value, or outside a recording")
        raise MalformedValue(f"unknown ext type {code} in recording: it was written by a newer pytest-retrace, "
                             "or it is damaged")
    depth = getattr(_state, "depth", 0)
    if depth >= MAX_EXT_DEPTH:
        raise MalformedValue(f"values nested more than {MAX_EXT_DEPTH} ext levels deep")
    _state.depth = depth + 1
    try:
        value = decoder(data)
        if depth == 0 and type(value) in _CONTAINERS:  # its containers, however deep they sit in ext values
            problem = nesting_problem(value)
            if problem is not None:
                raise MalformedValue(problem)
        return value
    except MalformedValue:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged value makes a constructor raise
        raise MalformedValue(f"a bad {_EXT_NAMES[code]} value: {short(exc)}") from None
    finally:
        _state.depth = depth


def check_exts(payload: bytes, exts: list[int], decoding: Decoding | None = None) -> None:
    """Decode the ext values found in ``payload`` at ``exts`` (``[start, end, is_key] …`` offsets, as the event
    scanner hands them over), each alone (``decoding``: the recording's stored values, for references): what makes
    one malformed raises MalformedValue, and nothing else of ``payload`` is decoded."""
    hook = ext_hook if decoding is None else decoding.ext_hook
    for k in range(0, len(exts), 3):
        value = msgpack.unpackb(payload[exts[k] : exts[k + 1]], ext_hook=hook, raw=False, strict_map_key=False)
        if exts[k + 2]:
            try:
                hash(value)
            except TypeError:
                raise MalformedValue(f"a map key that cannot be one: {short(value)}") from None


def short(value: object, limit: int = 80) -> str:
    """A value from a recording as an error message may quote it (bounded; no repr of ours can fail)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a damaged value's repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- values decoded later: types whose module the program has not imported yet --------------------------


class Deferred:
    """An enum, exception or structseq value whose class cannot be resolved yet: its module is neither imported
    nor allowed (a replay reads its events before the program imports its modules). It is resolved where the
    replay hands it to the program (:func:`settled`); elsewhere it shows as what it was, and packs back into
    the same bytes."""

    __slots__ = ("code", "data", "use", "path", "shown")
    made = 0  # how many were made outside a check (a reader compares it before and after a frame)

    def __init__(self, code: int, data: bytes, use: TypeUse, path: str, shown: str) -> None:
        if not getattr(_state, "inspect_only", False):
            Deferred.made += 1
        self.code = code
        self.data = data
        self.use = use
        self.path = path
        self.shown = shown

    def resolve(self, final: bool) -> Any:
        """The value, when its class resolves now; otherwise ``self`` (``final``: an exception becomes a
        :class:`RecordedError`)."""
        exception = self.use is TypeUse.EXCEPTION
        try:
            value = _decode_exception(self.data, final) if exception else ext_hook(self.code, self.data)
        except MalformedValue:  # its class no longer takes it (an enum member gone): it stays what it shows
            return self
        return self if isinstance(value, Deferred) else value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deferred) and (self.code, self.data) == (other.code, other.data)

    def __hash__(self) -> int:
        return hash((self.code, self.data))

    def __repr__(self) -> str:
        return f"<{self.use.value} {self.path} {self.shown} (its module is not imported)>"


def _children(value: Any) -> Any:
    t = type(value)
    if t is list or t is tuple or t is set or t is frozenset:
        return value
    if t is dict:
        return (*value.keys(), *value.values())
    if isinstance(value, BaseException):
        return value.args
    return ()


def nesting_problem(value: Any) -> str | None:
    """Why ``value`` nests too deep to handle (repr, compare and pack recurse), or None."""
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if depth > MAX_DEPTH:
            return f"values nested more than {MAX_DEPTH} levels deep"
        for child in _children(current):
            t = type(child)
            if t in _PLAIN:  # most values: cheap to pass by
                continue
            if t in _CONTAINERS or isinstance(child, BaseException):
                pending.append((child, depth + 1))
    return None


_CONTAINERS = (list, tuple, dict, set, frozenset)
_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})


def has_deferred(value: Any) -> bool:
    pending = [value]
    while pending:
        current = pending.pop()
        if type(current) is Deferred:
            return True
        pending.extend(_children(current))
    return False


def settled(value: Any, final: bool = False) -> Any:
    """``value`` with every :class:`Deferred` in it resolved where it can be now (``final``: exceptions that
    cannot become :class:`RecordedError`); the same object when nothing in it changed."""
    t = type(value)
    if t is Deferred:
        return value.resolve(final)
    if t is list or t is tuple or t is set or t is frozenset:
        items = [settled(v, final) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else t(items)
    if t is dict:
        pairs = [(settled(k, final), settled(v, final)) for k, v in value.items()]
        same = all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True))
        return value if same else dict(pairs)
    return value


_PACK_OPTIONS: dict[str, Any] = {"default": _default, "use_bin_type": True, "strict_types": True, "datetime": False}


def make_packer(interning: Interning | None = None) -> msgpack.Packer:
    """A packer for one thread's use (a Packer's buffer must not be shared or re-entered); with ``interning``,
    marked values and raised exceptions it meets are stored once in that table and packed as references."""
    if interning is None:
        return msgpack.Packer(**_PACK_OPTIONS)
    return msgpack.Packer(**{**_PACK_OPTIONS, "default": interning.default})


def packb(value: Any) -> bytes:
    """Encode one value with a fresh packer, so ext encoders may nest calls safely."""
    return msgpack.packb(value, **_PACK_OPTIONS)


def unpackb(data: bytes, decoding: Decoding | None = None, scanned: bool = False) -> Any:
    """Decode one value; ``decoding``: the recording's stored values, which the value's references name. Raises
    :class:`MalformedValue` (or msgpack's errors, all ValueErrors) for bytes no writer of ours produced. Sizes are
    bounded by ``data``'s length (msgpack's default). ``scanned``: the plain containers' nesting was checked already
    (an EVENTS frame, see format/events.py: read_events); ext values check their own."""
    hook = ext_hook if decoding is None else decoding.ext_hook
    value = msgpack.unpackb(data, ext_hook=hook, raw=False, strict_map_key=False)
    if not scanned and getattr(_state, "depth", 0) == 0 and type(value) in _CONTAINERS:
        problem = nesting_problem(value)
        if problem is not None:
            raise MalformedValue(problem)
    return value


# -- values stored once: the VALUES frames of a recording and the references its events hold ------------------
#
# A query text, a cursor description, a response's headers come back with every call that uses them. An adapter
# marks such a value (:func:`interned`); when it comes again, the writer's packer stores it once, in a VALUES frame
# written before the first frame that refers to it, and packs a 3-5 byte reference (EXT_REF) from then on. A raised
# exception is stored once the same way without being marked (a missing file's FileNotFoundError, on every
# request). Only a frame's top-level values refer to the table, never a value inside an ext value (those are packed
# with a plain packer), and a stored value holds no reference: references never chain.
#
# The reader shares one decoded object among all references to a value, so only immutable values are stored:
# strings, bytes, tuples of those and of numbers (a raised exception is rebuilt per reference from its shared
# bytes). What a crafted file can make a reader do stays bounded: a stored value is at most MAX_STORED_BYTES packed,
# a recording stores at most MAX_STORED values, and its references add up to at most MAX_EXPANSION values
# (a tuple counts its items, nested ones too); the writer keeps the same bounds (past them it packs in place), so a
# file a writer of ours made never breaks them.

MAX_STORED = 1 << 20
MAX_STORED_BYTES = 1 << 16
MAX_EXPANSION = 1 << 26
_STORED_DEPTH = 8  # tuples inside tuples, in a stored value


class InternedStr(str):
    """A str an adapter marked as likely to repeat (:func:`interned`)."""

    __slots__ = ()


class InternedBytes(bytes):
    """A bytes value an adapter marked as likely to repeat (:func:`interned`)."""

    __slots__ = ()


class InternedTuple(tuple):  # type: ignore[type-arg]
    """A tuple an adapter marked as likely to repeat (:func:`interned`)."""

    __slots__ = ()


_MARKERS: dict[type, type] = {str: InternedStr, bytes: InternedBytes, tuple: InternedTuple}


def interned(value: Any) -> Any:
    """``value`` marked as likely to repeat in a recording (a query text, a cursor description, headers): the
    file then stores it once and refers to it. The mark changes nothing else: the value is a str, bytes or tuple
    equal to ``value`` that behaves as it does, and decodes as the plain type. Meant for immutable values (a tuple
    of strings and numbers, tuples of those); any other value comes back as it is, and a tuple holding anything
    else is packed in place when written."""
    marker = _MARKERS.get(type(value))
    return value if marker is None else marker(value)


def _weight(value: Any, depth: int = 0) -> int:
    """What referring to ``value`` costs a reader (1, and its items when a tuple); -1 when it cannot be stored
    (a mutable value: references share one decoded object)."""
    t = type(value)
    if t in _SCALARS:
        return 1
    if (t is tuple or t is InternedTuple) and depth < _STORED_DEPTH:
        total = 1
        for item in value:
            weight = _weight(item, depth + 1)
            if weight < 0:
                return -1
            total += weight
        return total
    return -1


_SCALARS = frozenset({str, bytes, int, float, bool, type(None), InternedStr, InternedBytes})


def _ref(index: int) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_REF, index.to_bytes(1 if index < 0x100 else 2 if index < 0x10000 else 4, "big"))


class Interning:
    """The writer's side: the values one recording stores once, in the order they were first met.

    ``default`` is the packer hook (:func:`make_packer`): it adds what it meets to :attr:`entries` (packed), and
    the writer writes the entries added since its last frame in a VALUES frame before the frame it packed. A value
    is stored when it comes a second time (the first is packed in place): one that comes once, as most do in a
    recording of one request, costs nothing more. One writer thread packs a recording's frames: not thread-safe."""

    __slots__ = ("entries", "_by_text", "_by_tuple", "_tuple_reprs", "_by_packed", "_refs", "_weights", "expanded",
                 "_seen", "_keyer")

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        # Where each value met is stored (-1: met once, not stored yet). Looking up runs for every reference: it
        # must be cheap, and exact (1, 1.0 and True are equal and must not stand for each other). str and bytes by
        # themselves (hashes cached); tuples by themselves, their repr telling equal values of other types apart;
        # raised exceptions by their packed form.
        self._by_text: dict[Any, int] = {}
        self._by_tuple: dict[tuple[Any, ...], int] = {}
        self._tuple_reprs: dict[tuple[Any, ...], str] = {}
        self._by_packed: dict[bytes, int] = {}
        self._refs: list[msgpack.ExtType] = []
        self._weights: list[int] = []
        self.expanded = 0  # what the references written so far cost a reader (see MAX_EXPANSION)
        self._seen = 0  # values met once: as many as may be stored are remembered
        # One packer for what is stored or looked up packed (a fresh Packer allocates its buffer each time). Never
        # re-entered: its hook is the plain one, which never calls back here.
        self._keyer = msgpack.Packer(**_PACK_OPTIONS)

    def default(self, obj: Any) -> Any:
        t = type(obj)
        if t is InternedStr or t is InternedBytes:
            index = self._by_text.get(obj)
            if index is None or index < 0:
                plain = str(obj) if t is InternedStr else bytes(obj)
                index = self._met(self._by_text, plain, index, 1, plain) if len(plain) < MAX_STORED_BYTES else None
            return self._refer(index, obj)
        if t is InternedTuple:
            return self._refer(self._tuple(obj), obj)
        if t is Raised:
            packed = self._keyer.pack(obj)
            index = self._by_packed.get(packed)
            if index is None or index < 0:
                index = self._met(self._by_packed, packed, index, 1, obj)
            return self._refer(index, obj)
        return _default(obj)

    def _tuple(self, obj: tuple[Any, ...]) -> int | None:
        try:
            index = self._by_tuple.get(obj)
        except TypeError:  # unhashable inside: not a value that can be shared
            return None
        text = repr(obj)
        if index is not None and self._tuple_reprs[obj] != text:
            return None  # equal to a tuple met before, but of other types: in place
        if index is not None and index >= 0:
            return index
        weight = _weight(obj)
        if weight < 0 or (index is None and self._seen >= MAX_STORED):
            return None
        plain = tuple(obj)
        self._tuple_reprs.setdefault(plain, text)
        return self._met(self._by_tuple, plain, index, weight, plain)

    def _met(self, table: dict[Any, int], key: Any, index: int | None, weight: int, value: Any) -> int | None:
        """Where ``value`` (``key`` in ``table``, where it has ``index``: None, never met; -1, met once) is stored
        now that it is met again; None the first time, and when it cannot be stored."""
        if index is None:
            if self._seen < MAX_STORED:
                self._seen += 1
                table[key] = -1
            return None
        data = self._keyer.pack(value)
        if len(data) > MAX_STORED_BYTES or len(self.entries) >= MAX_STORED:
            return None
        index = table[key] = len(self.entries)
        self.entries.append(data)
        self._refs.append(_ref(index))
        self._weights.append(weight)
        return index

    def _refer(self, index: int | None, obj: Any) -> Any:
        """The reference to stored value ``index``; ``obj`` in place when it is not stored, or when a reader would
        refuse more references."""
        if index is not None:
            weight = self._weights[index]
            if self.expanded + weight <= MAX_EXPANSION:
                self.expanded += weight
                return self._refs[index]
        return _default(obj)


class Decoding:
    """The reader's side: the values one recording stores (its VALUES frames, :meth:`store`), for decoding the
    references its other frames hold. ``values`` is a plain list, in stored order, that the reader appends to as
    frames arrive (through :meth:`store`, which checks each value).

    Decode a frame of that recording with ``unpackb(data, decoding=d)``, or with any msgpack decoder given
    ``ext_hook=d.ext_hook`` (it handles every ext type, references included). A reference to a value not stored
    yet, or references that add up to more than :data:`MAX_EXPANSION`, raise :class:`MalformedValue` (the
    recording is corrupt at the frame being decoded). ``known``: refer only to the first ``known`` values (a lazy
    decoder that runs after the whole file was read keeps forward references out by giving each frame the count
    stored before it)."""

    __slots__ = ("values", "_weights", "expanded", "known")

    def __init__(self, values: list[Any] | None = None, known: int | None = None) -> None:
        self.values: list[Any] = [] if values is None else values
        self._weights = [1 if type(v) is Raised else _weight(v) for v in self.values]
        if any(weight < 0 for weight in self._weights):
            raise MalformedValue("stored values that are not strings, bytes, tuples of those and numbers, or raised "
                                 "exceptions")
        self.expanded = 0
        self.known = known

    def store(self, packed: Any) -> None:
        """Take in one value of a VALUES frame (its packed bytes). Raises :class:`MalformedValue` for one no writer
        of ours stores."""
        if type(packed) is not bytes or len(packed) > MAX_STORED_BYTES:
            raise MalformedValue(f"a stored value that is not up to {MAX_STORED_BYTES} packed bytes")
        if len(self.values) >= MAX_STORED:
            raise MalformedValue(f"more than {MAX_STORED} stored values")
        value = unpackb(packed)  # the plain hook: a stored value that refers to another is malformed
        weight = 1 if type(value) is Raised else _weight(value)
        if weight < 0:
            raise MalformedValue(f"a stored value that is not a string, bytes, a tuple of those and numbers, or a "
                                 f"raised exception: {short(value)}")
        self._weights.append(weight)
        self.values.append(value)

    def ext_hook(self, code: int, data: bytes) -> Any:
        if code != EXT_REF:
            return ext_hook(code, data)
        if len(data) not in (1, 2, 4):
            raise MalformedValue("a reference to a stored value that is not 1, 2 or 4 bytes")
        index = int.from_bytes(data, "big")
        stored = len(self.values) if self.known is None else min(self.known, len(self.values))
        if index >= stored:
            raise MalformedValue(f"a reference to stored value {index}, but only {stored} were stored before it")
        weight = self._weights[index]
        if self.expanded + weight > MAX_EXPANSION:
            raise MalformedValue(f"references to stored values that add up to more than {MAX_EXPANSION} values")
        self.expanded += weight
        value = self.values[index]
        if type(value) is Raised:  # one per event: a replay raises and chains it as that event's own
            return Raised(packed=value._packed)
        return value
