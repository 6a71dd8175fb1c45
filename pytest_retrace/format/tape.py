"""The ``*.retrace`` file: magic and version, then CRC'd frames.

Layout::

    b"RETRACE\\0" major:u16 minor:u16
    frame*            each: length:u32 crc32:u32 payload   (big-endian; crc over payload)

A frame's payload is a msgpack ``[kind, body]``: one HEADER first, then NAMES
(new boundary names, in id order), VALUES (values stored once, which later frames
refer to: see ``codec.Interning``) and EVENTS (a batch of events) frames, and an
END frame with the outcome. A file without END is *truncated* (the process was
killed) and stays readable up to the last whole frame; a frame with a bad CRC or
impossible framing is *corrupt*, reported with its byte offset.

A *sealed* recording (a project public key was configured, see ``sealing``) starts
with a small readable HEADER that says whose key it is sealed for; every frame after
it is a SEALED frame, ``[5, ciphertext]``, whose plaintext is the frame payload above,
the full header first.

While recording, the application thread only appends events to a list; a
background thread drains it into frames (:class:`TapeWriter`). A recording is
written under a temporary name, mode 0600, and put in place whole (:func:`publish`).
"""

from __future__ import annotations

import _io
import _thread
import gc
import os
import re
import struct
import zlib
from collections.abc import Callable, MutableSequence
from typing import Any, BinaryIO

import msgpack

from ..enums import StrEnum
from ..errors import RecordingError
from . import codec, shapes
from .events import (
    Event,
    NameTable,
    Setup,
    decode_events,
    event_list,
    intern_names,
    read_events,
    split,
)
from .sealing import Envelope, Opener, Sealer, key_for, opener_for

MAGIC = b"RETRACE\x00"
FORMAT_MAJOR = 1
FORMAT_MINOR = 6  # 1.1: logical thread ids ("0.1") and synchronization events; 1.2: sealed frames;
# 1.3: the recordings of forked processes; 1.4: connection set-up (SETUP frames);
# 1.5: code paths relative to the project root (kinds/entry.py); 1.6: values stored once (VALUES frames)
FORMAT = f"{FORMAT_MAJOR}.{FORMAT_MINOR}"
_PREAMBLE = struct.Struct(">8sHH")
_FRAME = struct.Struct(">II")
MAX_FRAME = 1 << 30
HEADER_SIZE = _PREAMBLE.size + _FRAME.size  # a file shorter than this holds no frame at all

FRAME_HEADER = 1
FRAME_NAMES = 2
FRAME_EVENTS = 3
FRAME_END = 4
FRAME_SEALED = 5
FRAME_PROCESS = 6  # [label, recording]: a forked process's own whole recording, by its logical id ("1", "1.2")
FRAME_SETUP = 7  # connection set-up (events.Setup): which events were set-up ones, and the process's set-up log
FRAME_VALUES = 8  # [packed value …]: values stored once, numbered on from the ones before (codec.Interning)
MAX_PROCESSES = 4096
_PROCESS_LABEL = re.compile(r"[1-9][0-9]{0,5}(\.[1-9][0-9]{0,5}){0,15}")
# What a sealed recording's readable header keeps: what collecting and rotating need, nothing of the run.
PUBLIC_HEADER_KEYS = ("format", "retrace_version", "kind", "created_at", "tags", "pin")

FLUSH_INTERVAL = 0.05  # seconds between background flushes
_start_thread = _thread.start_new_thread  # the original: boundaries patch the module attribute


def encode_frame(kind: int, body: Any, packer: msgpack.Packer | None = None, sealer: Sealer | None = None) -> bytes:
    return framed((packer or codec.make_packer()).pack([kind, body]), sealer)


