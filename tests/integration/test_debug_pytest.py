"""pytest's ``--pdb`` and ``--trace`` on replayed recordings, on a real terminal (a pty): pdb stops at the replayed
crash of each kind of recording, in the replay's own process, with the program's frames and locals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import retrace

pexpect = pytest.importorskip("pexpect")

PROMPT = "(Pdb) "

PRICES = """\
import time

def price(quantity, unit):
    stamp = time.time()
    discount = quantity // 10
    return unit * quantity / discount
"""

PROCESS = """\
from prices import price
print(price(3, 5))
"""

CALLS = """\
from pytest_retrace import record_calls
from prices import price

@record_calls("recordings")
def order(quantity):
    return price(quantity, 7)

if __name__ == "__main__":
    try:
        order(4)
    except ZeroDivisionError:
        pass
"""

SERVICE = """\
from prices import price

def app(environ, start_response):
    quantity = int(environ["QUERY_STRING"])
    body = str(price(quantity, 2)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]

if __name__ == "__main__":
    import io
    from pytest_retrace.wsgi import RecordingMiddleware
    recorded = RecordingMiddleware(app, "recordings", entry="service:app")
    try:
        recorded({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "6", "wsgi.input": io.BytesIO()},
                 lambda status, headers, exc_info=None: None)
    except ZeroDivisionError:
        pass
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one crash recording of each kind, all crashing in ``price`` with ``quantity`` < 10."""
    folder = tmp_path_factory.mktemp("debugged")
    (folder / "pytest.ini").write_text("[pytest]\n")
    for name, text in (("prices.py", PRICES), ("main.py", PROCESS), ("jobs.py", CALLS), ("service.py", SERVICE)):
        (folder / name).write_text(text)
    (folder / "recordings").mkdir()
    assert retrace("record", "-o", "recordings/process.retrace", "main.py", cwd=folder).returncode == 1
    for script in ("jobs.py", "service.py"):
        subprocess.run([sys.executable, script], cwd=folder, check=True, capture_output=True)
    assert len(list((folder / "recordings").glob("*.retrace"))) == 3
    return folder


def pytest_in_pty(folder: Path, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_PYTEST_RETRACE", "PYTEST_"))}
    return pexpect.spawn(sys.executable, ["-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                         cwd=str(folder), env=env, encoding="utf-8", timeout=90, dimensions=(50, 200))


def ask(session: pexpect.spawn, command: str) -> str:
    session.sendline(command)
    session.expect_exact(PROMPT)
    return str(session.before).split("\n", 1)[1] if "\n" in session.before else ""


@pytest.mark.parametrize(("recording", "quantity"), [("process", 3), ("call", 4), ("request", 6)])
def test_pdb_stops_at_the_replayed_crash(project: Path, recording: str, quantity: int) -> None:
    path = next(p for p in (project / "recordings").glob("*.retrace") if recording in p.name or (
        recording == "call" and "order" in p.name) or (recording == "request" and "GET" in p.name))
    session = pytest_in_pty(project, f"--retrace-recordings={path.relative_to(project)}", "--pdb")
    session.expect_exact(PROMPT)
    assert "retrace: debugging the replay of" in session.before
    assert "the replay ended by the program's ZeroDivisionError: division by zero" in session.before
    assert "prices.py(6)price()" in session.before
    assert ask(session, "p quantity, discount").strip() == f"({quantity}, 0)"
    where = ask(session, "where")
    assert "prices.py(6)price()" in where and "retrace: at event #" in where
    assert "pytest_retrace" not in where.split("retrace: at event")[0]  # the program's frames only
    session.sendline("c")
    session.expect(pexpect.EOF)
    assert "1 failed" in session.before
    assert "crash reproduced" in session.before.lower() or "ZeroDivisionError" in session.before
    assert PROMPT not in session.before  # pytest's own pdb does not start again on our failure


def test_quitting_the_debugger_ends_the_session(project: Path) -> None:
    session = pytest_in_pty(project, "--retrace-recordings=recordings", "--pdb")
    session.expect_exact(PROMPT)
    session.sendline("q")
    session.expect(pexpect.EOF)
    assert "quit from the debugger" in session.before


def test_trace_stops_at_the_programs_first_line(project: Path) -> None:
    session = pytest_in_pty(project, "--retrace-recordings=recordings/process.retrace", "--trace")
    session.expect_exact(PROMPT)
    assert "stopped at the program's first line" in session.before
    assert "main.py(1)<module>()" in session.before
    assert "main.py(2)<module>()" in ask(session, "n")
    session.sendline("c")
    session.expect_exact(PROMPT)  # on to the crash
    assert "ZeroDivisionError" in session.before
    assert ask(session, "p quantity").strip() == "3"
    session.sendline("c")
    session.expect(pexpect.EOF)
    assert "1 failed" in session.before


@pytest.mark.parametrize("flag", ["--pdb", "--trace"])
def test_debugging_with_xdist_workers_is_a_usage_error(project: Path, flag: str) -> None:
    ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                          "--retrace-recordings=recordings", flag], cwd=project, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 4, ran.stdout + ran.stderr
    assert "-n0" in ran.stderr.replace("-n 0", "-n0")
