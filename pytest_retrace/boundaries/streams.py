"""Stream objects that stand between the program and an external stream.

One class serves both sides: while recording it forwards to the real stream and
records what came back; while replaying there is no real stream and the engine
answers every call. Text streams are ``io.TextIOWrapper`` layers over these,
built the same way on both sides, so decoding runs for real in the replay too.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from ..engine.base import Engine, nothing, payload
from ..paths import keyed


class RecordedStream(io.BufferedIOBase):
    """A binary stream whose reads and writes are external calls named ``{label}.{op}``."""

    def __init__(self, engine: Engine, label: str, key: Any, real: Any, mode: str = "rb", name: Any = None) -> None:
        super().__init__()
        self._engine = engine
        self._label = label
        self._key = key
        self._real = real
        self.mode = mode
        if name is not None:
            self.name = name

    def _call(self, op: str, arg: Any, *real_args: Any) -> Any:
        real = self._real
        return self._engine.call(
            f"{self._label}.{op}", (self._key, arg), lambda: getattr(real, op)(*real_args)
        )

    def readable(self) -> bool:
        return "r" in self.mode or "+" in self.mode

    def writable(self) -> bool:
        return not self.readable() or "+" in self.mode

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        return self._call("read", size, size)

    def read1(self, size: int = -1) -> bytes:
        return self._call("read1", size, size)

    def readline(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        return self._call("readline", size, size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readinto1(self, buffer: Any) -> int:
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        return self._call("write", payload(data), data)

    def flush(self) -> None:
        # Not an event: a flush hands nothing back, and it also happens at garbage collection,
        # whose moment no replay can reproduce.
        if self._real is not None and not self._real.closed and self.writable():
            self._real.flush()

    def fileno(self) -> int:
        if self._real is None:
            raise io.UnsupportedOperation("fileno: no real stream behind a replayed one")
        return self._real.fileno()

    def close(self) -> None:
        if not self.closed:
            try:
                super().close()  # flushes first
            finally:
                if self._real is not None:
                    self._real.close()


class RecordedWriter(io.BufferedIOBase):
    """A data file opened for writing: the write happens only while recording.

    What was written is fingerprinted; at close the fingerprint is the call key of a
    ``file.written`` event, so a replay that writes other content diverges there.
    """

    def __init__(self, engine: Engine, path: Any, mode: str, real: Any, replayed: bool = False) -> None:
        super().__init__()
        self._engine = engine
        self._real = real  # the file (on replay: a memory file, closed here)
        self._replayed = replayed
        self._hash = hashlib.blake2b(digest_size=16)
        self._size = 0
        self.name = path
        self.mode = mode

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._size += len(view)
        if self._real is not None:
            self._real.write(view)
        return len(view)

    def flush(self) -> None:
        if self._real is not None and not self.closed:
            self._real.flush()

    def fileno(self) -> int:
        if self._real is None:
            raise io.UnsupportedOperation("fileno: writes to data files are not performed on replay")
        return self._real.fileno()

    def close(self) -> None:
        if self.closed:
            return
        real = self._real
        key = (keyed(self.name), self._size, self._hash.hexdigest())
        super().close()
        self._engine.call("file.written", key, real.close if real is not None else nothing)
        if self._replayed:
            real.close()


class UpdatableFile(io.BytesIO):
    """A data file opened for update (``r+``, ``w+``, ``a+``): worked on in memory from the
    recorded content; at close the final content is fingerprinted and, while recording, written."""

    def __init__(self, engine: Engine, path: Any, mode: str, initial: bytes, real_open: Any) -> None:
        super().__init__(initial)
        self._engine = engine
        self._real_open = real_open
        self.name = path
        self.mode = mode  # type: ignore[misc]  # BytesIO has no mode; open() files do
        if "a" in mode:
            self.seek(0, io.SEEK_END)

    def close(self) -> None:
        if self.closed:
            return
        content = self.getvalue()
        key = (keyed(self.name), len(content), hashlib.blake2b(content, digest_size=16).hexdigest())
        super().close()

        def write_back() -> None:
            with self._real_open(self.name, "wb") as f:
                f.write(content)

        self._engine.call("file.written", key, write_back)
