"""Values stored once (format 1.6): what an adapter marks and every raised exception is written once, in a VALUES
frame before the first frame that refers to it, and read back as the plain value wherever it was referred to; a
crafted table or reference is ``corrupt`` at its frame's offset, and what references can make a reader do is
bounded."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.state import end_main_thread, start_main_thread
from pytest_retrace.format import codec, sealing, tape
from pytest_retrace.format.codec import interned

HEADER = {"kind": "process", "hash_seed": 1, "entry": {"script": "x.py"}, "argv": ["x.py"], "cwd": "/nowhere",
          "environ": {}}
QUERY = "SELECT id, name, price, created FROM items WHERE id = %s"
DESCRIPTION = (("id", 23, None, 4, None, None, None, 16456, 1),
               ("price_in_cents", 25, None, -1, None, None, None, 16456, 2))


@pytest.fixture(autouse=True)
def main_thread() -> Iterator[None]:
    start_main_thread()
    yield
    end_main_thread()


def frames(data: bytes) -> list[tuple[int, int, Any]]:
    """(offset, kind, body) of every frame of a plain (unsealed) recording, bodies undecoded."""
    offset, found = 12, []
    while offset < len(data):
        length = struct.unpack_from(">I", data, offset)[0]
        kind, body = msgpack.unpackb(data[offset + 8 : offset + 8 + length], strict_map_key=False)
        found.append((offset, kind, body))
        offset += 8 + length
    return found


def record(path: Path, calls: int, sealer: sealing.Sealer | None = None) -> None:
    """A recording whose calls return a marked description and raise the same error, keyed by a marked query."""
    writer = tape.TapeWriter(path, HEADER, sealer=sealer)
    engine = Recorder(writer)

    def missing() -> None:
        raise FileNotFoundError(2, "No such file or directory", "/root/.netrc")

    for i in range(calls):
        engine.call("db.execute", (interned(QUERY), (i,)),
                    lambda i=i: {"description": interned(DESCRIPTION), "status": interned("SELECT 1"), "rows": [i]})
        with pytest.raises(FileNotFoundError):
            engine.call("os.stat", ("/root/.netrc",), missing)
    writer.close({"status": 0, "events": 2 * calls})


def check_events(rec: tape.Recording, calls: int) -> None:
    assert rec.status == "complete", rec.problem
    events = rec.events()
    assert len(events) == 2 * calls
    for i in range(calls):
        executed, stat = events[2 * i], events[2 * i + 1]
        assert executed.args == (QUERY, (i,)) and type(executed.args[0]) is str
        assert executed.result == {"description": DESCRIPTION, "status": "SELECT 1", "rows": [i]}
        assert type(executed.result["description"]) is tuple and type(executed.result["status"]) is str
        assert isinstance(stat.result, codec.Raised)
        assert stat.result.exception.filename == "/root/.netrc"
    # Each event raises an exception of its own (a replay adds its traceback and context to it).
    assert events[1].result is not events[3].result and events[1].result.exception is not events[3].result.exception


def test_marked_values_and_raised_exceptions_are_written_once_and_read_back_plain(tmp_path: Path) -> None:
    path = tmp_path / "r.retrace"
    record(path, 50)
    data = path.read_bytes()
    # In place the first time, stored when met again, referred to from then on.
    assert data.count(QUERY.encode()) == data.count(b"price_in_cents") == 2
    record(tmp_path / "once.retrace", 1)
    error = b"No such file or directory"
    assert data.count(error) == 2 * (tmp_path / "once.retrace").read_bytes().count(error) > 0
    kinds = [kind for _, kind, _ in frames(data)]
    assert kinds.index(tape.FRAME_VALUES) < kinds.index(tape.FRAME_EVENTS)  # before the first reference
    check_events(tape.read_recording(path), 50)
    sizes = {}
    for marked in (True, False):  # what the same calls take unmarked, for scale
        writer = tape.TapeWriter(tmp_path / f"{marked}.retrace", HEADER)
        engine = Recorder(writer)
        mark = interned if marked else (lambda value: value)
        for i in range(50):
            engine.call("db.execute", (mark(QUERY), (i,)),
                        lambda i=i, mark=mark: {"description": mark(DESCRIPTION), "status": mark("SELECT 1"),
                                                "rows": [i]})
        writer.close({"status": 0, "events": 50})
        sizes[marked] = (tmp_path / f"{marked}.retrace").stat().st_size
    assert sizes[True] < sizes[False] / 2


def test_sealed_recordings_store_and_read_them_too(tmp_path: Path) -> None:
    key = sealing.PrivateKey.generate()
    sealing.add_private_key(key.text())
    path = tmp_path / "sealed.retrace"
    record(path, 20, sealer=sealing.Sealer.fresh(key.public))
    assert QUERY.encode() not in path.read_bytes()
    check_events(tape.read_recording(path), 20)


def test_a_value_met_once_is_written_in_place_and_costs_nothing_more(tmp_path: Path) -> None:
    """Most values of a recording of one request come once: stored, they would cost a reference and a frame."""
    for marked in (True, False):
        writer = tape.TapeWriter(tmp_path / f"{marked}.retrace", HEADER, background=False)
        engine = Recorder(writer)
        for i in range(3):
            text = f"SELECT {i} FROM t WHERE id = %s"
            engine.call("db.execute", (interned(text) if marked else text, (i,)), lambda: None)
        writer.close({"status": 0, "events": 3})
    assert (tmp_path / "True.retrace").read_bytes() == (tmp_path / "False.retrace").read_bytes()


def test_a_marked_value_packs_in_place_without_a_table() -> None:
    """Call keys, nested values and files written elsewhere (rewrite, in-memory tapes) hold the value itself."""
    for value in (QUERY, b"bytes", DESCRIPTION):
        marked = interned(value)
        assert marked == value and codec.packb(marked) == codec.packb(value)
        assert type(codec.unpackb(codec.packb(marked))) is type(value)
    assert interned([1, 2]) == [1, 2] and type(interned([1, 2])) is list  # not a value that can be shared


def test_what_cannot_be_shared_or_is_too_big_is_written_in_place(tmp_path: Path) -> None:
    path = tmp_path / "r.retrace"
    writer = tape.TapeWriter(path, HEADER, background=False)
    engine = Recorder(writer)
    big = "x" * codec.MAX_STORED_BYTES
    for _ in range(2):
        engine.call("c", (interned(big),), lambda: interned(((1, [2]),)))  # a list inside: not shareable
    writer.close({"status": 0, "events": 2})
    assert tape.FRAME_VALUES not in [kind for _, kind, _ in frames(path.read_bytes())]
    events = tape.read_recording(path).events()
    assert [(e.args, e.result) for e in events] == [((big,), ((1, [2]),))] * 2


def test_a_forked_childs_writer_starts_a_table_of_its_own(tmp_path: Path) -> None:
    """A forked process's recording is read on its own: it must hold every value its events refer to."""
    parent = tape.TapeWriter(tmp_path / "p.retrace", HEADER, background=False)
    Recorder(parent).call("c", (interned(QUERY),), lambda: 1)
    parent.flush()
    inherited = tape.MemoryTape()
    inherited.table = parent.table
    child = tape.TapeWriter(tmp_path / "c.retrace", HEADER, background=False, tape=inherited)
    Recorder(child).call("c", (interned(QUERY),), lambda: 2)
    parent.close({"status": 0, "events": 1})
    child.close({"status": 0, "events": 1})
    for name, result in (("p", 1), ("c", 2)):
        rec = tape.read_recording(tmp_path / f"{name}.retrace")
        assert [(e.args, e.result) for e in rec.events()] == [((QUERY,), result)], rec.problem


