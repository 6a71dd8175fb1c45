"""A recording is untrusted input: reading one never runs code it names, and a damaged or crafted one is
``corrupt`` (with its offset) in every command, never a traceback or a crash.

Files are written by the real writer, then damaged (or carry crafted values the writer packs as they are)."""

from __future__ import annotations

import enum
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pytest_retrace import cli
from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.state import end_main_thread, start_main_thread
from pytest_retrace.errors import RecordingError
from pytest_retrace.format import codec, tape
from pytest_retrace.format.events import DeferredEvent


@pytest.fixture(autouse=True)
def main_thread() -> Iterator[None]:
    start_main_thread()
    yield
    end_main_thread()


def header(cwd: Path) -> dict[str, Any]:
    return {"kind": "process", "hash_seed": 7, "entry": {"script": "prog.py"}, "argv": ["prog.py"],
            "cwd": str(cwd), "environ": {}, "created_at": "2026-01-01T00:00:00+0000", "pin": None,
            "redaction": {"pattern": None, "redacted": []}, "tags": {}, "live_paths": []}


CRASH = {"type": "ValueError", "message": "boom", "traceback": [["prog.py", 1, "<module>", "x()"]],
         "fingerprint": "f" * 16}


def write(path: Path, results: list[Any], end: dict[str, Any] | None = None, **head: Any) -> None:
    """A recording by the real writer whose events return ``results`` (msgpack ExtTypes pack as they are)."""
    (path.parent / "prog.py").write_text("print('hi')\n")
    writer = tape.TapeWriter(path, {**header(path.parent), **head}, background=False)
    engine = Recorder(writer)
    for result in results:
        engine.call("my.call", ("x",), lambda result=result: result)
        writer.flush()  # a frame per event: damage can hit one in the middle
    end = {"status": 1, "events": len(results), "exception": CRASH, **(end or {})}
    writer.close(end)


