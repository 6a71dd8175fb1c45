"""A replay that differs is never reported as faithful: divergences, outcome mismatches,
truncated and corrupt recordings, and the verdict file's contract."""

from __future__ import annotations

import struct
from pathlib import Path

from support import PROGRAMS, Recorder, retrace

from pytest_retrace.format.tape import FORMAT_MAJOR

DIVERGED = 70


def test_uninstrumented_source_is_caught_by_the_outcome_comparison(recorder: Recorder) -> None:
    recorded = recorder.record("uninstrumented.py")
    assert recorded.returncode == 0
    replayed = recorder.replay()
    assert replayed.returncode == DIVERGED
    verdict = replayed.verdict
    assert verdict["faithful"] is False and verdict["status"] == "diverged"
    assert verdict["divergence"]["kind"] == "outcome" and verdict["divergence"]["differs"] == ["stdout"]
    assert "every recorded call matched, but the run ended differently" in replayed.stderr
    assert "stdout differs" in replayed.stderr


def test_changed_call_reports_both_sides_and_the_stack(recorder: Recorder, tmp_path: Path) -> None:
    program = tmp_path / "prog.py"
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").write_text("B")
    program.write_text("import time\nprint(time.time())\nprint(open('a.txt').read())\n")
    recorded = retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path)
    assert recorded.returncode == 0
    program.write_text("import time\nprint(time.time())\nprint(open('b.txt').read())\n")
    replayed = recorder.replay()
    assert replayed.returncode == DIVERGED
    d = replayed.verdict["divergence"]
    assert d["kind"] == "mismatch" and d["index"] == 2 and d["thread"] == "0"
    assert d["expected"]["call"] == "open('a.txt', 'r')"
    assert d["actual"]["call"] == "open('b.txt', 'r')"
    assert d["stack"][-1][:3] == [str(program), 3, "<module>"]
    assert [e["call"] for e in d["preceding"]] == ["random.seed()", "time.time()"]
    err = replayed.stderr
    assert "replay diverged at event #2 (thread 0)" in err
    assert "expected  open('a.txt', 'r')" in err and "actual    open('b.txt', 'r')" in err
    assert "- ('a.txt', 'r')" in err and "+ ('b.txt', 'r')" in err
    assert f'File "{program}", line 3, in <module>' in err
    # The program stops at the divergence: what it would print after is never printed.
    assert "B" not in replayed.stdout


def test_extra_and_missing_calls_diverge(recorder: Recorder, tmp_path: Path) -> None:
    program = tmp_path / "prog.py"
    program.write_text("import time\nprint(time.time())\n")
    assert retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path).returncode == 0
    program.write_text("import time\nprint(time.time())\nprint(time.time())\n")
    extra = recorder.replay()
    assert extra.returncode == DIVERGED and extra.verdict["divergence"]["kind"] == "extra-call"
    program.write_text("import time\nprint(1795000000.0)\n")
    missing = recorder.replay()
    assert missing.returncode == DIVERGED
    assert missing.verdict["divergence"]["kind"] == "missing-calls"
    assert "the program ended without making the recorded call" in missing.stderr


def test_exit_status_is_the_recorded_one_when_faithful(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text("import sys, time\nprint(time.time())\nsys.exit(4)\n")
    recorded = retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path)
    assert recorded.returncode == 4
    replayed = recorder.replay()
    assert replayed.returncode == 4 and replayed.verdict["faithful"] is True


def test_verdict_file_has_the_contract_fields(recorder: Recorder) -> None:
    recorder.record("clocks.py")
    verdict = recorder.replay().verdict
    for field in ("faithful", "status", "divergence", "recorded", "replayed", "events_recorded",
                  "events_consumed"):
        assert field in verdict
    assert verdict["recorded"]["stdout"]["digest"] == verdict["replayed"]["stdout"]["digest"]


def test_truncated_recording_says_so(recorder: Recorder, tmp_path: Path) -> None:
    recorder.record("clocks.py")
    path = tmp_path / "rec.retrace"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])  # cut inside the END frame: the process "was killed"
    replayed = recorder.replay()
    assert replayed.returncode == DIVERGED
    assert replayed.verdict["status"] == "truncated"
    assert "truncated" in replayed.stderr and "diverged" not in replayed.stderr


def test_corrupt_recording_names_the_offset(recorder: Recorder, tmp_path: Path) -> None:
    recorder.record("clocks.py")
    path = tmp_path / "rec.retrace"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    replayed = recorder.replay()
    assert replayed.returncode == 2  # an error, not a replay of a crash (1) nor a divergence (70)
    assert replayed.verdict["status"] == "corrupt"
    assert replayed.stderr.startswith("retrace replay: rec.retrace: corrupt recording: CRC mismatch in frame at offset")


