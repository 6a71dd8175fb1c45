"""``retrace show`` as a user runs it: the real command in a subprocess, on recordings of every kind made here
(a process, a Flask request served by a real werkzeug server that reads a PostgreSQL row, a recorded call).
Values are whole when they fit the width and cut between items or after a word when not (never inside a token
such as ``Decimal('100.00')``), ``--full`` shows them whole, and a reader that goes away (``| head -1``) ends
the command quietly."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support import PG_SERVER, Run, free_port, fresh_database, retrace

WIDTH = 120  # what show fits values to when its output is no terminal
NOTE = "every word of this note is kept " * 9  # longer than a line, shorter than the body head a recording keeps

SERVICE = textwrap.dedent('''
    import sys
    import psycopg2
    from flask import Flask, jsonify, request
    import pytest_retrace.wsgi

    app = Flask(__name__)
    pytest_retrace.wsgi.record_flask(app, "recordings", keep="all")

    @app.post("/orders")
    def orders():
        order = request.get_json()
        with psycopg2.connect(sys.argv[2]) as conn, conn.cursor() as cur:
            cur.execute("select price, name from books where name = %s", (order["item"],))
            price, name = cur.fetchone()
        return jsonify(item=name, total=str(price * order["qty"]), note=NOTE)

    if __name__ == "__main__":
        from werkzeug.serving import make_server
        server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
        print("serving", flush=True)
        server.serve_forever()
''').replace("NOTE", repr(NOTE))


def lines_of(run: Run) -> list[str]:
    assert run.returncode == 0 and not run.stderr, run
    return run.stdout.splitlines()


def assert_no_token_cut(text: str) -> None:
    """Every Decimal shown is shown whole, and every cut says how much it left out."""
    for match in re.finditer(r"Decimal\(", text):
        assert re.match(r"Decimal\('[-0-9.E]+'\)", text[match.start():]), text[match.start():match.start() + 40]
    assert "…" not in text or re.search(r"… \(\d+ more", text)


@pytest.fixture(scope="module")
def request_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One POST answered by a Flask app under a real werkzeug server, reading its price from PostgreSQL."""
    folder = tmp_path_factory.mktemp("shop")
    (folder / "pyproject.toml").write_text("")
    (folder / "shop.py").write_text(SERVICE)
    with fresh_database() as name:
        import psycopg2

        dsn = f"{PG_SERVER} dbname={name}"
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("create table books (name text, price numeric(10, 2))")
            cur.execute("insert into books values ('book', 100.00)")
        conn.close()
        port = free_port()
        server = subprocess.Popen([sys.executable, "shop.py", str(port), dsn], cwd=folder, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline() == "serving\n"
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/orders?page=2", body=json.dumps({"item": "book", "qty": 2}),
                               headers={"Content-Type": "application/json", "X-Trace": "abc-123"})
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["total"] == "200.00"
            connection.close()
            for _ in range(100):  # written when the server closed the response, on the writer thread
                found = list((folder / "recordings").glob("*.retrace"))
                if found:
                    break
                time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(10)
            assert server.stdout is not None
            server.stdout.close()
    assert len(found) == 1
    return found[0]


