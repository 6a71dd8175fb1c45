"""The transparency suite: the two laws of DESIGN.md §0, checked on small programs that users write.

Each program in ``programs/`` runs plainly twice and recorded once in the same folder (its world: the data files
below, an environment variable, for some a loopback HTTP server or a PostgreSQL table). The tokens that differ
between the two plain runs (clocks, pids, random numbers) are the only ones allowed to differ in the recorded run;
everything else (stdout, stderr, exit status or signal) must be the same. Then the world changes and the replay
must print exactly what the recorded run printed, faithfully, without touching the world; a live run in the
changed world shows the replay had something to get wrong.

Cases that fail today are marked in ``XFAIL`` (strict: a fix turns them into XPASS failures that ask for the
mark to go). PostgreSQL cases skip when no server answers, unless RETRACE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import difflib
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import free_port

PROGRAMS = Path(__file__).parent / "programs"
POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=test"
DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
TIMEOUT = 60
MAX_UNSTABLE = 0.3  # a program whose plain runs differ in more of their tokens than this is not a valid case

XFAIL: dict[str, str] = {  # what differs today, by root cause
}


@dataclass(frozen=True)
class Run:
    """What a user sees of one run of a program."""

    status: int  # negative: killed by that signal, as subprocess reports it
    stdout: str
    stderr: str


# -- the world a program lives in ------------------------------------------------------------------------------

FILES_BEFORE: dict[str, str | bytes] = {
    "inventory.csv": "item,qty\napple,3\npear,5\nplum,7\n",
    "config.json": '{"threshold": 4, "greeting": "hello"}\n',
    "notes/a.txt": "call the supplier\n",
    "notes/b.txt": "pears are late\nplums are fine\n",
    "blob.bin": bytes(range(256)) * 16,
}
FILES_AFTER: dict[str, str | bytes] = {
    "inventory.csv": "item,qty\napple,9\nfig,1\n",
    "config.json": '{"threshold": 1, "greeting": "bonjour"}\n',
    "notes/b.txt": "nothing to report\n",
    "notes/c.txt": "new note\n",
    "blob.bin": bytes(reversed(range(256))) * 8,
}
ENV_BEFORE = {"TR_REGION": "eu-west-1", "TZ": "Europe/Paris"}
ENV_AFTER = {"TR_REGION": "ap-south-1", "TZ": "Asia/Kolkata"}
STOCK_BEFORE = [("apple", 3), ("pear", 5), ("plum", 7)]
STOCK_AFTER = [("apple", 9), ("fig", 1)]
MTIME_BEFORE, MTIME_AFTER = 1_700_000_000, 1_750_000_000


def make_world(folder: Path, program: Path, files: dict[str, str | bytes], mtime: int) -> None:
    """The program and its data files, afresh (what an earlier run wrote is gone), with fixed times."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy(program, folder / program.name)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        os.utime(path, (mtime, mtime))


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    return {str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir",
                                            path.stat().st_mode, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


class StockHandler(http.server.BaseHTTPRequestHandler):
    """A loopback upstream whose answers the test changes (``server.generation``) and which counts requests."""

    server: StockServer

    def _json(self, payload: dict[str, Any]) -> None:
        self.server.requests += 1
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        stock = dict(STOCK_BEFORE if self.server.generation == 1 else STOCK_AFTER)
        item = self.path.rsplit("/", 1)[-1]
        self._json({"item": item, "qty": stock.get(item), "generation": self.server.generation})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self._json({"accepted": body, "queue": 10 * self.server.generation})

    def log_message(self, *args: Any) -> None:
        pass


class StockServer(http.server.ThreadingHTTPServer):
    generation = 1
    requests = 0


@pytest.fixture
def stock_server() -> Iterator[StockServer]:
    server = StockServer(("127.0.0.1", 0), StockHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass(frozen=True)
class StockTable:
    """A PostgreSQL table ``tr_<program>_<random>`` (item, qty, sku uuid) the test fills and changes."""

    dsn: str
    name: str

    def _run(self, *statements: tuple[str, Any]) -> list[tuple[Any, ...]]:
        import psycopg2

        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            for sql, params in statements:
                cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.close()
        return rows

    def fill(self, rows: list[tuple[str, int]]) -> None:
        self._run((f"drop table if exists {self.name} cascade", None),
                  (f"create table {self.name} (item text primary key, qty int not null, sku uuid not null)", None),
                  *((f"insert into {self.name} values (%s, %s, md5(%s)::uuid)", (item, qty, item))
                    for item, qty in rows))

    def rows(self) -> list[tuple[Any, ...]]:
        return self._run((f"select item, qty from {self.name} order by item", None))

    def drop(self) -> None:
        self._run((f"drop table if exists {self.name} cascade", None))


@pytest.fixture
def stock_table(request: pytest.FixtureRequest) -> Iterator[StockTable]:
    try:
        import psycopg2

        psycopg2.connect(f"{POSTGRES} connect_timeout=3").close()
    except Exception as exc:  # ImportError or OperationalError
        if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (RETRACE_REQUIRE_SERVICES=1) but does not answer: {exc}")
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")
    table = StockTable(POSTGRES, f"tr_{request.node.callspec.params['name']}_{uuid.uuid4().hex[:6]}")
    table.fill(STOCK_BEFORE)
    yield table
    table.drop()


# -- runs and their comparison ---------------------------------------------------------------------------------

def run(args: list[str], cwd: Path, env: dict[str, str]) -> Run:
    proc = subprocess.run(args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=TIMEOUT)
    return Run(proc.returncode, proc.stdout, proc.stderr)


TOKEN = re.compile(r"\w+|\W+")
WILD = object()


def template(a: str, b: str) -> list[object]:
    """Line ``a`` as tokens, with the spans where ``b`` differs (an insertion point too) replaced by WILD."""
    ta, tb = TOKEN.findall(a), TOKEN.findall(b)
    out: list[object] = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        out.extend(ta[i1:i2] if tag == "equal" else [WILD])
    return out


def compare(stream: str, first: str, second: str, recorded: str) -> list[str]:
    """Where ``recorded`` differs from the plain runs outside what differs between them (readable lines)."""
    la, lb, lr = first.splitlines(), second.splitlines(), recorded.splitlines()
    assert len(la) == len(lb), f"{stream}: the two plain runs print {len(la)} and {len(lb)} lines: not a valid case"
    tokens = sum(len(TOKEN.findall(line)) for line in la)
    templates = [template(a, b) for a, b in zip(la, lb, strict=True)]
    unstable = sum(len(TOKEN.findall(a)) - sum(1 for t in tpl if t is not WILD)
                   for a, tpl in zip(la, templates, strict=True))
    assert unstable <= MAX_UNSTABLE * max(tokens, 1), (
        f"{stream}: the two plain runs differ in {unstable} of {tokens} tokens: not a valid case")
    if len(lr) != len(la):
        diff = list(difflib.unified_diff(la, lr, "plain", "recorded", lineterm="", n=1))
        return [f"{stream}: {len(lr)} lines recorded, {len(la)} plain", *diff[:24], *(["  …", *diff[-4:]] if
                                                                                        len(diff) > 28 else diff[24:])]
    problems = []
    for number, (tpl, line) in enumerate(zip(templates, lr, strict=True), 1):
        pattern = "".join(".*?" if t is WILD else re.escape(str(t)) for t in tpl)
        if not re.fullmatch(pattern, line, re.DOTALL):
            shown = "".join("…" if t is WILD else str(t) for t in tpl)
            problems += [f"{stream} line {number}:", f"  plain     {shown}", f"  recorded  {line}"]
    return problems


def differences(recorded: Run, replayed: Run) -> str:
    lines = [f"exit status: recorded {recorded.status}, replayed {replayed.status}"]
    for stream in ("stdout", "stderr"):
        lines += difflib.unified_diff(getattr(recorded, stream).splitlines(), getattr(replayed, stream).splitlines(),
                                      f"recorded {stream}", f"replayed {stream}", lineterm="", n=1)
    return "\n".join(lines[:60])


# -- the test --------------------------------------------------------------------------------------------------

def cases() -> list[Any]:
    names = sorted(path.stem for path in PROGRAMS.glob("*.py"))
    unknown = set(XFAIL) - set(names)
    assert not unknown, f"XFAIL names programs that do not exist: {unknown}"
    params = []
    for name in names:
        marks = [pytest.mark.postgres] if "TR_TABLE" in (PROGRAMS / f"{name}.py").read_text() else []
        if name in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[name]))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", cases())
