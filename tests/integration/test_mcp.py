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
    (listed, zero, events, filtered, missing, junk, no_folder, backwards, no_incidents) = call_tools(folder, [
        ("list_recordings", {"folder": "recordings"}),
        ("open_trace", {"path": "recordings/zero.retrace"}),
        ("list_events", {"path": "recordings/zero.retrace", "start": 0, "count": 2}),
        ("list_events", {"path": "recordings/ok.retrace", "name": "os.stat"}),
        ("open_trace", {"path": "recordings/nothing.retrace"}),
        ("open_trace", {"path": "recordings/junk.retrace"}),
        ("list_recordings", {"folder": "nowhere"}),
        ("list_events", {"path": "recordings/zero.retrace", "start": -5, "count": -1}),
        ("list_incidents", {"folder": "nowhere"}),
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
    assert backwards[0] and "start -5 and count -1: give positions from 0 on and a count of 0 or more" in backwards[1]
    assert no_incidents[0] and "nowhere: not a folder" in no_incidents[1]


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


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_on_the_pricing_example_an_agent_finds_the_crash_and_where_the_total_came_from(tmp_path: Path) -> None:
    """The pricing service (Flask on PostgreSQL) records an order that a forgotten promo priced at 0.00 and one for an
    unknown sku that crashed; through the tools an agent sees the crash's locals and follows the total back to the
    recorded database row that holds the discount."""
    import os
    import shutil
    import socket
    import time
    import urllib.error
    import urllib.request

    from support import PG_SERVER, fresh_database

    project = tmp_path / "pricing"
    shutil.copytree(EXAMPLES / "pricing", project, ignore=shutil.ignore_patterns("recordings"))
    (project / "pyproject.toml").write_text("")
    with fresh_database() as name:
        env = dict(os.environ, SHOP_DSN=f"{PG_SERVER} dbname={name}")
        subprocess.run([sys.executable, "setup_db.py"], cwd=project, env=env, check=True, capture_output=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "shop.py", str(port)], cwd=project, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            statuses = []
            for order in ({"sku": "apple", "qty": 3}, {"sku": "kiwi", "qty": 1}):
                request = urllib.request.Request(f"http://127.0.0.1:{port}/orders", json.dumps(order).encode(),
                                                 {"Content-Type": "application/json"})
                for _ in range(100):
                    try:
                        with urllib.request.urlopen(request, timeout=10) as answer:
                            statuses.append((answer.status, json.loads(answer.read())))
                        break
                    except urllib.error.HTTPError as exc:
                        statuses.append((exc.code, None))
                        break
                    except urllib.error.URLError:
                        time.sleep(0.1)  # not listening yet
            deadline = time.monotonic() + 10
            while len(list(project.glob("recordings/*.retrace"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server.terminate()
            server.wait(10)
    assert statuses[0][0] == 201 and statuses[0][1]["total"] == "0.00" and statuses[1][0] == 500

    [(_, listed)] = call_tools(project, [("list_recordings", {"folder": "recordings"})])
    crashed = next(r["path"] for r in listed["recordings"] if r["crash"])
    promo = next(r["path"] for r in listed["recordings"] if not r["crash"])
    [(_, events)] = call_tools(project, [("list_events", {"path": promo, "name": "execute", "count": 10})])
    insert = next(e["index"] for e in events["events"] if "insert into shop_orders" in e["args"])
    (crash, provenance, stack, opened, incidents) = call_tools(project, [
        ("get_crash_state", {"path": crashed}),
        ("trace_provenance", {"path": promo, "name": "total", "event": insert}),
        ("inspect_stack", {"path": promo, "event": insert}),
        ("open_trace", {"path": crashed}),
        ("list_incidents", {"folder": "recordings"}),
    ])
    assert not stack[0], stack[1]
    assert stack[1]["stopped"].startswith(f"stopped before event #{insert}: psycopg2.cursor.execute(")
    top = stack[1]["stack"][-1]
    assert top["function"] == "place_order" and top["locals"]["total"] == "Decimal('0.00')"
    assert top["locals"]["percent_off"] == "Decimal('100.00')" and top["source"].startswith("cur.execute(")
    assert not opened[0] and opened[1]["exception"].startswith("TypeError") and opened[1]["exit_status"] == 1
    assert opened[1]["summary"]["subject"]["route"] == "POST /orders"
    assert incidents == (False, {"incidents": []})  # no triage ran here yet
    [(is_error, said)] = call_tools(project, [("inspect_stack", {"path": promo, "event": 10_000})])
    assert is_error and "there is no event #10000: the recording has events #0 to #" in said
    assert not crash[0], crash[1]
    state = crash[1]
    assert state["exception"].startswith("TypeError: cannot unpack non-iterable NoneType")
    place_order = state["stack"][-1]
    assert place_order["function"] == "place_order" and place_order["source"].startswith("(price,) = cur.fetchone()")
    assert place_order["locals"]["order"] == "{'sku': 'kiwi', 'qty': 1}"

    assert not provenance[0], provenance[1]
    chain = provenance[1]["provenance"]
    assert chain["function"] == "place_order" and chain["name"] == "total"
    sources = [step["source"] for step in chain["chain"]]
    assert "total -= total * percent_off / 100" in sources and 'total = price * order["qty"]' in sources
    rows = [e for e in chain["events"] if "Decimal('100.00')" in e["result"]]
    assert rows, json.dumps(chain, indent=1)  # the recorded row of shop_promos that holds the discount
