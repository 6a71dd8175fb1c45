"""Recording is invisible: a recorded program prints, raises and ends exactly as it does plainly, and a crash
inside an external call replays as that crash, named after the program's own function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import retrace


def write(folder: Path, source: str, name: str = "prog.py") -> str:
    (folder / name).write_text(textwrap.dedent(source))
    return name


def run_plain(folder: Path, program: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, program], cwd=folder, capture_output=True, text=True, timeout=60, env=env)


def record(folder: Path, program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", "rec.retrace", "--", program],
                          cwd=folder, capture_output=True, text=True, timeout=120)


def replay(folder: Path, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    run = subprocess.run([sys.executable, "-m", "pytest_retrace", "replay", "rec.retrace", "--verdict", "v.json"],
                         cwd=folder, capture_output=True, text=True, timeout=120, env=env)
    return run, json.loads((folder / "v.json").read_text())


def same(plain: subprocess.CompletedProcess[str], other: subprocess.CompletedProcess[str]) -> None:
    assert (other.stdout, other.stderr, other.returncode) == (plain.stdout, plain.stderr, plain.returncode)


BUILTINS_KEPT_BY_CLASSES = """
    import time
    import logging
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO,
                        datefmt="%Y")  # the year: the same in both runs
    logging.info("started")

    class Stopwatch:
        clock = time.perf_counter  # a builtin kept as a class attribute stays a plain callable

        def lap(self):
            return self.clock() >= 0

    import functools, inspect, os, pickle
    print(Stopwatch().lap(), time.time.__name__, time.time.__qualname__, time.time.__module__, repr(time.sleep))
    print(inspect.signature(os.urandom), inspect.isbuiltin(time.time), type(os.getpid).__name__, type(time.time))
    print(pickle.loads(pickle.dumps(time.time)) is time.time, functools.wraps(os.getpid)(lambda: 0).__name__)
    print(time.time.__doc__ == time.time.__doc__ and time.time.__doc__.splitlines()[0])
"""


def test_a_program_sees_the_library_it_would_see_plainly(tmp_path: Path) -> None:
    program = write(tmp_path, BUILTINS_KEPT_BY_CLASSES)
    plain = run_plain(tmp_path, program)
    assert plain.returncode == 0 and "INFO started" in plain.stderr, plain.stderr
    recorded = record(tmp_path, program)
    same(plain, recorded)
    replayed, verdict = replay(tmp_path)
    same(recorded, replayed)
    assert verdict["status"] == "ok"


STACK_WALKS = """
    import inspect, logging, sys, traceback

    def where():
        traceback.print_stack()
        print("depth", len(inspect.stack()))
        logging.warning("here", stack_info=True)

    where()
    try:
        sys._getframe(1)
    except ValueError as exc:
        print("the module is the bottom of the stack:", exc)
"""


def test_stack_walks_in_the_program_see_only_the_programs_frames(tmp_path: Path) -> None:
    program = write(tmp_path, STACK_WALKS)
    plain = run_plain(tmp_path, program)
    assert "depth 2" in plain.stdout and "bottom of the stack" in plain.stdout
    recorded = record(tmp_path, program)
    same(plain, recorded)
    replayed, verdict = replay(tmp_path)  # inspect.stack() stats every module's file: the same modules, in order
    same(recorded, replayed)
    assert verdict["status"] == "ok"


MISSING_FILE = """
    def load_prices(path):
        with open(path) as f:
            return f.read()

    def main():
        return load_prices("prices.csv")

    main()
"""

UPSTREAM_DOWN = """
    import requests

    def fetch_quote():
        return requests.get("http://127.0.0.1:{port}/quote", timeout=5).json()

    def main():
        print("price", fetch_quote())

    main()
"""

INTERRUPTED = """
    import time

    def crunch():
        time.sleep(0.01)
        raise KeyboardInterrupt  # as Ctrl-C would, in the middle of the work

    crunch()
"""


DUPLICATE_ROW = """
    import sqlite3

    def add_user(conn, name):
        conn.execute("insert into users(name) values (?)", (name,))

    conn = sqlite3.connect(":memory:")
    conn.execute("create table users(name text unique)")
    add_user(conn, "ann")
    add_user(conn, "ann")
