"""``retrace debug REC --dap HOST:PORT``: a DAP client (what VS Code is) attaches over the socket, sets a breakpoint,
and reads the replayed program's stack and variables (the recorded clock's value among them), then continues."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import retrace
from test_debug_replay import STEPS, THREADED

pytest.importorskip("debugpy")



class DapClient:
    """The Debug Adapter Protocol over a socket: JSON bodies with a Content-Length header."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=30)
        self.buffer = b""
        self.seq = 0
        self.seen: list[dict[str, Any]] = []

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        """Send a request; its response (events that come before it are kept in ``seen``)."""
        seq = self.send(command, **arguments)
        response = self.wait(lambda m: m.get("type") == "response" and m.get("request_seq") == seq)
        assert response["success"], response
        return response

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def wait(self, wanted: Any) -> dict[str, Any]:
        while True:
            message = self._read()
            self.seen.append(message)
            if wanted(message):
                return message

    def event(self, name: str) -> dict[str, Any]:
        return next((m for m in self.seen if m.get("event") == name), None) or self.wait(
            lambda m: m.get("event") == name)

    def _read(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        match = re.search(rb"Content-Length: *(\d+)", head)
        assert match, head
        size = int(match.group(1))
        while len(self.buffer) < size:
            self._fill()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return json.loads(body)  # type: ignore[no-any-return]

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the debug adapter closed the connection")
        self.buffer += chunk


@dataclass
class Stop:
    """Where the breakpoint stopped the replay: the innermost frame, and its variables as the client shows them."""

    frame: dict[str, Any]
    values: dict[str, str]


def debug_with_breakpoint(folder: Path, recording: str, script: str, line: int | None = None,
                          condition: str = "") -> tuple[Stop | None, str, int]:
    """``retrace debug RECORDING --dap``: attach a client, stop at a conditional breakpoint (none without a
    ``line``), read the frame's variables, clear it and continue. The stop, all the session printed, and its exit
    status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("_PYTEST_RETRACE")}
    debugged = subprocess.Popen([sys.executable, "-m", "pytest_retrace", "debug", recording, "--dap",
                                 "127.0.0.1:0"], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert debugged.stdout is not None
        address = None
        for printed in debugged.stdout:
            address = re.search(r"waiting for a DAP client \(VS Code: attach to ([\d.]+):(\d+)\)", printed)
            if address:
                break
        assert address, "the replay never said where it listens"
        client = DapClient((address.group(1), int(address.group(2))))
        client.request("initialize", adapterID="retrace", clientID="test", linesStartAt1=True, columnsStartAt1=True,
                       pathFormat="path")
        client.send("attach", justMyCode=False)
        client.event("initialized")
        source = {"path": str(folder / script)}
        if line is None:
            client.request("configurationDone")
            out, _ = debugged.communicate(timeout=60)
            client.sock.close()
            return None, out, debugged.returncode
        placed = client.request("setBreakpoints", source=source, breakpoints=[{"line": line, "condition": condition}])
        assert placed["body"]["breakpoints"][0]["verified"]
        client.request("configurationDone")

        stopped = client.event("stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        thread = stopped["body"]["threadId"]
        frames = client.request("stackTrace", threadId=thread)["body"]["stackFrames"]
        scopes = client.request("scopes", frameId=frames[0]["id"])["body"]["scopes"]
        variables = client.request("variables", variablesReference=scopes[0]["variablesReference"])["body"]
        stop = Stop(frames[0], {v["name"]: v["value"] for v in variables["variables"]})

        client.request("setBreakpoints", source=source, breakpoints=[])
        client.request("continue", threadId=thread)
        out, _ = debugged.communicate(timeout=60)
        client.sock.close()
    finally:
        debugged.kill()
    return stop, out, debugged.returncode


def test_a_dap_client_sets_a_breakpoint_and_reads_the_replayed_variables(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(STEPS)
    assert retrace("record", "-o", "steps.retrace", "steps.py", cwd=tmp_path).returncode == 1
    shown = retrace("show", "steps.retrace", "--full", cwd=tmp_path).stdout
    recorded_clock = re.findall(r"time\.time\(\) -> ([\d.]+)", shown)[2]  # step 2's reading

    stop, out, status = debug_with_breakpoint(tmp_path, "steps.retrace", "steps.py", 5, "i == 2")
    assert stop is not None
    assert (stop.frame["name"], stop.frame["line"], stop.frame["source"]["path"]) == ("step", 5,
                                                                                      str(tmp_path / "steps.py"))
    assert stop.values["i"] == "2" and stop.values["total"] == "1"
    assert float(stop.values["now"]) == float(recorded_clock)  # the replay answered the clock from the recording
    assert "total 780" in out and "retrace debug: the replay ended by ZeroDivisionError: division by zero" in out
    assert status == 0


LEDGER = """import random
import time
from pathlib import Path


def entry(line, balance):
    amount = int(line) + random.randint(1, 6)
    stamp = time.time()
    return balance + amount, stamp


balance = 0
for line in Path("ledger.txt").read_text().split():
    balance, stamp = entry(line, balance)
Path("balance.txt").write_text(str(balance))
print("balance", balance)
"""


def test_a_recording_that_ends_normally_replays_strictly_under_a_dap_client(tmp_path: Path) -> None:
    """debugpy's tracer runs in the program's thread between its lines (it looks up each new frame's file) and
    its own threads serve the client: none of that takes the program's events. A recording that ended normally
    replays call by call, as without a debugger, with the world changed (the ledger gone, the balance file
    another): the breakpoint sees the recorded values, the program prints what it printed, nothing is written."""
    (tmp_path / "ledger.py").write_text(LEDGER)
    (tmp_path / "ledger.txt").write_text("10\n20\n30\n")
    recorded = retrace("record", "-o", "ledger.retrace", "ledger.py", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    printed = recorded.stdout.strip()
    shown = retrace("show", "ledger.retrace", "--full", cwd=tmp_path).stdout
    third_stamp = re.findall(r"time\.time\(\) -> ([\d.]+)", shown)[2]
    (tmp_path / "ledger.txt").unlink()
    (tmp_path / "balance.txt").write_text("changed since")

    stop, out, status = debug_with_breakpoint(tmp_path, "ledger.retrace", "ledger.py", 9, "line == '30'")
    assert stop is not None
    assert stop.frame["name"] == "entry" and stop.frame["line"] == 9, stop.frame
    assert stop.values["line"] == "'30'" and float(stop.values["stamp"]) == float(third_stamp), stop.values
    assert printed in out and "retrace debug: the replay ended with exit status 0" in out, out
    assert "diverged" not in out and status == 0, out
    assert not (tmp_path / "ledger.txt").exists() and (tmp_path / "balance.txt").read_text() == "changed since"

    # The program changed since: the first call the recording lacks is a divergence, said as without a debugger.
    (tmp_path / "ledger.py").write_text(LEDGER.replace("    stamp = time.time()", "    stamp = time.monotonic()"))
    _, out, status = debug_with_breakpoint(tmp_path, "ledger.retrace", "ledger.py")
    assert status == 70, out
    assert re.search(r"retrace: ledger.retrace: diverged.*diverged at event #\d+ .*time\.monotonic\(\)", out, re.S), out


def test_a_place_the_replay_cannot_listen_on_is_a_usage_error_before_it_starts(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(STEPS)
    assert retrace("record", "-o", "steps.retrace", "steps.py", cwd=tmp_path).returncode == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        for address, problem in ((f"127.0.0.1:{busy}", "cannot listen there (Address already in use)"),
                                 ("127.0.0.1:99999", "give HOST:PORT with a port from 0 to 65535"),
                                 ("nohost", "give HOST:PORT"),
                                 ("192.0.2.1:5678", "cannot listen there (Cannot assign requested address)")):
            ran = subprocess.run([sys.executable, "-m", "pytest_retrace", "debug", "steps.retrace", "--dap", address],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=30)
            assert ran.returncode == 2, (address, ran.stderr)
            assert ran.stderr.startswith(f"retrace debug: --dap {address}: ") and problem in ran.stderr, ran.stderr
            assert "Traceback" not in ran.stderr and ran.stdout == ""


def test_a_recording_with_threads_is_sent_to_pdb(tmp_path: Path) -> None:
    """debugpy starts threads through wrappers of its own around the replay's: a threaded recording would run its
    threads live under a DAP client, so it is refused, pointing to pdb."""
    (tmp_path / "threaded.py").write_text(THREADED)
    assert retrace("record", "-o", "threaded.retrace", "threaded.py", cwd=tmp_path).returncode == 1  # a crash
    ran = subprocess.run([sys.executable, "-m", "pytest_retrace", "debug", "threaded.retrace", "--dap",
                          "127.0.0.1:0"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert ran.returncode == 2, ran.stderr
    assert "a DAP session replays single-threaded recordings only; debug it with pdb: retrace debug " \
           "threaded.retrace" in ran.stderr, ran.stderr
