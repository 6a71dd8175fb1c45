"""The confinement rule of entry points (kinds/entry.py), on real files: what a replay may run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_retrace.kinds.entry import EntryGone, OutsideProject, Project, check_entry, check_module, confine


def test_installed_code_inside_the_project_is_not_the_project(tmp_path: Path) -> None:
    """A project folder that holds the interpreter (a virtualenv inside the project, at worst) still does not
    make the standard library or site-packages the project's code."""
    with pytest.raises(OutsideProject, match="names 'json', which is installed code"):
        check_module("json", sys.path, Project(sys.base_prefix), "entry point 'json:loads'")
    assert check_module("json", sys.path, Project(sys.base_prefix, allow_outside=True), "x") == []


def test_a_symlink_is_judged_by_where_it_leads(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere.py").write_text("")
    (tmp_path / "project" / "link.py").symlink_to(tmp_path / "elsewhere.py")
    project = Project(tmp_path / "project", allow_option="--let-it")
    with pytest.raises(OutsideProject, match=r"script is outside the project \(.*elsewhere.py\).*--let-it"):
        confine(tmp_path / "project" / "link.py", project, "script")


def test_a_module_is_located_without_importing_it(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("raise SystemExit('imported')\n")
    (tmp_path / "pkg" / "jobs.py").write_text("from os import system\ndef run():\n    pass\n")
    project = Project(tmp_path)
    header = {"entry": {"function": "pkg.jobs:run", "root": str(tmp_path)}, "cwd": str(tmp_path)}
    assert check_entry(header, project).cwd == str(tmp_path.resolve())
    assert "pkg" not in sys.modules
    with pytest.raises(OutsideProject, match="'system', which pkg.jobs imports from elsewhere"):
        check_entry({**header, "entry": {"function": "pkg.jobs:system", "root": str(tmp_path)}}, project)
    with pytest.raises(OutsideProject, match="not found among the project's files"):
        check_entry({**header, "entry": {"function": "pkg.nothing:run", "root": str(tmp_path)}}, project)


def test_an_entry_point_gone_from_the_code_is_named_so(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text("def bill():\n    pass\n\nif True:\n    def later():\n        pass\n")
    project = Project(tmp_path)
    header = {"entry": {"function": "jobs:run", "root": str(tmp_path)}, "cwd": str(tmp_path)}
    with pytest.raises(EntryGone, match=r"names 'run', which jobs \(.*jobs.py\) no longer defines"):
        check_entry(header, project)
    for defined in ("bill", "later"):
        check_entry({**header, "entry": {"function": f"jobs:{defined}", "root": str(tmp_path)}}, project)
    with pytest.raises(EntryGone, match="names module 'gone', which is not found among the project's files"):
        check_entry({**header, "entry": {"function": "gone:run", "root": str(tmp_path)}}, project)
    (tmp_path / "jobs.py").write_text("def bill():\n    pass\n\nvars()['run'] = bill\n")
    check_entry(header, project)  # bound where the source does not spell it out: not called gone
