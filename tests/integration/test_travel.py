"""Recordings travel (issue 14, part 4; DESIGN.md §2): made in one checkout, replayed in another.

A small project (a package that reads a data file by an absolute path computed from ``__file__``; a script, a
function recorded per call, a Flask app recorded per request) records in ``X/app``. The project is copied to
``Y/other-name/app`` and the original removed: every recording replays there, by the plugin and by the CLI (from
the project's root and from a subfolder), the crashes as ``crash-reproduced`` with the fingerprints they were
recorded with, and as ``crash-fixed`` once the copy is fixed. With both folders present and different code, the
verdict follows the replaying checkout's code. Recordings made before paths travelled (absolute paths) still
replay, and replays leave the checkout untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, Run, retrace

from pytest_retrace.format.tape import read_recording

CORE = """\
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def price(item):
    with open(os.path.join(ROOT, "data", "prices.csv")) as f:  # absolute: where this checkout is
        prices = dict(line.strip().split(",") for line in f if line.strip())
    return int(prices[item])
"""
FIXED = CORE.replace("return int(prices[item])", "return int(prices.get(item, 0))")

TOOL = """\
import sys
import time

from pricing.core import price

print(sys.argv[1], price(sys.argv[1]), time.time() > 0)
"""

JOBS = """\
import os
import sys

from pytest_retrace import record_calls

from pricing.core import price


def quote(item):
    return {"item": item, "price": price(item)}


if not os.environ.get("PLAIN"):
    quote = record_calls("recordings/calls")(quote)

if __name__ == "__main__":
    for item in sys.argv[1:]:
        try:
            print(quote(item))
        except KeyError as exc:
            print("no price for", exc)
"""

SERVICE = """\
import os
import sys

from flask import Flask, jsonify

from pricing.core import price

app = Flask(__name__)


@app.route("/price/<item>")
def show(item):
    return jsonify(item=item, price=price(item))


if not os.environ.get("PLAIN"):
    from pytest_retrace.wsgi import record_flask

    record_flask(app, "recordings/requests")

if __name__ == "__main__":
    client = app.test_client()
    for item in sys.argv[1:]:
        response = client.get(f"/price/{item}")
        print(response.status_code, response.get_data(as_text=True).strip())
        response.close()  # the server's close of the body ends the request and its recording
"""


def make_project(app: Path) -> None:
    (app / "pricing").mkdir(parents=True)
    (app / "data").mkdir()
    (app / "sub").mkdir()
    (app / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (app / "data" / "prices.csv").write_text("apple,3\npear,5\n")
    (app / "pricing" / "__init__.py").write_text("")
    (app / "pricing" / "core.py").write_text(CORE)
    (app / "tool.py").write_text(TOOL)
    (app / "jobs.py").write_text(JOBS)
    (app / "service.py").write_text(SERVICE)


def python(app: Path, *args: str, plain: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLAIN": "1"} if plain else dict(os.environ)
    env.pop("PYTHONHASHSEED", None)
    return subprocess.run([sys.executable, *args], cwd=app, env=env, capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``root``: content digest (or kind), mode and modification time."""
    found = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or path.name == ".pytest_cache":
            continue
        st = path.lstat()
        kind = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        found[str(path.relative_to(root))] = (kind, st.st_mode, st.st_mtime_ns if path.is_file() else 0)
    return found