def framed(payload: bytes, sealer: Sealer | None = None) -> bytes:
    """A frame around a packed ``[kind, body]`` (sealed first with ``sealer``)."""
    if sealer is not None:
        payload = msgpack.packb([FRAME_SEALED, sealer.seal(payload)])
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def public_header(header: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    """The readable header of a sealed recording (a pin shows only that it is one: its exception's message and
    place may quote production data)."""
    public = {key: header.get(key) for key in PUBLIC_HEADER_KEYS}
    pin = public.get("pin")
    if isinstance(pin, dict):
        public["pin"] = {key: pin.get(key) for key in ("fingerprint", "pinned_at")}
    return {**public, "sealed": sealer.envelope.to_header()}


def readable_frame(header: dict[str, Any], sealer: Sealer) -> bytes:
    """A sealed recording's readable HEADER frame; the sealed header that follows authenticates it."""
    frame = encode_frame(FRAME_HEADER, public_header(header, sealer))
    sealer.readable = frame[_FRAME.size :]
    return frame


def create_private(path: str) -> int:
    """Open ``path`` for writing a recording: created 0600 (a recording holds production data), emptied."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)


def temp_beside(target: str | os.PathLike[str]) -> str:
    """A fresh temporary file (0600) in ``target``'s folder, to write a recording under until :func:`publish`."""
    fd, temp = open_temp_beside(target)
    os.close(fd)
    return temp


def open_temp_beside(target: str | os.PathLike[str]) -> tuple[int, str]:
    """:func:`temp_beside`, open for writing: its descriptor and its path."""
    folder, name = os.path.split(os.path.abspath(target))
    import tempfile  # here: its imports (random, shutil …) are some milliseconds of every start

    return tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)


def publish(temp: str, target: str | os.PathLike[str], force: bool = False) -> None:
    """Put the finished recording ``temp`` in place as ``target`` at once. An existing ``target`` stays
    (FileExistsError) unless ``force``: two recorders never write into one file."""
    target = os.fspath(target)
    if force:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails when target exists: the no-clobber rename
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: claim the name, then move onto it
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(temp, target)
        return
    os.unlink(temp)


