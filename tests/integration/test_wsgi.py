"""Per-request recordings: a Flask service under a real WSGI server records each request;
the plugin replays them with the service and its upstream gone; pin the crash, fix, all pass."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PROGRAMS, LiveServer, free_port, retrace

from pytest_retrace.format.tape import read_recording


class Service:
    def __init__(self, folder: Path, upstream: int, keep: str, threaded: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        env = dict(os.environ, SERVICE_RECORDINGS=str(folder / "recordings"), SERVICE_KEEP=keep,
                   UPSTREAM=f"http://127.0.0.1:{upstream}", SERVICE_THREADED="1" if threaded else "")
        self.proc = subprocess.Popen([sys.executable, str(folder / "service.py"), str(self.port)], cwd=folder,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "serving\n"

    def get(self, path: str) -> tuple[int, bytes]:
        return self._send(urllib.request.Request(f"http://127.0.0.1:{self.port}{path}"))

    def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        return self._send(urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST",
                                                 data=json.dumps(payload).encode(),
                                                 headers={"Content-Type": "application/json"}))

    @staticmethod
    def _send(request: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self, recordings: int) -> None:
        """Stop once ``recordings`` recordings are on disk: the middleware writes one when the server closes
        the response, after the client has it."""
        deadline = time.monotonic() + 10
        while len(list(self.folder.glob("recordings/*.retrace"))) < recordings and time.monotonic() < deadline:
            time.sleep(0.02)
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def webapp(pytester: pytest.Pytester) -> Iterator[Path]:
    """The service, inside the project the plugin replays in (replay runs only the project's own code)."""
    folder = pytester.path / "webapp"
    shutil.copytree(PROGRAMS / "webapp", folder)
    yield folder


def test_requests_are_recorded_and_replayed_by_the_plugin_pin_fix_pass(webapp: Path, http_server: LiveServer,
                                                                        pytester: pytest.Pytester) -> None:
    service = Service(webapp, http_server.port, "all")
    try:
        assert service.get("/price?item=apple&qty=2")[0] == 200
        assert service.post("/orders", {"item": "pear", "qty": 0})[0] == 500
        assert service.post("/orders", {"item": "pear", "qty": 2})[0] == 201
    finally:
        service.stop(recordings=3)
    http_server.stop()
    recordings = webapp / "recordings"
    headers = {p.name: read_recording(p).header for p in recordings.glob("*.retrace")}
    assert len(headers) == 3 and {h["kind"] for h in headers.values()} == {"wsgi"}
    assert {h["entry"]["app"] for h in headers.values()} == {"service:app"}
    assert sorted(h["entry"]["body"] for h in headers.values()) == [b"", b'{"item": "pear", "qty": 0}',
                                                                    b'{"item": "pear", "qty": 2}']

    result = pytester.runpytest(f"--retrace-recordings={recordings}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*the recorded crash still happens*", "*ValueError: quantity must be positive*"])

    crash = next(p for p in recordings.glob("POST_orders*") if read_recording(p).end["exception"])
    pinned = retrace("pin", str(crash), "--into", str(webapp / "pinned"), cwd=webapp)
    assert pinned.returncode == 0, pinned.stderr
    (webapp / "service.py").write_text((webapp / "service.py").read_text().replace(
        'raise ValueError(f"quantity must be positive, got {body[\'qty\']}")',
        'return jsonify(error="quantity must be positive"), 400'))
    result = pytester.runpytest(f"--retrace-recordings={webapp / 'pinned'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_keep_errors_keeps_the_request_that_crashed(webapp: Path, http_server: LiveServer) -> None:
    service = Service(webapp, http_server.port, "errors")
    try:
        for qty in (1, 0, 2):
            service.post("/orders", {"item": "fig", "qty": qty})
    finally:
        service.stop(recordings=1)
    (only,) = (webapp / "recordings").glob("*.retrace")
    assert read_recording(only).end["exception"]["type"] == "ValueError"


def test_a_chunked_request_body_reaches_the_app_and_its_replay(webapp: Path, http_server: LiveServer,
                                                                pytester: pytest.Pytester) -> None:
    service = Service(webapp, http_server.port, "all")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        conn.request("POST", "/orders", body=iter([b'{"item": "fig",', b' "qty": 2}']),
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                     encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 201, response.read()
        conn.close()
    finally:
        service.stop(recordings=1)
    http_server.stop()
    (recording,) = (webapp / "recordings").glob("POST_orders*")
    assert read_recording(recording).header["entry"]["body"] == b'{"item": "fig", "qty": 2}'
    pytester.runpytest(f"--retrace-recordings={recording}", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_streamed_response_is_recorded_as_it_streams(webapp: Path, http_server: LiveServer,
                                                       pytester: pytest.Pytester) -> None:
    """The middleware passes a streamed body on chunk by chunk; the generator's calls are the request's, the
    server's sends between chunks are not; a stream that breaks half-way is a recorded crash."""
    service = Service(webapp, http_server.port, "all")
    try:
        status, body = service.get("/stream")
        assert status == 200 and len(body.splitlines()) == 3
        status, body = service.get("/stream?fail_at=1")  # the server ends the response where it broke
        assert status == 200 and len(body.splitlines()) == 1
    finally:
        service.stop(recordings=2)
    http_server.stop()
    recordings = {read_recording(p).end["exception"] is not None: p for p in (webapp / "recordings").glob("*")}
    assert [e.name for e in read_recording(recordings[False]).events()] == ["random.seed"] + ["time.time"] * 3
    assert read_recording(recordings[True]).end["exception"]["message"] == "the stream broke at line 1"
    result = pytester.runpytest(f"--retrace-recordings={webapp / 'recordings'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the recorded crash still happens*RuntimeError: the stream broke at line 1*"])


def test_requests_served_at_once_are_recorded_each_on_its_own(webapp: Path, http_server: LiveServer,
                                                               pytester: pytest.Pytester) -> None:
    """A threaded server answers /slow, /fanout (which starts threads) and /price at the same time: each
    request is its own recording, holding only its own calls — /slow's lock is no event, though
    /fanout's are — and each replays alone."""
    service = Service(webapp, http_server.port, "all", threaded=True)
    try:
        slow = threading.Thread(target=service.get, args=("/slow?seconds=1.0",))
        slow.start()
        time.sleep(0.3)
        fanout = threading.Thread(target=service.get, args=("/fanout",))
        fanout.start()
        for _ in range(3):
            assert service.get("/price?item=fig")[0] == 200
        fanout.join()
        slow.join()
    finally:
        service.stop(recordings=5)
    http_server.stop()
    recordings = webapp / "recordings"
    events = {p.name.split("-")[0]: [e.name for e in read_recording(p).events()] for p in recordings.glob("*.retrace")}
    assert len(list(recordings.glob("*.retrace"))) == 5
    assert events["GET_slow"] == ["random.seed", "time.sleep", "time.time"]
    assert "lock.acquire" in events["GET_fanout"] and "thread.start" in events["GET_fanout"]
    assert "requests.send" in events["GET_price"] and "time.sleep" not in events["GET_price"]
    result = pytester.runpytest(f"--retrace-recordings={recordings}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
