"""``retrace pin`` builds file names from what a recording says about its crash, and ``retrace triage`` prints it:
a crafted recording must not write outside ``--into`` nor send escape sequences to the terminal (issue 12)."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from support import retrace

from pytest_retrace.format.tape import read_recording, rewrite


@pytest.fixture
def crash(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("import time\ntime.time()\nraise ValueError('boom')\n")
    assert retrace("record", "-o", "crash.retrace", "app.py", cwd=tmp_path).returncode == 1
    return tmp_path / "crash.retrace"


def crafted(source: Path, name: str, **exception: Any) -> Path:
    end = read_recording(source).end
    assert end is not None
    target = source.parent / "inbox" / f"{name}.retrace"
    target.parent.mkdir(exist_ok=True)
    rewrite(source, end=dict(end, exception=dict(end["exception"], **exception)), into=target)
    return target


def test_a_traversal_fingerprint_is_a_corrupt_recording(crash: Path, tmp_path: Path) -> None:
    bad = crafted(crash, "traversal", fingerprint="/../../a")
    pinned = retrace("pin", str(bad), "--into", "pins", cwd=tmp_path)
    assert pinned.returncode == 2
    assert pinned.stderr.startswith(f"retrace pin: {bad}: corrupt recording: its crash fingerprint '/../../a'")
    assert sorted(p.name for p in tmp_path.rglob("*.retrace")) == ["crash.retrace", "traversal.retrace"]


def test_pin_names_stay_inside_the_target_whatever_the_recording_says(crash: Path, tmp_path: Path) -> None:
    bad = crafted(crash, "names", type="../../../etc/x.Evil/../..", fingerprint="0123456789abcdef",
                  traceback=[["/../../.hidden/..", 1, "../../up", "x"]])
    pinned = retrace("pin", str(bad), "--into", "deep/pins", cwd=tmp_path)
    assert pinned.returncode == 0, pinned.stderr
    pins = tmp_path / "deep" / "pins"
    (target,) = pins.glob("*.retrace")  # and beside it nothing but the incident state
    assert sorted(p.name for p in pins.iterdir()) == sorted([target.name, ".retrace-incidents.json"])
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.retrace", target.name), target.name
    assert sorted(p.name for p in tmp_path.rglob("*.retrace")) == sorted(["crash.retrace", "names.retrace",
                                                                          target.name])
    for folder in (tmp_path / "deep", tmp_path / "deep" / "pins"):  # made by us: 0700
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_triage_never_prints_control_characters_from_a_recording(crash: Path, tmp_path: Path) -> None:
    crafted(crash, "escapes", type="Evil\x1b]0;pwned\x07", message="\x1b[2J\x1b[31mred\rover", fingerprint="ab" * 8)
    triaged = retrace("triage", "inbox", cwd=tmp_path)
    assert triaged.returncode == 0, triaged.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", triaged.stdout), repr(triaged.stdout)
    assert "\\x1b[31mred\\rover" in triaged.stdout
