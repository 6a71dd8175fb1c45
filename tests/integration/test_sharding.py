"""Recordings spread over CI jobs and machines with the ordinary pytest tools (issue 17, part 5).

A small project (a script, a function recorded per call, a Flask app recorded per request: four recordings of
each, one of each a recorded crash) is recorded once; each test replays a copy of it in a folder of its own, so
every run is in "another checkout". pytest-split stores each recording's duration under its node id, then three
``--splits 3 --group k`` runs (``least_duration``) replay disjoint sets that together are all the recordings,
each recording with the verdict the whole run gave it; in a clone elsewhere, or from a subfolder, the node ids
and the groups are the same; ``--lf`` replays only the recordings that failed; a group runs under xdist as it
runs serially.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_split  # noqa: F401 - the plugin under test, from the test extra: fail here, not in each run
from support import retrace
from test_travel import make_project

from pytest_retrace.format.tape import read_recording

# The project of test_travel.py: a script (tool.py), a function recorded per call (jobs.py) and a Flask app
# recorded per request (service.py), all pricing items from a data file; kiwi has no price, a recorded crash.
ITEMS = ("apple", "pear", "apple", "kiwi")
# As the README advises: recordings' durations are far apart, and the default algorithm's consecutive chunks can
# leave a group empty; least_duration gives each group one of the longest first.
SPLIT = ("--splitting-algorithm", "least_duration")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, with its twelve recordings under recordings/."""
    app = tmp_path_factory.mktemp("sharding") / "app"
    make_project(app)  # with pyproject.toml: the rootdir, which node ids are relative to
    (app / "recordings").mkdir()
    for number, item in enumerate(ITEMS):
        run = retrace("record", "-o", f"recordings/tool-{number}-{item}.retrace", "--", "tool.py", item, cwd=app)
        assert run.returncode == (1 if item == "kiwi" else 0), run.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    for script in ("jobs.py", "service.py"):
        subprocess.run([sys.executable, script, *ITEMS], cwd=app, env=env, check=True, capture_output=True,
                       timeout=120)
    assert len(list(app.rglob("*.retrace"))) == 12
    return app


@pytest.fixture
def app(recorded: Path, tmp_path: Path) -> Path:
    """A copy of the recorded project in a folder of this test's own."""
    copy = tmp_path / "checkout" / "app"
    shutil.copytree(recorded, copy)
    return copy


def node_ids(app: Path) -> set[str]:
    return {f"{path.relative_to(app).as_posix()}::replay" for path in app.rglob("*.retrace")}


def expected_outcomes(app: Path) -> dict[str, str]:
    """Each recording's node id, and the outcome its replay must have: a recorded crash still happens."""
    return {f"{path.relative_to(app).as_posix()}::replay": "FAILED" if read_recording(path).end.get("exception")
            else "PASSED" for path in app.rglob("*.retrace")}


@dataclass
class Ran:
    returncode: int
    output: str
    outcomes: dict[str, str]  # node id -> PASSED, FAILED or ERROR, from the short summary


def run_pytest(cwd: Path, *args: str, root: Path | None = None) -> Ran:
    """pytest as a CI job runs it, in ``cwd``; every test's outcome read from its short summary (``-rA``), which
    shows where each test is from ``cwd``: told by its path from ``root`` (the project's, where pytest is run
    from by default), as its node id names it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHASHSEED", "PYTEST_ADDOPTS")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:randomly", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    outcomes = {}
    for found in re.finditer(r"^(PASSED|FAILED|ERROR) (\S+)::replay", proc.stdout, re.M):
        path = Path(os.path.relpath(cwd / found[2], root or cwd)).as_posix()
        outcomes[f"{path}::replay"] = found[1]
    return Ran(proc.returncode, output, outcomes)


def test_three_shards_replay_disjoint_groups_that_are_all_the_recordings(app: Path) -> None:
    expected = expected_outcomes(app)
    assert sorted(expected.values()).count("FAILED") == 3
    whole = run_pytest(app, "--retrace-recordings=recordings", "--store-durations")
    assert whole.outcomes == expected, whole.output
    durations = json.loads((app / ".test_durations").read_text())
    assert set(durations) == set(expected), "the durations file holds every recording's node id, and nothing else"
    assert all(seconds > 0 for seconds in durations.values()), durations

    groups = []
    for group in (1, 2, 3):
        shard = run_pytest(app, "--retrace-recordings=recordings", *SPLIT, "--splits", "3", "--group", str(group))
        assert f"Running group {group}/3" in shard.output, shard.output
        assert shard.outcomes, f"group {group} replayed nothing:\n{shard.output}"
        assert shard.outcomes == {node: expected[node] for node in shard.outcomes}, shard.output
        assert shard.returncode == (1 if "FAILED" in shard.outcomes.values() else 0), shard.output
        groups.append(set(shard.outcomes))
    assert sum(len(g) for g in groups) == len(expected), "a recording replayed in two groups"
    assert set().union(*groups) == set(expected), "a recording replayed in no group"


def test_node_ids_and_groups_are_the_same_in_a_clone_elsewhere_and_from_a_subfolder(app: Path,
                                                                                   tmp_path: Path) -> None:
    run_pytest(app, "--retrace-recordings=recordings", "--store-durations")
    here = run_pytest(app, "--retrace-recordings=recordings", *SPLIT, "--splits", "3", "--group", "2")
    # Another machine: the same checkout under another path, the durations file kept with it (in the repository).
    clone = tmp_path / "elsewhere" / "build" / "app"
    shutil.copytree(app, clone)
    shutil.rmtree(app)
    there = run_pytest(clone, "--retrace-recordings=recordings", *SPLIT, "--splits", "3", "--group", "2")
    assert there.outcomes == here.outcomes, there.output
    # From a subfolder: the node ids are the rootdir's (pyproject.toml), not the working folder's.
    durations = clone / ".test_durations"
    from_sub = run_pytest(clone / "sub", "--retrace-recordings=../recordings", *SPLIT, "--splits", "3", "--group", "2",
                          f"--durations-path={durations}", root=clone)
    assert from_sub.outcomes == here.outcomes, from_sub.output
    durations.unlink()
    run_pytest(clone / "sub", "--retrace-recordings=../recordings", "--store-durations",
               f"--durations-path={durations}")
    assert set(json.loads(durations.read_text())) == node_ids(clone)


def test_last_failed_replays_only_the_recordings_that_failed(app: Path) -> None:
    first = run_pytest(app, "--retrace-recordings=recordings")
    failed = {node for node, outcome in first.outcomes.items() if outcome == "FAILED"}
    assert len(failed) == 3, first.output
    again = run_pytest(app, "--retrace-recordings=recordings", "--lf")
    assert again.outcomes == dict.fromkeys(failed, "FAILED"), again.output
    assert "run-last-failure: rerun previous 3 failures" in again.output, again.output


def test_a_shard_runs_under_xdist_as_it_runs_serially(app: Path) -> None:
    run_pytest(app, "--retrace-recordings=recordings", "--store-durations", "-n", "2")
    durations = json.loads((app / ".test_durations").read_text())
    assert set(durations) == node_ids(app), "durations stored under xdist, by the same node ids"
    for group in (1, 3):
        serial = run_pytest(app, "--retrace-recordings=recordings", *SPLIT, "--splits", "3", "--group", str(group))
        parallel = run_pytest(app, "--retrace-recordings=recordings", *SPLIT, "--splits", "3", "--group", str(group),
                              "-n", "2")
        assert "2 workers [" in parallel.output, parallel.output
        assert parallel.outcomes == serial.outcomes, parallel.output
