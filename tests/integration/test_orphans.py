"""Obsolete recordings (orphans): what a recording ran — a script, a module, a function, a WSGI app — is gone from
the code. The summary lists them, like a snapshot tool's unused snapshots; ``--retrace-prune`` deletes the pinned
ones, and only those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import retrace

JOBS = '''\
import pytest_retrace


@pytest_retrace.record_calls("recordings")
def invoice(n):
    if n < 0:
        raise ValueError(f"negative order {n}")
    return {"total": n * 3}


@pytest_retrace.record_calls("recordings")
def refund(n):
    return {"refund": n}


if __name__ == "__main__":
    print(invoice(4), refund(2))
    invoice(-1)
'''


def run_pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args], cwd=root,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Call recordings of two functions (one a crash, pinned into tests/recordings) and a process recording."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    (root / "jobs.py").write_text(JOBS)
    (root / "clock.py").write_text("import time\nprint(time.time() > 0)\n")
    ran = subprocess.run([sys.executable, "jobs.py"], cwd=root, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1 and "negative order -1" in ran.stderr
    assert retrace("record", "-o", "recordings/clock.retrace", "clock.py", cwd=root).returncode == 0
    [crash] = [p for p in (root / "recordings").glob("invoice-*.retrace")
               if retrace("show", str(p), cwd=root).stdout.count("ValueError")]
    pinned = retrace("pin", str(crash), "--into", "tests/recordings", cwd=root)
    assert pinned.returncode == 0, pinned.stderr
    fixed = JOBS.replace('        raise ValueError(f"negative order {n}")', '        return {"total": 0}')
    (root / "jobs.py").write_text(fixed)
    return root


def test_recordings_of_code_that_is_gone_are_listed_and_pinned_ones_pruned(project: Path) -> None:
    before = run_pytest(project, "--retrace-recordings=recordings", "--retrace-recordings=tests/recordings")
    assert before.returncode == 0, before.stdout
    assert "5 passed" in before.stdout and "obsolete" not in before.stdout  # 3 calls, the process, the pin
    # The code moves on: invoice() is renamed, clock.py deleted; refund() stays.
    (project / "jobs.py").write_text((project / "jobs.py").read_text().replace("def invoice(", "def bill("))
    (project / "clock.py").unlink()
    listed = run_pytest(project, "--retrace-recordings=recordings", "--retrace-recordings=tests/recordings")
    assert listed.returncode == 1
    assert "1 passed, 4 errors" in listed.stdout, listed.stdout
    assert "names 'invoice', which jobs (" in listed.stdout and "no longer defines" in listed.stdout
    assert "no program 'clock.py'" in listed.stdout
    summary = listed.stdout.partition("retrace summary")[2]
    assert "1 replayed, 1 ok, 4 errors" in summary, summary
    assert "obsolete recordings: 4 ran code that is no longer in the project" in summary
    assert "  recordings/clock.retrace" in summary
    [pinned] = (project / "tests" / "recordings").glob("*.retrace")
    assert f"  tests/recordings/{pinned.name} (pinned)" in summary
    assert "delete the obsolete pinned ones with --retrace-prune" in summary
    assert "unusable recordings (truncated or corrupt)" not in summary
    # --retrace-prune deletes the pinned obsolete case, and nothing else.
    pruned = run_pytest(project, "--retrace-recordings=recordings", "--retrace-recordings=tests/recordings",
                        "--retrace-prune")
    assert "1 passed, 1 skipped, 3 errors" in pruned.stdout, pruned.stdout
    assert f"pruned (deleted): tests/recordings/{pinned.name}" in pruned.stdout
    assert not pinned.exists()
    assert len(list((project / "recordings").glob("*.retrace"))) == 4  # production recordings are not ours to prune
    assert f"  tests/recordings/{pinned.name} (pruned)" in pruned.stdout
    again = run_pytest(project)  # testpaths: the regression folder is empty now
    assert "no tests ran" in again.stdout and again.returncode == 5


@pytest.mark.parametrize("binding", [
    "globals()['invoice'] = lambda n: {'total': n * 3}",
    "def __getattr__(name):\n    return lambda n: {'total': n * 3}",
    "from billing_impl import *",
])
def test_a_module_that_may_bind_names_unseen_is_not_called_obsolete(project: Path, binding: str) -> None:
    """A module can define its entry point in ways its source does not spell out: those are never orphans (a
    pruned pinned case would be lost for nothing)."""
    (project / "billing_impl.py").write_text("def invoice(n):\n    return {'total': n * 3}\n")
    source = (project / "jobs.py").read_text().replace("def invoice(", "def bill(")
    (project / "jobs.py").write_text(source + "\n" + binding + "\n")
    ran = run_pytest(project, "--retrace-recordings=tests/recordings", "--retrace-prune")
    assert "obsolete" not in ran.stdout and "pruned" not in ran.stdout, ran.stdout
    assert list((project / "tests" / "recordings").glob("*.retrace"))
