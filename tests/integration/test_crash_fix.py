"""Recorded crashes after a fix: from the first divergence on, calls are answered by call key."""

from __future__ import annotations

from pathlib import Path

from support import Recorder, retrace

CRASHING = """\
import time
first = time.time()
data = open("config.txt").read()
limit = int(data)
print("limit", limit, first > 0)
"""


def record_crash(tmp_path: Path) -> None:
    (tmp_path / "config.txt").write_text("ten")
    (tmp_path / "app.py").write_text(CRASHING)
    recorded = retrace("record", "-o", "rec.retrace", "app.py", cwd=tmp_path)
    assert recorded.returncode == 1 and "ValueError" in recorded.stderr


def test_fix_on_a_new_path_passes_as_crash_fixed(recorder: Recorder, tmp_path: Path) -> None:
    record_crash(tmp_path)
    # The fix reads the file before the clock: the first call differs, later ones are answered by key.
    (tmp_path / "app.py").write_text(
        "import time\n"
        "data = open('config.txt').read()\n"
        "first = time.time()\n"
        "limit = int(data) if data.strip().isdigit() else 10\n"
        "print('limit', limit, first > 0)\n"
    )
    replayed = recorder.replay()
    verdict = replayed.verdict
    assert verdict["status"] == "crash-fixed", verdict
    assert replayed.stdout == "limit 10 True\n"
    assert verdict["keyed"]["answered_by_key"] == 2 and verdict["keyed"]["unanswered"] == []
    assert verdict["keyed"]["first_divergence"]["actual"]["call"] == "open('config.txt', 'r')"
    assert "the recorded crash no longer happens" in replayed.stderr
    assert "the code took a new path at event #1" in replayed.stderr


def test_a_call_with_no_answer_raises_unrecorded_call(recorder: Recorder, tmp_path: Path) -> None:
    record_crash(tmp_path)
    (tmp_path / "app.py").write_text(CRASHING.replace('open("config.txt")', 'open("defaults.txt")'))
    replayed = recorder.replay()
    verdict = replayed.verdict
    assert verdict["status"] == "new-crash"
    assert verdict["replayed"]["exception"]["type"] == "pytest_retrace.errors.UnrecordedCall"
    assert verdict["keyed"]["unanswered"] == ["open('defaults.txt', 'r')"]
    assert "no answer for 1 calls (pytest_retrace.UnrecordedCall was raised):" in replayed.stderr


def test_an_unfixed_crash_still_reproduces(recorder: Recorder, tmp_path: Path) -> None:
    record_crash(tmp_path)
    replayed = recorder.replay()
    assert replayed.returncode == 1 and replayed.verdict["status"] == "crash-reproduced"
    assert replayed.verdict["keyed"] is None
