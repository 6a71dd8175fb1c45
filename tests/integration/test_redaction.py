"""Secrets never reach a recording in plaintext, wherever they travel, while the replays of programs that do not
depend on a secret's value stay faithful.

Real programs (``fixtures/programs/secrets``) carry every kind: environment variables (``DATABASE_URL`` with a
password, ``STRIPE_KEY``, ``SENTRY_DSN``), program arguments, requests with URL userinfo, an ``api_key``
parameter and an Authorization header to a real loopback server that answers ``Set-Cookie``, urllib with
Basic auth over the socket layer, psycopg2 with a password (PostgreSQL's trust auth takes any), a Flask app
recorded request by request that receives Authorization, Cookie, a form password and a JSON token, and a
job recorded call by call with a secret keyword argument. Each recording's raw bytes are searched for every
secret value (and the base64 of Basic credentials)."""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, Recorder, assert_faithful, free_port, retrace

from pytest_retrace.format.tape import read_recording
from pytest_retrace.redaction import PLACEHOLDER

PASSWORD = "Hunter2Pass9xq"
TOKEN = "tok-Bearer-77Zq8Lm"
STRIPE_KEY = "sk_live_51HxStripeSecret99"
SENTRY_KEY = "f00dfacepublickey"
PG_PASSWORD = "PgSecretPw31"
SESSION = "sid-Cookie-Secret-5150"
BASIC = base64.b64encode(f"apiuser:{PASSWORD}".encode()).decode()


def assert_holds_none(path: Path, secrets: list[str]) -> None:
    data = path.read_bytes()
    found = [s for s in secrets if s.encode() in data]
    assert not found, f"{path.name} holds {found}"


class SecretsHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with a small JSON body; ``/login`` and ``/report`` also set a session cookie.
    Keeps the Authorization headers it got: the recorded program really sent its secrets."""

    received: list[str] = []

    def _answer(self) -> None:
        self.received.append(self.headers.get("Authorization") or "")
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        if self.path.startswith(("/login", "/report")):
            self.send_header("Set-Cookie", f"sid={SESSION}; Path=/; HttpOnly")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def secrets_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SecretsHandler)
    SecretsHandler.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def postgres_answers() -> bool:
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        psycopg2.connect("host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3").close()
    except psycopg2.OperationalError as exc:
        if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (RETRACE_REQUIRE_SERVICES=1) but does not answer: {exc}")
        return False
    return True


def process_env() -> dict[str, str]:
    return {"DATABASE_URL": f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:5432/test", "STRIPE_KEY": STRIPE_KEY,
            "SENTRY_DSN": f"https://{SENTRY_KEY}@o1.ingest.example/42"}


def test_a_process_recording_holds_no_secret_and_replays_faithfully(recorder: Recorder, secrets_server: str) -> None:
    pg = ["--pg"] if postgres_answers() else []
    recorded = recorder.record("secrets/process_secrets.py", secrets_server, f"--password={PASSWORD}",
                               "--token", TOKEN, *pg, env=process_env())
    assert recorded.returncode == 0, recorded.stderr
    assert "login 200 ['sid']" in recorded.stdout and "urllib 200 True" in recorded.stdout
    assert f"Bearer {TOKEN}" in SecretsHandler.received and f"Basic {BASIC}" in SecretsHandler.received
    if pg:
        assert "pg 42" in recorded.stdout
    path = recorder.folder / "rec.retrace"
    assert_holds_none(path, [PASSWORD, BASIC, TOKEN, STRIPE_KEY, SENTRY_KEY, PG_PASSWORD, SESSION])

    header = read_recording(str(path)).header
    assert header["environ"]["DATABASE_URL"] == f"postgresql://postgres:{PLACEHOLDER}@127.0.0.1:5432/test"
    assert header["environ"]["STRIPE_KEY"] == PLACEHOLDER
    assert header["environ"]["SENTRY_DSN"] == f"https://{PLACEHOLDER}@o1.ingest.example/42"  # its key: the user
    assert header["argv"][2:5] == [f"--password={PLACEHOLDER}", "--token", PLACEHOLDER]
    assert {"STRIPE_KEY", "SENTRY_DSN", "DATABASE_URL", "--password", "--token"} <= set(
        header["redaction"]["redacted"])

    # The world moved on (other secrets in the environment): the replay sees the recording's placeholders.
    assert_faithful(recorder, recorded, env={"STRIPE_KEY": "sk_live_other", "DATABASE_URL": "postgresql://x:y@z/w"})


def test_a_sealed_process_recording_holds_its_secrets_sealed_and_replays_them_faithfully(
        recorder: Recorder, secrets_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a project key nothing is redacted (the program may need its secrets on replay): the file holds them
    sealed, and only the private key replays it, faithfully, with the server gone and the environment changed."""
    pg = ["--pg"] if postgres_answers() else []
    keys = retrace("keygen", "-o", "project.key", cwd=recorder.folder)
    assert keys.returncode == 0, keys.stderr
    public, private = recorder.folder / "project.key.pub", recorder.folder / "project.key"
    recorded = recorder.record("secrets/process_secrets.py", secrets_server, f"--password={PASSWORD}",
                               "--token", TOKEN, *pg, env={**process_env(), "RETRACE_PUBLIC_KEY": str(public)})
    assert recorded.returncode == 0, recorded.stderr
    path = recorder.folder / "rec.retrace"
    assert_holds_none(path, [PASSWORD, BASIC, TOKEN, STRIPE_KEY, SENTRY_KEY, PG_PASSWORD, SESSION, "127.0.0.1"])
    replayed = assert_faithful(recorder, recorded, offline=True,
                               env={"RETRACE_PRIVATE_KEY": str(private), "STRIPE_KEY": "sk_live_other"})
    assert replayed.verdict is not None and replayed.verdict["status"] == "ok"
    monkeypatch.setenv("RETRACE_PRIVATE_KEY", str(private))
    header = read_recording(str(path)).header  # opened with the key: the secrets were kept, not replaced
    assert header["environ"]["STRIPE_KEY"] == STRIPE_KEY and header["redaction"]["replace_secrets"] is False


