"""Per-request recordings under real servers: gunicorn (sync and gthread workers, with and without
``--preload``, recycled by ``max_requests``) and werkzeug's threaded server, several workers writing into one
folder, stopped by a real signal right after the last answer.

What a team relies on in production: the answers are the same recorded or not, every answered request has its
recording, whole, on disk once the server has stopped (none half-written, none lost to the stop), and each one
replays ``ok``. Rotation by count and size holds with several processes writing and rotating one folder.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import PROGRAMS, free_port

from pytest_retrace.format.tape import TapeStatus, read_recording

pytest.importorskip("gunicorn")
pytest.importorskip("flask")


@dataclass(frozen=True)
class Server:
    """How a server is started: its command line (``{port}`` filled in) and what the test calls it."""

    name: str
    command: tuple[str, ...]

    def argv(self, port: int) -> list[str]:
        return [part.format(port=port) for part in self.command]


def gunicorn(name: str, *options: str) -> Server:
    return Server(name, (sys.executable, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "--graceful-timeout", "20",
                         *options, "serverapp:app"))


SYNC = gunicorn("gunicorn-sync", "-w", "2", "-k", "sync")
GTHREAD = gunicorn("gunicorn-gthread", "-w", "2", "-k", "gthread", "--threads", "4")
GTHREAD_PRELOAD = gunicorn("gunicorn-gthread-preload", "-w", "2", "-k", "gthread", "--threads", "4", "--preload")
WERKZEUG = Server("werkzeug-threaded", (sys.executable, "serverapp.py", "{port}"))


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes


class Running:
    """A server process serving the app in ``folder``, its log in ``folder/NAME.log``."""

    def __init__(self, server: Server, folder: Path, keep: str, **environ: str) -> None:
        self.port = free_port()
        self.log = folder / f"{server.name}-{keep}.log"
        env = dict(os.environ, SERVER_KEEP=keep, SERVER_RECORDINGS=str(folder / "recordings"), **environ)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(server.argv(self.port), cwd=folder, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"{server.name} ended at start:\n{self.log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"{server.name} does not answer:\n{self.log.read_text()}"
                time.sleep(0.05)

    def get(self, path: str) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return Answer(response.status, response.getheader("Content-Type", ""), response.read())
        finally:
            connection.close()

    def load(self, paths: list[str], clients: int = 4) -> dict[str, Answer]:
        """Every path asked once, from ``clients`` threads at once."""
        with ThreadPoolExecutor(clients) as pool:
            return dict(zip(paths, pool.map(self.get, paths), strict=True))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the server and wait until it has ended: its exit status."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the server did not stop on {signal.Signals(signum).name}:\n{self.log.read_text()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def app_folder(tmp_path: Path) -> Iterator[Path]:
    """The app, in the project the replays run in (replay runs only the project's own code)."""
    folder = tmp_path / "service"
    shutil.copytree(PROGRAMS / "servers", folder)
    yield folder


@pytest.fixture
def serve(app_folder: Path) -> Iterator[type[Running]]:
    started: list[Running] = []

    class Tracked(Running):
        def __init__(self, server: Server, folder: Path, keep: str, **environ: str) -> None:
            super().__init__(server, folder, keep, **environ)
            started.append(self)

    yield Tracked
    for running in started:
        running.close()


def request_paths(count: int) -> list[str]:
    items = ["apple", "pear", "plum", "fig", "kiwi", "lime"]
    return [f"/price/{items[i % len(items)]}?qty={i}&pause={0.01 * (i % 3)}" for i in range(count)]


def complete_recordings(folder: Path) -> list[Path]:
    """The recordings in ``folder``, each checked whole: read to its END; no temporary file is left beside."""
    leftovers = [p.name for p in folder.iterdir() if not p.name.endswith(".retrace")]
    assert not leftovers, f"files beside the recordings: {leftovers}"
    recordings = sorted(folder.glob("*.retrace"))
    for path in recordings:
        recording = read_recording(path)
        assert recording.status == TapeStatus.COMPLETE and recording.end is not None, (path, recording.status)
    return recordings


def replay_all(folder: Path, count: int) -> None:
    """``pytest --retrace-recordings`` in the project, as a user runs it: every recording replays ok."""
    result = subprocess.run([sys.executable, "-m", "pytest", "--retrace-recordings=recordings", "-q",
                             "-p", "no:cacheprovider", "-p", "no:randomly"], cwd=folder, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0 and f"{count} passed" in result.stdout, result.stdout[-3000:] + result.stderr


@pytest.mark.parametrize("server, signum", [
    (SYNC, signal.SIGTERM), (GTHREAD, signal.SIGTERM), (GTHREAD_PRELOAD, signal.SIGTERM),
    (GTHREAD, signal.SIGINT), (WERKZEUG, signal.SIGTERM), (WERKZEUG, signal.SIGINT),
], ids=lambda value: value.name if isinstance(value, (Server, signal.Signals)) else None)
def test_every_answered_request_is_recorded_whole_when_the_server_stops_right_after(
        server: Server, signum: signal.Signals, serve: type[Running], app_folder: Path) -> None:
    paths = request_paths(24)
    plain = serve(server, app_folder, "none")
    plain_answers = plain.load(paths)
    plain_status = plain.stop(signum)

    recorded = serve(server, app_folder, "all")
    answers = recorded.load(paths)
    status = recorded.stop(signum)  # at once: the last recordings are being written
    log = recorded.log.read_text()

    assert answers == plain_answers and {a.status for a in answers.values()} == {200}
    assert status == plain_status, log  # the same end: a death by SIGTERM stays one
    assert "pytest-retrace" not in log, log  # nothing lost, nothing failed
    recordings = complete_recordings(app_folder / "recordings")
    assert len(recordings) == len(paths), log
    targets = sorted(read_recording(p).header["entry"]["environ"]["RAW_URI" if "gunicorn" in server.name
                                                                   else "REQUEST_URI"] for p in recordings)
    assert targets == sorted(paths)
    replay_all(app_folder, len(paths))


def test_workers_recycled_by_max_requests_write_what_they_answered(serve: type[Running], app_folder: Path) -> None:
    paths = request_paths(20)
    running = serve(gunicorn("gunicorn-recycled", "-w", "2", "-k", "sync", "--max-requests", "3"), app_folder,
                    "all")
    answers = running.load(paths, clients=2)
    running.stop()
    log = running.log.read_text()
    assert {a.status for a in answers.values()} == {200}
    assert log.count("Autorestarting worker") >= 4, log  # the workers were recycled, several times
    assert "pytest-retrace" not in log, log
    assert len(complete_recordings(app_folder / "recordings")) == len(paths), log


ROTATING = textwrap.dedent('''\
    """Records calls from two threads at once into a folder that other processes rotate too."""
    import sys
    import threading
    import time

    import pytest_retrace

    folder, limit, value, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

    @pytest_retrace.record_calls(folder, **{limit: value})
    def job(n):
        return [time.time() for _ in range(20)], n

    def work():
        for n in range(12):
            job(n)

    while time.time() < start:  # the processes begin together
        time.sleep(0.005)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ''')


def rotate_from(processes: int, folder: Path, program: Path, limit: str, value: int) -> None:
    start = time.time() + 1.5
    running = [subprocess.Popen([sys.executable, str(program), str(folder / "recordings"), limit, str(value),
                                 str(start)], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(processes)]
    for process in running:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and not out and not err, err  # no crash, nothing logged


def test_rotation_by_count_with_several_processes_at_once(tmp_path: Path) -> None:
    program = tmp_path / "rotating.py"
    program.write_text(ROTATING)
    rotate_from(4, tmp_path, program, "max_files", 7)  # 96 recordings, all but 7 rotated away
    assert len(complete_recordings(tmp_path / "recordings")) == 7  # not one more, and not one less


def test_rotation_by_size_with_several_processes_at_once(tmp_path: Path) -> None:
    program = tmp_path / "rotating.py"
    program.write_text(ROTATING)
    (tmp_path / "one").mkdir()
    rotate_from(1, tmp_path / "one", program, "max_files", 3)
    size = max(p.stat().st_size for p in complete_recordings(tmp_path / "one" / "recordings"))
    budget = int(size * 5.5)
    rotate_from(4, tmp_path, program, "max_bytes", budget)
    sizes = [p.stat().st_size for p in complete_recordings(tmp_path / "recordings")]
    assert sum(sizes) <= budget  # the budget holds
    assert sum(sizes) + max(sizes) > budget, sizes  # and nothing was dropped that fitted in it