def publish_beside(temp: str, target: str | os.PathLike[str]) -> str:
    """:func:`publish` under ``target``'s name, or, when another recorder took it meanwhile, the first free
    ``stem-N.retrace`` beside it; returns the name used (nothing recorded is lost)."""
    stem, suffix = os.path.splitext(os.fspath(target))
    candidate, n = os.fspath(target), 1
    while True:
        try:
            publish(temp, candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{stem}-{n}{suffix}"


class TapeStatus(StrEnum):
    """What reading a recording found."""

    COMPLETE = "complete"
    TRUNCATED = "truncated"  # no END frame: the recording stops early
    CORRUPT = "corrupt"  # a bad CRC or impossible framing


class Kind(StrEnum):
    """What a recording holds: a whole process, one call of a function, or one WSGI request."""

    PROCESS = "process"
    CALL = "call"
    WSGI = "wsgi"

    @classmethod
    def of(cls, header: dict[str, Any]) -> Kind:
        """The kind a header names; a RecordingError when it names none we know."""
        kind = header.get("kind", cls.PROCESS)
        try:
            return cls(kind)
        except ValueError:
            raise RecordingError(f"the recording is of an unknown kind {kind!r} (known: {', '.join(cls)}); "
                                 "it was written by a newer pytest-retrace, or it is damaged") from None

    @property
    def in_process(self) -> bool:
        """Recorded inside a running process (replayed by calling its entry point, not by running a program)."""
        return self is not Kind.PROCESS


class MemoryTape:
    """A recording kept in memory: the sink and name table a Recorder writes to, as a :class:`TapeWriter`
    has them. A :class:`TapeWriter` can write it to a file later (``tape=``)."""

    def __init__(self) -> None:
        self.sink: list[Any] = []
        self.table = NameTable()
        self.name_id = self.table.name_id
        self.error: str | None = None  # why the recording is incomplete, when it is

    def events(self) -> list[Event]:
        """The events, through the real encoding: what could not be written to a file fails here too."""
        return decode_events(codec.unpackb(codec.packb(self.sink)), list(self.table.names))


class TapeWriter:
    """Writes one recording; events handed over through :attr:`sink` are framed off-thread.

    The application thread appends to ``sink`` (a plain list: ``list.append`` is atomic
    under the GIL); the writer thread takes what is there at each tick, so the application
    never waits on the disk.
    """

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any], background: bool = True,
                 tape: MemoryTape | None = None, on_writer_thread: Callable[[], None] | None = None,
                 sealer: Sealer | None = None, fd: int | None = None) -> None:
        """``tape``: names and events gathered in memory before the file was opened (in-process recordings
        write only the ones they keep). ``on_writer_thread`` runs first on the background writer thread
        (the engine marks it as a thread of its own, whose calls are never recorded). ``sealer``: encrypt
        every frame after a readable header. ``fd``: ``path`` already open for writing (it is taken over).
        Raises OSError when the file cannot be written."""
        self.path = os.fspath(path)
        self.sealer = sealer
        self.sink: list[Any] = [] if tape is None else tape.sink
        self.table = NameTable() if tape is None else tape.table
        self.names = self.table.names
        self.name_id = self.table.name_id
        self._names_written = 0
        self.values_written = 0  # sink entries: events are 2 to 4 values each
        self.error: str | None = None if tape is None else tape.error
        # Values stored once: this file's own table (a forked child's writer starts a fresh one).
        self.interning = codec.Interning()
        self._stored_written = 0
        self._packer = codec.make_packer(self.interning)
        # Unbuffered: whole frames go out as they are framed, and a forked child holds no buffer
        # of ours that it could flush into the file a second time.
        descriptor = create_private(self.path) if fd is None else fd
        self._file: BinaryIO = _io.open(descriptor, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        try:
            self._write_all(_PREAMBLE.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR))
            if sealer is not None:
                self._write_all(readable_frame(header, sealer))
            self._write(FRAME_HEADER, header)
        except BaseException:
            self._file.close()
            raise
        self.io_failed = False  # the disk refused a write: the recording is lost, not just incomplete
        self._stop = False
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._done = _thread.allocate_lock()
        self._running = background
        if background:
            self._done.acquire()
            # A raw thread: invisible to threading.enumerate(), so the program sees the same
            # threads whether it is being recorded or replayed.
            _start_thread(self._run, (on_writer_thread,))

    def _run(self, on_writer_thread: Callable[[], None] | None) -> None:
        if on_writer_thread is not None:
            on_writer_thread()
        try:
            while not self._stop:
                self._wake.acquire(timeout=FLUSH_INTERVAL)
                self.flush()
        except OSError as exc:  # disk full, file gone: the program must not notice, the recording must say so
            self.error = f"writing {self.path} failed: {exc}"
            self.io_failed = True
            self._stop = True
        finally:
            self._done.release()

    def flush(self) -> None:
        # Count events before names: every event taken refers to a name registered before it.
        count = len(self.sink)
        known = len(self.names)
        if known > self._names_written:
            self._write(FRAME_NAMES, self.names[self._names_written : known])
            self._names_written = known
        if count:
            batch = self.sink[:count]
            del self.sink[:count]
            try:
                self._write(FRAME_EVENTS, batch)
            except (codec.UnencodableValue, TypeError, ValueError, OverflowError):
                self._write_encodable(batch)
            self.values_written += count
        self._file.flush()

    def _write(self, kind: int, body: Any) -> None:
        payload = self._packer.pack([kind, body])
        # What packing it stored goes first: a reader meets every stored value before a reference to it.
        stored = self.interning.entries
        if len(stored) > self._stored_written:
            self._write_all(encode_frame(FRAME_VALUES, stored[self._stored_written :], sealer=self.sealer))
            self._stored_written = len(stored)
        self._write_all(framed(payload, self.sealer))

    def _write_all(self, data: bytes) -> None:
        # Unbuffered writes may be short (a disk filling up): the rest goes on, or fails with the reason.
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(f"{self.path} takes no more bytes")
            view = view[written:]

    def _write_encodable(self, batch: list[Any]) -> None:
        """A batch failed to encode: name the first culprit and its boundary, keep everything else."""
        good: list[Any] = []
        for event in split(batch):
            name = self.names[event[0] >> 2]
            for position in range(1, len(event)):
                try:
                    codec.packb(event[position])
                except (codec.UnencodableValue, TypeError, ValueError, OverflowError) as exc:
                    role = "returned by" if position == 1 else "passed to"
                    problem = (str(codec.UnencodableValue(exc.value, name, role))
                               if isinstance(exc, codec.UnencodableValue)
                               else f"cannot record a value of boundary {name!r}: {exc}")
                    self.error = self.error or problem
                    event[position] = codec.Raised(RuntimeError(problem)) if position == 1 else repr(event[position])
            good += event
        self._write(FRAME_EVENTS, good)

    def close(self, end: dict[str, Any] | Callable[[], dict[str, Any]] | None, setup: Setup | None = None) -> None:
        """Flush what is pending, write SETUP and END (when given; a callable makes END once all is flushed) and
        close the file."""
        if self._running:
            self._stop = True
            self._wake.release()
            self._done.acquire()
            self._running = False
        try:
            if not self.io_failed:
                self.flush()
                if setup is not None:
                    try:
                        self._write(FRAME_SETUP, setup.frame())
                    except (TypeError, ValueError) as exc:  # the log was checked as it was taken: a fault of ours
                        self.error = self.error or f"the connection set-up could not be written: {exc}"
                if end is not None:
                    end = dict(end() if callable(end) else end)
                    if self.error is not None:
                        end["recording_error"] = self.error
                    self._write(FRAME_END, end)
        except OSError as exc:
            self.error = self.error or f"writing {self.path} failed: {exc}"
            self.io_failed = True
        finally:
            try:
                self._file.close()
            except OSError as exc:
                self.error = self.error or f"writing {self.path} failed: {exc}"
                self.io_failed = True