def test_recording_is_invisible_and_replay_touches_nothing(name: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    program = PROGRAMS / f"{name}.py"
    source = program.read_text()
    world, verdict_path, recording = tmp_path / "app", tmp_path / "v.json", tmp_path / "R.retrace"
    temporary = tmp_path / "tmp"  # the program's TMPDIR: emptied before each run, gone before the replay
    env = {**ENV_BEFORE, "TR_CLOSED_URL": f"http://127.0.0.1:{free_port()}/", "TMPDIR": str(temporary)}
    server: StockServer | None = None
    table: StockTable | None = None
    if "TR_URL" in source:
        server = request.getfixturevalue("stock_server")
        env["TR_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    if "TR_TABLE" in source:
        table = request.getfixturevalue("stock_table")
        env.update(TR_DSN=table.dsn, TR_TABLE=table.name, TR_DATABASE_URL=DATABASE_URL)

    # Plain, recorded, plain: a clock reading (or a counter) the two plain runs agree on is one the recorded run,
    # between them in time, must show too.
    runs = []
    for args in ([], ["-m", "pytest_retrace", "record", "-o", str(recording), "--"], []):
        make_world(world, program, FILES_BEFORE, MTIME_BEFORE)
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        if table:
            table.fill(STOCK_BEFORE)
        runs.append(run([sys.executable, *args, program.name], world, env))
    plain, recorded = [runs[0], runs[2]], runs[1]

    # Law 1: recording is invisible.
    assert plain[0].status == plain[1].status, f"the plain runs end with {plain[0].status} and {plain[1].status}"
    problems = compare("stdout", plain[0].stdout, plain[1].stdout, recorded.stdout)
    problems += compare("stderr", plain[0].stderr, plain[1].stderr, recorded.stderr)
    if recorded.status != plain[0].status:
        problems.append(f"exit status: plain {plain[0].status}, recorded {recorded.status}")
    if problems:
        pytest.fail("recording is not invisible:\n" + "\n".join(problems))

    # Law 2: the world changes (what the recorded run wrote is gone too); the replay prints what the recording
    # printed and touches nothing.
    make_world(world, program, FILES_AFTER, MTIME_AFTER)
    shutil.rmtree(temporary)
    env.update(ENV_AFTER)
    if server:
        server.generation, served = 2, server.requests
    if table:
        table.fill(STOCK_AFTER)
    temporary.mkdir()  # another machine's temporary folder: empty
    before = snapshot(world), snapshot(temporary)
    replayed = run([sys.executable, "-m", "pytest_retrace", "replay", str(recording), "--verdict", str(verdict_path)],
                   world, env)
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else None
    assert verdict is not None and verdict["faithful"] is True, (
        f"replay is not faithful ({replayed.status}): {verdict and verdict['status']}\n{replayed.stderr[-3000:]}")
    assert verdict["events_consumed"] == verdict["events_recorded"], verdict
    if replayed != recorded:
        pytest.fail("the replay does not print what the recording printed:\n" + differences(recorded, replayed))
    after = snapshot(world), snapshot(temporary)
    changed = sorted(set(after[0].items()) ^ set(before[0].items()))
    assert not changed, f"the replay changed the program's folder: {changed}"
    assert after[1] == before[1], f"the replay wrote to the temporary folder: {sorted(after[1])}"
    # A second replay gives the same verdict, and prints the same.
    again = run([sys.executable, "-m", "pytest_retrace", "replay", str(recording)], world, env)
    assert again == replayed, "a second replay differs from the first:\n" + differences(replayed, again)
    assert snapshot(world) == after[0] and snapshot(temporary) == after[1], "the second replay changed the world"
    if server:
        assert server.requests == served, "the replay sent requests to the server"
    if table:
        assert table.rows() == sorted(STOCK_AFTER), "the replay changed the database"

    # The case can fail: run live in the changed world, the program prints something else.
    assert run([sys.executable, program.name], world, env) != recorded, (
        "the program prints the same in the changed world: the case proves nothing")


def test_the_mask_lets_through_only_what_the_plain_runs_disagree_on() -> None:
    plain = "at 1796139114.683 pid 6931\nregion eu-west-1\n", "at 1796139115.201 pid 6940\nregion eu-west-1\n"
    assert compare("stdout", *plain, "at 1796139114.950 pid 6935\nregion eu-west-1\n") == []
    assert compare("stdout", *plain, "at 1796139114.950 pid 6935\nregion ap-south-1\n")[0] == "stdout line 2:"
    assert compare("stdout", *plain, "at 1796139114.950 pid 6935\n")[0] == "stdout: 1 lines recorded, 2 plain"
    with pytest.raises(AssertionError, match="not a valid case"):
        compare("stdout", "a 1 b 2\n", "c 3 d 4\n", "a 1 b 2\n")
    with pytest.raises(AssertionError, match="not a valid case"):
        compare("stdout", "one line\n", "one line\ntwo lines\n", "one line\n")
