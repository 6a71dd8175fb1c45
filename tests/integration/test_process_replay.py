"""Acceptance: programs recorded once replay exactly after the world changed.

Each program is also run twice plainly first, to show that its output really does
change from run to run: a replay that printed the same thing would otherwise prove
nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import Recorder, assert_faithful, plain, retrace

from pytest_retrace.format.tape import read_recording, read_recording_bytes


@pytest.mark.parametrize("program", ["entropy.py", "clocks.py", "hashing.py"])
def test_sources_of_nondeterminism_replay_exactly(recorder: Recorder, program: str, tmp_path: Path) -> None:
    assert plain(program, cwd=tmp_path) != plain(program, cwd=tmp_path)
    recorded = recorder.record(program)
    assert recorded.returncode == 0, recorded.stderr
    assert_faithful(recorder, recorded, env={"PYTHONHASHSEED": "12345"})


def test_sleep_returns_at_once_on_replay(recorder: Recorder) -> None:
    recorded = recorder.record("clocks.py")
    assert "slept 0.3" in recorded.stdout
    replayed = assert_faithful(recorder, recorded)
    assert replayed.verdict["status"] == "ok"


def test_environment_is_restored_and_secrets_redacted(recorder: Recorder) -> None:
    recorded = recorder.record("environ.py", env={"GREETING": "hello", "API_TOKEN": "s3cr3t"})
    assert "GREETING hello" in recorded.stdout
    assert "API_TOKEN set True" in recorded.stdout
    assert "s3cr3t" not in (recorder.folder / "rec.retrace").read_bytes().decode("latin-1")
    assert_faithful(recorder, recorded, env={"GREETING": "changed", "RETRACE_DEMO_NUMBER": "7"})


def test_data_files_are_answered_from_the_recording(recorder: Recorder, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "prices.csv").write_text("apple,1\npear,2\n")
    (data / "blob.bin").write_bytes(bytes(range(8)))
    recorded = recorder.record("datafiles.py", str(data))
    assert recorded.returncode == 0, recorded.stderr
    assert "read back total=15" in recorded.stdout
    # The world moves on: contents edited, files added and removed.
    (data / "prices.csv").write_text("apple,100\n")
    (data / "blob.bin").unlink()
    (data / "extra.csv").write_text("new")
    (data / "out.txt").write_text("overwritten since")
    assert_faithful(recorder, recorded)
    assert (data / "out.txt").read_text() == "overwritten since", "replay must not perform writes"


def test_subprocesses_are_not_spawned_on_replay(recorder: Recorder, tmp_path: Path) -> None:
    recorded = recorder.record("subprocesses.py")
    assert recorded.returncode == 0, recorded.stderr
    assert "returncode 3" in recorded.stdout and "called process error 1" in recorded.stdout
    assert "os.system 5" in recorded.stdout and "timeout 0.199" in recorded.stdout
    bin_dir = tmp_path / "nobin"
    bin_dir.mkdir()
    # Replayed through another interpreter path and with nothing on PATH: nothing can be spawned.
    replayed = retrace("replay", "rec.retrace", cwd=recorder.folder, env={"PATH": str(bin_dir)})
    assert (replayed.returncode, replayed.stdout, replayed.stderr) == (0, recorded.stdout, "")


def test_http_clients_replay_with_the_server_gone(recorder: Recorder, http_server) -> None:
    recorded = recorder.record("http_clients.py", str(http_server.port))
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.count("price") == 3
    http_server.stop()
    assert_faithful(recorder, recorded)


def test_https_replays_with_the_server_gone(recorder: Recorder, https_server, certificate) -> None:
    recorded = recorder.record("https_client.py", str(https_server.port), str(certificate[0]))
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.count("price") == 2
    https_server.stop()
    assert_faithful(recorder, recorded)


def test_a_crash_replays_with_the_same_traceback(recorder: Recorder, tmp_path: Path) -> None:
    recorded = recorder.record("crash.py")
    assert recorded.returncode == 1
    direct = subprocess.run([sys.executable, str(recorder.folder / "crash.py")], capture_output=True, text=True)
    assert recorded.stderr == direct.stderr, "the recorded traceback must read as a plain run's"
    assert recorded.stderr.strip().endswith("ValueError: invalid literal for int() with base 10: 'not a number'")
    replayed = assert_faithful(recorder, recorded)
    assert replayed.verdict["status"] == "crash-reproduced"
    assert replayed.verdict["recorded"]["exception"]["type"] == "ValueError"


def test_a_forked_child_leaves_the_recording_intact(recorder: Recorder) -> None:
    recorded = recorder.record("forking.py")
    assert recorded.returncode == 0, recorded.stderr
    assert "child True" in recorded.stdout and "child exit 0 True" in recorded.stdout
    replayed = recorder.replay()
    assert replayed.verdict["status"] == "ok", replayed.stderr
    # The parent's: the random seed, its two clock reads, the fork and the wait; the child's clock read is the
    # child's own recording's, inside the parent's.
    assert replayed.verdict["events_recorded"] == 5
    child = read_recording_bytes(read_recording(recorder.folder / "rec.retrace").processes["1"], "child")
    assert [e.name for e in child.events()] == ["time.time"] and child.end is not None


def test_standard_input_is_recorded(recorder: Recorder) -> None:
    recorded = recorder.record("stdin_reader.py", stdin="ada\nthree more words\n")
    assert recorded.stdout == "name? hello ada and 3 more words\n"
    assert_faithful(recorder, recorded)  # the replay's stdin is empty


def test_module_entry_point(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "stamp.py").write_text("import time, uuid\nprint(time.time(), uuid.uuid4())\n")
    from support import retrace

    recorded = retrace("record", "-o", "rec.retrace", "-m", "stamp", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert_faithful(recorder, recorded)