def _frames_after_header(data: bytes) -> tuple[int, int]:
    """Offsets of the header frame's end and of the END frame (len(data) when there is none), in a recording
    :func:`read_recording` found whole (only the frames' kinds are read here)."""
    offset = _PREAMBLE.size
    header_end = end_start = len(data)
    while offset + _FRAME.size <= len(data):
        length, _ = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if offset == _PREAMBLE.size:
            header_end = start + length
        elif msgpack.unpackb(data[start : start + length])[0] == FRAME_END:  # no ext hook: nothing decoded
            end_start = offset
        offset = start + length
    return header_end, end_start


def rewrite(path: str | os.PathLike[str], *, header: dict[str, Any] | None = None, end: dict[str, Any] | None = None,
            into: str | os.PathLike[str] | None = None) -> None:
    """Write the recording with a new header and/or END, atomically (temp file + rename).

    Only complete recordings are rewritten; ``into`` writes the result elsewhere (pinning copies).
    """
    rec = read_recording(path)
    if rec.status != TapeStatus.COMPLETE:
        raise RecordingError(f"{path}: cannot rewrite a {rec.status} recording: {rec.problem}")
    with _io.open(path, "rb") as f:
        data = f.read()
    header = rec.header if header is None else header
    end = rec.end if end is None else end
    if rec.envelope is None:
        header_end, end_start = _frames_after_header(data)
        parts = [data[: _PREAMBLE.size], encode_frame(FRAME_HEADER, header), data[header_end:end_start],
                 encode_frame(FRAME_END, end)]
    else:  # sealed: open every frame, and seal them all again under a fresh key (a nonce is never reused)
        sealer = Sealer.fresh(key_for(rec.envelope, rec.path).public)
        inner = _opened_frames(data, opener_for(rec.envelope, rec.path))
        parts = [data[: _PREAMBLE.size], readable_frame(header, sealer),
                 encode_frame(FRAME_HEADER, header, sealer=sealer)]
        parts += [_sealed_payload(payload, sealer) for payload in inner[1:-1]]
        parts.append(encode_frame(FRAME_END, end, sealer=sealer))
    target = os.fspath(into if into is not None else path)
    tmp = temp_beside(target)
    try:
        with _io.open(tmp, "wb") as f:
            f.write(b"".join(parts))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _opened_frames(data: bytes, opener: Opener) -> list[bytes]:
    """The plain payloads of a whole sealed recording's sealed frames, in order."""
    payloads = []
    offset = _PREAMBLE.size
    first = True
    while offset + _FRAME.size <= len(data):
        length, _ = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if first:  # the readable header, which the first sealed frame authenticates
            opener.readable = data[start : start + length]
        else:
            _, sealed = msgpack.unpackb(data[start : start + length])
            payload = opener.open(opener.count, sealed)
            assert payload is not None  # read_recording opened it already
            opener.count += 1
            payloads.append(payload)
        first = False
        offset = start + length
    return payloads


def _sealed_payload(payload: bytes, sealer: Sealer) -> bytes:
    framed = msgpack.packb([FRAME_SEALED, sealer.seal(payload)])
    return _FRAME.pack(len(framed), zlib.crc32(framed)) + framed


