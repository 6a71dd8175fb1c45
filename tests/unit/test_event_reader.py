"""The event reader: the native lazy one (native/events.cpp) against its pure-Python twin (format/events.py), and
the replay's fast paths reading straight from it. In pure-Python mode the same claims hold of the twin."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pytest_retrace.engine.divergence import ReplayDivergence
from pytest_retrace.engine.replayer import Replayer
from pytest_retrace.engine.state import end_main_thread, start_main_thread
from pytest_retrace.format import codec, events
from pytest_retrace.format.codec import Raised
from pytest_retrace.format.events import FORM_ARGS, FORM_PLAIN, FORM_THREAD, Event, decode_events
from pytest_retrace.speedups import NATIVE

native_only = pytest.mark.skipif(NATIVE is None, reason="compares the native reader with its twin, which is in use")


def payload(flat: list[Any]) -> bytes:
    return codec.packb([3, flat])


def pure_scan(data: bytes, names: int) -> int:
    """The twin's count (decoding everything), or the error it raises."""
    frame = codec.unpackb(data)
    return sum(1 for _ in events._offsets(frame[1], names, 0))


def random_flat(rng: random.Random, names: int, count: int) -> list[Any]:
    values: list[Any] = [1, -7, 2**40, 1.5, "é", b"\x00", None, True, [1, [2]], {"k": [1]}, (1, 2), {3},
                         Raised(ValueError("x"))]
    flat: list[Any] = []
    for _ in range(count):
        form = rng.choice([FORM_PLAIN, FORM_ARGS, FORM_THREAD])
        flat += [rng.randrange(names) << 2 | form, rng.choice(values)]
        if form != FORM_PLAIN:
            flat.append(rng.choice([None, [rng.choice(values)], [1, "a"]]) if form == FORM_THREAD else [1, "a"])
        if form == FORM_THREAD:
            flat.append(rng.choice(["0", "0.1", "0.1.2"]))
    return flat


def fields(event: Event) -> tuple[Any, ...]:
    return event.index, event.name, repr(event.args), repr(event.result), event.tid


@native_only
@pytest.mark.parametrize("seed", range(20))
def test_native_events_are_the_twins_events(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(5)]
    flat = codec.unpackb(payload(random_flat(rng, len(names), rng.randrange(1, 60))))[1]
    assert NATIVE is not None
    lazy = NATIVE.EventList([flat[: len(flat)], []], names, 3, Event, events.DeferredEvent)
    eager = decode_events(flat, names, 3)
    assert len(lazy) == len(eager)
    assert [fields(e) for e in lazy] == [fields(e) for e in eager]
    assert [fields(e) for e in lazy[2:9:3]] == [fields(e) for e in eager[2:9:3]]
    assert fields(lazy[-1]) == fields(eager[-1])
    assert events.threads_of(lazy) == events.threads_of(eager)
    assert events.indices_of(lazy, "n2") == events.indices_of(eager, "n2")
    assert NATIVE.scan_events(payload(flat), len(names), 0)[0] == len(eager) == pure_scan(payload(flat), len(names))


