"""Library adapters and custom boundaries: requests at HTTPAdapter.send,
``@pytest_retrace.boundary``, and boundaries and codecs added by an installed package's plugin."""

from __future__ import annotations

from pathlib import Path

from support import LiveServer, Recorder, assert_faithful, retrace

from pytest_retrace.format.tape import read_recording


def test_requests_replay_with_the_server_gone(recorder: Recorder, http_server: LiveServer) -> None:
    recorded = recorder.record("requests_calls.py", str(http_server.port))
    assert recorded.returncode == 0, recorded.stderr
    assert "cookies ['session', 'theme'] session=" in recorded.stdout
    assert "redirect http://127.0.0.1:" in recorded.stdout and "[302]" in recorded.stdout
    assert "read timeout ReadTimeout" in recorded.stdout and "connection error ConnectionError" in recorded.stdout
    http_server.stop()
    assert_faithful(recorder, recorded)

    events = read_recording(recorder.folder / "rec.retrace").events()
    sends = [e for e in events if e.name == "requests.send"]
    assert [e.args[0].split(str(http_server.port))[-1] for e in sends] == [
        "/quote?item=a", "/order", "/login", "/whoami", "/moved", "/quote?item=moved", "/lines", "/quote", "/slow",
        "GET http://127.0.0.1:9/",
    ]
    assert sends[0].args[0].startswith("GET http://127.0.0.1:") and sends[1].args[0].startswith("POST ")
    # One request, one event: nothing from the socket layer beneath (urllib3 probes IPv6 with a bind at import).
    assert not [e.name for e in events if e.name.startswith(("socket.", "select.")) and e.name != "socket.bind"]
    assert b"s3cr3t-token" not in (recorder.folder / "rec.retrace").read_bytes()


def test_a_changed_request_is_reported_as_method_and_url(recorder: Recorder, http_server: LiveServer,
                                                          tmp_path: Path) -> None:
    program = tmp_path / "client.py"
    program.write_text(f"import requests\nprint(requests.get('http://127.0.0.1:{http_server.port}/quote?item=a').json())\n")
    assert retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path).returncode == 0
    http_server.stop()
    program.write_text(program.read_text().replace("item=a", "item=b"))
    replayed = retrace("replay", "rec.retrace", cwd=tmp_path)
    assert replayed.returncode == 70
    assert f"expected  requests.send('GET http://127.0.0.1:{http_server.port}/quote?item=a'" in replayed.stderr
    assert f"actual    requests.send('GET http://127.0.0.1:{http_server.port}/quote?item=b'" in replayed.stderr


CUSTOM = '''
import os
import pytest_retrace

def unrecorded_entropy():  # os.open/os.read are below every boundary: a real call on replay would differ
    fd = os.open("/dev/urandom", os.O_RDONLY)
    try:
        return os.read(fd, 8).hex()
    finally:
        os.close(fd)

@pytest_retrace.boundary
def ask_model(prompt, temperature=0.0):
    return {"answer": unrecorded_entropy(), "prompt": prompt}

class Licence:
    @pytest_retrace.boundary(name="licence.check")
    def valid(self, product):
        return unrecorded_entropy() > "8"

print(ask_model("hello"), ask_model(prompt="hello", temperature=0.0), Licence().valid("pro"))
'''


def test_custom_boundary_records_a_function_as_one_call(tmp_path: Path) -> None:
    program = tmp_path / "custom.py"
    program.write_text(CUSTOM)
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    events = [e for e in read_recording(tmp_path / "rec.retrace").events() if e.name != "random.seed"]
    assert [(e.name, e.args) for e in events] == [
        ("__main__.ask_model", (("prompt", "hello"), ("temperature", 0.0))),
        ("__main__.ask_model", (("prompt", "hello"), ("temperature", 0.0))),  # keyword call, same key
        ("licence.check", (("product", "pro"),)),
    ]
    replayed = retrace("replay", "rec.retrace", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout  # the recorded answers: the functions did not run again


PLUGIN = '''
import pytest_retrace

class Money:
    def __init__(self, cents):
        self.cents = cents

    def __repr__(self):
        return f"Money({self.cents})"

@pytest_retrace.hookimpl
def retrace_register_codecs(register):
    register("demo.Money", Money, lambda m: m.cents, Money)

@pytest_retrace.hookimpl
def retrace_install_boundaries(engine, patcher, options):
    def patch(module):
        real = module.fetch_balance
        patcher.set(module, "fetch_balance", lambda account: engine.call("bank.balance", (account,), real, account))
    patcher.when_imported("bank", patch)
'''

BANK = '''
import random
from retrace_demo_plugin import Money

def fetch_balance(account):
    return Money(random.randint(0, 10**6))
'''


def test_an_installed_package_adds_a_boundary_and_a_codec(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "retrace_demo_plugin.py").write_text(PLUGIN)
    (site / "bank.py").write_text(BANK)
    dist = site / "retrace_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: retrace-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest_retrace]\ndemo = retrace_demo_plugin\n")
    program = tmp_path / "app.py"
    program.write_text("import bank\nprint(bank.fetch_balance('acct-1'))\n")
    env = {"PYTHONPATH": str(site)}
    recorded = retrace("record", "-o", "rec.retrace", "--", str(program), cwd=tmp_path, env=env)
    assert recorded.returncode == 0, recorded.stderr
    shown = retrace("show", "rec.retrace", cwd=tmp_path, env=env).stdout
    assert "bank.balance('acct-1') -> Money(" in shown
    replayed = retrace("replay", "rec.retrace", cwd=tmp_path, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