def frames(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every frame."""
    data, offset, found = path.read_bytes(), 12, []
    while offset < len(data):
        length = struct.unpack_from(">I", data, offset)[0]
        found.append((offset, length))
        offset += 8 + length
    return found


def frame(kind: int, body: Any) -> bytes:
    payload = msgpack.packb([kind, body], use_bin_type=True)
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


# -- code named by a file never runs -----------------------------------------------------------------------


def payloads(marker: Path) -> list[msgpack.ExtType]:
    """Values that run a command creating ``marker`` if their type path is called (as readers used to)."""
    code = f"open({str(marker)!r}, 'w').close()"
    touch = ["touch", str(marker)]
    calls = [("builtins:exec", code), ("os:system", f"touch {marker}"), ("subprocess:Popen", touch)]
    made = []
    for path, arg in calls:
        made.append(msgpack.ExtType(codec.EXT_ENUM, codec.packb([path, arg])))
        made.append(msgpack.ExtType(codec.EXT_EXCEPTION, codec.packb([path, codec.packb([arg]), "m", {}])))
        made.append(msgpack.ExtType(codec.EXT_CODEC, codec.packb(
            ["structseq", [path, codec.packb(arg), codec.packb({})]])))
        made.append(msgpack.ExtType(codec.EXT_RAISED, codec.packb(
            msgpack.ExtType(codec.EXT_EXCEPTION, codec.packb([path, codec.packb([arg]), "m", {}])))))
    return made


@pytest.fixture
def crafted(tmp_path: Path) -> Iterator[tuple[list[Path], Path]]:
    marker = tmp_path / "MARKER"
    paths = []
    for n, value in enumerate(payloads(marker)):
        path = tmp_path / "in" / f"r{n}.retrace"
        path.parent.mkdir(exist_ok=True)
        write(path, [1, value])
        paths.append(path)
    yield paths, marker
    assert not marker.exists(), "a crafted recording ran code"


def test_reading_crafted_type_paths_runs_nothing(crafted: tuple[list[Path], Path]) -> None:
    paths, marker = crafted
    for path in paths:
        rec = tape.read_recording(path)
        assert rec.status == "corrupt", (path, rec.problem)
        assert rec.offset == frames(path)[3][0]  # the frame with the crafted value
        assert "is not a" in rec.problem and "class" in rec.problem
        rec.events()


@pytest.mark.parametrize("command", ["show", "show --json", "pin", "replay", "triage"])
def test_commands_refuse_crafted_recordings(crafted: tuple[list[Path], Path], command: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    paths, marker = crafted
    name, *options = command.split()
    for path in paths[:1] if name == "triage" else paths:
        target = str(path.parent) if name == "triage" else str(path)
        extra = ["--into", str(tmp_path / "pinned")] if name == "pin" else []
        verdict = tmp_path / "verdict.json"
        if name == "replay":  # the launcher only counts events: the replay's child finds the value, runs nothing
            extra = ["--verdict", str(verdict), "--allow-outside-project"]
        assert cli.main([name, target, *options, *extra]) == 2
        err = capsys.readouterr().err
        assert f"retrace {name}: " in err and "corrupt recording:" in err and "at offset" in err, err
        assert "Traceback" not in err
        if name == "replay":
            assert '"status": "corrupt"' in verdict.read_text()
    assert not (tmp_path / "pinned").exists() or not list((tmp_path / "pinned").iterdir())


def test_resolution_takes_only_classes_it_admits() -> None:
    admits = codec.resolve_class
    assert admits("builtins:ValueError", codec.TypeUse.EXCEPTION) == codec.Resolved(ValueError, True)
    assert admits("os:stat_result", codec.TypeUse.STRUCTSEQ).cls is os.stat_result  # type: ignore[union-attr]
    for path, use in [("builtins:exec", codec.TypeUse.EXCEPTION), ("subprocess:Popen", codec.TypeUse.ENUM),
                      ("builtins:ValueError", codec.TypeUse.ENUM), ("enum:Enum", codec.TypeUse.STRUCTSEQ)]:
        with pytest.raises(codec.MalformedValue, match="is not a"):
            admits(path, use)
    assert admits("not.imported.anywhere:Thing", codec.TypeUse.ENUM) is None  # never imported
    assert "not.imported.anywhere" not in sys.modules
    assert admits("tests.unit:Whatever.<locals>.X", codec.TypeUse.ENUM) is None


def test_allowed_modules_are_imported_others_wait(tmp_path: Path) -> None:
    module = tmp_path / "retrace_untrusted_app.py"
    module.write_text("import enum\nclass Mode(enum.Enum):\n    FAST = 'fast'\n"
                      "class Oops(Exception):\n    def __init__(self, *a):\n        super().__init__(*a)\n"
                      "        open(__file__ + '.ran', 'w').close()\n")
    sys.path.insert(0, str(tmp_path))
    try:
        value = codec.packb(["retrace_untrusted_app:Mode", "fast"])
        deferred = codec.unpackb(codec.packb(msgpack.ExtType(codec.EXT_ENUM, value)))
        assert isinstance(deferred, codec.Deferred) and "retrace_untrusted_app" not in sys.modules
        assert codec.packb(deferred) == codec.packb(msgpack.ExtType(codec.EXT_ENUM, value))  # packs back as it was
        assert codec.settled([deferred])[0] is deferred  # still not imported: stays
        codec.allow_type_module("retrace_untrusted_app")
        import retrace_untrusted_app as app

        assert codec.settled([deferred]) == [app.Mode.FAST]
        # An allowed module imported by the reader only: its classes' own constructors do not run.
        del sys.modules["retrace_untrusted_app"]
        codec._IMPORTED_BY_US.discard("retrace_untrusted_app")
        exc = codec.unpackb(codec.packb(msgpack.ExtType(codec.EXT_EXCEPTION, codec.packb(
            ["retrace_untrusted_app:Oops", codec.packb(["x"]), "x", {}]))))
        assert type(exc).__name__ == "Oops" and exc.args == ("x",)
        assert not Path(str(module) + ".ran").exists()
    finally:
        sys.path.remove(str(tmp_path))
        codec._TYPE_MODULES.discard("retrace_untrusted_app")
        sys.modules.pop("retrace_untrusted_app", None)


class Shade(enum.Enum):
    DARK = 1


def test_events_with_values_not_resolvable_yet_resolve_when_read(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    later = msgpack.ExtType(codec.EXT_ENUM, codec.packb(["retrace_not_yet_imported:Level", 3]))
    write(path, [Shade.DARK, [later, 1]])
    rec = tape.read_recording(path)
    assert rec.status == "complete"
    plain, deferred = rec.events()
    assert type(plain) is not DeferredEvent and plain.result is Shade.DARK
    assert type(deferred) is DeferredEvent and "retrace_not_yet_imported:Level 3" in repr(deferred.result)
    (tmp_path / "retrace_not_yet_imported.py").write_text("import enum\nclass Level(enum.IntEnum):\n    HIGH = 3\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import retrace_not_yet_imported as later_module  # the program imports it: now the event's value is whole

        assert deferred.result == [later_module.Level.HIGH, 1] and deferred.args == ("x",)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("retrace_not_yet_imported", None)


# -- bounds ---------------------------------------------------------------------------------------------


def nested_tuples(depth: int) -> msgpack.ExtType:
    value: Any = 1
    for _ in range(depth):
        value = msgpack.ExtType(codec.EXT_TUPLE, codec.packb([value]))
    return value


@pytest.mark.parametrize("value", [nested_tuples(1000), nested_tuples(200), "deep list"], ids=str)
def test_deep_nesting_is_corrupt(tmp_path: Path, value: Any) -> None:
    if value == "deep list":
        value = msgpack.ExtType(codec.EXT_TUPLE, b"\x91" * 1000 + b"\x01")
    path = tmp_path / "a.retrace"
    write(path, [1, value])
    rec = tape.read_recording(path)
    assert rec.status == "corrupt" and "nested more than" in rec.problem
    assert rec.offset == frames(path)[3][0] and rec.problem.endswith(f"at offset {rec.offset}")


@pytest.mark.parametrize("code, data, problem", [
    (codec.EXT_BIGINT, b"9" * 100_000, "big int"),
    (codec.EXT_DECIMAL, b"1" * 100_000, "Decimal"),
    (codec.EXT_DATETIME, codec.packb([2024, 13, 1, 0, 0, 0, 0, 0, None]), "datetime"),
    (codec.EXT_DATETIME, codec.packb(["x"]), "datetime"),
    (codec.EXT_TIMEDELTA, codec.packb([10**20, 0, 0]), "timedelta"),
    (codec.EXT_UUID, b"short", "uuid"),
    (codec.EXT_SET, codec.packb([[1]]), "set"),
    (codec.EXT_ENUM, codec.packb(["socket:AddressFamily", 12345]), "enum"),
    (99, b"", "unknown ext type"),
    (codec.EXT_EXCEPTION, codec.packb(["builtins:ValueError", b"\xc1", "m", {}]), "exception"),
    (codec.EXT_RAISED, codec.packb([1, 2]), "raised call"),
    (codec.EXT_RAISED, codec.packb(msgpack.ExtType(codec.EXT_EXCEPTION, codec.packb(
        ["not.imported.yet:Oops", codec.packb([]), "", {}, {"frames": "x"}]))), "traceback or notes"),
])
def test_malformed_values_are_corrupt(tmp_path: Path, code: int, data: bytes, problem: str) -> None:
    path = tmp_path / "a.retrace"
    write(path, [1, msgpack.ExtType(code, data)])
    rec = tape.read_recording(path)
    assert rec.status == "corrupt" and problem in rec.problem, rec.problem
    assert rec.offset == frames(path)[3][0]


# -- frames -----------------------------------------------------------------------------------------------


def damaged(tmp_path: Path, damage: Any) -> tape.Recording:
    path = tmp_path / "a.retrace"
    write(path, [1, 2, 3])
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(damage(data, frames(path))))
    return tape.read_recording(path)


def test_a_second_header_is_corrupt(tmp_path: Path) -> None:
    def insert(data: bytearray, at: list[tuple[int, int]]) -> bytes:
        first_offset, first_length = at[0]
        header_frame = data[first_offset : first_offset + 8 + first_length]
        return data[: at[1][0]] + header_frame + data[at[1][0] :]

    rec = damaged(tmp_path, insert)
    assert rec.status == "corrupt" and "a second HEADER frame" in rec.problem

    def after_events(data: bytearray, at: list[tuple[int, int]]) -> bytes:
        return data[: at[-1][0]] + data[at[0][0] : at[0][0] + 8 + at[0][1]] + data[at[-1][0] :]

    rec = damaged(tmp_path, after_events)
    assert rec.status == "corrupt" and "a second HEADER frame" in rec.problem and rec.offset == frames(
        tmp_path / "a.retrace")[-2][0]


def test_unknown_frame_kind_is_corrupt(tmp_path: Path) -> None:
    rec = damaged(tmp_path, lambda data, at: data[: at[1][0]] + frame(9, []) + data[at[1][0] :])
    assert rec.status == "corrupt" and "unknown kind 9" in rec.problem and rec.offset == at_frame(tmp_path, 1)


def at_frame(tmp_path: Path, n: int) -> int:
    return frames(tmp_path / "a.retrace")[n][0]


def test_a_bad_length_in_the_middle_is_corrupt_not_truncated(tmp_path: Path) -> None:
    def longer(data: bytearray, at: list[tuple[int, int]]) -> bytearray:
        struct.pack_into(">I", data, at[2][0], len(data))  # runs past the end, whole frames follow
        return data

    rec = damaged(tmp_path, longer)
    assert rec.status == "corrupt" and "runs past the end" in rec.problem

    def shorter(data: bytearray, at: list[tuple[int, int]]) -> bytearray:
        struct.pack_into(">I", data, at[2][0], at[2][1] - 1)
        return data

    rec = damaged(tmp_path, shorter)
    assert rec.status == "corrupt" and rec.offset == at_frame(tmp_path, 2)


def test_a_dropped_frame_in_the_middle_is_corrupt(tmp_path: Path) -> None:
    def drop(data: bytearray, at: list[tuple[int, int]]) -> bytearray:
        offset, length = at[3]  # the second EVENTS frame
        return data[:offset] + data[offset + 8 + length :]

    rec = damaged(tmp_path, drop)
    assert rec.status == "corrupt" and "frames are missing" in rec.problem


@pytest.mark.parametrize("cut", [1, 5, 9, 30])
def test_a_torn_tail_is_truncated(tmp_path: Path, cut: int) -> None:
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0] + min(cut, at[-1][1] + 7)])
    assert rec.status == "truncated" and len(rec.events()) == 3


@pytest.mark.parametrize("key, value, problem", [
    ("hash_seed", None, "has no 'hash_seed'"),
    ("cwd", None, "has no 'cwd'"),
    ("environ", ["x"], "'environ' is a list"),
    ("entry", {"script": 3}, "'script' is a int"),
    ("pin", "yes", "'pin' is a str"),
])
def test_a_malformed_header_is_corrupt_in_every_command(tmp_path: Path, key: str, value: Any, problem: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.retrace"
    head = header(tmp_path)
    if value is None:
        del head[key]
    else:
        head[key] = value
    (tmp_path / "prog.py").write_text("")
    writer = tape.TapeWriter(path, head, background=False)
    writer.close({"status": 0, "events": 0})
    with pytest.raises(RecordingError, match=f"corrupt recording: .*{problem}.* at offset 12"):
        tape.read_recording(path)
    for command in (["show"], ["replay"], ["pin", "--into", str(tmp_path / "p")], ["triage"]):
        target = str(tmp_path) if command[0] == "triage" else str(path)
        assert cli.main([command[0], target, *command[1:]]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"retrace {command[0]}: {path}: corrupt recording: ") and problem in err, err


@pytest.mark.parametrize("end, problem", [
    ({"status": "0"}, "'status' is a str"),
    ({"exception": {"type": "X"}}, "has no 'message'"),
    ({"exception": {**CRASH, "traceback": [[1, 2, 3]]}}, "traceback frames"),
    ({"stdout": {"size": 1}}, "has no 'digest'"),
    ({"events": 99}, "counts 99 events"),
])
def test_a_malformed_end_is_corrupt(tmp_path: Path, end: dict[str, Any], problem: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.retrace"
    write(path, [1], end=end)
    rec = tape.read_recording(path)
    assert rec.status == "corrupt" and problem in rec.problem and rec.offset == frames(path)[-1][0]
    assert cli.main(["triage", str(tmp_path)]) == 2
    assert problem in capsys.readouterr().err


def test_show_prints_what_it_read_of_a_corrupt_file_then_fails(tmp_path: Path) -> None:
    path = tmp_path / "a.retrace"
    write(path, [1, nested_tuples(100)])
    run = subprocess.run([sys.executable, "-m", "pytest_retrace", "show", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "my.call('x') -> 1" in run.stdout
    assert run.stderr.strip().splitlines() == [
        f"retrace show: {path}: corrupt recording: values nested more than {codec.MAX_EXT_DEPTH} ext levels deep "
        f"at offset {frames(path)[3][0]}"]


class Noisy(Exception):
    """A class of a module the reading process imported, whose constructor has an effect."""

    made: list[tuple[object, ...]] = []

    def __init__(self, *args: object) -> None:
        Noisy.made.append(args)
        super().__init__(*args)


def test_outside_a_replay_no_constructor_of_an_imported_class_runs() -> None:
    """``retrace show`` or the pytest process has many modules imported: a recording that names one of their
    exception classes gets an instance without that class's own constructor running."""
    Noisy.made.clear()
    exc = codec.unpackb(codec.packb(msgpack.ExtType(codec.EXT_EXCEPTION, codec.packb(
        [f"{__name__}:Noisy", codec.packb(["payload"]), "payload", {}]))))
    assert type(exc) is Noisy and exc.args == ("payload",)
    assert Noisy.made == []


@pytest.mark.parametrize("module", ["pytest_retrace.__main__", "json.tool", "asyncio.__main__", "http.server"])
def test_a_submodule_of_an_allowed_package_is_not_imported(module: str) -> None:
    """Allowed modules are allowed by exact name: a package's ``__main__`` (or a tool module) runs a program
    when imported, with the argv a replay restored from the recording."""
    sys.modules.pop(module, None)
    value = codec.unpackb(codec.packb(msgpack.ExtType(codec.EXT_EXCEPTION, codec.packb(
        [f"{module}:X", codec.packb(["a"]), "a", {}]))))
    assert isinstance(value, codec.Deferred)
    assert module not in sys.modules
    with pytest.raises(ValueError, match="may be allowed"):
        codec.allow_type_module("pytest_retrace.__main__")


def test_a_zone_key_never_gets_a_tzdata_of_the_reading_folder_imported(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "tzdata"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tzdata", raising=False)

    def datetime_in(key: str) -> bytes:
        return codec.packb(msgpack.ExtType(codec.EXT_DATETIME, codec.packb([2024, 1, 2, 3, 4, 5, 6, 0, ["zone", key]])))

    with pytest.raises(codec.MalformedValue, match="not known on this machine"):
        codec.unpackb(datetime_in("Fake/Zone"))
    with pytest.raises(codec.MalformedValue, match="names no zone"):
        codec.unpackb(datetime_in("../../etc/passwd"))
    assert not (tmp_path / "ran").exists() and "tzdata" not in sys.modules
    assert str(codec.unpackb(datetime_in("Europe/Paris")).tzinfo) == "Europe/Paris"


def test_show_never_sends_a_files_escape_sequences_to_the_terminal(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.retrace"
    escape = "\x1b]0;PWNED\x07\x1b[2J"
    write(path, [], end={"status": 1, "exception": {**CRASH, "message": escape}}, tags={"team": escape})
    assert cli.main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;PWNED\\x07" in out  # shown, escaped


@pytest.mark.parametrize("kind, entry, problem", [
    ("wsgi", {"app": "svc:app", "root": None, "environ": None, "body": b""}, "'environ' is a NoneType"),
    ("wsgi", {"app": "svc:app", "root": None, "environ": {}, "body": "text"}, "'body' is a str"),
    ("wsgi", {"app": "svc:app", "root": None, "body": b""}, "has no 'environ'"),
    ("wsgi", {"app": "svc:app", "root": None, "environ": {}, "body": b"", "taken": "1"}, "'taken' is a str"),
    ("wsgi", {"app": "svc:app", "root": None, "environ": {}, "body": b"", "taken": -1}, "fewer than no chunks"),
    ("call", {"function": "jobs:run", "root": None, "args": {}, "kwargs": {}}, "'args' is a dict"),
    ("call", {"function": "jobs:run", "root": None, "args": []}, "has no 'kwargs'"),
    ("call", {"function": "jobs:run", "root": None, "args": [], "kwargs": {}, "warm": {"tempdir": 5}},
     "'warm' holds items of the wrong types"),
])
def test_a_malformed_request_or_call_entry_is_corrupt(tmp_path: Path, kind: str, entry: dict[str, Any],
                                                      problem: str) -> None:
    path = tmp_path / "a.retrace"
    writer = tape.TapeWriter(path, {**header(tmp_path), "kind": kind, "entry": entry}, background=False)
    writer.close({"status": 0, "events": 0})
    with pytest.raises(RecordingError, match=f"corrupt recording: .*{problem}"):
        tape.read_recording(path)


def test_a_replays_report_never_sends_a_files_escape_sequences_to_the_terminal() -> None:
    """The report quotes the recording (its exception's type, message, source lines): escaped, like ``show``."""
    from pytest_retrace.front.report import format_verdict
    from pytest_retrace.kinds.outcome import ExceptionInfo, Outcome
    from pytest_retrace.runner.verdict import Status, Verdict

    escape = "\x1b]0;PWNED\x07\x1b[2J"
    crash = ExceptionInfo(f"ValueError{escape}", f"bad {escape}", [["prog.py", 1, "<module>", f"raise{escape}"]],
                          "f" * 16)
    verdict = Verdict("a.retrace", Status.NEW_CRASH, recorded=Outcome(1, crash), replayed=Outcome(0))
    report = format_verdict(verdict, detailed=True)
    assert "\x1b" not in report and "\x07" not in report
    assert "\\x1b]0;PWNED\\x07" in report and "\n" in report  # shown escaped; lines stay lines


@pytest.mark.parametrize("body, problem", [
    (["1", "not bytes"], "not [logical process id, recording]"),
    (["../1", b"RETRACE"], "not [logical process id, recording]"),
    (["0", b"RETRACE"], "not [logical process id, recording]"),
    (["1." * 20 + "1", b"RETRACE"], "not [logical process id, recording]"),
    (["1"], "not [logical process id, recording]"),
])
def test_a_malformed_forked_process_is_corrupt(tmp_path: Path, body: list[Any], problem: str) -> None:
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0]] + frame(tape.FRAME_PROCESS, body) + data[at[-1][0]:])
    assert rec.status == "corrupt" and problem in rec.problem, rec.problem


