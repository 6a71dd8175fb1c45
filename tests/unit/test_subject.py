"""What collection reads of a recording: its header alone (``tape.read_header``), and what a test runner selects
replays by (``kinds.subject.Subject``), from well-formed, sealed and crafted headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_retrace.format import sealing, tape
from pytest_retrace.kinds.subject import Subject

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "recordings"
HEADER = {"kind": "wsgi", "hash_seed": 1, "argv": [], "cwd": ".", "environ": {},
          "entry": {"app": "shop:app", "environ": {"REQUEST_METHOD": "POST", "PATH_INFO": "/orders"}, "body": b""},
          "tags": {"team": "billing"}, "pin": None}


def written(path: Path, header: dict, public: sealing.PublicKey | None = None) -> Path:
    writer = tape.TapeWriter(path, header, background=False,
                             sealer=sealing.Sealer.fresh(public) if public is not None else None)
    writer.close({"status": 0, "events": 0})
    return path


def test_the_header_is_read_from_the_first_frame_alone(tmp_path: Path) -> None:
    path = written(tmp_path / "a.retrace", HEADER)
    whole = tape.read_recording(path, events=False).header
    assert tape.read_header(path) == whole
    data = path.read_bytes()
    header_end = tape.HEADER_SIZE + int.from_bytes(data[tape.HEADER_SIZE - 8:tape.HEADER_SIZE - 4], "big")
    path.write_bytes(data[:header_end] + b"\xff" * 40)  # the rest is damage: collection does not read it
    assert tape.read_header(path) == whole


def test_a_frozen_recording_s_header_reads(tmp_path: Path) -> None:
    frozen = FIXTURES / "format-1.6" / "clocks.retrace"
    assert tape.read_header(frozen) == tape.read_recording(frozen, events=False).header


@pytest.mark.parametrize("damage", ["empty", "magic", "newer", "crc", "short", "not a header"])
def test_a_file_that_is_no_readable_recording_has_no_header(tmp_path: Path, damage: str) -> None:
    path = written(tmp_path / "a.retrace", HEADER)
    data = bytearray(path.read_bytes())
    if damage == "empty":
        data = bytearray()
    elif damage == "magic":
        data[:7] = b"NOTREC!"
    elif damage == "newer":
        data[8:10] = (tape.FORMAT_MAJOR + 1).to_bytes(2, "big")
    elif damage == "crc":
        data[tape.HEADER_SIZE + 3] ^= 0xFF
    elif damage == "short":
        data = data[: tape.HEADER_SIZE + 5]
    else:
        frame = tape.encode_frame(tape.FRAME_END, {"status": 0})
        data = data[: tape.HEADER_SIZE - 8] + bytearray(frame)
    path.write_bytes(bytes(data))
    assert tape.read_header(path) is None
    assert tape.read_header(tmp_path / "missing.retrace") is None


def test_a_sealed_recording_shows_only_its_readable_header(tmp_path: Path) -> None:
    public = sealing.PrivateKey.generate().public
    path = written(tmp_path / "s.retrace", HEADER, public)
    header = tape.read_header(path)
    assert header is not None and "entry" not in header and "environ" not in header
    subject = Subject.of(header)
    assert (subject.kind, subject.tags, subject.entry, subject.route) == ("wsgi", {"team": "billing"}, None, None)


def test_subjects_of_each_kind() -> None:
    web = Subject.of(HEADER)
    assert (web.kind, web.entry, web.route, web.tags, web.pinned) == ("wsgi", "shop:app", "POST /orders",
                                                                      {"team": "billing"}, False)
    assert web.keywords == {"retrace_wsgi", "shop:app", "POST /orders", "team", "billing", "team=billing"}
    assert web.properties() == [("retrace_kind", "wsgi"), ("retrace_entry", "shop:app"),
                                ("retrace_route", "POST /orders"), ("retrace_tag_team", "billing")]
    call = Subject.of({"kind": "call", "entry": {"function": "jobs:invoice"}, "pin": {"fingerprint": "ab"}})
    assert (call.kind, call.entry, call.route, call.pinned) == ("call", "jobs:invoice", None, True)
    assert "retrace_pinned" in call.keywords
    process = Subject.of({"entry": {"module": "tool"}})  # format 1.0: no kind means a process
    assert (process.kind, process.entry) == ("process", "tool")
    assert Subject.from_json(web.to_json()) == web


def test_a_crafted_header_gives_bounded_printable_words() -> None:
    crafted = Subject.of({"kind": "nuclear", "entry": {"script": "\x1b[2Jx" + "y" * 500},
                          "tags": {"\x07bell": ["not", "text"]}})
    assert crafted.kind is None  # an unknown kind: the replay says what is wrong with it
    assert crafted.entry == "\\x1b[2Jx" + "y" * 192
    assert crafted.tags == {"\\x07bell": "['not', 'text']"}
    assert Subject.of({"kind": ["wsgi"], "tags": "team=x", "entry": "x"}) == Subject(None)


def test_the_markers_the_plugin_registers_cover_every_kind() -> None:
    from pytest_retrace import plugin

    assert set(plugin.KINDS) == set(tape.Kind)