# -- crafted files ------------------------------------------------------------------------------------------


def frame(kind: int, body: Any) -> bytes:
    payload = msgpack.packb([kind, body], use_bin_type=True)
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def ref(index: int) -> msgpack.ExtType:
    return msgpack.ExtType(codec.EXT_REF, index.to_bytes(4, "big"))


def crafted(tmp_path: Path, *frames_: tuple[int, Any]) -> tuple[tape.Recording, list[int]]:
    """A recording of a header, ``frames_`` and END, and the offsets of ``frames_``."""
    path = tmp_path / "crafted.retrace"
    tape.TapeWriter(path, HEADER, background=False).close(None)
    data = path.read_bytes()
    offsets = []
    for kind, body in frames_:
        offsets.append(len(data))
        data += frame(kind, body)
    path.write_bytes(data + frame(tape.FRAME_END, {"status": 0}))
    return tape.read_recording(path), offsets


NAME = (tape.FRAME_NAMES, ["c"])


def event(result: Any) -> tuple[int, Any]:
    return tape.FRAME_EVENTS, [0, result]


def test_a_reference_to_a_value_not_stored_before_it_is_corrupt_at_its_frame(tmp_path: Path) -> None:
    one = codec.packb("stored")
    for frames_, at in [([NAME, event(ref(0))], 1),  # nothing stored at all
                        ([NAME, (tape.FRAME_VALUES, [one]), event(ref(1))], 2),  # past the end
                        ([NAME, event(ref(0)), (tape.FRAME_VALUES, [one])], 1)]:  # stored after it
        rec, offsets = crafted(tmp_path, *frames_)
        assert rec.status == "corrupt" and rec.offset == offsets[at], rec.problem
        assert "a reference to stored value" in (rec.problem or "")
    rec, _ = crafted(tmp_path, NAME, (tape.FRAME_VALUES, [one]), event(ref(0)))
    assert rec.status == "complete" and rec.events()[0].result == "stored"