def ext(code: int, data: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(code, data)


def deep(levels: int) -> bytes:
    return b"\x91" * levels + b"\x01"


# Event streams as bytes (the body of [3, body]) that no writer of ours makes.
CRAFTED = {
    "code not an int": b"\x92\xa1x\x01",
    "name id out of range": b"\x92" + bytes([9 << 2]) + b"\x01",
    "form 3": b"\x92\x03\x01",
    "width past the end": b"\x92\x01\x01",
    "empty thread id": b"\x94\x02\x01\xc0\xa0",
    "thread id not a str": b"\x94\x02\x01\xc0\x01",
    "thread id not UTF-8": b"\x94\x02\x01\xc0\xa3\x80.1",
    "string not UTF-8": b"\x92\x00\xa2\xc3\x28",
    "surrogate in a string": b"\x92\x00\xa3\xed\xa0\x80",
    "overlong UTF-8": b"\x92\x00\xa2\xc0\x80",
    "nested 300 deep": b"\x92\x00" + deep(300),
    "a list as a map key": b"\x92\x00\x81\x90\x01",
    "byte 0xc1": b"\x92\x00\xc1",
    "length past the end": b"\x92\x00\xa5ab",
    "unknown ext type": b"\x92\x00" + msgpack.packb(ext(99, b"")),
    "a set as a map key": b"\x92\x00\x81" + codec.packb({1}) + b"\x01",
}


@pytest.mark.parametrize("body", CRAFTED.values(), ids=CRAFTED.keys())
def test_the_scan_refuses_what_reading_refuses(body: bytes) -> None:
    data = b"\x92\x03" + body
    with pytest.raises((ValueError, TypeError)):
        pure_scan(data, 2)
    for keep in (False, True):
        with pytest.raises((ValueError, TypeError)):
            events.read_events(data, 2, 0, keep=keep)


@pytest.mark.parametrize("body", [b"\x92\x00\xa2\xc3\xa9", b"\x92\x00" + deep(150), b"\x92\x00\x81\x01\x90",
                                  b"\x92\x00\x81" + codec.packb((1, 2)) + b"\x01", b"\x90"])
def test_the_scan_takes_what_reading_takes(body: bytes) -> None:
    data = b"\x92\x03" + body
    assert events.read_events(data, 2, 0, keep=False)[0] == events.read_events(data, 2, 0)[0] == pure_scan(data, 2)


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="extra data"):
        events.read_events(b"\x92\x03\x92\x00\x01\x01", 2, 0, keep=False)


@pytest.fixture
def main_thread() -> Any:
    start_main_thread()
    yield
    end_main_thread()


def replayer(flat: list[Any], names: list[str]) -> Replayer:
    return Replayer(events.event_list([codec.unpackb(payload(flat))[1]], names))


def test_the_fast_path_answers_from_the_stream(main_thread: None) -> None:
    live = object()
    engine = replayer([0 << 2 | FORM_PLAIN, 1.5, 1 << 2 | FORM_ARGS, "r", [1, "a"],
                       1 << 2 | FORM_ARGS, Raised(KeyError("k")), [2]], ["clock", "call"])
    assert type(engine.events).__name__ == ("list" if NATIVE is None else "EventList")
    assert engine.call("clock", None, lambda: live) == 1.5
    assert engine.call("call", (1, "a"), lambda: live) == "r"
    with pytest.raises(KeyError):
        engine.call("call", (2,), lambda: live)  # a recorded exception: raised by the slow path
    assert engine.consumed == 3
    with pytest.raises(ReplayDivergence):
        engine.call("clock", None, lambda: live)  # none left


def test_the_fast_path_leaves_a_mismatch_and_a_replaced_event_to_python(main_thread: None) -> None:
    engine = replayer([0 << 2 | FORM_PLAIN, 1.5, 0 << 2 | FORM_PLAIN, 2.5], ["clock", "other"])
    seen = []

    class Watched:  # what boundaries/signals.py puts in an event's place: it sees the event read
        def __init__(self, event: Event) -> None:
            self.index, self.name, self.args, self.tid = event.index, event.name, event.args, event.tid

        @property
        def result(self) -> Any:
            seen.append(self.index)
            return 9.5

        def describe(self) -> str:
            return events.describe_call(self.name, self.args)

    engine.events[0] = Watched(engine.events[0])  # type: ignore[index]
    assert engine.call("clock", None, lambda: 0) == 9.5 and seen == [0]
    with pytest.raises(ReplayDivergence) as raised:
        engine.call("other", None, lambda: 0)
    assert raised.value.divergence.index == 1


def test_a_launcher_read_finds_a_malformed_value_without_decoding_the_rest(tmp_path: Path) -> None:
    from pytest_retrace.engine.recorder import Recorder
    from pytest_retrace.format import tape

    path = tmp_path / "r.retrace"
    header = {"kind": "process", "hash_seed": 0, "entry": {}, "argv": [], "cwd": str(tmp_path), "environ": {}}
    writer = tape.TapeWriter(path, header, background=False)
    start_main_thread()
    try:
        engine = Recorder(writer)
        engine.call("a", None, lambda: 1.0)
        engine.call("b", None, lambda: ext(codec.EXT_UUID, b"short"))
    finally:
        end_main_thread()
    writer.close({"status": 0, "events": 2})
    counted = tape.read_recording(path, events=False)
    assert counted.status == "corrupt" and "uuid" in (counted.problem or "") and counted.count == 0
    assert not counted.with_events
    with pytest.raises(RuntimeError, match="without its events"):
        counted.events()
