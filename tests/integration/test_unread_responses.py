"""Clients that do not read the answer: werkzeug's threaded server, draining the request's socket after the
response, meets the client's reset and drops the response body without closing it. The request's recording must
not be lost for that: it is written while the server runs (a body caught in werkzeug's reference cycle too), and
replays as recorded."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import free_port, retrace

from pytest_retrace.format.tape import read_recording

SERVICE = '''\
import sys
from flask import Flask
from pytest_retrace.wsgi import record_flask

app = Flask(__name__)


@app.route("/total/<int:n>")
def total(n):
    if n == 13:
        raise ValueError("unlucky")
    return str(sum(range(n))) * 1000  # more than one read: a client that closes early leaves some unread


if __name__ == "__main__":
    from werkzeug.serving import make_server

    record_flask(app, "recordings")
    server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
    print("serving", flush=True)
    server.serve_forever()
'''


def ask_and_hang_up(port: int, path: str) -> bytes:
    """Send a request, read the status line only, and close (a reset: the rest of the answer is unread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status = conn.recv(12)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    return status


def test_requests_whose_answer_is_not_read_are_recorded_while_the_server_runs(pytester: pytest.Pytester) -> None:
    (pytester.path / "service.py").write_text(SERVICE)
    port = free_port()
    service = subprocess.Popen([sys.executable, "service.py", str(port)], cwd=pytester.path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None and service.stdout.readline() == "serving\n"
        statuses = [ask_and_hang_up(port, f"/total/{n}") for n in (4, 10, 13, 5, 13)]
        assert [s.split()[1] for s in statuses] == [b"200", b"200", b"500", b"200", b"500"]
        deadline = time.monotonic() + 15  # the writer looks for abandoned recordings every second
        while len(list(pytester.path.glob("recordings/*.retrace"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = sorted(p.name.split("-")[0] for p in pytester.path.glob("recordings/*.retrace"))
    finally:
        service.terminate()
        _, err = service.communicate(timeout=20)
    assert found == ["GET_total_10", "GET_total_13", "GET_total_13", "GET_total_4", "GET_total_5"], err
    assert "lost" not in err and "abandoned" not in err, err
    replayed = pytester.runpytest_subprocess("--retrace-recordings=recordings", "-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=3, failed=2)
    replayed.stdout.fnmatch_lines(["5 replayed, 3 ok, 2 crash reproduced"])


def test_a_body_the_server_drops_unclosed_ends_its_recording(tmp_path: Path) -> None:
    """The same in one process, without a server: a body iterated whole and dropped without close() is recorded
    (once); one dropped midway is not, and says so."""
    program = tmp_path / "drop.py"
    program.write_text(
        "import gc, threading\n"
        "from pytest_retrace.kinds.request import RecordingMiddleware\n\n"
        "import time\n\n"
        "class Body:\n"
        "    def __iter__(self):\n"
        "        return iter([b'a', b'b', str(time.time()).encode()])\n"
        "    def close(self):  # close-time code with an external call (as Django closes its connections)\n"
        "        time.time()\n\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return Body()\n\n"
        "middleware = RecordingMiddleware(app, 'recordings', entry='drop:app')\n\n"
        "def serve(read):\n"
        "    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': f'/{read}', 'wsgi.input': None}\n"
        "    body = middleware(environ, lambda status, headers, exc_info=None: None)\n"
        "    for _ in range(read):\n"
        "        next(body, None)\n"
        "    cycle = [body]\n"
        "    cycle.append(cycle)  # held by a cycle, as werkzeug's frames hold it\n\n"
        "if __name__ == '__main__':\n"
        "    for read in (4, 1):\n"
        "        worker = threading.Thread(target=serve, args=(read,))\n"
        "        worker.start()\n"
        "        worker.join()\n"
        "    gc.collect()\n")
    ran = subprocess.run([sys.executable, "drop.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    [recording] = (tmp_path / "recordings").glob("*.retrace")
    assert recording.name.startswith("GET_4-")
    assert "not recording a request whose response the server abandoned before its end (200 OK)" in ran.stderr
    # Never closed when recorded, not closed on replay: its close-time call is no extra call.
    assert read_recording(recording, events=False).header["entry"]["closed"] is False
    replayed = retrace("replay", str(recording), cwd=tmp_path)
    assert replayed.returncode == 0 and not replayed.stderr, replayed.stderr
