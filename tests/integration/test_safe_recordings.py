"""Recordings are production data: sealed for a project key, written 0600 and put in place whole, never in
the program's way (a full disk, a second recorder), and the recorded child dies with its launcher."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from support import retrace

from pytest_retrace.format import tape

MARKER = "plain-marker-7c1f"  # printed and read from the environment under a name no redaction pattern matches

PROGRAM = f"""
import os, random, time
print("{MARKER}", os.environ.get("GREETING"), random.random() < 2, time.time() > 0)
print("the token ends in", os.environ.get("API_TOKEN", "")[-4:])
"""


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    run = retrace("keygen", "-o", str(tmp_path / "project.key"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return tmp_path / "project.key", tmp_path / "project.key.pub"


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_replaces_one(tmp_path: Path,
                                                                                 keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("retrace-public-key-1:")
    again = retrace("keygen", "-o", str(private), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_sealed_recording_holds_nothing_readable_and_replays_only_with_the_key(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    _write(tmp_path, "prog.py", PROGRAM)
    secrets = {"GREETING": "hello-from-env", "API_TOKEN": "tok-5f1e9a7c3b2d"}
    recorded = retrace("record", "-o", "sealed.retrace", "--public-key", str(public), "prog.py", cwd=tmp_path,
                       env=secrets)
    assert recorded.returncode == 0, recorded.stderr
    assert "the token ends in 3b2d" in recorded.stdout
    data = (tmp_path / "sealed.retrace").read_bytes()
    for secret in (MARKER, *secrets.values(), "prog.py", str(tmp_path)):
        assert secret.encode() not in data, secret

    refused = retrace("show", "sealed.retrace", cwd=tmp_path)
    assert refused.returncode == 2
    assert "needs the recording key" in refused.stderr and "Traceback" not in refused.stderr
    refused = retrace("replay", "sealed.retrace", cwd=tmp_path)
    assert refused.returncode == 2 and "needs the recording key" in refused.stderr

    shown = retrace("show", "--key-file", str(private), "sealed.retrace", cwd=tmp_path)
    assert shown.returncode == 0 and "prog.py" in shown.stdout
    # The token was not redacted but sealed: the replay that prints part of it is faithful.
    for how in ({"RETRACE_PRIVATE_KEY": str(private)}, {"RETRACE_PRIVATE_KEY": private.read_text().strip()}):
        replayed = retrace("replay", "sealed.retrace", "--verdict", "v.json", cwd=tmp_path, env=how)
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout == recorded.stdout
    # Unsealed, the same token is redacted: the replay sees the placeholder, and says it differs.
    plain = retrace("record", "-o", "plain.retrace", "prog.py", cwd=tmp_path, env=secrets)
    assert plain.returncode == 0 and "the token ends in 3b2d" in plain.stdout
    assert b"tok-5f1e9a7c3b2d" not in (tmp_path / "plain.retrace").read_bytes()
    assert retrace("replay", "plain.retrace", cwd=tmp_path).returncode == 70


def test_a_key_the_replay_holds_imports_nothing_into_a_program_whose_recording_is_not_sealed(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """Making a key imports cryptography: a replay that holds one (handed over by its launcher) but never opens a
    sealed recording must leave the program the modules the recorded run had."""
    private, _ = keys
    _write(tmp_path, "prog.py", "import sys\nprint(sorted(m for m in sys.modules if 'crypt' in m))\n")
    recorded = retrace("record", "-o", "plain.retrace", "prog.py", cwd=tmp_path)
    assert recorded.returncode == 0 and recorded.stdout == "[]\n", recorded.stderr
    replayed = retrace("replay", "plain.retrace", "--verdict", "v.json", cwd=tmp_path,
                       env={"RETRACE_PRIVATE_KEY": str(private)})
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == "[]\n"


def test_a_recording_sealed_for_another_key_names_the_key_it_needs(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    _, public = keys
    other = retrace("keygen", "-o", str(tmp_path / "other.key"), cwd=tmp_path)
    assert other.returncode == 0
    _write(tmp_path, "prog.py", PROGRAM)
    assert retrace("record", "-o", "a.retrace", "prog.py", cwd=tmp_path,
                   env={"RETRACE_PUBLIC_KEY": str(public)}).returncode == 0
    wrong = retrace("show", "--key-file", str(tmp_path / "other.key"), "a.retrace", cwd=tmp_path)
    assert wrong.returncode == 2
    key_id = public.read_text()  # the message names the key the recording is sealed for, by its id
    from pytest_retrace.format.sealing import PublicKey

    assert PublicKey.parse(key_id).id in wrong.stderr


def _reframed(data: bytes, offset: int, payload: bytes) -> bytes:
    """``data`` with the frame at ``offset`` given a new payload (CRC recomputed: only decryption can tell)."""
    length, _ = tape._FRAME.unpack_from(data, offset)
    frame = tape._FRAME.pack(len(payload), zlib.crc32(payload)) + payload
    return data[:offset] + frame + data[offset + tape._FRAME.size + length:]


def _frame_offsets(data: bytes) -> list[int]:
    offsets, offset = [], tape._PREAMBLE.size
    while offset < len(data):
        offsets.append(offset)
        length, _ = tape._FRAME.unpack_from(data, offset)
        offset += tape._FRAME.size + length
    return offsets


def test_a_tampered_or_moved_sealed_frame_is_corrupt(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    _write(tmp_path, "prog.py", PROGRAM)
    assert retrace("record", "-o", "a.retrace", "--public-key", str(public), "prog.py", cwd=tmp_path).returncode == 0
    data = (tmp_path / "a.retrace").read_bytes()
    offsets = _frame_offsets(data)
    length, _ = tape._FRAME.unpack_from(data, offsets[2])
    payload = bytearray(data[offsets[2] + tape._FRAME.size: offsets[2] + tape._FRAME.size + length])
    payload[-1] ^= 1
    (tmp_path / "flipped.retrace").write_bytes(_reframed(data, offsets[2], bytes(payload)))
    # two sealed frames swapped: each is whole, but out of its place
    a, b, c = offsets[1], offsets[2], offsets[3]
    (tmp_path / "swapped.retrace").write_bytes(data[:a] + data[b:c] + data[a:b] + data[c:])
    # the readable header's tags changed: readable without the key, but authenticated by the sealed header
    _, readable = msgpack.unpackb(data[offsets[0] + tape._FRAME.size: offsets[1]])
    readable["tags"] = {"team": "someone-else"}
    (tmp_path / "retagged.retrace").write_bytes(
        _reframed(data, offsets[0], msgpack.packb([tape.FRAME_HEADER, readable], use_bin_type=True)))
    for name in ("flipped.retrace", "swapped.retrace", "retagged.retrace"):
        shown = retrace("show", "--key-file", str(private), name, cwd=tmp_path)
        assert shown.returncode == 2 or "corrupt" in shown.stdout, (name, shown)
        assert "corrupt" in shown.stdout + shown.stderr and "Traceback" not in shown.stderr


def test_recordings_are_private_to_their_owner_and_an_existing_one_is_never_overwritten(tmp_path: Path) -> None:
    _write(tmp_path, "prog.py", PROGRAM)
    assert retrace("record", "-o", "a.retrace", "prog.py", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE((tmp_path / "a.retrace").stat().st_mode) == 0o600
    before = (tmp_path / "a.retrace").read_bytes()
    again = retrace("record", "-o", "a.retrace", "prog.py", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert again.stdout == ""  # refused before the program ran
    assert (tmp_path / "a.retrace").read_bytes() == before
    forced = retrace("record", "-o", "a.retrace", "--force", "prog.py", cwd=tmp_path)
    assert forced.returncode == 0 and (tmp_path / "a.retrace").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.retrace", "prog.py"]  # no temporary file left


def test_two_recorders_of_one_path_leave_two_whole_recordings(tmp_path: Path) -> None:
    """Both start before either ends: one gets the name, the other's recording is kept beside it."""
    _write(tmp_path, "slow.py", """
        import os, sys, time
        open(sys.argv[1], "w").close()
        while not os.path.exists("go"):
            time.sleep(0.01)
        print("done", sys.argv[1], time.time() > 0)
    """)
    procs = [subprocess.Popen([sys.executable, "-m", "pytest_retrace", "record", "-o", "same.retrace", "slow.py",
                               f"started{i}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"started{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (tmp_path / "go").touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]  # the programs' status: recording is not their business
    assert sum("another recorder wrote" in err for _, err in results) == 1
    for name in ("same.retrace", "same-2.retrace"):
        rec = tape.read_recording(tmp_path / name)
        assert rec.status == tape.TapeStatus.COMPLETE
        assert retrace("replay", name, cwd=tmp_path).returncode == 0


def _process_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone for our purpose: reaped by init soon, running nothing
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Path]:
    _write(tmp_path, "sleeper.py", """
        import os, signal, time
        with open("pid", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    """)
    yield tmp_path / "sleeper.py"


def _launch_sleeper(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    launcher = subprocess.Popen([sys.executable, "-m", "pytest_retrace", "record", "-o", "s.retrace", "sleeper.py"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.02)
    return launcher, int((tmp_path / "pid").read_text())


def test_killing_the_launcher_kills_the_recorded_program(tmp_path: Path, sleeper: Path) -> None:
    launcher, child = _launch_sleeper(tmp_path)
    launcher.kill()
    launcher.communicate()
    assert _process_gone(child, within=5), "the recorded program outlived its launcher"


def test_sigterm_to_the_launcher_reaches_the_program_which_dies_of_it_as_it_would_plainly(
        tmp_path: Path, sleeper: Path) -> None:
    launcher, child = _launch_sleeper(tmp_path)
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=30)
    assert launcher.returncode == -signal.SIGTERM, err
    assert _process_gone(child, within=5)
    rec = tape.read_recording(tmp_path / "s.retrace")  # killed by a signal: what it recorded, truncated
    assert rec.status == tape.TapeStatus.TRUNCATED


# -- a disk that refuses the recording -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of our own (needs root and mount; skipped with the reason elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` up to ``leave`` bytes free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


CHATTY = """
import sys, time
total = 0.0
for _ in range(60000):
    total += time.time()
print("finished", total > 0)
sys.exit(3)
"""


@pytest.mark.parametrize("leave", [0, 48 * 1024], ids=["full-at-start", "full-midway"])
def test_a_full_disk_never_stops_or_changes_the_program(tmp_path: Path, small_disk: Path, leave: int) -> None:
    program = _write(tmp_path, "chatty.py", CHATTY)
    plainly = subprocess.run([sys.executable, str(program)], capture_output=True, text=True)
    _fill(small_disk, leave)
    recorded = retrace("record", "-o", str(small_disk / "c.retrace"), str(program), cwd=tmp_path)
    assert recorded.returncode == plainly.returncode == 3
    assert recorded.stdout == plainly.stdout
    warnings = [line for line in recorded.stderr.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("retrace record: warning:"), recorded.stderr
    assert "unrecorded" in warnings[0] or "abandoned" in warnings[0]
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # nothing half-written left


def test_a_read_only_folder_never_stops_the_program(tmp_path: Path) -> None:
    program = _write(tmp_path, "chatty.py", CHATTY)
    locked = tmp_path / "locked"
    locked.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        done = retrace("record", "-o", str(locked / "c.retrace"), str(program), cwd=tmp_path)
        assert done.returncode == 3, done.stderr
        assert done.stdout == "finished True\n"
        assert done.stderr.startswith("retrace record: warning:") and "unrecorded" in done.stderr
        assert done.stderr.count("\n") == 1
        assert list(locked.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(locked)], check=False)


def test_recording_in_process_makes_private_folders_and_files(tmp_path: Path) -> None:
    _write(tmp_path, "job.py", """
        import sys, time
        import pytest_retrace

        @pytest_retrace.record_calls(sys.argv[1])
        def job():
            return time.time() > 0

        print(job())
    """)
    folder = tmp_path / "deep" / "recordings"
    done = subprocess.run([sys.executable, "job.py", str(folder)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".retrace"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_a_recording_refused_by_the_disk_in_process_leaves_the_call_untouched(tmp_path: Path,
                                                                                small_disk: Path) -> None:
    _write(tmp_path, "job.py", """
        import sys, time
        import pytest_retrace

        @pytest_retrace.record_calls(sys.argv[1])
        def job():
            return sum(time.time() > 0 for _ in range(20000))

        print(job())
    """)
    _fill(small_disk, 16 * 1024)
    done = subprocess.run([sys.executable, "job.py", str(small_disk / "recs")], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout == "20000\n"
    assert "could not be written" in done.stderr
    leftovers = [p for p in (small_disk / "recs").iterdir()] if (small_disk / "recs").exists() else []
    assert leftovers == []


# -- a recording server stopped while it serves ------------------------------------------------------------


SERVICE = """
import random, time
from pytest_retrace.wsgi import RecordingMiddleware

def raw(environ, start_response):
    time.sleep(0.005)
    body = repr(random.random()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

app = RecordingMiddleware(raw, "recs")
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_recording_server_stopped_by_sigterm_under_load_keeps_every_answered_request(tmp_path: Path) -> None:
    import http.client
    import threading

    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed (pip install -e '.[test]')")
    _write(tmp_path, "svc.py", SERVICE)
    port = _free_port()
    server = subprocess.Popen([str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "20",
                               "svc:app"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    answered: list[bytes] = []
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 60  # bounded: the load stops by itself
        while not stop.is_set() and time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read()
                if response.status == 200:
                    answered.append(body)
            except OSError:
                time.sleep(0.01)
            finally:
                connection.close()

    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(answered) < 50:
            assert time.monotonic() < deadline and server.poll() is None, server.stderr
            time.sleep(0.01)
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    finally:
        stop.set()
        for t in clients:
            t.join()
        if server.poll() is None:
            server.kill()
            server.communicate()
    recordings = sorted((tmp_path / "recs").glob("*.retrace"))
    assert len(answered) >= 50
    assert len(recordings) == len(answered)
    replies = []
    for path in recordings:
        rec = tape.read_recording(path)
        assert rec.status == tape.TapeStatus.COMPLETE and rec.end is not None
        replies.append(str(rec.end["returned"]["head"]))  # what the request answered: status, headers, body
    assert all(any(repr(body) in reply for reply in replies) for body in answered)  # each answer has its recording
    assert not [p for p in (tmp_path / "recs").iterdir() if not p.name.endswith(".retrace")]  # no temp file left


def test_pytest_errors_on_a_sealed_recording_without_its_key_and_replays_it_with_the_key(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    _write(tmp_path, "prog.py", PROGRAM)
    (tmp_path / "recs").mkdir()
    assert retrace("record", "-o", "recs/a.retrace", "--public-key", str(public), "prog.py",
                   cwd=tmp_path).returncode == 0

    def pytest_run(*extra: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETRACE_")}
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recs",
                               *extra], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)

    without = pytest_run()
    assert without.returncode == 1 and "1 error" in without.stdout, without.stdout
    assert "needs the recording key" in without.stdout
    with_key = pytest_run(f"--retrace-key-file={private}")
    assert with_key.returncode == 0 and "1 passed" in with_key.stdout, with_key.stdout
    wrong = pytest_run(f"--retrace-key-file={public}")
    assert wrong.returncode == 4 and "--retrace-key-file" in wrong.stderr and "Traceback" not in wrong.stderr


def test_pinning_a_sealed_crash_keeps_it_sealed_under_a_fresh_key(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    _write(tmp_path, "crash.py", f"""
        import time
        def total(prices):
            return sum(prices) / len([p for p in prices if p > 1e12])  # "{MARKER}"
        print(total([time.time()]))
    """)
    recorded = retrace("record", "-o", "c.retrace", "--public-key", str(public), "crash.py", cwd=tmp_path)
    assert recorded.returncode == 1 and "ZeroDivisionError" in recorded.stderr
    refused = retrace("pin", "c.retrace", "--into", "pins", cwd=tmp_path)
    assert refused.returncode == 2 and "needs the recording key" in refused.stderr
    pinned = retrace("pin", "--key-file", str(private), "c.retrace", "--into", "pins", cwd=tmp_path)
    assert pinned.returncode == 0, pinned.stderr
    [target] = (tmp_path / "pins").glob("*.retrace")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data, original = target.read_bytes(), (tmp_path / "c.retrace").read_bytes()
    assert MARKER.encode() not in data and b"ZeroDivisionError" not in data
    key_of = tape.read_recording  # a fresh key: the pinned copy shares no ciphertext with the original
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRACE_PRIVATE_KEY", str(private))
        assert key_of(target).envelope.ephemeral != key_of(tmp_path / "c.retrace").envelope.ephemeral
        assert key_of(target).header["pin"]["exception"] == "ZeroDivisionError"
    assert data[-64:] not in original
    replayed = retrace("replay", "--key-file", str(private), str(target), "--verdict", "v.json", cwd=tmp_path)
    assert replayed.returncode == 1 and '"crash-reproduced"' in (tmp_path / "v.json").read_text()


AUTH_APP = """
import time
from pytest_retrace.wsgi import RecordingMiddleware

def raw(environ, start_response):
    allowed = environ.get("HTTP_AUTHORIZATION") == "Bearer s3cr3t-t0ken-abcdef"
    body = f"{'welcome' if allowed else 'denied'} at {time.time() > 0}".encode()
    start_response("200 OK" if allowed else "401 Unauthorized", [("Content-Type", "text/plain")])
    return [body]

app = RecordingMiddleware(raw, "recs", public_key="project.key.pub")
"""


def test_an_app_that_checks_its_authorization_replays_faithfully_from_a_sealed_request(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, _ = keys
    _write(tmp_path, "authapp.py", AUTH_APP)
    _write(tmp_path, "drive.py", """
        import io
        from wsgiref.util import setup_testing_defaults
        import authapp
        environ = {"HTTP_AUTHORIZATION": "Bearer s3cr3t-t0ken-abcdef", "PATH_INFO": "/reset/ResetTok-4242"}
        setup_testing_defaults(environ)
        response = authapp.app(environ, lambda status, headers: print(status))
        print(b"".join(response))
        response.close()
    """)
    driven = subprocess.run([sys.executable, "drive.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert driven.returncode == 0 and "200 OK" in driven.stdout, driven.stderr
    [recording] = (tmp_path / "recs").glob("*.retrace")
    assert b"s3cr3t-t0ken-abcdef" not in recording.read_bytes() and b"ResetTok-4242" not in recording.read_bytes()
    assert "ResetTok" not in recording.name and recording.name.startswith("GET-")  # a sealed name says nothing
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recs",
                          f"--retrace-key-file={private}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout


def test_a_request_recorded_with_the_private_key_in_its_environment_replays_with_the_key_from_the_environment(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """As a walk-through does: both keys exported while recording (the header keeps a placeholder for the private
    one, which the replay restores) and the private key named by a relative path when replaying; the fork server
    opens the recording with the key it was started with."""
    _write(tmp_path, "authapp.py", AUTH_APP)
    _write(tmp_path, "drive.py", """
        from wsgiref.util import setup_testing_defaults
        import authapp
        environ = {"HTTP_AUTHORIZATION": "Bearer s3cr3t-t0ken-abcdef"}
        setup_testing_defaults(environ)
        response = authapp.app(environ, lambda status, headers: print(status))
        b"".join(response)
        response.close()
    """)
    env = dict(os.environ, RETRACE_PUBLIC_KEY="project.key.pub", RETRACE_PRIVATE_KEY="project.key")
    driven = subprocess.run([sys.executable, "drive.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env=env)
    assert driven.returncode == 0 and "200 OK" in driven.stdout, driven.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recs"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout


def test_a_service_with_an_unusable_key_serves_as_usual_and_records_nothing(tmp_path: Path) -> None:
    """Recording unsealed would write what the project asked to keep sealed: a bad key turns recording off,
    with the reason logged, and never breaks the service."""
    _write(tmp_path, "svc.py", """
        import logging, sys, time
        from wsgiref.util import setup_testing_defaults
        from pytest_retrace.wsgi import RecordingMiddleware
        import pytest_retrace

        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

        def raw(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"served"]

        app = RecordingMiddleware(raw, "recs")

        @pytest_retrace.record_calls("calls")
        def job():
            return time.time() > 0

        environ = {}
        setup_testing_defaults(environ)
        response = app(environ, lambda status, headers: None)
        print(b"".join(response).decode(), job())
        getattr(response, "close", lambda: None)()
    """)
    done = subprocess.run([sys.executable, "svc.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RETRACE_PUBLIC_KEY": "retrace-public-key-1:not-a-key"})
    assert done.returncode == 0 and done.stdout == "served True\n", done.stderr
    assert "RecordingMiddleware records nothing" in done.stderr and "record_calls records nothing" in done.stderr
    assert not (tmp_path / "recs").exists() and not (tmp_path / "calls").exists()