def test_a_request_recording_shows_the_request_the_row_and_the_response(request_recording: Path) -> None:
    shown = lines_of(retrace("show", str(request_recording), cwd=request_recording.parent))
    text = "\n".join(shown)
    assert "request    POST /orders?page=2  HTTP/1.1" in shown
    assert "  header     Content-Type: application/json" in shown and "  header     X-Trace: abc-123" in shown
    assert '    | {"item": "book", "qty": 2}' in shown  # the request's body
    query = next(line for line in shown if "psycopg2.cursor.execute('select price, name from books" in line)
    assert query.endswith("('book',))")
    # The result on a line of its own: the call and its result do not fit one line together.
    result = shown[shown.index(query) + 1]
    assert result.lstrip().startswith("-> {") and "Decimal('100.00')" not in query
    assert "response   200 OK" in shown and "  header     Content-Type: application/json" in shown
    body = next(line for line in shown[shown.index("response   200 OK"):] if line.startswith("    | {"))
    assert body.startswith('    | {"item":"book","note":"every word')
    assert re.search(r" kept every … \(\d+ more chars\)$", body), body  # a head of the body, cut after a word
    assert "None bytes" not in text and "stdout" not in text  # a request has no output streams
    assert max(map(len, shown[1:])) <= WIDTH, max(shown[1:], key=len)  # (the first line names the file)
    assert_no_token_cut(text)

    full = lines_of(retrace("show", "--full", str(request_recording), cwd=request_recording.parent))
    whole = "\n".join(full)
    assert NOTE.strip() in whole and '"total":"200.00"' in whole  # the body whole (the recording holds it all)
    rows = next(line for line in full if "psycopg2.cursor.execute('select price" in line)
    assert "'rows': [(Decimal('100.00'), 'book')]" in rows and "…" not in rows


def test_a_narrow_width_cuts_between_items_never_inside_one(request_recording: Path) -> None:
    shown = lines_of(retrace("show", "--width", "60", str(request_recording), cwd=request_recording.parent))
    assert_no_token_cut("\n".join(shown))
    assert any(re.search(r", … \(\d+ more\)\}$", line) for line in shown)  # a dict's later items, counted
    events = [line for line in shown if line.startswith(("  #", " *#")) or line.lstrip().startswith("-> ")]
    assert events and max(map(len, events)) <= 60, events


def test_show_json_is_unchanged_in_meaning(request_recording: Path) -> None:
    doc = json.loads(retrace("show", "--json", str(request_recording), cwd=request_recording.parent).stdout)
    assert doc["header"]["kind"] == "wsgi" and doc["header"]["entry"]["environ"]["HTTP_X_TRACE"] == "abc-123"
    query = next(e for e in doc["events"] if e["name"] == "psycopg2.cursor.execute")
    assert query["result"]["rows"] == ["(Decimal('100.00'), 'book')"]
    head = doc["end"]["returned"]["head"]
    assert head.startswith("['200 OK', [") and '"total":"200.00"' in head


PROGRAM = textwrap.dedent('''
    import os, time
    names = sorted(os.listdir("data"))
    print(f"{len(names)} files at {time.time() > 0}")
    for _ in range(3000):  # a long show: more than a pipe holds
        time.monotonic()
    for line in range(12):
        print(f"line {line}")
''')


@pytest.fixture
def process_recording(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    for index in range(60):
        (tmp_path / "data" / f"file-{index:02}.txt").write_text("")
    (tmp_path / "prog.py").write_text(PROGRAM)
    recorded = retrace("record", "-o", "rec.retrace", "prog.py", cwd=tmp_path)
    assert recorded.returncode == 0 and recorded.stdout.startswith("60 files at True"), recorded
    return tmp_path / "rec.retrace"


def test_a_process_recording_shows_its_status_output_and_long_lists_cut_between_items(
        process_recording: Path) -> None:
    shown = lines_of(retrace("show", "rec.retrace", cwd=process_recording.parent))
    listed = shown[shown.index("  #1     [0] os.listdir('data')") + 1]  # the result, on a line of its own
    cut = re.search(r"\[('file-\d\d\.txt', )+… \((\d+) more\)\]$", listed)
    assert cut, listed
    assert listed.count("'file-") + int(cut.group(2)) == 60 and len(listed) <= WIDTH
    assert "end: exit status 0," in "\n".join(shown)
    stdout = next(line for line in shown if line.startswith("  stdout: "))
    assert re.fullmatch(r"  stdout: \d+ bytes, blake2b [0-9a-f]{32}", stdout)
    at = shown.index(stdout)
    assert shown[at + 1 : at + 3] == ["    | 60 files at True", "    | line 0"]
    assert shown[at + 6] == "    … (8 more lines; --full shows them)"  # a head of the output

    full = lines_of(retrace("show", "--full", "rec.retrace", cwd=process_recording.parent))
    listed = next(line for line in full if "os.listdir('data')" in line)
    assert listed.count("'file-") == 60 and "…" not in listed
    assert "    | line 11" in full


def test_a_crash_recording_shows_the_exception_and_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "crash.py").write_text("def parse(text):\n    return int(text)\n\nparse('ten')\n")
    assert retrace("record", "-o", "rec.retrace", "crash.py", cwd=tmp_path).returncode == 1
    shown = lines_of(retrace("show", "rec.retrace", cwd=tmp_path))
    crash = next(index for index, line in enumerate(shown) if line.startswith("  crash "))
    assert shown[crash].startswith("  crash ValueError: invalid literal for int() with base 10: 'ten'  (fingerprint ")
    assert shown[crash + 1 : crash + 6] == [
        "    Traceback (most recent call last):",
        '      File "crash.py", line 4, in <module>',
        "        parse('ten')",
        '      File "crash.py", line 2, in parse',
        "        return int(text)",
    ]


