"""What a warm process had cached, and a replay in a fresh one would look up again: the temporary folder. A
request that spools a large upload to a temporary file finds it known in a service that spooled one before (or
under pytest, gunicorn: anything that asked for it), and its recording has no look-up; the replay must not make
one either. The same for a call."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pytest_retrace.format.tape import read_recording

SERVICE = '''\
import io
import os
import sys
import tempfile

from flask import Flask, request

from pytest_retrace import record_calls

app = Flask(__name__)


@app.route("/upload", methods=["POST"])
def upload():
    data = request.files["file"].read()  # werkzeug spools a part over 500 KB to a temporary file
    return {"size": len(data), "head": data[:4].decode()}


def checksum(size):
    with tempfile.TemporaryFile() as spool:
        spool.write(b"y" * size)
        spool.seek(0)
        return sum(spool.read()) % 251


if not os.environ.get("PLAIN"):
    from pytest_retrace.wsgi import record_flask

    record_flask(app, "recordings/requests")
    checksum = record_calls("recordings/calls")(checksum)

if __name__ == "__main__":
    tempfile.gettempdir()  # what any process that spooled a file before has done
    client = app.test_client()
    for size in (1 << 20, 10):
        print(client.post("/upload", data={"file": (io.BytesIO(b"x" * size), "f.bin")}).get_json())
    print(checksum(1000))
'''


def test_requests_and_calls_of_a_warm_process_replay_cold_without_looking_the_temporary_folder_up(
        tmp_path: Path) -> None:
    project = tmp_path / "svc"
    project.mkdir()
    (project / "service.py").write_text(SERVICE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    plain = subprocess.run([sys.executable, "service.py"], cwd=project, env={**env, "PLAIN": "1"},
                           capture_output=True, text=True, timeout=60)
    recorded = subprocess.run([sys.executable, "service.py"], cwd=project, env=env, capture_output=True, text=True,
                              timeout=60)
    assert recorded.returncode == plain.returncode == 0, recorded.stderr
    assert recorded.stdout == plain.stdout and "'size': 1048576" in plain.stdout, (recorded.stdout, plain.stdout)
    recordings = sorted(project.rglob("*.retrace"))
    assert len(recordings) == 3, recordings
    for path in recordings:
        assert read_recording(path, events=False).header["entry"].get("warm", {}).get("tempdir"), path

    elsewhere = tmp_path / "another" / "svc"
    shutil.copytree(project, elsewhere)
    replayed = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                               "--retrace-recordings=recordings"], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=300)
    assert "3 replayed, 3 ok" in replayed.stdout, replayed.stdout