def rewrite_end(path: str | os.PathLike[str], end: dict[str, Any]) -> None:
    """Replace the recorded outcome (``--retrace-accept``)."""
    rewrite(path, end=end)


def append_end(path: str | os.PathLike[str], end: dict[str, Any] | None, sealer: Sealer | None = None,
               processes: dict[str, bytes] | None = None) -> None:
    """Append to a recording another process wrote (the launcher does this for its child) the recordings of
    the ``processes`` it forked, then END (when given); ``sealer``: the recording's, numbered on from the frames
    the file holds."""
    frames: list[tuple[int, Any]] = [(FRAME_PROCESS, [label, data]) for label, data in (processes or {}).items()]
    if end is not None:
        frames.append((FRAME_END, end))
    with _io.open(path, "r+b") as f:
        if sealer is not None:
            sealer.count = _count_frames(f.read()) - 1  # the readable header is not sealed
        f.seek(0, os.SEEK_END)
        f.write(b"".join(encode_frame(kind, body, sealer=sealer) for kind, body in frames))


def _count_frames(data: bytes) -> int:
    """How many whole frames ``data`` holds after the preamble."""
    offset, count = _PREAMBLE.size, 0
    while offset + _FRAME.size <= len(data):
        length, _ = _FRAME.unpack_from(data, offset)
        if offset + _FRAME.size + length > len(data):
            break
        offset += _FRAME.size + length
        count += 1
    return count


