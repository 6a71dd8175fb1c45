"""The ``retrace`` command's rough edges, run as a new user runs it (a subprocess, real files): the program's options
after ``-m module`` are the program's, a missing script or module is said before anything is recorded, triage names
every file it could not read, a stuck replay says it is stuck, and every error says what happened, where and what
next, with exit status 2 and no traceback of ours."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from support import retrace

from pytest_retrace.format.tape import FORMAT_MAJOR

ECHO = "import sys\nprint('args', sys.argv[1:])\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "echo.py").write_text(ECHO)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("raise SystemExit('the package ran while it was looked for')\n")
    (tmp_path / "tools" / "echo.py").write_text(ECHO)
    return tmp_path


@pytest.mark.parametrize(("command", "printed"), [
    (["-m", "echo", "--flag", "-o", "x"], "args ['--flag', '-o', 'x']"),  # options after the module: the module's
    (["-m", "echo", "--", "--flag"], "args ['--flag']"),  # `--` right after the module still works
    (["-mecho", "--verbose"], "args ['--verbose']"),
    (["echo.py", "--flag", "-o", "x"], "args ['--flag', '-o', 'x']"),  # as for a script
    (["--", "echo.py", "--flag"], "args ['--flag']"),
])
def test_the_options_after_the_program_are_the_programs(project: Path, command: list[str], printed: str) -> None:
    recorded = retrace("record", "-o", "rec.retrace", *command, cwd=project)
    assert recorded.returncode == 0 and recorded.stdout == printed + "\n", recorded
    replayed = retrace("replay", "rec.retrace", cwd=project)
    assert replayed.returncode == 0 and replayed.stdout == recorded.stdout, replayed


def test_a_module_of_a_package_is_found_without_running_the_package(project: Path) -> None:
    recorded = retrace("record", "-o", "rec.retrace", "-m", "tools.missing", cwd=project)
    assert recorded.returncode == 2 and "the package ran" not in recorded.stderr, recorded
    assert recorded.stderr.startswith("retrace record: no module 'tools.missing' to record: looked in "), recorded


@pytest.mark.parametrize(("program", "said"), [
    (["missing.py"], "no program 'missing.py' to record: {project}/missing.py does not exist; check its path"),
    (["tools"], "no program 'tools' to record: {project}/tools is a folder, not a script"),
    (["-m", "nosuch"], "no module 'nosuch' to record: looked in {project} and on the Python path"),
    (["-m", "9lives"], "-m '9lives' is not a module name"),
])
def test_a_missing_program_is_said_before_recording(project: Path, program: list[str], said: str) -> None:
    recorded = retrace("record", "-o", "rec.retrace", *program, cwd=project)
    assert recorded.returncode == 2 and recorded.stdout == "", recorded
    assert recorded.stderr.startswith("retrace record: " + said.format(project=project)), recorded.stderr
    assert "replay" not in recorded.stderr and "Traceback" not in recorded.stderr
    assert not (project / "rec.retrace").exists()


def crash(folder: Path, name: str) -> Path:
    (folder / "crash.py").write_text("def parse(text):\n    return int(text)\n\nparse('ten')\n")
    assert retrace("record", "-o", f"{name}.retrace", "crash.py", cwd=folder).returncode == 1
    return folder / f"{name}.retrace"


def test_triage_names_every_file_it_cannot_read_and_groups_the_others(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    first, _ = crash(tmp_path, "first"), crash(tmp_path, "second")
    data = first.read_bytes()
    (tmp_path / "truncated.retrace").write_bytes(data[:-20])
    damaged = bytearray(data)
    damaged[40] ^= 0xFF
    (tmp_path / "corrupt.retrace").write_bytes(bytes(damaged))
    (tmp_path / "notes.retrace").write_text("not a recording")
    assert retrace("keygen", "-o", "project.key", cwd=tmp_path).returncode == 0
    (tmp_path / "crash.py").write_text("raise KeyError('sealed')\n")
    assert retrace("record", "-o", "sealed.retrace", "--public-key", "project.key.pub", "crash.py",
                   cwd=tmp_path).returncode == 1

    triaged = retrace("triage", ".", cwd=tmp_path)
    assert triaged.returncode == 2  # some recordings were not triaged
    assert triaged.stdout.startswith("    2 x  ValueError: invalid literal for int() with base 10: 'ten'\n")
    problems = triaged.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in problems[:-1]] == [
        "corrupt.retrace", "notes.retrace", "sealed.retrace", "truncated.retrace"]
    assert "corrupt recording: CRC mismatch in frame at offset" in problems[0]
    assert "not a pytest-retrace recording" in problems[1]
    assert "needs the recording key" in problems[2]
    assert "truncated (" in problems[3] and "no outcome to triage" in problems[3]
    assert problems[-1].startswith("retrace triage: 4 recordings could not be triaged (above)")

    with_key = retrace("triage", "--key-file", "project.key", "--json", ".", cwd=tmp_path)
    assert with_key.returncode == 2 and len(with_key.stderr.splitlines()) == 4  # corrupt, not one, truncated
    assert sorted(group["count"] for group in json.loads(with_key.stdout)) == [1, 2]

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "notes.retrace").write_text("not a recording")
    none = retrace("triage", "bad", cwd=tmp_path)
    assert none.returncode == 2 and none.stdout == "no crash recordings in bad (0 of 1 recordings read)\n"
    assert "bad/notes.retrace: not a pytest-retrace recording" in none.stderr


def test_a_stuck_replay_says_stuck_first_on_stderr_and_in_pytest(tmp_path: Path, pytester: pytest.Pytester) -> None:
    program = tmp_path / "prog.py"
    program.write_text("import os, threading, time\ndef worker():\n    time.time()\n"
                       "t = threading.Thread(target=worker)\nt.start()\nt.join()\nprint('done')\n")
    assert retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path).returncode == 0
    program.write_text(program.read_text().replace("    time.time()", "    os.read(os.pipe()[0], 1)\n    time.time()"))
    replayed = retrace("replay", "rec.retrace", "--stuck-timeout", "1", "--verdict", "v.json", cwd=tmp_path,
                       timeout=60)
    assert replayed.returncode == 70
    first, second = replayed.stderr.splitlines()[:2]
    assert first == "retrace: rec.retrace: stuck: no thread made progress for 1 second", replayed.stderr
    assert second.startswith("replay stuck at event #") and "diverged" not in replayed.stderr
    verdict = json.loads((tmp_path / "v.json").read_text())  # the verdict file's contract: still a divergence
    assert verdict["status"] == "diverged" and verdict["divergence"]["kind"] == "stuck"
    assert verdict["divergence"]["summary"] == "no thread made progress for 1 second"

    for name in ("prog.py", "rec.retrace"):
        (pytester.path / name).write_bytes((tmp_path / name).read_bytes())
    result = pytester.runpytest_subprocess("--retrace-recordings=rec.retrace", "--retrace-stuck-timeout=2",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["retrace: rec.retrace: stuck: no thread made progress for 2 seconds",
                                 "replay stuck at event #*"])
    assert "rec.retrace: diverged" not in result.stdout.str()


def newer_format(folder: Path) -> Path:
    (folder / "prog.py").write_text("print('hi')\n")
    assert retrace("record", "-o", "new.retrace", "prog.py", cwd=folder).returncode == 0
    path = folder / "new.retrace"
    data = bytearray(path.read_bytes())
    struct.pack_into(">H", data, 8, FORMAT_MAJOR + 1)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("args", "said"), [
    ([], "the following arguments are required: COMMAND"),
    (["frob"], "invalid choice: 'frob'"),
    (["show"], "the following arguments are required: REC"),
    (["show", "--limit", "x", "a.retrace"], "argument --limit: invalid int value: 'x'"),
    (["show", "--width", "5", "new.retrace"], "retrace show: --width 5 is too narrow to show a recording; give 40"),
    (["show", "nowhere.retrace"], "retrace show: nowhere.retrace: no such recording; check the path"),
    (["show", "folder"], "retrace show: folder: is a folder, not a recording"),
    (["show", "prog.py"], "retrace show: prog.py: not a pytest-retrace recording"),
    (["show", "new.retrace"], "upgrade pytest-retrace"),
    (["replay", "folder"], "retrace replay: folder: is a folder, not a recording"),
    (["replay", "prog.py"], "retrace replay: prog.py: not a pytest-retrace recording"),
    (["pin", "nowhere.retrace"], "retrace pin: nowhere.retrace: no such recording"),
    (["triage", "prog.py"], "retrace triage: prog.py is not a folder; give the folder that holds the recordings"),
    (["record", "prog.py"], "retrace record: error: name the recording to write: retrace record -o REC.retrace"),
    (["record", "-o", "x.retrace"], "retrace record: error: name the program to record"),
    (["record", "-o", "x.retrace", "-m"], "retrace record: error: -m needs a module"),
    (["record", "-o", "nowhere/x.retrace", "prog.py"], "the folder"),
    (["record", "-o", "new.retrace", "prog.py"], "new.retrace already exists; choose another name, or pass --force"),
    (["keygen", "-o", "nowhere/k"], "retrace keygen: cannot write nowhere/k: the folder"),
])
def test_every_error_says_what_where_and_what_next(tmp_path: Path, args: list[str], said: str) -> None:
    newer_format(tmp_path)
    (tmp_path / "folder").mkdir()
    run = retrace(*args, cwd=tmp_path)
    assert run.returncode == 2 and said in run.stderr, run
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert not (tmp_path / "x.retrace").exists() and not (tmp_path / "nowhere").exists()
