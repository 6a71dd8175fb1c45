"""What the integration tests share: run the real CLI, check a replay is faithful, serve real HTTP on loopback."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ROOT / "fixtures" / "programs"
PG_SERVER = "host=127.0.0.1 port=5432 user=postgres"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    verdict: dict[str, Any] | None = None


def offline_prefix() -> list[str]:
    """How to run a command with no network at all (a network namespace of its own, where even loopback is
    down): what a replay that must touch nothing runs under. Needs root; elsewhere the command runs as is."""
    if os.geteuid() == 0 and shutil.which("unshare") and subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def retrace(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
            stdin: str = "", offline: bool = False) -> Run:
    """Run the ``retrace`` CLI as a user would, in a subprocess (``offline``: with no network at all)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [*(offline_prefix() if offline else []), sys.executable, "-m", "pytest_retrace", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=stdin,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def program_in(folder: Path, program: str) -> Path:
    """A copy of the fixture program in ``folder``: the folder is the project the replay runs in, and replay
    runs only the project's own code."""
    copy = folder / Path(program).name
    shutil.copyfile(PROGRAMS / program, copy)
    return copy


class Recorder:
    """Records a program (copied into a tmp folder, the project) and replays it there, returning what the user
    would see."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def record(self, program: str, *args: str, env: dict[str, str] | None = None, name: str = "rec",
               stdin: str = "") -> Run:
        return retrace("record", "-o", f"{name}.retrace", "--", str(program_in(self.folder, program)), *args,
                       cwd=self.folder, env=env, stdin=stdin)

    def replay(self, name: str = "rec", env: dict[str, str] | None = None, offline: bool = False) -> Run:
        verdict_path = self.folder / f"{name}.verdict.json"
        run = retrace("replay", f"{name}.retrace", "--verdict", str(verdict_path), cwd=self.folder, env=env,
                      offline=offline)
        if verdict_path.exists():
            run.verdict = json.loads(verdict_path.read_text())
        return run


def assert_faithful(recorder: Recorder, recorded: Run, env: dict[str, str] | None = None, name: str = "rec",
                    offline: bool = False) -> Run:
    """Replay what ``recorder`` recorded: the user sees what the recorded run printed, and the verdict is
    faithful with every event consumed (``offline``: the replay runs with no network at all)."""
    replayed = recorder.replay(name=name, env=env, offline=offline)
    assert replayed.stderr == recorded.stderr
    assert replayed.stdout == recorded.stdout
    assert replayed.returncode == recorded.returncode
    assert replayed.verdict is not None and replayed.verdict["faithful"] is True, replayed.verdict
    assert replayed.verdict["events_consumed"] == replayed.verdict["events_recorded"]
    return replayed


def plain(program: str, *args: str, cwd: Path) -> str:
    """What the program prints run plainly, without pytest-retrace."""
    return subprocess.run([sys.executable, str(PROGRAMS / program), *args], cwd=cwd, capture_output=True,
                          text=True, check=True).stdout


class QuoteHandler(http.server.BaseHTTPRequestHandler):
    """Answers differently every time, like a live upstream."""

    def _answer(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "text/plain", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/login"):  # sets two cookies, in two Set-Cookie headers
            self.send_response(200)
            self.send_header("Set-Cookie", f"session={random.randint(1, 10**9)}; Path=/")
            self.send_header("Set-Cookie", "theme=dark; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        if self.path.startswith("/whoami"):  # echoes the cookies the client sent
            return self._plain(200, (self.headers.get("Cookie") or "nobody").encode())
        if self.path.startswith("/moved"):
            return self._plain(302, b"", {"Location": "/quote?item=moved"})
        if self.path.startswith("/lines"):
            count = random.randint(3, 9)
            return self._plain(200, "".join(f"line {i} of {count}\n" for i in range(count)).encode())
        if self.path.startswith("/slow"):
            time.sleep(1)
            return self._plain(200, b"late")
        if self.path.startswith("/text"):  # an upstream having a bad day: not JSON
            body = b"Service Unavailable"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._answer({"path": self.path, "price": random.randint(1, 10**9)})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        self._answer({"received": json.loads(self.rfile.read(length)), "id": random.randint(1, 10**9)})

    def log_message(self, *args: Any) -> None:
        pass


class LiveServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuoteHandler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards (a test may drop it first: replay must not need it)."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(f"{PG_SERVER} dbname=test connect_timeout=3")
    except psycopg2.OperationalError as exc:
        if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (RETRACE_REQUIRE_SERVICES=1) but does not answer: {exc}")
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")
    admin.autocommit = True
    name = f"retrace_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    yield name
    with admin.cursor() as cur:
        cur.execute(f"drop database if exists {name}")
    admin.close()


def drop(name: str) -> None:
    """Drop a database made by :func:`fresh_database`."""
    import psycopg2

    admin = psycopg2.connect(f"{PG_SERVER} dbname=test")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"drop database {name}")
    admin.close()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