def test_forked_processes_are_read_by_id_and_a_repeated_one_is_corrupt(tmp_path: Path) -> None:
    inner = tmp_path / "inner.retrace"
    write(inner, [5])
    child = inner.read_bytes()
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0]] + frame(tape.FRAME_PROCESS, ["1", child])
                  + frame(tape.FRAME_PROCESS, ["1.2", child]) + data[at[-1][0]:])
    assert rec.status == "complete" and sorted(rec.processes) == ["1", "1.2"]
    assert tape.forked_end(rec.processes["1.2"]) == {"status": 1, "events": 1, "exception": CRASH}
    assert tape.read_recording_bytes(rec.processes["1"], "process 1").events()[0].result == 5
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0]] + frame(tape.FRAME_PROCESS, ["1", child]) * 2
                  + data[at[-1][0]:])
    assert rec.status == "corrupt" and "process 1 repeated" in rec.problem
    assert tape.forked_end(b"RETRACE\x00 not a recording") is None


@pytest.mark.parametrize("body", [
    "not a list",
    [[-1], []],
    [["0"], []],
    [[], [["psycopg2.connect", [], []]]],  # no answer
    [[], [["psycopg2.connect", [], [1] * 9]]],  # more answers than a log keeps
    [[], [[7, [], [1]]]],
    [[], [["time.time", None, [1.0]]] * 1001],
])
def test_a_malformed_setup_frame_is_corrupt(tmp_path: Path, body: Any) -> None:
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0]] + frame(tape.FRAME_SETUP, body) + data[at[-1][0]:])
    assert rec.status == "corrupt" and "SETUP frame" in rec.problem, rec.problem


def test_a_setup_frame_is_read_and_a_second_one_is_corrupt(tmp_path: Path) -> None:
    body = [[0, 2], [["psycopg2.connect", [[], {"dbname": "shop"}], [{"server_version": 160000}]],
                     ["time.time", None, [1.5, 2.5]]]]
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0]] + frame(tape.FRAME_SETUP, body) + data[at[-1][0]:])
    assert rec.status == "complete" and rec.setup is not None and rec.setup.marked == [0, 2]
    assert rec.setup.log[0] == ["psycopg2.connect", ([], {"dbname": "shop"}), [{"server_version": 160000}]]
    rec = damaged(tmp_path, lambda data, at: data[: at[-1][0]] + frame(tape.FRAME_SETUP, body) * 2
                  + data[at[-1][0]:])
    assert rec.status == "corrupt" and "a second SETUP frame" in rec.problem