class Recording:
    """A recording read back: header, events and the END outcome (None when truncated).

    Read whole and checked once (:func:`read_recording`): a recording is untrusted input, so everything a
    command or the plugin reads of it has the shape :mod:`.shapes` gives it, and its events decode."""

    def __init__(self, path: str, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.names: list[str] = []
        self.frames: list[list[Any]] = []  # each EVENTS frame's flat events (none when read without its events)
        self.count = 0  # events
        self.end: dict[str, Any] | None = None
        self.status = TapeStatus.COMPLETE
        self.problem: str | None = None
        self.offset: int | None = None  # byte offset of the bad frame when corrupt
        self.envelope: Envelope | None = None  # sealed: whose key opens it
        # The recordings of the processes it forked, by logical id ("1": its first fork; "1.2": that one's
        # second), as the bytes of whole recordings, read when a replay reaches them.
        self.processes: dict[str, bytes] = {}
        self.setup: Setup | None = None  # an in-process recording's connection set-up
        # The values it stores once (VALUES frames), which its frames' references name: decode its frames with it.
        self.decoding = codec.Decoding()
        self.with_events = True  # read with its events (else only counted: see read_recording)
        self._deferred: list[range] = []  # events of frames that held values resolved when read
        self._events: MutableSequence[Event] | None = None

    def events(self) -> MutableSequence[Event]:
        """The events, made into objects as they are read (checked as the file was read: a malformed one made the
        recording corrupt)."""
        if not self.with_events:
            raise RuntimeError(f"{self.path} was read without its events (read_recording(events=False))")
        if self._events is None:
            self._events = event_list(self.frames, self.names, 0, self._deferred)
            self.frames = []  # the events hold them now
        return self._events

    def corrupt_error(self) -> RecordingError:
        """The error that says this (corrupt) recording cannot be used, with what is wrong and where."""
        return RecordingError(f"{self.path}: corrupt recording: {self.problem}")


def corrupt(problem: str, offset: int) -> str:
    """A corrupt recording's problem, as every command and the plugin show it."""
    return f"{problem} at offset {offset}"


class _Damage(Exception):
    """What makes a recording corrupt, found at a frame: ends the reading (see read_recording)."""


_EVENTS_FRAME = bytes([0x92, FRAME_EVENTS])  # how an EVENTS frame's payload starts: msgpack's [3, …]


def _read_events(payload: bytes, rec: Recording, names: list[str]) -> None:
    """Take an EVENTS frame into ``rec``: counted and checked, and decoded when ``rec`` is read with its events.
    Raises _Damage, or the codec's MalformedValue."""
    made = codec.Deferred.made
    try:
        count, flat = read_events(payload, len(names), rec.count, rec.decoding, keep=rec.with_events)
    except codec.MalformedValue:
        raise
    except ValueError as exc:
        raise _Damage(f"malformed events: {exc}") from None
    if flat is not None:
        rec.frames.append(flat)
        if codec.Deferred.made != made:
            rec._deferred.append(range(rec.count, rec.count + count))
    rec.count += count


def _read_frame(kind: Any, body: Any, rec: Recording | None, names: list[str]) -> None:
    """Check one frame (any but EVENTS) against the ones before it and take it into ``rec``. Raises _Damage."""
    assert rec is not None
    if kind == FRAME_NAMES:
        if type(body) is not list or not all(type(n) is str for n in body):
            raise _Damage("a NAMES frame that is not a list of names")
        names.extend(intern_names(body))
    elif kind == FRAME_EVENTS:  # one that does not start as ours do (_EVENTS_FRAME): no writer of ours made it
        raise _Damage("an EVENTS frame not encoded as a recording's are")
    elif kind == FRAME_END:
        problem = shapes.end_problem(body)
        if problem is not None:
            raise _Damage(problem)
        count = body.get("events")
        if count is not None and not body.get("recording_error") and count != rec.count:
            raise _Damage(f"the END frame counts {count} events but the frames before it hold "
                          f"{rec.count}: frames are missing or repeated")
        rec.end = body
    elif kind == FRAME_PROCESS:
        if not (type(body) is list and len(body) == 2 and type(body[0]) is str and type(body[1]) is bytes
                and _PROCESS_LABEL.fullmatch(body[0])):
            raise _Damage("a PROCESS frame that is not [logical process id, recording]")
        if body[0] in rec.processes or len(rec.processes) >= MAX_PROCESSES:
            raise _Damage(f"a PROCESS frame for process {body[0]} repeated, or more than {MAX_PROCESSES}")
        rec.processes[body[0]] = body[1]
    elif kind == FRAME_VALUES:
        _read_values(body, rec.decoding)
    elif kind == FRAME_SETUP:
        if rec.setup is not None:
            raise _Damage("a second SETUP frame")
        try:
            rec.setup = Setup.from_frame(body)
        except ValueError as exc:
            raise _Damage(str(exc)) from None
    elif kind == FRAME_HEADER:
        raise _Damage("a second HEADER frame")
    else:
        raise _Damage(f"a frame of unknown kind {codec.short(kind)}")


def _read_values(body: Any, decoding: codec.Decoding) -> None:
    """Take in a VALUES frame: each value checked as it is stored (a reference may name it from the next frame on)."""
    if type(body) is not list:
        raise _Damage("a VALUES frame that is not a list of stored values")
    for packed in body:
        decoding.store(packed)


def _torn(data: bytes, start: int, length: int) -> bool:
    """Whether the bytes from ``start`` to the end of the file are the start of a frame's payload (``length``
    bytes long) that was being written when the process died, rather than a whole payload whose length field
    is wrong: a prefix of one msgpack value is never a whole value."""
    unpacker = msgpack.Unpacker(max_buffer_size=length)  # no ext hook: nothing decoded
    unpacker.feed(data[start:])
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        return True
    except Exception:  # noqa: BLE001 - garbage where the payload should be: damage, not a torn tail
        return False
    return False


def _unsealed(opener: Opener, payload: bytes) -> bytes:
    """The payload of the frame inside a sealed one; every frame after a sealed recording's readable header is
    sealed."""
    frame = msgpack.unpackb(payload)  # no ext hook: nothing decoded
    kind, body = frame if type(frame) is list and len(frame) == 2 else (None, None)
    if kind != FRAME_SEALED or not isinstance(body, bytes):
        raise _Damage(f"an unsealed frame (kind {kind!r}) in a sealed recording")
    inner = opener.open(opener.count, body)
    if inner is None:
        raise _Damage("a sealed frame that does not open: damaged, moved, or from another recording")
    opener.count += 1
    return inner


def _readable(payload: bytes) -> list[Any] | None:
    """The first frame when it is a sealed recording's readable header, else None. Its values stay encoded
    (msgpack's ``ExtType``); a readable header holds none, and one that does is damage, never decoded."""
    try:
        frame = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, TypeError):
        return None
    if not (type(frame) is list and len(frame) == 2 and type(frame[1]) is dict and "sealed" in frame[1]):
        return None
    problem = codec.nesting_problem(frame)
    pending: list[Any] = [frame[1]]
    while pending and problem is None:
        value = pending.pop()
        if isinstance(value, msgpack.ExtType):
            problem = "a sealed recording's readable header that holds encoded values"
        elif type(value) is dict:
            pending += [*value.keys(), *value.values()]
        elif type(value) is list:
            pending += value
    if problem is not None:
        raise _Damage(problem)
    return frame