def test_newer_format_is_refused_with_advice(recorder: Recorder, tmp_path: Path) -> None:
    recorder.record("clocks.py")
    path = tmp_path / "rec.retrace"
    data = bytearray(path.read_bytes())
    struct.pack_into(">H", data, 8, FORMAT_MAJOR + 1)
    path.write_bytes(bytes(data))
    shown = retrace("show", "rec.retrace", cwd=tmp_path)
    assert shown.returncode == 2
    assert "newer than" in shown.stderr and "upgrade pytest-retrace" in shown.stderr


def test_show_lists_header_and_events(recorder: Recorder, tmp_path: Path) -> None:
    recorder.record("crash.py")
    shown = retrace("show", "rec.retrace", cwd=tmp_path)
    assert shown.returncode == 0
    assert "kind       'process'" in shown.stdout
    assert "time.time() -> " in shown.stdout
    assert "crash ValueError: invalid literal" in shown.stdout
    import json

    doc = json.loads(retrace("show", "--json", "rec.retrace", cwd=tmp_path).stdout)
    assert doc["status"] == "complete" and doc["header"]["entry"] == {"script": "crash.py"}  # project-relative
    assert doc["header"]["project_root"] == str(tmp_path) and doc["header"]["cwd"] == "."
    assert [e["name"] for e in doc["events"]][-1] == "time.time"


def test_replay_without_the_program_is_a_usage_error(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text("print('hi')\n")
    assert retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path).returncode == 0
    (tmp_path / "prog.py").unlink()
    replayed = recorder.replay()
    assert replayed.returncode == 2 and "no program 'prog.py'" in replayed.stderr


def test_usage_errors_are_clear(tmp_path: Path) -> None:
    missing = retrace("replay", "nowhere.retrace", cwd=tmp_path)
    assert missing.returncode == 2 and "no such recording" in missing.stderr
    shown = retrace("show", "nowhere.retrace", cwd=tmp_path)
    assert shown.returncode == 2 and "no such recording" in shown.stderr
    noprog = retrace("record", "-o", "x.retrace", cwd=tmp_path)
    assert noprog.returncode == 2 and "name the program to record" in noprog.stderr
    nofolder = retrace("record", "-o", "nowhere/x.retrace", str(PROGRAMS / "clocks.py"), cwd=tmp_path)
    assert nofolder.returncode == 2 and "does not exist; create it first" in nofolder.stderr
    noscript = retrace("record", "-o", "x.retrace", "missing.py", cwd=tmp_path)
    assert noscript.returncode == 2 and "no program 'missing.py'" in noscript.stderr
    (tmp_path / "junk.retrace").write_bytes(b"not a recording at all")
    junk = retrace("show", "junk.retrace", cwd=tmp_path)
    assert junk.returncode == 2 and "not a pytest-retrace recording" in junk.stderr


def test_writing_other_content_diverges_at_the_write(recorder: Recorder, tmp_path: Path) -> None:
    program = tmp_path / "prog.py"
    program.write_text("with open('out.txt', 'w') as f:\n    f.write('total=10')\nprint(open('out.txt').read())\n")
    assert retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.txt").read_text() == "total=10"
    (tmp_path / "out.txt").unlink()
    program.write_text(program.read_text().replace("total=10", "total=11"))
    replayed = recorder.replay()
    assert replayed.returncode == DIVERGED
    d = replayed.verdict["divergence"]
    assert d["expected"]["name"] == d["actual"]["name"] == "file.written"
    assert "('out.txt', 8, " in d["expected"]["call"]
    assert not (tmp_path / "out.txt").exists(), "replay must not write data files"


def test_update_modes_serve_recorded_content(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("first\n")
    (tmp_path / "prog.py").write_text(
        "with open('log.txt', 'a+') as f:\n"
        "    f.write('second\\n')\n"
        "    f.seek(0)\n"
        "    print(f.read().split())\n"
        "with open('log.txt', 'r+b') as f:\n"
        "    print(f.read())\n"
    )
    recorded = retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path)
    assert recorded.stdout == "['first', 'second']\nb'first\\nsecond\\n'\n"
    (tmp_path / "log.txt").write_text("changed since\n")
    replayed = recorder.replay()
    assert replayed.verdict["faithful"] is True and replayed.stdout == recorded.stdout
    assert (tmp_path / "log.txt").read_text() == "changed since\n"


def test_live_paths_are_read_for_real_on_replay(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "template.html").write_text("<b>v1</b>")
    (tmp_path / "prog.py").write_text("print(len(open('template.html').read()))\n")
    assert retrace("record", "-o", "rec.retrace", "--live", "*.html", "prog.py", cwd=tmp_path).returncode == 0
    (tmp_path / "template.html").write_text("<b>version 2</b>")
    replayed = recorder.replay()
    assert replayed.returncode == DIVERGED, "the live file's new content reaches the program"
    assert replayed.verdict["divergence"]["differs"] == ["stdout"]
