"""``retrace debug REC --dap HOST:PORT``: a DAP client (what VS Code is) attaches over the socket, sets a breakpoint,
and reads the replayed program's stack and variables (the recorded clock's value among them), then continues."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import retrace
from test_debug_replay import STEPS

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


def test_a_dap_client_sets_a_breakpoint_and_reads_the_replayed_variables(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(STEPS)
    assert retrace("record", "-o", "steps.retrace", "steps.py", cwd=tmp_path).returncode == 1
    shown = retrace("show", "steps.retrace", "--full", cwd=tmp_path).stdout
    recorded_clock = re.findall(r"time\.time\(\) -> ([\d.]+)", shown)[2]  # step 2's reading

    env = {k: v for k, v in os.environ.items() if not k.startswith("_PYTEST_RETRACE")}
    debugged = subprocess.Popen([sys.executable, "-m", "pytest_retrace", "debug", "steps.retrace", "--dap",
                                 "127.0.0.1:0"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert debugged.stdout is not None
        address = None
        for line in debugged.stdout:
            address = re.search(r"waiting for a DAP client \(VS Code: attach to ([\d.]+):(\d+)\)", line)
            if address:
                break
        assert address, "the replay never said where it listens"
        client = DapClient((address.group(1), int(address.group(2))))
        client.request("initialize", adapterID="retrace", clientID="test", linesStartAt1=True, columnsStartAt1=True,
                       pathFormat="path")
        client.send("attach", justMyCode=False)
        client.event("initialized")
        source = {"path": str(tmp_path / "steps.py")}
        placed = client.request("setBreakpoints", source=source, breakpoints=[{"line": 5, "condition": "i == 2"}])
        assert placed["body"]["breakpoints"][0]["verified"]
        client.request("configurationDone")

        stopped = client.event("stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        thread = stopped["body"]["threadId"]
        frames = client.request("stackTrace", threadId=thread)["body"]["stackFrames"]
        assert (frames[0]["name"], frames[0]["line"], frames[0]["source"]["path"]) == ("step", 5, source["path"])
        scopes = client.request("scopes", frameId=frames[0]["id"])["body"]["scopes"]
        variables = client.request("variables", variablesReference=scopes[0]["variablesReference"])["body"]
        values = {v["name"]: v["value"] for v in variables["variables"]}
        assert values["i"] == "2" and values["total"] == "1"
        assert float(values["now"]) == float(recorded_clock)  # the replay answered the clock from the recording

        client.request("setBreakpoints", source=source, breakpoints=[])
        client.request("continue", threadId=thread)
        out, _ = debugged.communicate(timeout=60)
        client.sock.close()
    finally:
        debugged.kill()
    assert "total 780" in out and "retrace debug: the replay ended by ZeroDivisionError: division by zero" in out
    assert debugged.returncode == 0
