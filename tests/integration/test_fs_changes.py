"""Changes to the file system are events, never performed on replay (DESIGN.md §0, law 2).

Each case of ``fixtures/programs/fs_changes.py`` creates, writes, renames, links, changes and removes files and
folders (``os``, descriptors, ``open``, ``pathlib``, ``tempfile``, ``shutil``) and reads back what it made. It runs
plainly and recorded in the same fresh folder, with a temporary folder of its own (law 1: the same output). Then
what the recording made is gone, the temporary folder too (another machine), and the replay must print the
same, twice, faithfully, leaving the folder byte for byte as it was and creating no temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful, retrace

CASES = ("os_level", "files", "pathlib", "temporary", "shutil")


def tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``root``: content digest (or kind), mode and modification time (but the time of the
    program's folder, where the replay's verdict comes and goes)."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else (
            "link" if path.is_symlink() else "other")
        found[str(path.relative_to(root))] = (kind, st.st_mode, 0 if path.name == "app" else st.st_mtime_ns)
    return found


@pytest.mark.parametrize("case", CASES)
def test_changes_are_recorded_and_never_performed_on_replay(case: str, tmp_path: Path) -> None:
    app, temporary = tmp_path / "app", tmp_path / "tmp"
    app.mkdir()
    env = {"TMPDIR": str(temporary)}

    def fresh() -> None:
        shutil.rmtree(app / "work", ignore_errors=True)
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()

    fresh()
    shutil.copy(PROGRAMS / "fs_changes.py", app / "fs_changes.py")
    plain = subprocess.run([sys.executable, "fs_changes.py", case], cwd=app, env={**os.environ, **env},
                           capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    fresh()
    recorder = Recorder(app)
    recorded = recorder.record("fs_changes.py", case, env=env)
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == (0, plain.stdout, plain.stderr)

    # Another machine: what the recording made is gone, and so is its temporary folder.
    shutil.rmtree(temporary)
    (app / "work").mkdir()
    (app / "work" / "unrelated.txt").write_text("the replay must leave me alone\n")
    before = tree(tmp_path)
    first = assert_faithful(recorder, recorded, env={"TMPDIR": str(tmp_path / "elsewhere")})
    (tmp_path / "app" / "rec.verdict.json").unlink()
    assert tree(tmp_path) == before, "the replay changed the file system"
    second = assert_faithful(recorder, recorded)
    assert (second.stdout, second.verdict and second.verdict["status"]) == (
        first.stdout, first.verdict and first.verdict["status"])
    (tmp_path / "app" / "rec.verdict.json").unlink()
    assert tree(tmp_path) == before, "the second replay changed the file system"


def test_a_written_file_read_back_on_replay_is_what_the_recording_wrote(tmp_path: Path) -> None:
    """The world changed under the program between its write and its read: the replay reads what the recording
    read (its own write), not the file now on disk, and does not write it."""
    program = tmp_path / "writer.py"
    program.write_text(
        "from pathlib import Path\n"
        "Path('state.txt').write_text('written by the program')\n"
        "print(Path('state.txt').read_text())\n")
    recorder = Recorder(tmp_path)
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.stdout == "written by the program\n", recorded.stderr
    (tmp_path / "state.txt").write_text("changed since")
    replayed = assert_faithful(recorder, recorded)
    assert replayed.stdout == "written by the program\n"
    assert (tmp_path / "state.txt").read_text() == "changed since"