def _check_header(body: Any) -> None:
    problem = shapes.header_problem(body)
    if problem is not None:
        raise _Damage(problem)


def read_recording(path: str | os.PathLike[str], events: bool = True) -> Recording:
    """Read a whole recording. Raises :class:`RecordingError` when it is not one at all. A recording whose
    frames are inconsistent or hold malformed values comes back with status ``corrupt``, its problem and
    offset; one that stops inside its last frame, or before END, with status ``truncated``.

    Without ``events``, events are counted and checked as a stream but not decoded (what the launcher needs: the
    replaying child reads them, and reports a value inside them that does not decode as a corrupt recording)."""
    path = os.fspath(path)
    try:
        with _io.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such recording; check the path (recordings end in .retrace)") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a folder, not a recording") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the recording: {exc.strerror}") from None
    return read_recording_bytes(data, path, events)


def read_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The header of the recording at ``path``, reading only its first frame (what collecting thousands of
    recordings can afford): a sealed recording's readable one (kind, tags, pin …, no entry). None when the file
    is not a readable recording at all; the whole read (:func:`read_recording`) says why."""
    try:
        with _io.open(path, "rb") as f:
            start = f.read(HEADER_SIZE)
            if (len(start) < HEADER_SIZE or not start.startswith(MAGIC)
                    or _PREAMBLE.unpack_from(start)[1] > FORMAT_MAJOR):
                return None
            length, crc = _FRAME.unpack_from(start, _PREAMBLE.size)
            payload = f.read(length) if length <= MAX_FRAME else b""
    except OSError:
        return None
    if len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        frame = codec.unpackb(payload, codec.Decoding())  # a sealed one's readable header decodes alike
        kind, body = frame
        if kind != FRAME_HEADER or type(body) is not dict:
            return None
        if "sealed" not in body and shapes.header_problem(body) is not None:
            return None
    except (_Damage, ValueError, TypeError, RecursionError, MemoryError):
        return None
    return body  # type: ignore[no-any-return]


FORKED = ".proc-"  # what names a forked process's file beside its program's (its recording, its replay's result)


def forked_path(path: str, label: str) -> str:
    """The file of forked process ``label`` beside ``path`` (its recording while recording, its result on replay)."""
    return f"{path}{FORKED}{label}"


def forked_beside(path: str) -> dict[str, str]:
    """The files of forked processes beside ``path`` (:func:`forked_path`'s), by logical id, in fork order."""
    folder, name = os.path.split(path)
    prefix = name + FORKED
    found = {entry[len(prefix):]: os.path.join(folder, entry) for entry in os.listdir(folder or ".")
             if entry.startswith(prefix) and _PROCESS_LABEL.fullmatch(entry[len(prefix):])}
    return dict(sorted(found.items(), key=lambda item: process_order(item[0])))


def process_order(label: str) -> list[int]:
    """A sort key that puts logical process ids in fork order ("2" before "10", "1.2" after "1")."""
    return [int(part) for part in label.split(".")]


def forked_end(data: bytes) -> dict[str, Any] | None:
    """The END of a forked process's recording (held inside its parent's): None when it stops early (the process
    was killed) or cannot be read."""
    try:
        return read_recording_bytes(data, "", events=False).end
    except RecordingError:
        return None


def read_recording_bytes(data: bytes, path: str, events: bool = True) -> Recording:
    """:func:`read_recording` of a recording held in memory (a forked process's, inside its parent's): ``path``
    names it in what is reported."""
    collecting = gc.isenabled()
    if events and collecting:  # a collection while the events are decoded walks them all again, for nothing
        gc.disable()
    try:
        return _read(data, path, events)
    finally:
        if events and collecting:
            gc.enable()


def _read(data: bytes, path: str, events: bool) -> Recording:
    if not data:
        raise RecordingError(f"{path}: an empty file, not a recording (its writer was stopped before it began, or "
                             "the copy failed); record it again")
    if len(data) < _PREAMBLE.size or not data.startswith(MAGIC):
        raise RecordingError(f"{path}: not a pytest-retrace recording (bad magic at offset 0)")
    _, major, minor = _PREAMBLE.unpack_from(data)
    if major > FORMAT_MAJOR:
        raise RecordingError(
            f"{path}: recorded in format {major}.{minor}, newer than the {FORMAT} this pytest-retrace reads; "
            "upgrade pytest-retrace to replay it (pip install -U pytest-retrace)"
        )
    offset = _PREAMBLE.size
    rec: Recording | None = None
    names: list[str] = []
    decoding = codec.Decoding()  # the recording's stored values, as its VALUES frames arrive
    opener: Opener | None = None
    sealed_header = False  # a sealed recording's first sealed frame is its full header
    status, problem, bad_offset = TapeStatus.TRUNCATED, None, None
    while offset < len(data):
        if rec is not None and rec.end is not None:
            status, problem, bad_offset = TapeStatus.CORRUPT, "data after the END frame", offset
            break
        if len(data) - offset < _FRAME.size:
            problem = f"partial frame header at offset {offset}"
            break
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if length > MAX_FRAME:
            status, bad_offset = TapeStatus.CORRUPT, offset
            problem = f"impossible frame length {length}"
            break
        if start + length > len(data):
            problem = f"partial frame at offset {offset} ({len(data) - start} of {length} bytes)"
            if not _torn(data, start, length):
                status, bad_offset = TapeStatus.CORRUPT, offset
                problem = f"a frame length ({length}) that runs past the end of the file"
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            status, problem, bad_offset = TapeStatus.CORRUPT, "CRC mismatch in frame", offset
            break
        try:
            # A sealed recording's readable header is read before anything authenticates it: as plain msgpack,
            # with no value of ours decoded (what needs decoding is sealed).
            frame = _readable(payload) if rec is None else None
            if opener is not None:
                payload = _unsealed(opener, payload)
            if rec is not None and not sealed_header and payload.startswith(_EVENTS_FRAME):
                _read_events(payload, rec, names)
                offset = start + length
                continue
            if frame is None:
                frame = codec.unpackb(payload, decoding)
            if type(frame) is not list or len(frame) != 2:
                raise _Damage("a frame that is not [kind, body]")
            kind, body = frame
            if rec is None:
                if kind != FRAME_HEADER:
                    raise RecordingError(f"{path}: the first frame is not a header (offset {offset})")
                envelope = None
                if isinstance(body, dict) and "sealed" in body:  # readable metadata; the header follows sealed
                    envelope = Envelope.from_header(body["sealed"], path)
                    opener = opener_for(envelope, path)
                    opener.readable = payload
                    sealed_header = True
                else:
                    _check_header(body)
                rec = Recording(path, body)
                rec.envelope, rec.decoding = envelope, decoding
                rec.with_events = events
            elif sealed_header:
                if kind != FRAME_HEADER:
                    raise _Damage("a sealed recording whose first sealed frame is not its header")
                _check_header(body)
                rec.header, sealed_header = body, False
            else:
                _read_frame(kind, body, rec, names)
        except (_Damage, ValueError, TypeError, RecursionError, MemoryError) as exc:  # msgpack's: ValueError, TypeError
            status, problem, bad_offset = TapeStatus.CORRUPT, f"undecodable frame: {exc}", offset
            if isinstance(exc, (_Damage, codec.MalformedValue)):
                problem = str(exc)
            break
        offset = start + length
    if rec is None or sealed_header:  # no header at all, or only a sealed recording's readable one
        if status == TapeStatus.CORRUPT:
            raise RecordingError(f"{path}: corrupt recording: {corrupt(problem or '', bad_offset or 0)}")
        raise RecordingError(f"{path}: truncated before its header was written; nothing to replay")
    if rec.end is not None and status != TapeStatus.CORRUPT:
        status, problem = TapeStatus.COMPLETE, None
    elif status == TapeStatus.TRUNCATED and problem is None:
        problem = "no END frame: the recording stops early (the process was killed?)"
    if status == TapeStatus.CORRUPT:
        assert problem is not None and bad_offset is not None
        problem = corrupt(problem, bad_offset)
    rec.names = names
    rec.status, rec.problem, rec.offset = status, problem, bad_offset
    return rec
