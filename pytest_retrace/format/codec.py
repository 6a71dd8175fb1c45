"""Value encoding of the trace: msgpack plus ext types, never pickle.

Plain values (None, bool, int, float, str, bytes, list, dict) are msgpack's own.
Everything else a boundary may hand back gets an ext type below; a type with no
encoding is an error at record time (:class:`UnencodableValue`), named with the
boundary that produced it. Projects add their own through registered codecs.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import hashlib
import importlib
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

from ..frames import rebuilt_traceback, recorded_frames

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
        return cls(len(data), hashlib.blake2b(data, digest_size=16).hexdigest(), bytes(data[:48]))

    @classmethod
    def secret(cls, data: bytes) -> Digest:
        """A digest with no preview: for credentials, which must match on replay but never sit in a file."""
        return cls(len(data), hashlib.blake2b(data, digest_size=16).hexdigest())

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
            self._exception = unpackb(self._packed)  # type: ignore[arg-type]
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


def add_codec_source(load: Callable[[], object]) -> None:
    """Call ``load()`` when a recording holds a value of a codec nobody registered yet (see ``_CODEC_SOURCES``)."""
    if load not in _CODEC_SOURCES:
        _CODEC_SOURCES.append(load)


def type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_type_path(path: str) -> Any:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


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


def _decode_tz(state: Any) -> _dt.tzinfo | None:
    if state is None:
        return None
    if state[0] == "zone":
        import zoneinfo

        return zoneinfo.ZoneInfo(state[1])
    _, seconds, micros, name = state
    offset = _dt.timedelta(seconds=seconds, microseconds=micros)
    if offset == _dt.timedelta(0) and name is None:
        return _dt.timezone.utc
    return _dt.timezone(offset, name) if name is not None else _dt.timezone(offset)


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


def _decode_exception(state: list[Any]) -> BaseException:
    path, args_packed, message, attrs = state[:4]
    args = unpackb(args_packed)
    try:
        cls = resolve_type_path(path)
        exc = _built(cls, args, attrs)
        if str(exc) != message:  # arguments that could not be recorded as they were: the message stays
            exc = _built(_same_face(cls, {"__str__": lambda self, message=message: message}), args, attrs)
    except Exception:
        exc = RecordedError(f"{path.replace(':', '.')}: {message}")
        exc.recorded_type = path  # type: ignore[attr-defined]
    if len(state) > 4:
        _restore_chain(exc, state[4])
    return exc


def _built(cls: Any, args: tuple[Any, ...], attrs: dict[str, bytes]) -> BaseException:
    if isinstance(cls, type) and issubclass(cls, OSError) and "errno" in attrs:
        extra = [unpackb(attrs[n]) for n in ("filename", "filename2") if n in attrs]
        return cls(unpackb(attrs["errno"]), unpackb(attrs.get("strerror", b"\xc0")), *extra)  # type: ignore[no-any-return]
    try:
        exc = cls(*args)
    except Exception:  # its arguments were recorded by their reprs: made without running its __init__
        exc = cls.__new__(cls, *args)
    readonly = {}
    for name, packed in attrs.items():
        try:
            setattr(exc, name, unpackb(packed))
        except (AttributeError, TypeError):
            readonly[name] = unpackb(packed)
    if readonly:  # read-only in C (psycopg2's pgcode): a subclass of the same name carries them
        exc = _same_face(cls, readonly)(*args)
    return exc  # type: ignore[no-any-return]


def _same_face(cls: type, namespace: dict[str, Any]) -> type:
    """A subclass of ``cls`` that prints as ``cls`` does (a traceback names ``module.qualname``)."""
    return type(cls.__name__, (cls,), {**namespace, "__module__": cls.__module__, "__qualname__": cls.__qualname__})


def _restore_chain(exc: BaseException, chain: dict[str, Any]) -> None:
    exc.__traceback__ = rebuilt_traceback(chain.get("frames") or [])
    cause, context = chain.get("cause"), chain.get("context")
    if isinstance(cause, BaseException):
        exc.__cause__ = cause
    if isinstance(context, BaseException):
        exc.__context__ = context
    elif context == LIVE_CONTEXT:
        exc.__retrace_live_context__ = True  # type: ignore[attr-defined]
    exc.__suppress_context__ = bool(chain.get("suppress"))
    if chain.get("notes") is not None:
        exc.__notes__ = list(chain["notes"])  # type: ignore[attr-defined]


# -- structseq (os.stat_result, time.struct_time …) ----------------------------------------------------


def _is_structseq(obj: object) -> bool:
    return hasattr(type(obj), "n_sequence_fields") and isinstance(obj, tuple)


def _encode_structseq(obj: Any) -> list[Any]:
    _, (sequence, extra) = obj.__reduce__()
    return [type_path(type(obj)), packb(tuple(sequence)), packb(dict(extra))]


def _decode_structseq(state: list[Any]) -> Any:
    cls = resolve_type_path(state[0])
    return cls(unpackb(state[1]), unpackb(state[2]))


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


def _decode_codec(state: list[Any]) -> Any:
    name, payload = state
    if name == "structseq":
        return _decode_structseq(payload)
    codec = _CODECS_BY_NAME.get(name)
    for load in _CODEC_SOURCES if codec is None else ():
        load()
        codec = _CODECS_BY_NAME.get(name)
        if codec is not None:
            break
    if codec is None:
        raise LookupError(
            f"the recording holds a value of codec {name!r}, which is not registered here: install or "
            "import the package that registers it before replaying"
        )
    return codec.decode(payload)


def _decode_datetime(s: list[Any]) -> _dt.datetime:
    return _dt.datetime(s[0], s[1], s[2], s[3], s[4], s[5], s[6], tzinfo=_decode_tz(s[8]), fold=s[7])


def _decode_time(s: list[Any]) -> _dt.time:
    return _dt.time(s[0], s[1], s[2], s[3], tzinfo=_decode_tz(s[5]), fold=s[4])


_DECODERS: dict[int, Callable[[bytes], Any]] = {
    EXT_TUPLE: lambda d: tuple(unpackb(d)),
    EXT_SET: lambda d: set(unpackb(d)),
    EXT_FROZENSET: lambda d: frozenset(unpackb(d)),
    EXT_DATETIME: lambda d: _decode_datetime(unpackb(d)),
    EXT_DATE: lambda d: _dt.date.fromordinal(unpackb(d)),
    EXT_TIME: lambda d: _decode_time(unpackb(d)),
    EXT_TIMEDELTA: lambda d: _dt.timedelta(*unpackb(d)),
    EXT_DECIMAL: lambda d: decimal.Decimal(d.decode()),
    EXT_UUID: lambda d: uuid.UUID(bytes=d),
    EXT_COMPLEX: lambda d: complex(*unpackb(d)),
    EXT_BIGINT: lambda d: int(d.decode()),
    EXT_EXCEPTION: lambda d: _decode_exception(unpackb(d)),
    EXT_CODEC: lambda d: _decode_codec(unpackb(d)),
    EXT_DIGEST: lambda d: Digest(*unpackb(d)),
    EXT_RAISED: lambda d: Raised(packed=d),
    EXT_ENUM: lambda d: (lambda s: resolve_type_path(s[0])(s[1]))(unpackb(d)),
}


def ext_hook(code: int, data: bytes) -> Any:
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise ValueError(f"unknown ext type {code} in recording: it was written by a newer pytest-retrace")
    return decoder(data)


_PACK_OPTIONS: dict[str, Any] = {"default": _default, "use_bin_type": True, "strict_types": True, "datetime": False}


def make_packer() -> msgpack.Packer:
    """A packer for one thread's use (a Packer's buffer must not be shared or re-entered)."""
    return msgpack.Packer(**_PACK_OPTIONS)


def packb(value: Any) -> bytes:
    """Encode one value with a fresh packer, so ext encoders may nest calls safely."""
    return msgpack.packb(value, **_PACK_OPTIONS)


def unpackb(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False)