@pytest.mark.parametrize("entry, problem", [
    (codec.packb([1, 2]), "not a string, bytes, a tuple"),  # mutable: references would share it
    (codec.packb({"a": 1}), "not a string, bytes, a tuple"),
    (msgpack.packb(ref(0)), "inside an encoded value"),  # stored values never refer to others
    (codec.packb(msgpack.ExtType(codec.EXT_TUPLE, msgpack.packb([ref(0)]))), "inside an encoded value"),
    (b"\xa1", "undecodable"),
    (codec.packb("x" * codec.MAX_STORED_BYTES), "packed bytes"),
    ("not bytes", "packed bytes"),
])
def test_a_value_no_writer_stores_is_corrupt_at_its_values_frame(tmp_path: Path, entry: Any, problem: str) -> None:
    rec, offsets = crafted(tmp_path, NAME, (tape.FRAME_VALUES, [codec.packb("fine"), entry]), event(ref(0)))
    assert rec.status == "corrupt" and rec.offset == offsets[1], rec.problem
    assert problem in (rec.problem or ""), rec.problem


def test_a_huge_table_is_corrupt(tmp_path: Path) -> None:
    rec, offsets = crafted(tmp_path, (tape.FRAME_VALUES, [b"\xc0"] * (codec.MAX_STORED + 1)))
    assert rec.status == "corrupt" and rec.offset == offsets[0] and "stored values" in (rec.problem or "")


def test_references_that_expand_past_the_bound_are_corrupt(tmp_path: Path) -> None:
    """A small file whose references name a big stored tuple many times would make a reader walk far more values
    than the file holds: past MAX_EXPANSION it is corrupt."""
    wide = codec.packb(tuple(range(10_000)))
    refs = codec.MAX_EXPANSION // 10_001 + 1
    rec, offsets = crafted(tmp_path, NAME, (tape.FRAME_VALUES, [wide]),
                           (tape.FRAME_EVENTS, [0, [ref(0)] * refs]))
    assert rec.status == "corrupt" and rec.offset == offsets[2] and "add up to more than" in (rec.problem or "")


