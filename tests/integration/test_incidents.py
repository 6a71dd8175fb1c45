"""The incident lifecycle as a user meets it: a program that crashes, recorded with ``retrace record``; ``retrace
triage`` finds the crash new, ``retrace pin`` pins it, pytest over the pinned case finds it fixed once the program
is, and regressed when it breaks again; the summary and ``--retrace-report`` say what moved, and triage of the
production folder sees it too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import retrace

from pytest_retrace.front.incidents import STATE_NAME, Incident, read_state, updating

PRICING = '''\
import sys

def total(quantity):
    if quantity > 2:
        raise ValueError(f"too many: {quantity}")
    if quantity == 0:
        return 10 / quantity
    return 10 * quantity

print("total", total(int(sys.argv[1])))
'''
FIXED = PRICING.replace("quantity > 2", "quantity > 5")
BOTH_FIXED = FIXED.replace("quantity == 0", "quantity < 0")
PRODUCTION, REGRESSION = "recordings", "tests/recordings"


def record(project: Path, name: str, quantity: int) -> Path:
    run = retrace("record", "-o", f"{PRODUCTION}/{name}.retrace", "pricing.py", str(quantity), cwd=project)
    assert run.returncode == (1 if quantity > 2 or quantity == 0 else 0), run.stderr
    return project / PRODUCTION / f"{name}.retrace"


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """Two recordings of the same crash (ValueError in pricing-total) and one run that went well."""
    root = pytester.path
    (root / "pricing.py").write_text(PRICING)
    (root / PRODUCTION).mkdir()
    record(root, "crash-1", 3)
    record(root, "crash-2", 4)
    record(root, "fine", 1)
    return root


def incidents(folder: Path) -> dict[str, Incident]:
    return {i.exception: i for i in read_state(folder / STATE_NAME).incidents.values()}


def test_new_pinned_fixed_regressed_fixed(pytester: pytest.Pytester, project: Path) -> None:
    triaged = retrace("triage", PRODUCTION, cwd=project)
    assert triaged.returncode == 0, triaged.stderr
    lines = triaged.stdout.splitlines()
    assert lines[0] == "    2 x  ValueError: too many: 3"
    assert lines[2] == "         new: retrace pin recordings/crash-1.retrace"
    [new] = incidents(project / PRODUCTION).values()
    assert (new.status, new.count, new.recordings) == ("new", 2, ["crash-1.retrace", "crash-2.retrace"])
    assert new.first_seen is not None and new.first_seen <= new.last_seen  # type: ignore[operator]
    assert retrace("triage", PRODUCTION, cwd=project).returncode == 0
    assert incidents(project / PRODUCTION)["ValueError"].count == 2  # a second triage counts nothing twice

    pinned = retrace("pin", f"{PRODUCTION}/crash-1.retrace", "--into", REGRESSION, cwd=project)
    assert pinned.returncode == 0, pinned.stderr
    assert (f"its incident is pinned in {REGRESSION}/{STATE_NAME}, {PRODUCTION}/{STATE_NAME}"
            in pinned.stdout)
    [case] = (project / REGRESSION).glob("*.retrace")
    for folder in (PRODUCTION, REGRESSION):
        incident = incidents(project / folder)["ValueError"]
        assert incident.status == "pinned" and (project / folder / str(incident.pinned)).resolve() == case

    still = pytester.runpytest("tests")
    still.assert_outcomes(failed=1)
    still.stdout.no_fnmatch_line("incidents:*")  # failing since it was pinned: nothing moved

    (project / "pricing.py").write_text(FIXED)
    fixed = pytester.runpytest("tests", "--retrace-report=fixed.json")
    fixed.assert_outcomes(passed=1)
    fixed.stdout.fnmatch_lines(["1 replayed, 1 crash fixed", "incidents: 1 fixed (ValueError in pricing-total)"])
    [change] = json.loads((project / "fixed.json").read_text())["incidents"]["changes"]
    assert (change["status"], change["exception"], change["place"]) == ("fixed", "ValueError", "pricing-total")
    assert change["recording"] == str(case) and change["state"] == str(project / REGRESSION / STATE_NAME)
    again = pytester.runpytest("tests")
    again.assert_outcomes(passed=1)
    again.stdout.no_fnmatch_line("incidents:*")  # transitions since the last run: none
    seen = retrace("triage", PRODUCTION, cwd=project)
    assert f"         fixed since {change['at']}: pinned as {REGRESSION}/{case.name}" in seen.stdout.splitlines()

    (project / "pricing.py").write_text(PRICING)
    regressed = pytester.runpytest("tests", "--retrace-report=regressed.json")
    regressed.assert_outcomes(failed=1)
    regressed.stdout.fnmatch_lines(["1 replayed, 1 crash reproduced, 1 regressed",
                                    "incidents: 1 regressed (ValueError in pricing-total)"])
    report = json.loads((project / "regressed.json").read_text())
    assert report["counts"]["regressed"] == 1
    assert [(r["regressed"], r["status"]) for r in report["recordings"]] == [(True, "crash-reproduced")]
    assert [c["status"] for c in report["incidents"]["changes"]] == ["regressed"]
    assert retrace("triage", PRODUCTION, cwd=project).stdout.splitlines()[2].startswith("         regressed since ")

    (project / "pricing.py").write_text(FIXED)
    pytester.runpytest("tests").stdout.fnmatch_lines(["incidents: 1 fixed (ValueError in pricing-total)"])
    retrace("triage", PRODUCTION, cwd=project)
    for folder in (REGRESSION, PRODUCTION):  # both states hold the whole history, dated in order
        history = incidents(project / folder)["ValueError"].history
        assert [t.status for t in history] == ["new", "pinned", "fixed", "regressed", "fixed"], folder
        assert [t.at for t in history] == sorted(t.at for t in history)


def test_counts_outlive_rotated_recordings(project: Path) -> None:
    assert retrace("triage", PRODUCTION, cwd=project).returncode == 0
    (project / PRODUCTION / "crash-1.retrace").unlink()  # rotated away
    record(project, "crash-3", 5)
    assert retrace("triage", PRODUCTION, cwd=project).stdout.startswith("    3 x  ValueError: too many: 3\n")
    incident = incidents(project / PRODUCTION)["ValueError"]
    assert (incident.count, incident.recordings) == (3, ["crash-2.retrace", "crash-3.retrace"])
    listed = json.loads(retrace("triage", PRODUCTION, "--json", cwd=project).stdout)
    assert [(i["count"], i["status"], i["pinned"]) for i in listed] == [(3, "new", None)]


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_several_pinned_cases_move_together(pytester: pytest.Pytester, project: Path, extra: list[str]) -> None:
    """Two incidents in one state, their cases replayed by two workers: the controller writes both, once."""
    record(project, "zero", 0)
    for name in ("crash-1", "zero"):
        assert retrace("pin", f"{PRODUCTION}/{name}.retrace", "--into", REGRESSION, cwd=project).returncode == 0
    (project / "pricing.py").write_text(BOTH_FIXED)
    fixed = pytester.runpytest("tests", *extra)
    fixed.assert_outcomes(passed=2)
    fixed.stdout.fnmatch_lines(["incidents: 2 fixed (*ValueError in pricing-total*)"])
    fixed.stdout.fnmatch_lines(["incidents: 2 fixed (*ZeroDivisionError in pricing-total*)"])
    state = incidents(project / REGRESSION)
    assert {name: [t.status for t in i.history] for name, i in state.items()} == {
        "ValueError": ["new", "pinned", "fixed"], "ZeroDivisionError": ["new", "pinned", "fixed"]}
    assert not list((project / REGRESSION).glob(f"{STATE_NAME}.*"))  # no temporary file left by anyone


def test_a_case_pinned_before_the_state_was_kept_starts_pinned(pytester: pytest.Pytester, project: Path) -> None:
    assert retrace("pin", f"{PRODUCTION}/crash-1.retrace", "--into", REGRESSION, cwd=project).returncode == 0
    (project / REGRESSION / STATE_NAME).unlink()
    (project / "pricing.py").write_text(FIXED)
    pytester.runpytest("tests").stdout.fnmatch_lines(["incidents: 1 fixed (ValueError in pricing-total)"])
    assert [t.status for t in incidents(project / REGRESSION)["ValueError"].history] == ["pinned", "fixed"]


def test_a_damaged_state_file_is_named_and_left_alone(pytester: pytest.Pytester, project: Path) -> None:
    assert retrace("pin", f"{PRODUCTION}/crash-1.retrace", "--into", REGRESSION, cwd=project).returncode == 0
    for folder in (PRODUCTION, REGRESSION):
        (project / folder / STATE_NAME).write_text('{"format": "retrace-incidents", "version": 1, "incidents": [')
    damaged = project / PRODUCTION / STATE_NAME
    triaged = retrace("triage", PRODUCTION, cwd=project)
    assert triaged.returncode == 2 and triaged.stdout == ""
    assert triaged.stderr.startswith(f"retrace triage: {damaged}: damaged incident state file: not JSON: ")
    assert "delete it and run `retrace triage` to start again" in triaged.stderr

    pin = retrace("pin", f"{PRODUCTION}/crash-2.retrace", "--into", "elsewhere", cwd=project)
    assert pin.returncode == 2 and f"retrace pin: {damaged}: damaged incident state file" in pin.stderr
    assert not (project / "elsewhere").exists()  # nothing copied

    (project / "pricing.py").write_text(FIXED)
    run = pytester.runpytest("tests")
    run.assert_outcomes(passed=1)
    assert run.ret == pytest.ExitCode.USAGE_ERROR  # the lifecycle was not kept: no green run
    run.stdout.fnmatch_lines([f"incidents not updated: {project / REGRESSION / STATE_NAME}: damaged incident state "
                              "file: not JSON*"])
    assert damaged.read_text().endswith('"incidents": [')  # never rebuilt behind the user's back

    damaged.unlink()  # as the message says: triage starts again
    assert retrace("triage", PRODUCTION, cwd=project).returncode == 0
    assert incidents(project / PRODUCTION)["ValueError"].count == 2


def test_writers_wait_for_each_other(project: Path) -> None:
    """A triage that starts while another writer holds the state waits for it, then adds its counts to what
    that writer wrote; two triages at once count each recording once."""
    path = project / PRODUCTION / STATE_NAME
    with updating(path) as state:
        triage = subprocess.Popen([sys.executable, "-m", "pytest_retrace", "triage", PRODUCTION], cwd=project,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert triage.poll() is None  # waiting for the lock
        state.incidents["ef" * 8] = Incident("ef" * 8, "KeyError", "'sku'", "shop-order", count=7)
    out, err = triage.communicate(timeout=60)
    assert triage.returncode == 0, err
    assert {i.exception: i.count for i in read_state(path).incidents.values()} == {"KeyError": 7, "ValueError": 2}
    assert "    7 x  KeyError: 'sku'" in out.splitlines()

    for n in range(3, 9):
        shutil.copy(project / PRODUCTION / "crash-1.retrace", project / PRODUCTION / f"copy-{n}.retrace")
    both = [subprocess.Popen([sys.executable, "-m", "pytest_retrace", "triage", PRODUCTION], cwd=project,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    assert [(p.communicate(timeout=60)[1], p.returncode) for p in both] == [("", 0), ("", 0)]
    assert incidents(project / PRODUCTION)["ValueError"].count == 8


def test_a_sealed_crash_keeps_its_message_out_of_the_state(project: Path) -> None:
    assert retrace("keygen", "-o", "project.key", cwd=project).returncode == 0
    (project / "secret.py").write_text("raise KeyError('card 4111-1111')\n")
    (project / "sealed").mkdir()
    run = retrace("record", "-o", "sealed/s.retrace", "--public-key", "project.key.pub", "secret.py", cwd=project)
    assert run.returncode == 1
    triaged = retrace("triage", "--key-file", "project.key", "sealed", cwd=project)
    # The one who holds the key reads the message; the state file beside the recordings never holds it.
    assert triaged.returncode == 0 and "KeyError: 'card 4111-1111'" in triaged.stdout, triaged.stderr
    pinned = retrace("pin", "--key-file", "project.key", "sealed/s.retrace", "--into", REGRESSION, cwd=project)
    assert pinned.returncode == 0, pinned.stderr
    for folder in ("sealed", REGRESSION):
        text = (project / folder / STATE_NAME).read_text()
        assert "4111" not in text and '"message": "(sealed)"' in text
