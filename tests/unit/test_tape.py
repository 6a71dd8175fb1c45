"""The recording file: frames written off-thread, END, truncation, corruption, versions."""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.state import end_main_thread, start_main_thread
from pytest_retrace.errors import RecordingError
from pytest_retrace.format import tape
from pytest_retrace.format.codec import Raised

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# What every header holds at least (the reader refuses one without: see format/shapes.py)
HEADER = {"kind": "process", "hash_seed": 1, "entry": {"script": "x.py"}, "argv": ["x.py"], "cwd": "/nowhere",
          "environ": {}}


@pytest.fixture(autouse=True)
def main_thread() -> Iterator[None]:
    """The test's thread is thread 0 of a recording, as a recorded program's is."""
    start_main_thread()
    yield
    end_main_thread()


def write(path: Path, events: int = 1000, end: bool = True) -> None:
    writer = tape.TapeWriter(path, {**HEADER, "note": "test"})
    engine = Recorder(writer)
    clock = engine.wrap_noarg("time.time", lambda: 1.25)
    for i in range(events):
        clock()
        if i % 100 == 0:
            with pytest.raises(KeyError):
                engine.call("dict.get", ("k", i), {}.__getitem__, "k")
    engine.call("date", None, lambda: dt.date(2024, 1, 1))
    writer.flush()
    writer.close({"status": 0, "events": engine.events_in(writer.values_written)} if end else None)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    write(path)
    rec = tape.read_recording(path)
    assert rec.status == "complete" and rec.header["note"] == "test"
    events = rec.events()
    assert len(events) == 1000 + 10 + 1 and rec.end == {"status": 0, "events": 1011}
    assert events[0].name == "time.time" and events[0].args is None and events[0].result == 1.25
    raised = events[1]
    assert raised.name == "dict.get" and raised.args == ("k", 0) and isinstance(raised.result, Raised)
    assert events[-1].result == dt.date(2024, 1, 1)


def test_a_clock_event_costs_at_most_16_bytes(tmp_path: Path) -> None:
    small, big = tmp_path / "small.retrace", tmp_path / "big.retrace"
    writer = tape.TapeWriter(small, HEADER)
    writer.close({})
    writer = tape.TapeWriter(big, HEADER)
    engine = Recorder(writer)
    clock = engine.wrap_noarg("time.time", lambda: 1795346483.799337)
    for _ in range(10_000):
        clock()
    writer.close({})
    per_event = (big.stat().st_size - small.stat().st_size) / 10_000
    assert per_event <= 16, per_event


