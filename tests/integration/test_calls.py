"""Per-call recordings: ``@pytest_retrace.record_calls`` writes one recording per call of a job
handler, and ``pytest --retrace-recordings`` replays each by calling the function again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import PROGRAMS, LiveServer, retrace

from pytest_retrace.format.tape import read_recording


def run_jobs(folder: Path, port: int, keep: str = "all") -> subprocess.CompletedProcess[str]:
    if keep != "all":
        billing = folder / "billing.py"
        billing.write_text(billing.read_text().replace('keep="all"', f"keep={keep}"))
    env = {**os.environ, "BILLING_RECORDINGS": str(folder / "recordings")}
    return subprocess.run([sys.executable, str(folder / "worker.py"), str(port)], cwd=folder, env=env,
                          capture_output=True, text=True, check=True)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    shutil.copytree(PROGRAMS / "jobs", folder)
    return folder


def test_each_call_is_a_recording_that_replays_alone(jobs: Path, http_server: LiveServer) -> None:
    ran = run_jobs(jobs, http_server.port)
    assert "failed plum KeyError('BOGUS')" in ran.stdout
    recordings = sorted((jobs / "recordings").glob("*.retrace"))
    assert len(recordings) == 3
    headers = [read_recording(r).header for r in recordings]
    assert {h["kind"] for h in headers} == {"call"}
    assert {h["entry"]["function"] for h in headers} == {"billing:price_order"}
    assert sorted(h["entry"]["args"][0]["item"] for h in headers) == ["apple", "pear", "plum"]
    http_server.stop()
    for path in recordings:
        rec = read_recording(path)
        assert [e.name for e in rec.events() if e.name == "requests.send"] == ["requests.send"]
        replayed = retrace("replay", str(path), "--verdict", "v.json", cwd=jobs)
        crashed = rec.end["exception"] is not None
        assert replayed.returncode == (1 if crashed else 0), replayed.stderr
        verdict = json.loads((jobs / "v.json").read_text())
        assert verdict["status"] == ("crash-reproduced" if crashed else "ok")
        assert verdict["recorded"].get("returned") == verdict["replayed"].get("returned")


def test_keep_errors_keeps_only_the_call_that_raised(jobs: Path, http_server: LiveServer) -> None:
    run_jobs(jobs, http_server.port, keep='"errors"')
    (only,) = (jobs / "recordings").glob("*.retrace")
    assert read_recording(only).end["exception"]["type"] == "KeyError"


def test_the_plugin_replays_call_recordings_pin_fix_and_pass(http_server: LiveServer,
                                                            pytester: pytest.Pytester) -> None:
    jobs = pytester.path / "jobs"  # inside the project pytest runs in: replay runs only the project's code
    shutil.copytree(PROGRAMS / "jobs", jobs)
    run_jobs(jobs, http_server.port)
    http_server.stop()
    result = pytester.runpytest(f"--retrace-recordings={jobs / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*the recorded crash still happens*"])
    # The fix: unknown promo codes mean no discount.
    billing = jobs / "billing.py"
    billing.write_text(billing.read_text().replace('[order.get("promo", "NONE")]', '.get(order.get("promo"), 1.0)'))
    result = pytester.runpytest(f"--retrace-recordings={jobs / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_changed_return_value_is_a_divergence(jobs: Path, http_server: LiveServer) -> None:
    run_jobs(jobs, http_server.port)
    http_server.stop()
    billing = jobs / "billing.py"
    billing.write_text(billing.read_text().replace("round(unit * order", "round(100 + unit * order"))
    path = next(p for p in (jobs / "recordings").glob("*.retrace") if read_recording(p).end["exception"] is None)
    replayed = retrace("replay", str(path), cwd=jobs)
    assert replayed.returncode == 70
    assert "returned differs" in replayed.stderr and "'total'" in replayed.stderr


def test_arguments_no_codec_can_hold_leave_the_call_unrecorded(tmp_path: Path) -> None:
    module = tmp_path / "handler.py"
    module.write_text("import pytest_retrace\n\n@pytest_retrace.record_calls(directory='recs')\n"
                      "def handle(thing):\n    return 42\n\nprint(handle(object()))\n")
    ran = subprocess.run([sys.executable, str(module)], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout == "42\n"
    assert "not recording this call of handle: cannot record a value of type builtins.object" in ran.stderr
    assert not list((tmp_path / "recs").glob("*.retrace"))


def test_a_seeded_service_draws_the_same_series_while_recorded(pytester: pytest.Pytester) -> None:
    """Each recorded call draws from a generator of its own, seeded from the module's: a program that seeded
    the module's generator gets the same draws run after run, and every call replays alone."""
    folder = pytester.path  # the program lives in the project pytest replays in
    (folder / "draws.py").write_text(
        "import random\nimport pytest_retrace\n\nrandom.seed(7)\n\n"
        "@pytest_retrace.record_calls(directory='recs')\n"
        "def draw():\n    return [random.random(), random.randint(1, 99)]\n\n"
        "if __name__ == '__main__':\n    print([draw() for _ in range(3)])\n")
    runs = [subprocess.run([sys.executable, "draws.py"], cwd=folder, capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(set(map(str, eval(runs[0])))) == 3  # three different draws, not one stream replayed thrice
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recs'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_a_thread_an_earlier_call_started_can_record_calls_of_its_own(pytester: pytest.Pytester) -> None:
    """A worker started inside a recorded call belongs to that recording only while it is under way: once it
    is over, calls the worker makes are recorded on their own."""
    folder = pytester.path  # the program lives in the project pytest replays in
    (folder / "pool.py").write_text(
        "import threading\nimport time\nimport pytest_retrace\n\ngo = threading.Event()\n\n"
        "@pytest_retrace.record_calls(directory='recs')\ndef job(n):\n    return [n, time.time() > 0]\n\n"
        "workers = []\n\n"
        "@pytest_retrace.record_calls(directory='recs')\ndef start():\n"
        "    workers.append(threading.Thread(target=lambda: go.wait() and print(job(5))))\n"
        "    workers[0].start()\n\n"
        "if __name__ == '__main__':\n    start()\n    go.set()\n    workers[0].join()\n")
    ran = subprocess.run([sys.executable, "pool.py"], cwd=folder, capture_output=True, text=True, check=True)
    assert ran.stdout == "[5, True]\n"
    assert sorted(p.name.split("-")[0] for p in (folder / "recs").glob("*.retrace")) == ["job", "start"]
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recs'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_call_that_changes_its_arguments_is_recorded_with_them_as_they_came(pytester: pytest.Pytester) -> None:
    folder = pytester.path  # the program lives in the project pytest replays in
    (folder / "batch.py").write_text(
        "import pytest_retrace\n\n@pytest_retrace.record_calls(directory='recs')\n"
        "def drain(items):\n    total = sum(items)\n    items.clear()\n    return total\n\n"
        "if __name__ == '__main__':\n    print(drain([1, 2, 3]))\n")
    ran = subprocess.run([sys.executable, "batch.py"], cwd=folder, capture_output=True, text=True, check=True)
    assert ran.stdout == "6\n"
    (recording,) = (folder / "recs").glob("*.retrace")
    assert read_recording(recording).header["entry"]["args"] == [[1, 2, 3]]
    pytester.runpytest(f"--retrace-recordings={recording}", "-p", "no:cacheprovider").assert_outcomes(passed=1)
