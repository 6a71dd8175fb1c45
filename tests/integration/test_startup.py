"""Start-up (issue 16): a recorded or replayed program imports what it needs and no more, library adapters are
installed when their library is imported, and the launcher's scan for installed plugins is cached."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

from support import LiveServer, Recorder, assert_faithful, retrace

from pytest_retrace.format.tape import read_recording

# What the program sees of sys.modules, after its own imports: printed, so that the replay compares it.
MODULES = '''
import sys
{imports}
print(sorted(sys.modules))
'''

# Never imported for a program that does not use them: the library adapters and what they import, the plugin
# machinery (pluggy, importlib.metadata), importlib.abc (what a meta path finder may derive from), the in-process
# recordings' machinery (and logging with it), inspect (checks of in-process entries).
UNUSED = ("http.client", "email.parser", "ssl", "pluggy", "importlib.metadata", "importlib.abc", "inspect", "logging",
          "pytest_retrace.kinds.inprocess",
          "pytest_retrace.adapters.requests_adapter", "pytest_retrace.adapters.psycopg2_adapter",
          "pytest_retrace.adapters.sqlite3_adapter", "pytest_retrace.adapters.dbapi", "pytest_retrace.adapters.pools")


def modules_seen(recorded_stdout: str) -> set[str]:
    return set(ast.literal_eval(recorded_stdout.splitlines()[-1]))


def test_hello_world_imports_no_adapter_and_replays_with_the_same_modules(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(MODULES.format(imports="print('hello world')"))
    recorder = Recorder(tmp_path)
    recorded = retrace("record", "-o", "rec.retrace", "--", "hello.py", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    seen = modules_seen(recorded.stdout)
    assert "pytest_retrace.runner.child" in seen  # it did look at the recorded child's modules
    assert not seen & set(UNUSED)
    assert_faithful(recorder, recorded)  # the same sys.modules, in replay as recorded (the output compares)


def test_an_adapter_is_installed_when_the_program_imports_its_library(tmp_path: Path,
                                                                       http_server: LiveServer) -> None:
    # The libraries are imported late, and their functions bound by name before any call: each call still goes
    # through its adapter (events of its own name, not of the socket layer), and replays with the server gone.
    program = tmp_path / "late.py"
    program.write_text(MODULES.format(imports=f'''
print("started")
from sqlite3 import connect
db = connect("shop.db")
db.execute("create table if not exists items (name text)")
db.execute("insert into items values ('pen')")
print(db.execute("select count(*) from items").fetchone())
db.commit()
from requests import get
print(get("http://127.0.0.1:{http_server.port}/quote?item=late").json()["path"])
'''))
    recorder = Recorder(tmp_path)
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert "/quote?item=late" in recorded.stdout
    seen = modules_seen(recorded.stdout)
    assert {"pytest_retrace.adapters.requests_adapter", "pytest_retrace.adapters.sqlite3_adapter"} <= seen
    assert "pytest_retrace.adapters.psycopg2_adapter" not in seen
    names = [e.name for e in read_recording(tmp_path / "rec.retrace").events()]
    assert "requests.send" in names and "sqlite3.connect" in names
    assert not [n for n in names if n.startswith("socket.") and n != "socket.bind"]
    http_server.stop()
    (tmp_path / "shop.db").unlink()
    assert_faithful(recorder, recorded)
    assert not (tmp_path / "shop.db").exists()  # replay answered from the recording, touching nothing


PLUGIN = '''
import pytest_retrace

@pytest_retrace.hookimpl
def retrace_install_boundaries(engine, patcher, options):
    def patch(module):
        real = module.fetch_balance
        patcher.set(module, "fetch_balance", lambda account: engine.call("bank.balance", (account,), real, account))
    patcher.when_imported("bank", patch)
'''

BANK = '''
import random

def fetch_balance(account):
    return random.randint(0, 10**6)
'''


def test_the_plugin_scan_is_cached_and_sees_a_package_installed_or_removed(tmp_path: Path) -> None:
    site, cache, project = tmp_path / "site", tmp_path / "cache", tmp_path / "project"
    site.mkdir()
    project.mkdir()
    (site / "retrace_bank_plugin.py").write_text(PLUGIN)
    (site / "bank.py").write_text(BANK)
    (project / "app.py").write_text("import bank\nprint(bank.fetch_balance('acct-1'))\n")
    env = {"PYTHONPATH": str(site), "RETRACE_CACHE_DIR": str(cache)}

    def recorded_names(name: str) -> list[str]:
        run = retrace("record", "-o", f"{name}.retrace", "--", "app.py", cwd=project, env=env)
        assert run.returncode == 0, run.stderr
        return [e.name for e in read_recording(project / f"{name}.retrace").events()]

    def cached_plugins() -> list[list[str]]:
        return [plugins for _, plugins in json.loads((cache / "plugins.json").read_text())["entries"]]

    assert "bank.balance" not in recorded_names("before")
    assert cached_plugins() == [[]]
    assert "bank.balance" not in recorded_names("again")
    assert cached_plugins() == [[]]  # the same key: the scan's answer was reused, not stored again

    dist = site / "retrace_bank_plugin-1.0.dist-info"  # what pip leaves for an installed package
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: retrace-bank-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest_retrace]\nbank = retrace_bank_plugin\n")
    assert "bank.balance" in recorded_names("installed")
    assert cached_plugins() == [["retrace_bank_plugin"], []]

    shutil.rmtree(dist)
    assert "bank.balance" not in recorded_names("removed")  # a stale cache would load the plugin: it is gone
    assert cached_plugins() == [["retrace_bank_plugin"], []]  # the folders are as at first: that answer again


def test_an_unwritable_cache_folder_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("print('hello')\n")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    run = retrace("record", "-o", "rec.retrace", "--", "hello.py", cwd=tmp_path,
                  env={"RETRACE_CACHE_DIR": str(blocker / "cache")})
    assert (run.returncode, run.stdout, run.stderr) == (0, "hello\n", "")
    replayed = retrace("replay", "rec.retrace", cwd=tmp_path, env={"RETRACE_CACHE_DIR": str(blocker / "cache")})
    assert (replayed.returncode, replayed.stdout, replayed.stderr) == (0, "hello\n", "")