def test_a_call_recording_shows_the_function_its_arguments_and_its_return_value(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "jobs.py").write_text(textwrap.dedent('''
        from decimal import Decimal
        import pytest_retrace

        @pytest_retrace.record_calls(directory="calls")
        def price(item, quantity, *, discount=Decimal("0")):
            return {"item": item, "total": Decimal("9.99") * quantity * (1 - discount), "steps": list(range(80))}

        if __name__ == "__main__":
            print(price("pen", 3, discount=Decimal("0.10"))["total"])
    '''))
    ran = subprocess.run([sys.executable, "jobs.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.stdout == "26.9730\n", ran.stderr
    recording = next((tmp_path / "calls").glob("*.retrace"))
    shown = lines_of(retrace("show", str(recording), cwd=tmp_path))
    assert "call       jobs:price('pen', 3, discount=Decimal('0.10'))" in shown
    returned = next(line for line in shown if line.startswith("  returned   "))
    assert returned.startswith("  returned   {'item': 'pen', 'total': Decimal('26.9730'), 'steps': [0, 1, 2, ")
    assert re.search(r", … \(\d+ more\)\]\}$", returned) and len(returned) <= WIDTH
    full = lines_of(retrace("show", "--full", str(recording), cwd=tmp_path))
    assert any(line.endswith("78, 79]}") for line in full)
    assert_no_token_cut("\n".join(shown))


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_piped_to_head_it_exits_quietly(process_recording: Path, buffered: bool) -> None:
    """`retrace show REC | head -1` through a real pipe: the first line, no BrokenPipeError, and the exit status
    of a program SIGPIPE ended (141), as `set -o pipefail` reports it."""
    env = {k: v for k, v in os.environ.items() if not (buffered and k == "PYTHONUNBUFFERED")}
    run = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m pytest_retrace show rec.retrace "
                                        "--full | head -1"],
                         cwd=process_recording.parent, env=env, capture_output=True, text=True, timeout=60)
    assert run.stdout == "recording  rec.retrace  (complete)\n"
    assert run.stderr == "" and run.returncode == 141, run


@pytest.mark.parametrize("args", [["show", "rec.retrace"], ["show", "--json", "rec.retrace"], ["--help"]])
def test_a_reader_gone_before_the_last_flush_is_no_error(process_recording: Path, args: list[str]) -> None:
    """Short output, written in one flush at the end, to a pipe whose reader is already gone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "wb") as out:
        run = subprocess.run([sys.executable, "-m", "pytest_retrace", *args, *(["--limit", "1"] if len(args) > 1
                                                                                 else [])],
                             cwd=process_recording.parent, env=env, stdout=out, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert run.stderr == "" and run.returncode == 141, run
