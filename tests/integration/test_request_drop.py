"""keep="errors": a request that succeeds is recorded in memory and dropped. Thousands of them, served by a real
threaded werkzeug server, leave nothing behind: no file (not even a temporary one), no thread, no recording
counted as under way, no memory that grows with the requests; and the service still keeps the one that fails."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from support import free_port

from pytest_retrace.format.tape import read_recording

SERVICE = textwrap.dedent('''
    import gc, json, os, random, sys, threading, time, tracemalloc
    from flask import Flask, request
    import pytest_retrace.wsgi
    from pytest_retrace.kinds.writer import writer

    app = Flask(__name__)
    pytest_retrace.wsgi.record_flask(app, sys.argv[2], keep="errors")
    DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prices.csv")

    @app.get("/price")
    def price():
        with open(DATA) as f:  # a data file: read events, gathered in memory and dropped with the request
            rows = f.read().splitlines()
        return {"item": request.args.get("item"), "at": time.time(), "draw": random.random(), "rows": len(rows)}

    @app.get("/boom")
    def boom():
        raise ZeroDivisionError("kept")

    @app.get("/stats")
    def stats():
        if not tracemalloc.is_tracing():
            tracemalloc.start()  # from now on: what the requests after this one leave allocated
        deadline = time.monotonic() + 5
        while threading.active_count() > 2 and time.monotonic() < deadline:  # earlier requests' threads ending
            time.sleep(0.01)
        gc.collect()  # what is garbage awaiting the collector is not held
        return {"traced": tracemalloc.get_traced_memory()[0], "threads": len(os.listdir("/proc/self/task")),
                "writer": writer()._started, "under_way": len(writer()._open), "pending": writer()._pending}

    if __name__ == "__main__":
        from werkzeug.serving import make_server
        server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
        print("serving", flush=True)
        server.serve_forever()
''')


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_dropped_requests_leave_no_file_thread_or_growing_memory(tmp_path: Path) -> None:
    (tmp_path / "service.py").write_text(SERVICE)
    (tmp_path / "prices.csv").write_text("apple,1\npear,2\n")
    recordings = tmp_path / "recordings"
    port = free_port()
    server = subprocess.Popen([sys.executable, str(tmp_path / "service.py"), str(port), str(recordings)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, PYTHONPATH=""))
    try:
        assert server.stdout is not None and server.stdout.readline() == "serving\n"
        for i in range(300):  # warm: Flask, werkzeug and the recording machinery make what they cache
            assert get(port, f"/price?item=i{i % 7}")[0] == 200
        get(port, "/stats")  # starts tracing
        for i in range(500):  # what is made once but late (a logging stream's caches) is made while traced
            assert get(port, f"/price?item=i{i % 7}")[0] == 200
        before = json.loads(get(port, "/stats")[1])
        for i in range(2000):
            assert get(port, f"/price?item=i{i % 7}")[0] == 200
        after = json.loads(get(port, "/stats")[1])

        assert not recordings.exists() or not list(recordings.iterdir())  # no file, no temporary one
        # The server's main thread and the one answering /stats: no writer thread started, none of ours running.
        assert before["threads"] == after["threads"] == 2 and not after["writer"]
        assert after["under_way"] <= 1 and after["pending"] == 0  # (the /stats request itself is under way)
        # Memory bounded: 2 000 requests leave less than 64 KiB (a leak of one small object each would be more).
        assert after["traced"] - before["traced"] < 64 * 1024, (before, after)

        assert get(port, "/boom")[0] == 500  # recording is on: the failing request is kept
    finally:
        server.terminate()
        server.wait(10)
        assert server.stdout is not None
        server.stdout.close()
    kept = list(recordings.glob("*.retrace"))
    assert len(kept) == 1
    recorded = read_recording(kept[0])
    assert recorded.end is not None and recorded.end["exception"]["type"] == "ZeroDivisionError"
    assert recorded.header["entry"]["environ"]["PATH_INFO"] == "/boom"