"""


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("source", "function", "crash"), [
    (MISSING_FILE, "load_prices", "FileNotFoundError"),
    (UPSTREAM_DOWN, "fetch_quote", "ConnectionError"),
    (INTERRUPTED, "crunch", "KeyboardInterrupt"),
    (DUPLICATE_ROW, "add_user", "IntegrityError"),
], ids=["missing-file", "upstream-down", "ctrl-c", "database-refuses"])
def test_a_crash_inside_an_external_call_is_the_programs_crash(tmp_path: Path, source: str, function: str,
                                                               crash: str) -> None:
    program = write(tmp_path, source.replace("{port}", str(closed_port())))
    plain = run_plain(tmp_path, program)
    assert plain.returncode != 0 and crash in plain.stderr
    recorded = record(tmp_path, program)
    same(plain, recorded)  # the same traceback: no frame of pytest-retrace's, the library's chain as it was
    replayed, verdict = replay(tmp_path)
    same(recorded, replayed)
    assert verdict["status"] == "crash-reproduced", verdict
    assert "pytest_retrace" not in replayed.stderr
    pinned = retrace("pin", "rec.retrace", "--into", "pins", cwd=tmp_path)
    assert pinned.returncode == 0, pinned.stderr
    (name,) = [p.name for p in (tmp_path / "pins").glob("*.retrace")]
    assert name.startswith(f"{crash}-prog_{function}-"), name


def test_a_death_by_signal_is_passed_on_as_that_signal(tmp_path: Path) -> None:
    program = write(tmp_path, """
        import os, signal, sys

        def report_and_stop(*exc_info):
            print("stopping", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

        sys.excepthook = report_and_stop
        raise RuntimeError("fatal")
    """)
    plain = run_plain(tmp_path, program)
    assert plain.returncode == -15
    same(plain, record(tmp_path, program))


def test_ctrl_c_ends_the_recording_and_its_replay_by_sigint(tmp_path: Path) -> None:
    program = write(tmp_path, INTERRUPTED)
    assert run_plain(tmp_path, program).returncode == -2
    assert record(tmp_path, program).returncode == -2
    replayed, verdict = replay(tmp_path)
    assert replayed.returncode == -2 and verdict["replayed"]["status"] == -2


def test_a_full_disk_does_not_change_the_programs_exit_status(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        program = write(tmp_path, """
            import time
            print(sum(1 for _ in range(100_000) if time.time()))
        """)
        recorded = subprocess.run([sys.executable, "-m", "pytest_retrace", "record", "-o", str(disk / "r.retrace"),
                                   "--", program], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert (recorded.returncode, recorded.stdout) == (0, "100000\n")
        assert "abandoned" in recorded.stderr and "No space left" in recorded.stderr
        assert list(disk.iterdir()) == []  # nothing half-written left behind
        assert "Traceback" not in recorded.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("recorded_in", ["Europe/Paris", None], ids=["TZ-set", "system-zone"])
def test_a_replay_in_another_time_zone_prints_the_recorded_local_times(tmp_path: Path, recorded_in: str | None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    program = write(tmp_path, """
        import datetime, time
        moment = 1_700_000_000
        print(time.localtime(moment).tm_hour, time.strftime("%Z", time.localtime(moment)), time.tzname)
        print(datetime.datetime.fromtimestamp(moment), datetime.datetime.fromtimestamp(moment).astimezone())
    """)
    if recorded_in is None:
        monkeypatch.delenv("TZ", raising=False)
    else:
        monkeypatch.setenv("TZ", recorded_in)
    plain = run_plain(tmp_path, program)
    recorded = record(tmp_path, program)
    same(plain, recorded)
    elsewhere = {**os.environ, "TZ": "Asia/Kolkata"}  # the replaying machine is half a world away
    assert run_plain(tmp_path, program, elsewhere).stdout != plain.stdout
    replayed, verdict = replay(tmp_path, env=elsewhere)
    same(recorded, replayed)
    assert verdict["status"] == "ok"

