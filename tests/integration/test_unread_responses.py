"""Clients that do not read the answer: werkzeug's threaded server, draining the request's socket after the
response, meets the client's reset and drops the response body without closing it. The request's recording must
not be lost for that: it is written while the server runs (a body caught in werkzeug's reference cycle too), and
replays as recorded."""

from __future__ import annotations

import os
import shutil
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


TEST_CLIENT = '''\
import os
import time
from pathlib import Path

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.route("/price/<item>")
def price(item):
    prices = dict(line.split(",") for line in Path("prices.csv").read_text().split())
    return jsonify(item=item, price=int(prices[item]))  # kiwi has none: a crash, answered 500 by Flask


@app.route("/once/<word>")
def once(word):
    def chunks():
        yield word.upper().encode()
        time.time()  # after the last chunk: runs only for a server that reads on to the body's end
    return Response(chunks(), headers={"Content-Length": str(len(word))})


@app.route("/count/<int:n>")
def count(n):
    def lines():
        for i in range(n):
            time.time()  # each line's own call: a replay that read on would make one the recording has not
            yield f"{i}\\n".encode()
    return Response(lines())  # streamed, no Content-Length


if not os.environ.get("PLAIN"):
    from pytest_retrace.wsgi import record_flask

    record_flask(app, "recordings")

client = app.test_client()
kept = client.get("/price/apple")  # read whole, and held in a variable to the end
print(kept.status_code, kept.get_json())
print(client.get("/price/pear").status_code)  # the status only: the body's one chunk taken, never read again
print(client.get("/price/kiwi").status_code)
print(client.get("/once/tea").status_code)
with app.test_client() as scoped:
    print(scoped.get("/price/pear").get_data(as_text=True).strip())
streaming = client.get("/count/3")  # its first chunk taken only, held to the end: no whole answer to record
print(streaming.status_code)
hung_up = client.get("/count/4")  # its first chunk taken, then closed: the client went away midway
hung_up.close()
print(hung_up.status_code)
'''


def test_flask_test_client_requests_on_the_main_thread_are_recorded(tmp_path: Path) -> None:
    """A test client's requests, on the main thread, whose responses nobody closes: held in a variable until the
    process exits, or dropped once their status is read (werkzeug took only the first chunk, which is the whole
    body its Content-Length declared). Each is recorded, a crash too; the replay takes what the client took, so
    a generator's code after its last chunk, which never ran, does not run; only a response not handed over whole
    is left out, and that is said. The program prints the same recorded as plainly, and the recordings replay
    in another folder with the data file gone."""
    project = tmp_path / "shop"
    project.mkdir()
    (project / "service.py").write_text(TEST_CLIENT)
    (project / "prices.csv").write_text("apple,3\npear,5\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    plain = subprocess.run([sys.executable, "service.py"], cwd=project, env={**env, "PLAIN": "1"},
                           capture_output=True, text=True, timeout=60)
    recorded = subprocess.run([sys.executable, "service.py"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=60)
    assert recorded.returncode == plain.returncode == 0, recorded.stderr
    assert recorded.stdout == plain.stdout, (recorded.stdout, plain.stdout)
    assert plain.stdout.split("\n")[:7] == ["200 {'item': 'apple', 'price': 3}", "200", "500", "200",
                                           '{"item":"pear","price":5}', "200", "200"], plain.stdout
    found = {path.name.split("-")[0]: path for path in (project / "recordings").glob("*.retrace")}
    names = sorted(path.name.split("-")[0] for path in (project / "recordings").glob("*.retrace"))
    assert names == ["GET_count_4", "GET_once_tea", "GET_price_apple", "GET_price_kiwi", "GET_price_pear",
                     "GET_price_pear"], names
    assert recorded.stderr.count("not recording a request") == 1, recorded.stderr
    assert ("not recording a request whose response was not handed over whole when the process exited (200 OK)"
            in recorded.stderr), recorded.stderr
    once = read_recording(found["GET_once_tea"], events=False).header["entry"]
    assert (once["closed"], once["taken"]) == (False, 1), once
    assert "taken" not in read_recording(found["GET_price_apple"], events=False).header["entry"]
    hung_up = read_recording(found["GET_count_4"], events=False).header["entry"]
    assert (hung_up.get("closed", True), hung_up["taken"]) == (True, 1), hung_up  # closed, after one chunk

    elsewhere = tmp_path / "elsewhere" / "shop"
    shutil.copytree(project, elsewhere)
    (elsewhere / "prices.csv").unlink()
    replayed = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                               "--retrace-recordings=recordings"], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=300)
    assert "6 replayed, 5 ok, 1 crash reproduced" in replayed.stdout, replayed.stdout
    assert "KeyError: 'kiwi'" in replayed.stdout, replayed.stdout
    assert not (elsewhere / "prices.csv").exists()