def test_the_cli_adds_and_removes_patterns(recorder: Recorder, secrets_server: str) -> None:
    recorded = retrace("record", "-o", "rec.retrace", "--redact", "customer_ref", "--no-redact", "dsn", "--",
                       str(PROGRAMS / "secrets" / "process_secrets.py"), secrets_server, f"--password={PASSWORD}",
                       "--token", TOKEN, cwd=recorder.folder, env={**process_env(), "CUSTOMER_REF": "cust-0042"})
    assert recorded.returncode == 0, recorded.stderr
    environ = read_recording(str(recorder.folder / "rec.retrace")).header["environ"]
    assert environ["CUSTOMER_REF"] == PLACEHOLDER
    assert environ["SENTRY_DSN"] == f"https://{SENTRY_KEY}@o1.ingest.example/42"  # as asked: dsn not redacted
    bad = retrace("record", "-o", "bad.retrace", "--no-redact", "nonsense", "--", "x.py", cwd=recorder.folder)
    assert bad.returncode == 2 and bad.stderr.startswith("retrace record: cannot remove redaction pattern 'nonsense'")
    assert len(bad.stderr.strip().splitlines()) == 1


def send(port: int, path: str, data: bytes, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def test_request_recordings_hold_no_secret_and_replay_faithfully(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    shutil.copytree(PROGRAMS / "secrets", folder)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "secret_app.py", str(port), "recordings"], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "serving\n"
        login = send(port, "/login", f"username=ann&password={PASSWORD}".encode(),
                     {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"sid={SESSION}"})
        assert json.loads(login) == {"user": "ann", "ok": True}
        answer = send(port, f"/api?api_key={STRIPE_KEY}&q=1", json.dumps({"token": TOKEN, "item": "tea"}).encode(),
                      {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}",
                       "Cookie": f"sid={SESSION}; theme=dark", "X-Api-Key": STRIPE_KEY})
        assert json.loads(answer) == {"item": "tea", "token": True, "auth": True, "cookies": ["sid", "theme"],
                                      "key": True}
        deadline = time.monotonic() + 10
        while len(list(folder.glob("recordings/*.retrace"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    recordings = sorted(folder.glob("recordings/*.retrace"))
    assert len(recordings) == 2
    for path in recordings:
        assert_holds_none(path, [PASSWORD, TOKEN, STRIPE_KEY, SESSION])
        entry = read_recording(str(path)).header["entry"]
        assert int(entry["environ"]["CONTENT_LENGTH"]) == len(entry["body"])
        if entry["environ"]["PATH_INFO"] == "/api":
            assert entry["environ"]["HTTP_COOKIE"] == f"sid={PLACEHOLDER}; theme={PLACEHOLDER}"
            assert entry["environ"]["HTTP_AUTHORIZATION"] == entry["environ"]["HTTP_X_API_KEY"] == PLACEHOLDER
            assert json.loads(entry["body"]) == {"token": PLACEHOLDER, "item": "tea"}
    replayed = subprocess.run([sys.executable, "-m", "pytest", "--retrace-recordings=recordings", "-p",
                               "no:cacheprovider", "-q"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert replayed.returncode == 0, replayed.stdout[-3000:]
    assert "2 passed" in replayed.stdout


def test_a_call_recording_redacts_secret_arguments_and_keeps_them_when_told(tmp_path: Path) -> None:
    """The job uses its key's value: redacted, the replay cannot be faithful (the placeholder's last four
    characters are not the key's); with ``replace_secrets=False`` (an encrypted recording) the key travels and
    the replay is faithful."""
    for mode, secret_in_file, outcome in (("redact", False, "1 failed"), ("keep", True, "1 passed")):
        folder = tmp_path / mode
        shutil.copytree(PROGRAMS / "secrets", folder)
        ran = subprocess.run([sys.executable, "secret_job.py", mode], cwd=folder, capture_output=True, text=True,
                             timeout=60)
        assert ran.stdout == "charged 12 for ann with key ending Abcd\n", ran.stderr
        (path,) = folder.glob("recordings/*.retrace")
        assert (b"sk_live_JobSecret0000Abcd" in path.read_bytes()) is secret_in_file
        header = read_recording(str(path)).header
        assert header["redaction"]["replace_secrets"] is not secret_in_file
        replayed = subprocess.run([sys.executable, "-m", "pytest", "--retrace-recordings=recordings", "-p",
                                   "no:cacheprovider", "-q"], cwd=folder, capture_output=True, text=True, timeout=300)
        assert outcome in replayed.stdout, replayed.stdout[-3000:]
        if not secret_in_file:  # the replayed call got the placeholder and returned otherwise
            assert "died" not in replayed.stdout and "returned" in replayed.stdout, replayed.stdout[-3000:]


def test_the_self_check_takes_its_policy_from_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample="import time\n\ndef test_sample():\n    assert time.time() > 0\n")
    pytester.makeini("[pytest]\nretrace_redact =\n    customer_ref\nretrace_no_redact =\n    session\n")
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    assert result.ret == 0 and "1 passed" in result.stdout.str()
    pytester.makeini("[pytest]\nretrace_no_redact = nonsense\n")
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "retrace_redact / retrace_no_redact (ini): cannot remove redaction pattern 'nonsense'" in result.stderr.str()


def test_what_a_service_answers_and_what_it_passes_on_holds_no_secret(tmp_path: Path) -> None:
    """A response's Set-Cookie, secret headers and token fields (the report preview of the outcome), a secret
    passed by position to a parameter with a secret name, a subprocess's secret arguments, and environment
    names of the short forms (``_PW``, ``_CRED``)."""
    (tmp_path / "svc.py").write_text(textwrap.dedent('''
        import json, subprocess, sys
        from wsgiref.util import setup_testing_defaults
        import pytest_retrace
        from pytest_retrace.wsgi import RecordingMiddleware

        def raw(environ, start_response):
            body = json.dumps({"user": "bob", "refresh_token": "RefreshTok-8812"}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Set-Cookie", "sid=SidValue-4471; Path=/; HttpOnly"),
                                      ("X-Session-Token", "SessTok-9090")])
            return [body]

        app = RecordingMiddleware(raw, "recs")

        @pytest_retrace.record_calls("calls")
        def login(user, password):
            out = subprocess.run([sys.executable, "-c", "print('ok')", "--db-password", "SubArgPw-6677"],
                                 capture_output=True, text=True)
            subprocess.run("true --token ShellTok-8080", shell=True)
            return {"user": user, "ok": out.stdout.strip(), "access_token": "AccessTok-5533"}

        environ = {}
        setup_testing_defaults(environ)
        response = app(environ, lambda status, headers: None)
        print(b"".join(response).decode())
        response.close()
        print(login("bob", "PosPass-1234"))
    '''))
    secrets = ["RefreshTok-8812", "SidValue-4471", "SessTok-9090", "SubArgPw-6677", "PosPass-1234", "AccessTok-5533",
               "DbPw-3141", "Cred-2718", "ShellTok-8080", "PgPass-1618"]
    done = subprocess.run([sys.executable, "svc.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MYAPP_DB_PW": "DbPw-3141", "SERVICE_CRED": "Cred-2718",
                               "PGPASS": "PgPass-1618"})
    assert done.returncode == 0, done.stderr
    assert "RefreshTok-8812" in done.stdout and "AccessTok-5533" in done.stdout  # the program got them all
    recordings = [*(tmp_path / "recs").glob("*.retrace"), *(tmp_path / "calls").glob("*.retrace")]
    assert len(recordings) == 2
    for path in recordings:
        assert_holds_none(path, secrets)


def test_a_password_a_request_brings_is_redacted_where_it_goes_on_and_the_replay_is_faithful(tmp_path: Path) -> None:
    """A login: the JSON body's password goes on to the database as a query parameter. The recording holds it
    nowhere (the parameter is keyed redacted, as the replay, which gets the placeholder, passes it), and the
    replay of the request is faithful."""
    (tmp_path / "login.py").write_text(textwrap.dedent('''
        import json, sqlite3
        from pytest_retrace.wsgi import RecordingMiddleware

        def raw(environ, start_response):
            form = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
            db = sqlite3.connect("users.db")
            row = db.execute("SELECT name FROM users WHERE name = ? AND password = ?",
                             (form["user"], form["password"])).fetchone()  # the database checks it
            seen = db.execute("SELECT length(?)", (form["password"],)).fetchone()[0]
            db.close()
            body = json.dumps({"welcome": row is not None, "length": seen}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]

        app = RecordingMiddleware(raw, "recs")
    '''))
    (tmp_path / "drive.py").write_text(textwrap.dedent('''
        import io, json, sqlite3
        from wsgiref.util import setup_testing_defaults
        db = sqlite3.connect("users.db")
        db.execute("CREATE TABLE users (name TEXT, password TEXT)")
        db.execute("INSERT INTO users VALUES ('bob', 'LoginPass-99')")
        db.commit()
        db.close()
        import login
        body = json.dumps({"user": "bob", "password": "LoginPass-99"}).encode()
        environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body)}
        setup_testing_defaults(environ)
        response = login.app(environ, lambda status, headers: None)
        print(b"".join(response).decode())
        response.close()
    '''))
    done = subprocess.run([sys.executable, "drive.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and '"welcome": true' in done.stdout, done.stderr
    [recording] = (tmp_path / "recs").glob("*.retrace")
    assert_holds_none(recording, ["LoginPass-99"])
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recs"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout
