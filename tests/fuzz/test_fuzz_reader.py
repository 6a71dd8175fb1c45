"""Fuzzing the reader: real recordings of every kind, damaged in many ways (flips, cuts, splices, length
fields, payload edits that get past the CRC, deep nesting), must read as complete, truncated or corrupt,
or be refused with a RecordingError: never another exception, a crash or a hang, in the reader, the events,
or ``retrace show``.

The budget is a few seconds in an ordinary run; CI gives it ``RETRACE_FUZZ_SECONDS`` (60) in a step of
its own. The hypothesis database is off: every run explores afresh."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_retrace import cli
from pytest_retrace.errors import RecordingError
from pytest_retrace.format import codec, sealing, tape
from pytest_retrace.front.pinning import crash_of
from pytest_retrace.kinds.outcome import Outcome

ROOT = Path(__file__).resolve().parents[2]
BUDGET = float(os.environ.get("RETRACE_FUZZ_SECONDS", "4"))
PER_EXAMPLE = 20  # seconds: longer is a hang

PROGRAM = '''\
import os, random, sys, time, enum, socket
print("start", time.time() > 0, random.random() < 2, len(os.urandom(8)))
with open("data.txt") as f:
    print(f.read())
os.stat("data.txt")
print(socket.AddressFamily.AF_INET)
raise KeyError("boom")
'''
KINDS = '''\
import os, time, enum, decimal, datetime, uuid, sys
sys.path.insert(0, os.getcwd())
import pytest_retrace
from pytest_retrace.kinds.request import RecordingMiddleware


class Level(enum.Enum):
    LOW = 1


@pytest_retrace.boundary
def fetch(n):
    if n < 0:
        raise ValueError("negative", n)
    return [Level.LOW, (n, 2**70), {1, 2}, frozenset({"a"}), decimal.Decimal("1.5"), uuid.UUID(int=n),
            datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc), datetime.timedelta(seconds=n), 1j,
            os.stat(".")]


@pytest_retrace.record_calls(directory="calls")
def job(n):
    time.time()
    try:
        fetch(-n)
    except ValueError:
        pass
    return fetch(n)


def app(environ, start_response):
    time.time()
    fetch(3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


job(1)
middleware = RecordingMiddleware(app, "requests", entry="kinds_app:app")
from wsgiref.util import setup_testing_defaults
environ = {}
setup_testing_defaults(environ)
response = middleware(environ, lambda status, headers: None)
list(response)
response.close()
'''


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Real recordings: a process (recorded by ``retrace record``), a call and a WSGI request (recorded by the
    decorator and the middleware), and the frozen fixture recordings."""
    folder = tmp_path_factory.mktemp("seeds")
    (folder / "data.txt").write_text("some data\n")
    (folder / "prog.py").write_text(PROGRAM)
    (folder / "kinds_app.py").write_text(KINDS)
    run = subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", "proc.retrace", "prog.py"],
                         cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "KeyError" in run.stderr, run.stderr
    run = subprocess.run([sys.executable, "kinds_app.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    # A sealed one too, with its key known here: the reader opens it, so damage reaches the sealed paths.
    key = sealing.PrivateKey.generate()
    sealing.add_private_key(key.text())
    run = subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", "sealed.retrace", "--public-key",
                          key.public.text(), "prog.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "KeyError" in run.stderr, run.stderr
    found = [folder / "proc.retrace", *(folder / "calls").glob("*.retrace"), *(folder / "requests").glob("*.retrace"),
             folder / "sealed.retrace", *(ROOT / "fixtures" / "recordings").glob("*/*.retrace")]
    kinds = {tape.read_recording(p).header["kind"] for p in found}
    assert kinds == {"process", "call", "wsgi"}, kinds
    return [p.read_bytes() for p in found]


def frames_of(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of the frames that fit in ``data``."""
    offset, found = 12, []
    while offset + 8 <= len(data):
        length = struct.unpack_from(">I", data, offset)[0]
        if offset + 8 + length > len(data):
            break
        found.append((offset, length))
        offset += 8 + length
    return found


def reframed(data: bytes, offset: int, length: int, payload: bytes) -> bytes:
    """``data`` with the frame at ``offset`` holding ``payload``, its length and CRC right."""
    return data[:offset] + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload + data[offset + 8 + length:]


def deep(depth: int, code: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = msgpack.ExtType(code, msgpack.packb([value], use_bin_type=True)) if code else [value]
    return value


SEEDS: list[bytes] = []  # set by the test (kept out of the strategy's arguments, which hypothesis prints)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seeds = SEEDS
    data = seeds[draw(st.integers(0, len(seeds) - 1))]
    frames = frames_of(data)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "cut", "splice", "length", "payload", "value", "deep", "frame"]))
        index = draw(st.integers(0, max(len(frames) - 1, 0)))
        offset, length = frames[index] if frames else (12, 0)
        if how == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif how == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif how == "splice":
            other = seeds[draw(st.integers(0, len(seeds) - 1))]
            start = draw(st.integers(0, len(other)))
            piece = other[start : start + draw(st.integers(0, 400))]
            at = draw(st.integers(0, len(data)))
            data = data[:at] + piece + data[at + draw(st.integers(0, 50)):]
        elif how == "length" and frames:
            value = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(max(length - 20, 0), length + 20)))
            data = data[:offset] + struct.pack(">I", value) + data[offset + 4:]
        elif how == "payload" and frames:  # bytes changed inside a payload, CRC made right: past the check
            payload = bytearray(data[offset + 8 : offset + 8 + length])
            for _ in range(draw(st.integers(1, 4))):
                if payload:
                    at = draw(st.integers(0, len(payload) - 1))
                    payload[at] = draw(st.integers(0, 255))
            data = reframed(data, offset, length, bytes(payload))
        elif how == "value" and frames:  # a well-formed frame of another shape
            body = draw(st.recursive(
                st.one_of(st.none(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=8), st.binary(max_size=8),
                          st.builds(msgpack.ExtType, st.integers(0, 20), st.binary(max_size=30))),
                lambda inner: st.one_of(st.lists(inner, max_size=5),
                                        st.dictionaries(st.text(max_size=6), inner, max_size=5)),
                max_leaves=20))
            kind = draw(st.integers(0, 6))
            data = reframed(data, offset, length, msgpack.packb([kind, body], use_bin_type=True))
        elif how == "deep" and frames:
            code = draw(st.sampled_from([0, codec.EXT_TUPLE, codec.EXT_SET, codec.EXT_RAISED, codec.EXT_EXCEPTION]))
            body = [1, deep(draw(st.integers(1, 1100)), code)]
            try:
                packed = msgpack.packb([tape.FRAME_EVENTS, body], use_bin_type=True)
            except ValueError:  # deeper than msgpack packs
                continue
            data = reframed(data, offset, length, packed)
        elif how == "frame" and frames:  # a whole frame repeated, moved or dropped
            whole = data[offset : offset + 8 + length]
            at = draw(st.sampled_from([o for o, _ in frames] + [len(data)]))
            drop = draw(st.booleans())
            data = data[:offset] + data[offset + 8 + length:] if drop else data[:at] + whole + data[at:]
        frames = frames_of(data)
    return data


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"reading took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(path: Path) -> None:
    """What every reader of a recording does with one, none of which may fail but with a RecordingError."""
    try:
        rec = tape.read_recording(path)
    except RecordingError as exc:
        assert str(exc).startswith(str(path))
        return
    assert rec.status in {"complete", "truncated", "corrupt"}
    assert (rec.offset is not None) == (rec.status == "corrupt")
    # The launcher reads without decoding the events: it must find every damage the replay's full read finds.
    counted = tape.read_recording(path, events=False)
    assert (counted.status, counted.offset, counted.count) == (rec.status, rec.offset, rec.count), (
        counted.problem, rec.problem)
    for event in rec.events():
        repr(event.args), repr(event.result)
        if isinstance(event.result, codec.Raised):
            assert isinstance(event.result.exception, BaseException)
    if rec.status == "complete":
        Outcome.from_json(rec.end or {})
        crash_of(rec)
        tape.Kind.of(rec.header) if rec.header["kind"] in set(tape.Kind) else None
    for options in ([], ["--json"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(["show", str(path), *options])
        assert status == (2 if rec.status == "corrupt" else 0), err.getvalue()
        assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue()


def test_reader_survives_damaged_recordings(seeds: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "fuzzed.retrace"
    marker = tmp_path / "ran"

    SEEDS[:] = seeds

    @settings(max_examples=40, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(data=mutated())
    def one(data: bytes) -> None:
        path.write_bytes(data)
        with deadline(PER_EXAMPLE):
            check(path)

    started = time.monotonic()
    rounds = 0
    while rounds == 0 or time.monotonic() - started < BUDGET:
        one()
        rounds += 1
    assert not marker.exists()


def test_every_seed_reads_complete(seeds: list[bytes], tmp_path: Path) -> None:
    for n, data in enumerate(seeds):
        path = tmp_path / f"{n}.retrace"
        path.write_bytes(data)
        assert tape.read_recording(path).status == "complete"
        check(path)
