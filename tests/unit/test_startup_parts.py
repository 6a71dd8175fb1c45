"""Start-up pieces in process (issue 16): the header's platform without a subprocess, the cache of the plugin
scan on real folders, and the import hook's loader standing in for the module's own."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_retrace.engine import importhook
from pytest_retrace.format.tape import Kind
from pytest_retrace.hooks import manager, plugin_cache
from pytest_retrace.kinds.header import make_header
from pytest_retrace.redaction import DEFAULT

_SPAWNS: list[str] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING and event in ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.exec", "os.system"):
        _SPAWNS.append(event)


sys.addaudithook(_audit)  # audit hooks stay for the process: this one only counts while a test watches


def test_the_header_starts_no_process_and_names_the_platform_as_platform_does(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("")
    _WATCHING.append(True)
    try:
        header = make_header(Kind.PROCESS, {"script": "app.py"}, ["app.py"], 1, DEFAULT, [], {})
    finally:
        _WATCHING.clear()
    assert _SPAWNS == []
    assert header["python"] == platform.python_version()
    if sys.platform.startswith("linux") and platform.uname().processor in ("", "unknown", platform.machine()):
        assert header["platform"] == platform.platform()  # which itself starts `uname -p`
    else:
        assert header["platform"].startswith(f"{os.uname().sysname}-{os.uname().release}-")


# -- the plugin scan's cache -------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path (as site-packages is), with the cache in a folder of this test's own."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(plugin_cache.CACHE_ENV, str(tmp_path / "cache"))
    yield folder


class Scans:
    """The real scan (importlib.metadata), counted."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> list[str]:
        self.count += 1
        return manager._scan()

    def cached(self) -> list[str]:
        return plugin_cache.cached(manager.ENTRY_POINT_GROUP, self)


def install(site: Path, name: str, module: str) -> Path:
    """What pip leaves in site-packages for a package with a plugin."""
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[pytest_retrace]\nx = {module}\n")
    return dist


def test_the_scan_runs_once_while_nothing_changes(site: Path) -> None:
    scans = Scans()
    install(site, "first_plugin", "first_plugin_module")
    assert scans.cached() == ["first_plugin_module"] and scans.count == 1
    assert scans.cached() == ["first_plugin_module"] and scans.count == 1
    (site / "unrelated.py").write_text("")  # a module appears beside: no distribution changed
    assert scans.cached() == ["first_plugin_module"] and scans.count == 1


def test_installing_removing_or_rewriting_entry_points_scans_again(site: Path) -> None:
    scans = Scans()
    dist = install(site, "first_plugin", "first_plugin_module")
    assert scans.cached() == ["first_plugin_module"]
    second = install(site, "second_plugin", "second_plugin_module")
    assert scans.cached() == ["first_plugin_module", "second_plugin_module"] and scans.count == 2
    entry_points = dist / "entry_points.txt"
    entry_points.write_text("[pytest_retrace]\nx = renamed_module\n")  # an editable install rewrites it in place
    os.utime(entry_points, ns=(entry_points.stat().st_atime_ns, entry_points.stat().st_mtime_ns + 10**9))
    assert scans.cached() == ["renamed_module", "second_plugin_module"] and scans.count == 3
    for path in second.iterdir():
        path.unlink()
    second.rmdir()
    assert scans.cached() == ["renamed_module"] and scans.count == 4


def test_a_damaged_or_unwritable_cache_is_no_error(site: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, "first_plugin", "first_plugin_module")
    cache = tmp_path / "cache"
    cache.mkdir()
    for damaged in (b"\x00not json", b'{"format": 1, "entries": [["k", [1, 2]]]}', b"[]"):
        (cache / plugin_cache.FILE).write_bytes(damaged)
        scans = Scans()
        assert scans.cached() == ["first_plugin_module"] and scans.count == 1
        assert json.loads((cache / plugin_cache.FILE).read_text())["entries"][0][1] == ["first_plugin_module"]
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(plugin_cache.CACHE_ENV, str(blocked / "cache"))
    scans = Scans()
    assert scans.cached() == ["first_plugin_module"] and scans.cached() == ["first_plugin_module"]
    assert scans.count == 2  # nowhere to keep it: it scans every time, and says nothing
    monkeypatch.setenv(plugin_cache.CACHE_ENV, "")  # no cache at all
    assert Scans().cached() == ["first_plugin_module"]


# -- the import hook -----------------------------------------------------------------------------------------


def test_a_watched_module_keeps_its_loader_and_the_callback_sees_it_whole(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "retrace_watched_lib.py").write_text("def connect():\n    return 'real'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[str] = []

    def patch(module: object) -> None:
        seen.append(module.connect())  # type: ignore[attr-defined]
        module.connect = lambda: "patched"  # type: ignore[attr-defined]

    importhook.when_imported("retrace_watched_lib", patch)
    try:
        from retrace_watched_lib import connect  # type: ignore[import-not-found]  # a binding made at import

        module = importlib.import_module("retrace_watched_lib")
        assert seen == ["real"] and connect() == "patched"
        # The loader answers as the module's own does (linecache, inspect, importlib.resources ask it).
        assert "return 'real'" in inspect.getsource(module)
        assert module.__loader__.get_filename("retrace_watched_lib") == str(tmp_path / "retrace_watched_lib.py")
    finally:
        sys.modules.pop("retrace_watched_lib", None)
