"""The plugin replays request and call recordings in forks of a server that imported the app once
(``forkserver.py``), and falls back to a cold interpreter per recording when it cannot fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MODULE = textwrap.dedent('''
    import os
    import threading

    import pytest_retrace

    HERE = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(HERE, "imports.log"), "a") as log:  # one line per import of this module
        log.write(f"{os.getpid()}\\n")
    if os.environ.get("START_THREAD"):  # an app that starts a thread when imported cannot be forked
        threading.Thread(target=threading.Event().wait, daemon=True).start()


    @pytest_retrace.record_calls(directory=os.path.join(HERE, "recordings"))
    def tally(n):
        print(f"tally {n}")
        return [n, os.urandom(4).hex(), os.getpid()]
''')


def record(folder: Path, **env: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "tally.py").write_text(MODULE)
    subprocess.run([sys.executable, "-c", "import tally\nfor n in range(4): tally.tally(n)"], cwd=folder,
                   env={**os.environ, **env}, check=True)
    (folder / "imports.log").unlink()


def imports(folder: Path) -> int:
    return len((folder / "imports.log").read_text().split())


def test_a_group_of_recordings_imports_the_app_once(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "service"
    record(folder)
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1


def test_determinism_runs_use_the_fork_server_and_the_switch_turns_it_off(pytester: pytest.Pytester) -> None:
    """Replaying every recording twice still imports the app once; with RETRACE_NO_FORKSERVER=1, every replay
    imports it again (a fresh interpreter each)."""
    folder = pytester.path / "service"
    record(folder)
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider",
                                "--retrace-determinism-runs=2")
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1
    os.environ["RETRACE_NO_FORKSERVER"] = "1"
    try:
        result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    finally:
        del os.environ["RETRACE_NO_FORKSERVER"]
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1 + 4


def test_an_app_that_starts_threads_on_import_replays_cold(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "service"
    record(folder, START_THREAD="1")
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert imports(folder) == 1 + 4  # the server's import, given up on, then one per cold replay


def test_a_changed_app_is_imported_again_by_the_next_session(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "service"
    record(folder)
    pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider").assert_outcomes(
        passed=4)
    source = folder / "tally.py"
    source.write_text(source.read_text().replace("return [n,", "return [n + 1,"))
    result = pytester.runpytest(f"--retrace-recordings={folder / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*returned*"])