def test_the_writer_keeps_within_the_expansion_bound() -> None:
    """Past the bound a reader holds to, the writer packs values in place: no file of ours is refused."""
    interning = codec.Interning()
    packer = codec.make_packer(interning)
    wide = interned(tuple(range(10_000)))
    for _ in range(codec.MAX_EXPANSION // 10_001 + 2):
        packer.pack(wide)
    assert interning.expanded <= codec.MAX_EXPANSION
    assert msgpack.unpackb(packer.pack(wide)).code == codec.EXT_TUPLE  # in place now


def test_a_reference_outside_a_recording_is_malformed() -> None:
    with pytest.raises(codec.MalformedValue, match="outside a recording"):
        codec.unpackb(msgpack.packb(ref(0)))
    decoding = codec.Decoding()
    decoding.store(codec.packb("a"))
    assert codec.unpackb(msgpack.packb([ref(0), ref(0)]), decoding) == ["a", "a"]
    assert codec.Decoding(["a", "b"], known=1).ext_hook(codec.EXT_REF, b"\x00") == "a"
    with pytest.raises(codec.MalformedValue, match="only 1 were stored"):
        codec.Decoding(["a", "b"], known=1).ext_hook(codec.EXT_REF, b"\x01")


# -- what the DB-API adapters store -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, sent, short", [
    ("SELECT * FROM t WHERE id = %s", b"SELECT * FROM t WHERE id = 42", True),
    ("INSERT INTO t VALUES (%s, %s) RETURNING id", b"INSERT INTO t VALUES ('a, ''b'')', NULL) RETURNING id", True),
    # a parameter holding the text that follows its placeholder: whatever split is found must rebuild it exactly
    ("SELECT %s, %s FROM t", b"SELECT ', ', ', ' FROM t", True),
    ("SELECT %s WHERE name LIKE 'a%%'", b"SELECT 1 WHERE name LIKE 'a%'", False),  # %% sent as %: kept whole
    ("SELECT %(id)s", b"SELECT 7", False),  # named parameters: kept whole
    ("SELECT %s%s", b"SELECT 12", False),  # where one ends is a guess: kept whole
    ("SELECT 'é', %s", "SELECT 'é', 1".encode("latin-1"), False),  # another encoding: kept whole
    ("SELECT 1", b"SELECT 1", False),
])
def test_the_query_sent_is_stored_as_its_text_and_quoted_parameters_exactly(text: str, sent: bytes,
                                                                           short: bool) -> None:
    from pytest_retrace.adapters.dbapi import packed_query, unpacked_query

    stored = packed_query(text, sent)
    assert (type(stored) is list) is short
    decoding = codec.Decoding()
    interning = codec.Interning()
    packed = codec.make_packer(interning).pack(stored)
    for entry in interning.entries:
        decoding.store(entry)
    assert unpacked_query(codec.unpackb(packed, decoding)) == sent
    assert unpacked_query(["SELECT %s", [b"1", b"2"]]) == ["SELECT %s", [b"1", b"2"]]  # malformed: as it is


def test_equal_values_of_other_types_never_stand_for_each_other(tmp_path: Path) -> None:
    """1, 1.0 and True are equal (and hash alike) but must come back as they went in."""
    path = tmp_path / "r.retrace"
    writer = tape.TapeWriter(path, HEADER, background=False)
    engine = Recorder(writer)
    values = [(1, "a"), (1.0, "a"), (True, "a"), (1, "a"), (1.0, "a"), (True, "a"), (1, b"a"), (1, b"a")]
    for value in values:
        engine.call("c", None, lambda value=value: interned(value))
    writer.close({"status": 0, "events": len(values)})
    results = [e.result for e in tape.read_recording(path).events()]
    assert [[type(v) for v in r] for r in results] == [[type(v) for v in r] for r in values] and results == values