def replay_all(app: Path, report: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Replay every recording of the project with the plugin; the statuses by recording name."""
    ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recordings",
                          f"--retrace-report={report}", "-q", *args], cwd=app, capture_output=True, text=True,
                         timeout=600)
    statuses = {Path(v["recording"]).name: v["status"] for v in json.loads(report.read_text())["recordings"]}
    return ran, statuses


def cli_replay(app: Path, recording: str, verdict: Path, cwd: Path | None = None) -> Run:
    run = retrace("replay", os.path.relpath(app / recording, cwd or app), "--verdict", str(verdict), cwd=cwd or app)
    run.verdict = json.loads(verdict.read_text())
    return run


def untimed(log: str) -> str:
    """A log without its time stamps (Flask logs the exception it answered 500 for)."""
    return re.sub(r"^\[[^]]*\]", "[time]", log, flags=re.MULTILINE)


class Recorded:
    """The project recorded in ``X/app``: what each run printed, plainly and recorded, and its recordings."""

    def __init__(self, app: Path) -> None:
        make_project(app)
        self.plain: dict[str, str] = {}
        self.recorded: dict[str, str] = {}
        (app / "recordings").mkdir()
        for item, name in (("apple", "tool-ok"), ("kiwi", "tool-crash")):
            plain = python(app, "tool.py", item)
            run = retrace("record", "-o", f"recordings/{name}.retrace", "--", "tool.py", item, cwd=app)
            assert (run.returncode, run.stdout, run.stderr) == (plain.returncode, plain.stdout, plain.stderr)
            self.plain[name], self.recorded[name] = plain.stdout + plain.stderr, run.stdout + run.stderr
        for script in ("jobs.py", "service.py"):
            plain = python(app, script, "apple", "kiwi", plain=True)
            run = python(app, script, "apple", "kiwi")
            assert (run.returncode, run.stdout, untimed(run.stderr)) == (plain.returncode, plain.stdout,
                                                                       untimed(plain.stderr))
            assert run.returncode == 0, run.stderr
            self.plain[script], self.recorded[script] = plain.stdout, run.stdout
        self.calls = sorted((app / "recordings" / "calls").glob("quote-*.retrace"))
        self.requests = sorted((app / "recordings" / "requests").glob("GET*.retrace"))
        assert len(self.calls) == 2 and len(self.requests) == 2


def crashed(recordings: list[Path]) -> Path:
    return next(p for p in recordings if (read_recording(p).end or {}).get("exception"))


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recorded]:
    """The project recorded in X/app, then copied to Y/other-name/app with X removed."""
    base = tmp_path_factory.mktemp("travel")
    original = base / "X" / "app"
    recorded = Recorded(original)
    copy = base / "Y" / "other-name" / "app"
    shutil.copytree(original, copy.parent / "app", symlinks=True)
    shutil.rmtree(base / "X")
    recorded.calls = [copy / p.relative_to(original) for p in recorded.calls]
    recorded.requests = [copy / p.relative_to(original) for p in recorded.requests]
    return copy, recorded


def test_the_header_stores_code_relative_to_the_project_root(moved: tuple[Path, Recorded]) -> None:
    app, recorded = moved
    process = read_recording(app / "recordings" / "tool-ok.retrace").header
    assert (process["entry"], process["cwd"]) == ({"script": "tool.py"}, ".")
    assert process["project_root"].endswith(f"{os.sep}X{os.sep}app")
    for recording in [*recorded.calls, *recorded.requests]:
        header = read_recording(recording).header
        assert (header["entry"]["root"], header["cwd"]) == (".", "."), header["entry"]
    events = read_recording(app / "recordings" / "tool-ok.retrace").events()
    assert ("open", ("<project>/data/prices.csv", "r")) in [(e.name, e.args) for e in events]


def test_recordings_replay_in_another_checkout_with_the_original_gone(moved: tuple[Path, Recorded],
                                                                       tmp_path: Path) -> None:
    app, recorded = moved
    before = tree(app.parent)
    ran, statuses = replay_all(app, tmp_path / "report.json")
    crash_call, crash_request = crashed(recorded.calls), crashed(recorded.requests)
    expected = {"tool-ok.retrace": "ok", "tool-crash.retrace": "crash-reproduced",
                **{p.name: "crash-reproduced" if p in (crash_call, crash_request) else "ok"
                   for p in [*recorded.calls, *recorded.requests]}}
    assert statuses == expected, ran.stdout
    assert "3 failed, 3 passed" in ran.stdout, ran.stdout
    assert tree(app.parent) == before, "the replays changed the checkout"


def test_a_crash_replays_with_the_fingerprint_it_was_recorded_with(moved: tuple[Path, Recorded],
                                                                   tmp_path: Path) -> None:
    app, recorded = moved
    fingerprints = []
    for recording in ("recordings/tool-crash.retrace", str(crashed(recorded.calls).relative_to(app)),
                      str(crashed(recorded.requests).relative_to(app))):
        run = cli_replay(app, recording, tmp_path / "verdict.json")
        assert run.verdict is not None and run.verdict["status"] == "crash-reproduced", run.stderr
        was, now = run.verdict["recorded"]["exception"], run.verdict["replayed"]["exception"]
        assert (was["type"], was["fingerprint"]) == (now["type"], now["fingerprint"]) == ("KeyError",
                                                                                         was["fingerprint"])
        # Portable frames: the project's files relative to its root, the same in both checkouts.
        assert [f[0] for f in was["traceback"]] == [f[0] for f in now["traceback"]]
        assert was["traceback"][-1][0] == "pricing/core.py"
        fingerprints.append(was["fingerprint"])
    pinned = retrace("pin", "recordings/tool-crash.retrace", "--into", str(tmp_path / "pinned"), cwd=app)
    assert pinned.returncode == 0, pinned.stderr
    assert [p.name for p in (tmp_path / "pinned").glob("*.retrace")] == [
        f"KeyError-core_price-{fingerprints[0][:8]}.retrace"]
    triaged = retrace("triage", "recordings", "--json", cwd=app)
    assert {g["fingerprint"] for g in json.loads(triaged.stdout)} == set(fingerprints), triaged.stdout


def test_the_cli_replays_from_the_project_root_and_from_a_subfolder(moved: tuple[Path, Recorded],
                                                                    tmp_path: Path) -> None:
    app, recorded = moved
    before = tree(app.parent)
    for cwd in (app, app / "sub"):
        run = cli_replay(app, "recordings/tool-ok.retrace", tmp_path / "verdict.json", cwd=cwd)
        assert (run.returncode, run.stdout + run.stderr) == (0, recorded.recorded["tool-ok"]), run.stderr
        assert run.verdict is not None and run.verdict["status"] == "ok"
        ok_call = next(p for p in recorded.calls if p != crashed(recorded.calls))
        call = cli_replay(app, str(ok_call.relative_to(app)), tmp_path / "verdict.json", cwd=cwd)
        assert call.returncode == 0 and call.verdict is not None and call.verdict["status"] == "ok", call.stderr
    assert tree(app.parent) == before, "the replays changed the checkout"


def test_the_fixed_copy_passes_as_crash_fixed(moved: tuple[Path, Recorded], tmp_path: Path) -> None:
    app, recorded = moved
    fixed = tmp_path / "fixed" / "app"
    shutil.copytree(app, fixed, ignore=shutil.ignore_patterns("__pycache__"))
    (fixed / "pricing" / "core.py").write_text(FIXED)
    ran, statuses = replay_all(fixed, tmp_path / "report.json")
    assert set(statuses.values()) == {"ok", "crash-fixed"}, ran.stdout
    assert sum(status == "crash-fixed" for status in statuses.values()) == 3, statuses
    assert "6 passed" in ran.stdout, ran.stdout


@pytest.mark.parametrize("fixed_in", ["replaying", "original"])
def test_with_both_checkouts_present_the_verdict_follows_the_replaying_one(fixed_in: str, tmp_path: Path) -> None:
    original, copy = tmp_path / "X" / "app", tmp_path / "Y" / "other-name" / "app"
    make_project(original)
    (original / "recordings").mkdir()
    assert retrace("record", "-o", "recordings/crash.retrace", "--", "tool.py", "kiwi", cwd=original).returncode == 1
    shutil.copytree(original, copy)
    (copy if fixed_in == "replaying" else original).joinpath("pricing", "core.py").write_text(FIXED)
    run = cli_replay(copy, "recordings/crash.retrace", tmp_path / "verdict.json")
    expected = "crash-fixed" if fixed_in == "replaying" else "crash-reproduced"
    assert run.verdict is not None and run.verdict["status"] == expected, run.stderr
    ran, statuses = replay_all(copy, tmp_path / "report.json")
    assert statuses == {"crash.retrace": expected}, ran.stdout


def test_in_a_folder_holding_two_copies_a_recording_runs_the_code_of_the_copy_that_holds_it(tmp_path: Path) -> None:
    """No project markers: replayed from a folder that holds the original (where it was recorded, still there)
    and a fixed copy, the copy's recording runs the copy's code, and the original's the original's."""
    folder = tmp_path / "work"
    original, copy = folder / "app", folder / "copy"
    make_project(original)
    (original / "pyproject.toml").unlink()
    (original / "recordings").mkdir()
    assert retrace("record", "-o", "recordings/crash.retrace", "--", "tool.py", "kiwi", cwd=original).returncode == 1
    shutil.copytree(original, copy)
    (copy / "pricing" / "core.py").write_text(FIXED)
    for holder, expected in ((copy, "crash-fixed"), (original, "crash-reproduced")):
        recording = f"{holder.name}/recordings/crash.retrace"
        run = cli_replay(folder, recording, tmp_path / "verdict.json")
        assert run.verdict is not None and run.verdict["status"] == expected, (recording, run.stderr)
        ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                              f"--retrace-recordings={holder.name}/recordings", f"--retrace-report={tmp_path}/r.json"],
                             cwd=folder, capture_output=True, text=True, timeout=300)
        statuses = [v["status"] for v in json.loads((tmp_path / "r.json").read_text())["recordings"]]
        assert statuses == [expected], ran.stdout


def test_a_node_id_selects_only_its_recording(moved: tuple[Path, Recorded], tmp_path: Path) -> None:
    app, _ = moved

    def collected(*args: str) -> list[str]:
        ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", *args], cwd=app,
                             capture_output=True, text=True, timeout=120)
        return [line for line in ran.stdout.splitlines() if "::" in line]

    every = collected("--retrace-recordings=recordings")
    assert len(every) == 6 and "recordings/tool-ok.retrace::replay" in every
    only = ["recordings/tool-ok.retrace::replay"]
    assert collected("recordings/tool-ok.retrace::replay", "--retrace-recordings=recordings") == only
    assert collected("recordings/tool-ok.retrace", "--retrace-recordings=recordings") == only
    assert len(collected("recordings/calls", "--retrace-recordings=recordings")) == 2
    assert collected("--retrace-recordings=recordings", "-k", "tool and ok") == only
    ran = subprocess.run([sys.executable, "-m", "pytest", "recordings/tool-ok.retrace::replay",
                          "--retrace-recordings=recordings", "-q", "-p", "no:cacheprovider"], cwd=app,
                         capture_output=True, text=True, timeout=300)
    assert "1 passed" in ran.stdout and "failed" not in ran.stdout, ran.stdout


def test_last_failed_reruns_only_the_failed_recordings(moved: tuple[Path, Recorded], tmp_path: Path) -> None:
    app, _ = moved
    work = tmp_path / "app"
    shutil.copytree(app, work, ignore=shutil.ignore_patterns("__pycache__"))
    first, statuses = replay_all(work, tmp_path / "first.json", "-p", "cacheprovider")
    assert "3 failed" in first.stdout, first.stdout
    again, rerun = replay_all(work, tmp_path / "again.json", "-p", "cacheprovider", "--lf")
    assert sorted(rerun) == sorted(name for name, status in statuses.items() if status != "ok"), again.stdout


@pytest.mark.parametrize("frozen", ["format-1.1", "format-1.3", "format-1.5", "format-1.6"])
def test_frozen_recordings_replay_in_another_checkout(frozen: str, tmp_path: Path) -> None:
    """The frozen recordings hold the paths of the checkout that froze them: absolute before format 1.5 (moved to
    this checkout, which has their script at the same place below its root), relative to its root since 1.5."""
    checkout = tmp_path / "elsewhere"
    (checkout / "fixtures" / "programs").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    shutil.copy(ROOT / "fixtures" / "programs" / "clocks.py", checkout / "fixtures" / "programs" / "clocks.py")
    recording = ROOT / "fixtures" / "recordings" / frozen / "clocks.retrace"
    header: dict[str, Any] = read_recording(recording).header
    assert os.path.isabs(header["cwd"]) == (frozen < "format-1.5") == ("project_root" not in header)
    before = tree(checkout)
    for cwd in (checkout, checkout / "fixtures"):
        run = retrace("replay", str(recording), "--verdict", str(tmp_path / "verdict.json"), cwd=cwd)
        verdict = json.loads((tmp_path / "verdict.json").read_text())
        assert run.returncode == 0 and verdict["status"] == "ok", run.stderr
    assert tree(checkout) == before


def test_frozen_stored_values_replay(tmp_path: Path) -> None:
    """A format-1.6 recording whose events refer to a value stored once (three stats of a missing file share one
    stored error) replays in another checkout, each stat raising the recorded error."""
    checkout = tmp_path / "elsewhere"
    (checkout / "fixtures" / "programs").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    shutil.copy(ROOT / "fixtures" / "programs" / "repeats.py", checkout / "fixtures" / "programs" / "repeats.py")
    recording = ROOT / "fixtures" / "recordings" / "format-1.6" / "repeats.retrace"
    run = retrace("replay", str(recording), "--verdict", str(tmp_path / "verdict.json"), cwd=checkout)
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert run.returncode == 0 and verdict["status"] == "ok", run.stderr
    assert run.stdout.count("missing") == 3