def test_truncated_file_reads_up_to_the_last_whole_frame(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    write(path, end=False)
    rec = tape.read_recording(path)
    assert rec.status == "truncated" and len(rec.events()) == 1011 and "no END frame" in rec.problem
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # a half-written last frame
    rec = tape.read_recording(path)
    assert rec.status == "truncated" and "partial frame" in rec.problem and len(rec.events()) < 1011


def test_corrupt_frame_is_reported_with_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    write(path)
    data = bytearray(path.read_bytes())
    header_len = struct.unpack_from(">I", data, 12)[0]
    second = 12 + 8 + header_len
    data[second + 8 + 2] ^= 0x55
    path.write_bytes(bytes(data))
    rec = tape.read_recording(path)
    assert rec.status == "corrupt" and rec.offset == second
    assert f"CRC mismatch in frame at offset {second}" in rec.problem


def test_newer_major_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    write(path)
    data = bytearray(path.read_bytes())
    struct.pack_into(">HH", data, 8, tape.FORMAT_MAJOR + 1, 0)
    path.write_bytes(bytes(data))
    ours = re.escape(tape.FORMAT)
    with pytest.raises(RecordingError, match=rf"format 2\.0, newer than the {ours} .* upgrade pytest-retrace"):
        tape.read_recording(path)


def test_newer_minor_version_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    write(path)
    data = bytearray(path.read_bytes())
    struct.pack_into(">H", data, 10, tape.FORMAT_MINOR + 1)
    path.write_bytes(bytes(data))
    assert tape.read_recording(path).status == "complete"


@pytest.mark.parametrize("content", [b"RETRACE", b"hello world, not a recording"])
def test_not_a_recording(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a.retrace"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match="not a pytest-retrace recording"):
        tape.read_recording(path)


def test_an_empty_file_is_named_so(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    path.write_bytes(b"")
    with pytest.raises(RecordingError, match="an empty file, not a recording") as raised:
        tape.read_recording(path)
    assert "bad magic" not in str(raised.value)


def test_frozen_format_1_0_recording_still_reads() -> None:
    frozen = FIXTURES / "recordings" / "format-1.0" / "clocks.retrace"
    rec = tape.read_recording(frozen)
    assert rec.status == "complete" and rec.header["format"] == "1.0"
    assert {e.name for e in rec.events()} >= {"time.time", "datetime.now", "time.sleep"}


def test_unencodable_result_is_named_with_its_boundary(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    writer = tape.TapeWriter(path, HEADER, background=False)
    engine = Recorder(writer)
    engine.call("time.time", None, lambda: 1.0)
    engine.call("my.client.fetch", ("x",), object)
    writer.close({"status": 0, "events": 2})
    rec = tape.read_recording(path)
    assert "builtins.object" in rec.end["recording_error"] and "'my.client.fetch'" in rec.end["recording_error"]
    assert rec.events()[0].result == 1.0


def test_frozen_format_1_1_recordings_still_read() -> None:
    folder = FIXTURES / "recordings" / "format-1.1"
    clocks = tape.read_recording(folder / "clocks.retrace")
    assert clocks.status == "complete" and clocks.header["format"] == "1.1"
    threaded = tape.read_recording(folder / "lock_append.retrace").events()
    assert {e.tid for e in threaded} == {"0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"}
    assert [e.args for e in threaded if e.name == "thread.start"] == [(f"0.{n}",) for n in range(1, 7)]
    assert sum(e.name == "lock.acquire" for e in threaded) >= 30


def test_frozen_format_1_6_recordings_hold_values_stored_once() -> None:
    folder = FIXTURES / "recordings" / "format-1.6"
    repeats = tape.read_recording(folder / "repeats.retrace")
    assert repeats.status == "complete" and repeats.header["format"] == "1.6"
    assert len(repeats.decoding.values) == 1  # the missing file's error, stored once for three stats
    stats = [e for e in repeats.events() if e.name == "os.stat"]
    assert len(stats) == 3 and all(type(e.result.exception) is FileNotFoundError for e in stats)
    counted = tape.read_recording(folder / "repeats.retrace", events=False)
    assert (counted.status, counted.count) == ("complete", repeats.count)


def test_frozen_format_1_3_and_1_5_recordings_still_read() -> None:
    older = tape.read_recording(FIXTURES / "recordings" / "format-1.3" / "clocks.retrace").header
    newer = tape.read_recording(FIXTURES / "recordings" / "format-1.5" / "clocks.retrace").header
    assert older["cwd"].startswith("/") and "project_root" not in older  # absolute paths, before they travelled
    assert (newer["cwd"], newer["entry"]) == (".", {"script": "fixtures/programs/clocks.py"})
    assert newer["argv"] == ["<project>/fixtures/programs/clocks.py"]


def test_forked_files_beside_a_recording_are_found_in_fork_order_and_strays_are_not(tmp_path: Path) -> None:
    base = str(tmp_path / ".rec.retrace.partial")
    for label in ("10", "2", "1.2", "1"):
        open(tape.forked_path(base, label), "wb").close()
    for stray in (".rec.retrace.partial.proc-1.tmp", ".rec.retrace.partial.proc-x", ".rec.retrace.partial.proc-0",
                  ".rec.retrace.partial.proc-1.", "other.proc-3"):
        (tmp_path / stray).touch()
    assert list(tape.forked_beside(base)) == ["1", "1.2", "2", "10"]
    assert tape.forked_beside(base)["1.2"] == tape.forked_path(base, "1.2")


def test_the_command_says_its_version_and_format(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_retrace import __version__, cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"retrace {__version__} (recording format {tape.FORMAT})\n"
