"""``retrace mcp``: the MCP server an agent reads recordings through, driven by the SDK's own client over stdio
against real recordings (a crash of a process, a call, a damaged file, a sealed one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import retrace

mcp = pytest.importorskip("mcp")

PRICES = '''\
import os, sys

def total(prices, discount):
    subtotal = sum(prices)
    rate = discount / subtotal
    return round(subtotal * (1 - rate), 2)

stamp = os.stat(".").st_mtime > 0
print("total", total([10, 20], float(sys.argv[1])))
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "prices.py").write_text(PRICES)
    (tmp_path / "recordings").mkdir()
    assert retrace("record", "-o", "recordings/ok.retrace", "prices.py", "3", cwd=tmp_path).returncode == 0
    (tmp_path / "prices.py").write_text(PRICES.replace("total([10, 20]", "total([]"))
    crashed = retrace("record", "-o", "recordings/zero.retrace", "prices.py", "3", cwd=tmp_path)
    assert crashed.returncode == 1 and "ZeroDivisionError" in crashed.stderr
    (tmp_path / "recordings" / "junk.retrace").write_bytes(b"not a recording at all")
    return tmp_path


def call_tools(cwd: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[bool, Any]]:
    """Start ``retrace mcp`` in ``cwd``, call each tool in turn through the SDK's client; (is_error, answer)."""
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    answers: list[tuple[bool, Any]] = []

    async def session() -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "pytest_retrace", "mcp"], cwd=str(cwd))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"list_recordings", "open_trace", "list_events", "list_incidents"} <= tools
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                text = result.content[0].text if result.content else ""
                answers.append((bool(result.is_error), text if result.is_error else json.loads(text)))

    anyio.run(session)
    return answers


def test_an_agent_lists_opens_and_reads_the_events_of_recordings(folder: Path) -> None:
    (listed, zero, events, filtered, missing, junk, no_folder) = call_tools(folder, [
        ("list_recordings", {"folder": "recordings"}),
        ("open_trace", {"path": "recordings/zero.retrace"}),
        ("list_events", {"path": "recordings/zero.retrace", "start": 0, "count": 2}),
        ("list_events", {"path": "recordings/ok.retrace", "name": "os.stat"}),
        ("open_trace", {"path": "recordings/nothing.retrace"}),
        ("open_trace", {"path": "recordings/junk.retrace"}),
        ("list_recordings", {"folder": "nowhere"}),
    ])
    assert not listed[0]
    by_name = {Path(r["path"]).name: r for r in listed[1]["recordings"]}
    assert set(by_name) == {"ok.retrace", "zero.retrace", "junk.retrace"}
    assert by_name["junk.retrace"]["status"] == "unreadable"
    assert "not a pytest-retrace recording" in by_name["junk.retrace"]["problem"]
    assert by_name["ok.retrace"]["crash"] is None and by_name["ok.retrace"]["subject"]["entry"] == "prices.py"
    crash = by_name["zero.retrace"]["crash"]
    assert crash["type"] == "ZeroDivisionError" and crash["place"] == "prices-total"
    assert len(crash["fingerprint"]) >= 8 and by_name["zero.retrace"]["events"] >= 1

    assert not zero[0]
    trace = zero[1]
    assert trace["exception"] == "ZeroDivisionError: float division by zero" and trace["exit_status"] == 1
    assert [f["function"] for f in trace["traceback"]][-2:] == ["<module>", "total"]
    assert trace["traceback"][-1]["source"] == "rate = discount / subtotal" and trace["threads"] == ["0"]

    assert not events[0] and [e["index"] for e in events[1]["events"]] == [0, 1]
    [stat] = filtered[1]["events"]
    assert not filtered[0] and stat["name"] == "os.stat"
    assert stat["args"] == "('.',)" and "st_mtime" in stat["result"]

    assert missing == (True, "Error executing tool open_trace: recordings/nothing.retrace: no such recording; "
                             "check the path (recordings end in .retrace)")
    assert junk[0] and "not a pytest-retrace recording (bad magic at offset 0)" in junk[1]
    assert no_folder[0] and "nowhere: not a folder; give the folder that holds the recordings" in no_folder[1]


def test_an_agent_lists_the_incidents_triage_and_pytest_keep(folder: Path) -> None:
    assert retrace("triage", "recordings", cwd=folder).returncode == 2  # junk.retrace cannot be read: said, exit 2
    pinned = retrace("pin", "recordings/zero.retrace", "--into", "tests/recordings", cwd=folder)
    assert pinned.returncode == 0, pinned.stderr
    [(is_error, answer), (_, empty)] = call_tools(folder, [("list_incidents", {"folder": "recordings"}),
                                                          ("list_incidents", {"folder": "tests/recordings"})])
    assert not is_error
    [incident] = answer["incidents"]
    assert incident["exception"].endswith("ZeroDivisionError") and incident["status"] == "pinned"
    assert incident["count"] == 1 and incident["pinned"].endswith(".retrace")
    assert [move["status"] for move in incident["history"]] == ["new", "pinned"]
    assert [i["status"] for i in empty["incidents"]] == ["pinned"]  # the regression folder's own state


def test_a_sealed_recording_needs_its_key(folder: Path) -> None:
    assert retrace("keygen", "-o", "project.key", cwd=folder).returncode == 0
    sealed = retrace("record", "-o", "recordings/sealed.retrace", "--public-key", "project.key.pub", "prices.py", "3",
                     cwd=folder)
    assert sealed.returncode == 1, sealed.stderr  # the crash, sealed
    [(is_error, said)] = call_tools(folder, [("open_trace", {"path": "recordings/sealed.retrace"})])
    assert is_error and "needs the recording key" in said and "RETRACE_PRIVATE_KEY" in said


def test_without_the_sdk_the_command_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "mcp").mkdir()  # a package named mcp that is not the SDK shadows it
    (tmp_path / "mcp" / "__init__.py").write_text("raise ImportError('no SDK here')\n")
    ran = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); from pytest_retrace.cli import "
                          "main; raise SystemExit(main(['mcp']))"], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 2
    assert "retrace mcp: the MCP server needs the mcp package" in ran.stderr
    assert "pip install 'pytest-retrace[mcp]'" in ran.stderr and "Traceback" not in ran.stderr
