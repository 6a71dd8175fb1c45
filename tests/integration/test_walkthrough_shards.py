"""README, "Many recordings, many machines", run as written (the walk-through machinery of test_walkthroughs.py):
the ticket desk's saved recordings, their durations stored, then two CI jobs' shares, the second under xdist."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from test_walkthroughs import ROOT, Shell, Walk, claim, section, shell_factory, stage  # noqa: F401 - the fixture

DOCUMENT = "### Many recordings, many machines"
SHARE = "pytest --retrace-recordings=recordings --splitting-algorithm least_duration --splits 2"


def replayed(stdout: str) -> set[str]:
    """The recordings a run replayed, by node id (``-v``'s lines: ``ID PASSED``; under xdist ``… PASSED ID``)."""
    return set(re.findall(r"(recordings/\S+\.retrace::replay)", stdout))


def test_many_recordings_many_machines(tmp_path: Path, shell_factory: Callable[..., Shell]) -> None:  # noqa: F811
    text = section((ROOT / "README.md").read_text(), DOCUMENT)
    checkout = stage("selfcheck", tmp_path)
    shell = shell_factory(checkout)
    shell.substitutions = {"--splits 2 --group 1": "--splits 2 --group 1 -v",  # to see which recordings ran
                           "--splits 2 --group 2 -n 2": "--splits 2 --group 2 -n 2 -v"}
    walk = Walk("README many recordings", text, shell)
    walk.run("cd examples/selfcheck")
    saved = walk.run("pytest --retrace-self-check --retrace-self-check-save=")
    count = int(claim(saved.step.says if saved.step else "", r"(\d+) saved to", "the saved count").group(1))
    assert f"{count} saved to " in saved.stdout, saved
    stored = walk.run("pytest --retrace-recordings=recordings --store-durations")
    assert f"{count} passed" in stored.stdout and (stored.step and f"{count} passed" in stored.step.says), stored
    durations = json.loads((shell.cwd / ".test_durations").read_text())
    every = {f"{path.relative_to(shell.cwd).as_posix()}::replay" for path in shell.cwd.rglob("*.retrace")}
    assert len(every) == count and set(durations) == every, durations

    first = walk.run(f"{SHARE} --group 1")
    says = first.step.says if first.step else ""
    assert claim(says, r"\[pytest-split\] Running group 1/2", "the group line").group() in first.stdout, first
    second = walk.run(f"{SHARE} --group 2 -n 2")
    assert "2 workers [" in second.stdout, second
    shares = replayed(first.stdout), replayed(second.stdout)
    assert all(shares) and not shares[0] & shares[1] and shares[0] | shares[1] == every, shares
    walk.finish()
