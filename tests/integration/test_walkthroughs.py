"""The documented walk-throughs, run as written: the README's quickstart and examples/*/README.md.

Each test reads the fenced ```bash blocks of its document, runs every command line in order, in a copy of
the example under tmp_path, with the installed console scripts (``retrace``, ``pytest``, ``python``) first on
PATH, and checks what the document says the reader will see: the commented lines next to the commands
(outcomes, exit statuses, file names, report lines) are read from the document, not retyped here. A fix the
document tells the reader to paste (a ```python block after "replace `OLD` with") is pasted the same way.

What cannot run verbatim in a test is translated, each in one place:

- the checkout: the commands start in ``tmp_path/checkout``, which holds a copy of the example under
  ``examples/`` (a git repository for the quickstart's ``git checkout``); ``/tmp/<example>`` in a command
  becomes ``tmp_path/<example>``, so nothing is written into the repository or into /tmp;
- background jobs: ``cmd &`` is started by the ``Shell`` below, which keeps bash's job numbers (a job killed
  on a line keeps its number until the next prompt; ``wait`` forgets the jobs it waited for), so ``kill %1`` /
  ``kill %%`` stop the job they would stop in an interactive bash, or fail as bash would; like bash's, ``kill``
  does not wait for the job to end, ``wait`` does; a ``sleep`` right after a start is replaced by waiting for the
  server's port to accept connections; a job still running when the document is done is a failure (a reader
  would find a server left behind);
- fixed ports: 8080 (the pricing service) and 8090 (the stand-in upstream, hard-coded in the copied
  ``upstream.py``) become free ports, in the commands, their expected output and the copied program;
- placeholders such as ``<the failing one>`` are filled in with the file that earlier steps printed,
  after checking that it has the documented shape;
- curl runs for real when installed; otherwise a small stand-in over urllib that takes the options the
  documents use (-s, -X, -H, -d, -o, -w '%{http_code}');
- the pricing service gets a fresh PostgreSQL database through SHOP_DSN (which its README offers), dropped
  once the server is stopped ("the database could be gone too") and at teardown, so ``test`` is left alone;
- prose steps (the pricing promo fix, the worker's stuck thread) are applied from the backticked code the
  prose names; ``--stuck-timeout 1`` replaces the default 10 seconds;
- timing: the quickstart's record step runs again while mallory wins the recorded draw (one run in six), as
  the README tells the reader to; the pricing server is stopped right after the last curl, as a reader who
  pastes the block stops it, and both recordings must be there.

Every line a test runs is printed with its exit status and output: pytest shows them when the test fails.

PostgreSQL steps skip when no server answers on 127.0.0.1:5432, and fail instead with
RETRACE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from support import free_port

from pytest_retrace.format.tape import read_recording

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POSTGRES = "host=127.0.0.1 port=5432 user=postgres"


# -- reading the documents ------------------------------------------------------------------------------


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level (outside fences)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = markdown.splitlines(keepends=True)
    assert heading + "\n" in lines, f"the document has no section {heading!r}"
    start = lines.index(heading + "\n")
    fenced = False
    for end in range(start + 1, len(lines)):
        fenced = fenced != lines[end].startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", lines[end]):
            break
    else:
        end = len(lines)
    return "".join(lines[start:end])


def scan(line: str) -> tuple[list[tuple[str, bool]], str, str]:
    """Splits a shell line as bash does at its top level: ``(segments, comment, code)``, each segment ``(text,
    in_background)`` ended by ``;`` or a lone ``&``; ``&&``, redirections such as ``2>&1``, quotes and
    backslash-newline continuations stay inside a segment; a ``#`` after whitespace starts a comment;
    ``code`` is the line without its comments."""
    segments: list[tuple[str, bool]] = []
    comments: list[str] = []
    current, quote, i, code, start = "", "", 0, "", 0
    while i < len(line):
        char = line[i]
        if quote:
            current += char
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
            current += char
        elif char == "\\":
            current += line[i:i + 2]
            i += 1
        elif char == "#" and (not current or current[-1].isspace()):
            end = line.find("\n", i)
            end = len(line) if end < 0 else end
            comments.append(line[i + 1:end].strip())
            code += line[start:i]
            i = start = end
            continue
        elif char == ";":
            segments.append((current, False))
            current = ""
        elif char == "&" and line[i + 1:i + 2] == "&":
            current += "&&"
            i += 1
        elif char == "&" and not current.endswith((">", "<")) and line[i + 1:i + 2] != ">":
            segments.append((current, True))
            current = ""
        else:
            current += char
        i += 1
    segments.append((current, False))
    kept = [(text.strip(), background) for text, background in segments if text.strip()]
    return kept, " ".join(comments), (code + line[start:]).rstrip()


@dataclass
class Step:
    """One command line of a ```bash block (continuation lines joined as bash joins them)."""

    command: str  # as written, comment included: it is what bash is given
    comment: str  # the comment at the end of the line
    notes: list[str] = field(default_factory=list)  # the comment lines under it: the output the reader sees
    output: str | None = None  # a plain ``` block right after the step's block: its documented output

    @property
    def code(self) -> str:
        """The command without its comment."""
        return scan(self.command)[2]

    @property
    def says(self) -> str:
        return "\n".join([self.comment, *self.notes])


@dataclass
class Edit:
    """A ```python block the prose before it says to paste: "replace `OLD` with"."""

    old: str | None
    new: str


def walkthrough(markdown: str) -> list[Step | Edit]:
    """The steps of a document in order: the command lines of its ```bash blocks and its ```python edits."""
    steps: list[Step | Edit] = []
    last = 0
    for block in re.finditer(r"^```(\w*)\n(.*?)^```$", markdown, re.M | re.S):
        language, body = block.group(1), block.group(2)
        prose, last = markdown[last:block.start()], block.end()
        if language == "bash":
            lines = body.splitlines()
            while lines:
                line = lines.pop(0)
                while line.endswith("\\") and lines:
                    line += "\n" + lines.pop(0)
                if line.lstrip().startswith("#"):
                    assert steps and isinstance(steps[-1], Step), f"a comment before any command: {line!r}"
                    steps[-1].notes.append(line.lstrip()[1:].strip())
                elif line.strip():
                    steps.append(Step(line, scan(line)[1]))
        elif language == "python":
            replace = re.search(r"replace\s+(?:the line\s+)?`([^`]+)`\s+with:?\s*$", prose)
            steps.append(Edit(replace.group(1) if replace else None, body))
        elif language == "" and not prose.strip() and steps and isinstance(steps[-1], Step):
            steps[-1].output = body  # a plain block right under a command: what it prints
    return steps


def claim(text: str, pattern: str, what: str) -> re.Match[str]:
    """What the document says, found by ``pattern``: a failure when the document no longer says it."""
    found = re.search(pattern, text, re.M)
    assert found, f"the walk-through no longer says {what} (looked for /{pattern}/ in {text[:500]!r})"
    return found


def prose(text: str, pattern: str, what: str) -> re.Match[str]:
    """A claim in running text, wherever its lines wrap: the text's whitespace runs are read as one space."""
    return claim(" ".join(text.split()), pattern, what)


def as_glob(name: str) -> str:
    """A documented file name with placeholders (``<time>``, ``<fingerprint>``) as a glob pattern."""
    return re.sub(r"<[^>]+>", "*", name)


def assert_shows(documented: str, actual: str, example: str) -> None:
    """Every line of a documented output block is in the actual output, in the same order; ``...`` and ``…``
    stand for anything (``'…'`` for any quoted text). Stack frames of files outside the example (the standard
    library's) are skipped with their source line: their paths and line numbers change with the Python version."""
    wanted: list[str] = []
    lines = iter(documented.strip("\n").splitlines())
    for line in lines:
        frame = re.match(r'\s*File "([^"]*)", line \d+', line)
        if frame and example not in frame.group(1):
            next(lines, None)
            continue
        wanted.append(line.strip())
    shown = [line.strip() for line in actual.splitlines()]
    position = 0
    for line in wanted:
        parts = re.split(r"('…'|\.\.\.|…)", line)  # '…': any string's repr, b'…' may print as b"…"
        pattern = re.compile("".join({"'…'": "['\"].*['\"]", "...": ".*", "…": ".*"}.get(part, re.escape(part))
                                     for part in parts))
        for index in range(position, len(shown)):
            if pattern.fullmatch(shown[index]):
                position = index + 1
                break
        else:
            pytest.fail(f"the documented line {line!r} is not shown (after line {position}):\n{actual}")


def pytest_outcome(stdout: str) -> str:
    """``1 failed, 1 passed`` from pytest's last line."""
    lines = re.findall(r"^=*\s*(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s", stdout, re.M)
    assert lines, f"no pytest summary line in:\n{stdout}"
    return str(lines[-1])


def apply_edit(folder: Path, edit: Edit) -> Path:
    """Pastes a documented fix: the one line holding ``edit.old``, in the one program of ``folder`` that has it,
    is replaced by the snippet, indented as that line was (the programs of its packages too)."""
    assert edit.old, "the prose before the ```python block no longer says which line to replace"
    hits = [(path, index) for path in sorted(folder.rglob("*.py"))
            for index, line in enumerate(path.read_text().splitlines()) if edit.old in line]
    assert len(hits) == 1, f"the line to replace, `{edit.old}`, is on {len(hits)} lines of {folder}/*.py"
    path, index = hits[0]
    lines = path.read_text().splitlines(keepends=True)
    indent = re.match(r"\s*", lines[index]).group()
    lines[index] = textwrap.indent(textwrap.dedent(edit.new), indent)
    path.write_text("".join(lines))
    compile(path.read_text(), str(path), "exec")
    return path


# -- running the commands ---------------------------------------------------------------------------------

JOB_CONTROL = r"kill %\S+|wait( %\S+)?"  # what the Shell does itself, as bash's job control would


@dataclass(repr=False)
class Result:
    command: str  # as run, after the substitutions
    returncode: int
    stdout: str
    stderr: str
    step: Step = field(default_factory=lambda: Step("", ""))  # the documented step, when a Walk ran it

    def __str__(self) -> str:
        return (f"$ {self.command}\n  -> exit {self.returncode}\n--- stdout\n{self.stdout[-4000:]}"
                f"--- stderr\n{self.stderr[-4000:]}")

    def __repr__(self) -> str:  # in an assertion's message: the output is in the captured stdout
        return f"$ {self.command} -> exit {self.returncode} (its output is under 'Captured stdout call')"


@dataclass
class Job:
    command: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path
    killed: bool = False


class Shell:
    """A reader's interactive bash, one line at a time: each line runs in ``bash -c`` from the folder the
    previous line ended in; background jobs (``&``, ``kill %N``) are kept here, numbered as bash numbers them."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path, port: int | None = None) -> None:
        self.cwd, self.env, self.logs, self.port = cwd, env, logs, port
        self.substitutions: dict[str, str] = {}
        self.used: set[str] = set()
        self.placeholders: dict[str, str] = {}
        self.jobs: dict[int, Job] = {}  # by bash's job number
        self.started: list[Job] = []  # every job started, in order
        logs.mkdir(parents=True, exist_ok=True)

    def substitute(self, text: str, count: bool = True) -> str:
        for old, new in self.substitutions.items():
            if old in text:
                text = text.replace(old, new)
                if count:
                    self.used.add(old)
        for token, inner in re.findall(r"(\S*<([^>]+)>\S*)", text):
            if inner not in self.placeholders:
                continue  # <time> in a comment, or a placeholder nothing filled: bash will say so
            value = self.placeholders[inner]
            assert fnmatch.fnmatch(value, as_glob(token)), f"{value} does not have the documented shape {token}"
            text = text.replace(token, value)
        return text

    def run(self, line: str, timeout: float = 60) -> Result:
        """Runs one line; prints it, its exit status and output (pytest shows them when a test fails)."""
        result = self._line(self.substitute(line), timeout)
        print(result)
        return result

    def _line(self, line: str, timeout: float) -> Result:
        segments = scan(line)[0]
        if not any(background or re.fullmatch(JOB_CONTROL, text) for text, background in segments):
            return self._bash(line, timeout)
        result = Result(line, 0, "", "")
        started = False
        for text, background in segments:
            if background:
                self._start(text)
            elif re.fullmatch(r"kill %\S+", text):
                result = self._kill(text.split()[1])
            elif re.fullmatch(r"wait( %\S+)?", text):
                result = self._wait(text.split()[1:])
            elif started and re.fullmatch(r"sleep [\d.]+", text):
                pass  # the server's port was waited for when it started
            else:
                result = self._bash(text, timeout)
            if result.returncode != 0:
                break
            started = background
        result.command = line
        self.jobs = {number: job for number, job in self.jobs.items() if not job.killed}  # the next prompt
        return result

    def _bash(self, command: str, timeout: float) -> Result:
        where, exported = self.logs / "cwd", self.logs / "env"
        # What the line leaves for the next one, as an interactive bash would: its folder and what it exported.
        script = (f"{command}\n__status=$?\npwd > {shlex.quote(str(where))}\n"
                  f"env -0 > {shlex.quote(str(exported))}\nexit $__status\n")
        process = subprocess.Popen(["bash", "-c", script], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"$ {command}\ndid not end in {timeout} s\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
        if where.exists():
            self.cwd = Path(where.read_text().strip())
            where.unlink()
        if exported.exists():
            variables = dict(item.partition("=")[::2] for item in exported.read_text().split("\0") if "=" in item)
            self.env = {k: v for k, v in variables.items() if k not in ("_", "SHLVL", "OLDPWD", "PWD")}
            exported.unlink()
        return Result(command, process.returncode, stdout, stderr)

    def _start(self, command: str) -> None:
        assert self.port is not None, f"{command!r} goes to the background, but the test named no port to wait for"
        number = max(self.jobs, default=0) + 1
        log_path = self.logs / f"job{len(self.started) + 1}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.cwd, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        job = self.jobs[number] = Job(command, process, log, log_path)
        self.started.append(job)
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"the background job {command!r} ended with status {process.returncode}:\n"
                            f"{self.job_log(job)}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{command!r} does not answer on port {self.port}:\n{self.job_log(job)}")
                time.sleep(0.02)

    def _kill(self, spec: str) -> Result:
        number = max(self.jobs, default=0) if spec in ("%%", "%+") else int(spec[1:]) if spec[1:].isdigit() else 0
        job = self.jobs.get(number)
        if job is None or job.killed:
            return Result(f"kill {spec}", 1, "", f"bash: kill: {spec}: no such job\n")
        job.killed = True
        if job.process.poll() is None:
            job.process.send_signal(signal.SIGTERM)  # what kill sends; like bash's, it does not wait
        return Result(f"kill {spec}", 0, "", "")

    def _wait(self, specs: list[str]) -> Result:
        """``wait`` (every job) or ``wait %N``: until the jobs have ended; bash then forgets them, and numbers the
        next job from 1 again when none is left."""
        numbers = list(self.jobs) if not specs else [int(specs[0][1:])] if specs[0][1:].isdigit() else []
        if specs and not all(number in self.jobs for number in numbers):
            return Result(f"wait {specs[0]}", 127, "", f"bash: wait: {specs[0]}: no such job\n")
        for number in numbers:
            job = self.jobs.pop(number)
            try:
                job.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"wait: the job {job.command!r} is still running 30 s later:\n{self.job_log(job)}")
            job.log.close()
        if not specs:  # bash: "the return status is zero"
            return Result("wait", 0, "", "")
        status = job.process.returncode
        return Result(f"wait {specs[0]}", 128 - status if status < 0 else status, "", "")

    def strays(self, grace: float = 10) -> list[str]:
        """The background jobs still running, each given ``grace`` seconds to end once killed: what a reader who
        followed the document would find still running (a server on its port)."""
        deadline = time.monotonic() + grace
        running = []
        for job in self.started:
            while job.killed and job.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if job.process.poll() is None:
                running.append(f"{job.command} ({'killed, still running' if job.killed else 'never stopped'})")
        return running

    def _stop(self, job: Job) -> None:
        job.killed = True
        if job.process.poll() is None:
            job.process.send_signal(signal.SIGTERM)
            try:
                job.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(job.process.pid, signal.SIGKILL)
                job.process.wait()
        job.log.close()

    def job_log(self, job: Job) -> str:
        job.log.flush()
        return job.log_path.read_text(errors="replace")

    def close(self) -> None:
        for job in self.started:
            self._stop(job)
        self.jobs.clear()


class Walk:
    """A document's steps, run in order. ``run(prefix)`` runs the steps up to the next one whose command starts
    with ``prefix`` (each before it must exit 0) and returns that one's result; ``finish()`` runs the rest."""

    def __init__(self, name: str, markdown: str, shell: Shell) -> None:
        self.name, self.shell = name, shell
        self.steps = walkthrough(markdown)
        self.position = 0
        assert self.steps, f"{name}: no ```bash block"

    def run(self, prefix: str, rc: int | tuple[int, ...] | None = 0) -> Result:
        """``rc``: the exit statuses the step may end with (None: any, the test checks it)."""
        while True:
            assert self.position < len(self.steps), f"{self.name}: no step starting with {prefix!r} any more"
            step = self.steps[self.position]
            assert isinstance(step, Step), f"{self.name}: a ```python fix comes before the step {prefix!r}"
            self.position += 1
            result = self._run(step)
            if step.command.startswith(prefix):
                wanted = rc if isinstance(rc, tuple) or rc is None else (rc,)
                assert wanted is None or result.returncode in wanted, f"{self.name}: exit status {result!r}"
                return result
            assert result.returncode == 0, f"{self.name}: a step failed: {result!r}"

    def again(self, command: str | None = None) -> Result:
        """Runs the last step again; or ``command`` in its place (one the document's text gives for that)."""
        step = self.steps[self.position - 1]
        assert isinstance(step, Step)
        return self._run(step if command is None else Step(command, step.comment))

    def edit(self) -> Edit:
        """The ```python fix the document comes to next."""
        assert self.position < len(self.steps), f"{self.name}: no ```python fix any more"
        step = self.steps[self.position]
        assert isinstance(step, Edit), f"{self.name}: the next step is {step.command!r}, not a ```python fix"
        self.position += 1
        return step

    def finish(self) -> None:
        """Runs the remaining steps; checks that every substitution the test made was needed."""
        while self.position < len(self.steps):
            step = self.steps[self.position]
            assert isinstance(step, Step), f"{self.name}: a ```python fix the test did not apply"
            self.run(step.command)
        unused = set(self.shell.substitutions) - self.shell.used
        assert not unused, f"{self.name}: the steps no longer have {sorted(unused)}: update the test's substitutions"
        strays = self.shell.strays()
        assert not strays, f"{self.name}: the walk-through leaves background jobs running: {strays}"

    def _run(self, step: Step) -> Result:
        result = self.shell.run(step.command)
        result.step = step
        return result


# -- fixtures ---------------------------------------------------------------------------------------------

CURL_STAND_IN = '''\
"""curl is not installed: a stand-in over urllib for the options the walk-throughs use."""
import sys
import urllib.error
import urllib.request

args, method, headers, data, out, write_out, url = sys.argv[1:], None, {}, None, None, None, None
while args:
    arg = args.pop(0)
    if arg == "-s":
        continue
    if arg.startswith("-X"):
        method = arg[2:] or args.pop(0)
    elif arg == "-H":
        name, _, value = args.pop(0).partition(":")
        headers[name.strip()] = value.strip()
    elif arg == "-d":
        data = args.pop(0).encode()
    elif arg == "-o":
        out = args.pop(0)
    elif arg == "-w":
        write_out = args.pop(0)
    elif arg.startswith("-"):
        sys.exit(f"curl stand-in: {arg} is not supported")
    else:
        url = arg
try:
    response = urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=10)
except urllib.error.HTTPError as error:
    response = error
body = response.read()
if out is None:
    sys.stdout.buffer.write(body)
elif out != "/dev/null":
    open(out, "wb").write(body)
if write_out:
    sys.stdout.write(write_out.replace("%{http_code}", str(response.getcode())).replace("\\\\n", "\\n"))
'''


@pytest.fixture
def shell_factory(tmp_path: Path) -> Iterator[Callable[..., Shell]]:
    """Makes the reader's shell: the installed console scripts first on PATH, curl or its stand-in, the
    environment of this run without what pytest sets for itself; stops its background jobs at the end."""
    scripts = sysconfig.get_path("scripts")
    path = [scripts, str(Path(sys.executable).parent)]
    for name in ("retrace", "pytest"):
        found = shutil.which(name, path=os.pathsep.join(path))
        assert found, f"the console script {name!r} is not installed next to {sys.executable}: pip install -e ."
    if shutil.which("curl") is None:
        stand_in = tmp_path / "bin" / "curl"
        stand_in.parent.mkdir()
        stand_in.write_text(f"#!{sys.executable}\n{CURL_STAND_IN}")
        stand_in.chmod(0o755)
        path.append(str(stand_in.parent))
    env = {name: value for name, value in os.environ.items()
           if not (name.startswith("PYTEST_") and not name.startswith("PYTEST_RETRACE_")) and name != "RETRACE_PIN_DIR"}
    env["PATH"] = os.pathsep.join([*path, os.environ.get("PATH", os.defpath)])
    shells: list[Shell] = []

    def make(cwd: Path, port: int | None = None, **extra: str) -> Shell:
        shell = Shell(cwd, {**env, **extra}, tmp_path / "logs", port)
        shells.append(shell)
        return shell

    yield make
    for shell in shells:
        shell.close()


def stage(example: str, tmp_path: Path) -> Path:
    """A stand-in for the reader's checkout: ``tmp_path/checkout/examples/<example>``, a copy of the example
    without what earlier runs may have left in it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(EXAMPLES / example, checkout / "examples" / example,
                    ignore=shutil.ignore_patterns("__pycache__", "recordings", "*.retrace", ".pytest_cache"))
    return checkout


def unavailable(reason: str) -> None:
    if os.environ.get("RETRACE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (RETRACE_REQUIRE_SERVICES=1: the service is required)")
    pytest.skip(reason)


@dataclass
class Database:
    name: str
    dsn: str
    drop: Callable[[], None]
    tables: Callable[[str], list[str]]


@pytest.fixture
def shop_database() -> Iterator[Database]:
    """A fresh PostgreSQL database for the shop, dropped at the end; checks that ``test`` was left alone."""
    try:
        import psycopg2
    except ImportError as exc:
        unavailable(f"psycopg2 is not installed: {exc}")
    try:
        admin = psycopg2.connect(f"{POSTGRES} dbname=test connect_timeout=3")
    except psycopg2.OperationalError as exc:
        unavailable(f"PostgreSQL does not answer on 127.0.0.1:5432: {exc}")
    admin.autocommit = True
    name = f"retrace_walk_{uuid.uuid4().hex[:12]}"
    force = " with (force)" if admin.server_version >= 130000 else ""

    def drop() -> None:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name}{force}")

    def tables(database: str) -> list[str]:
        with psycopg2.connect(f"{POSTGRES} dbname={database}") as conn, conn.cursor() as cur:
            cur.execute("select tablename from pg_tables where schemaname = 'public' order by 1")
            found = [row[0] for row in cur.fetchall()]
        conn.close()
        return found

    before = tables("test")
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield Database(name, f"{POSTGRES} dbname={name}", drop, tables)
    finally:
        drop()
        after = tables("test")
        admin.close()
    assert after == before, "the walk-through changed the tables of the database test"


# -- the walk-throughs -----------------------------------------------------------------------------------


def ticket(output: str) -> str:
    return claim(output, r"ticket (\S+):", "a ticket").group(1)


def test_quickstart(tmp_path: Path, shell_factory: Callable[..., Shell]) -> None:
    """README, "Quickstart (one minute)": record the raffle, replay it after the world changed, then change
    the program and see the divergence report."""
    quickstart = section((ROOT / "README.md").read_text(), "## Quickstart (one minute)")
    checkout = stage("quickstart", tmp_path)
    git = ["git", "-c", "user.name=walk", "-c", "user.email=walk@example.invalid", "-c", "commit.gpgsign=false"]
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the quickstart's `git checkout entrants.txt` needs it")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the checkout"]):
        subprocess.run([*git, *command], cwd=checkout, check=True, capture_output=True)
    shell = shell_factory(checkout)
    walk = Walk("README quickstart", quickstart, shell)
    folder = checkout / "examples" / "quickstart"
    entrants = (folder / "entrants.txt").read_text()

    walk.run("cd examples/quickstart")
    assert shell.cwd == folder
    recorded = walk.run("retrace record ", rc=(0, 1))
    again = "retrace record --force -o raffle.retrace raffle.py"
    assert f"`{again}`" in quickstart
    for _ in range(40):  # the README: if mallory won the recorded draw (one run in six), record again
        if recorded.returncode == 0:
            break
        assert "RuntimeError: mallory is banned from winning" in recorded.stderr, recorded
        recorded = walk.again(again)
    assert recorded.returncode == 0, recorded
    assert f"the winner among {len(entrants.split())} entrants is" in recorded.stdout  # the output passes through
    assert (folder / "raffle.retrace").exists()

    plain = walk.run("python raffle.py", rc=(0, 1))  # a plain run: mallory may win this one
    assert ticket(plain.stdout) != ticket(recorded.stdout), "a plain run printed the recorded ticket"
    walk.run('echo "zoe" > entrants.txt')
    assert (folder / "entrants.txt").read_text() == "zoe\n"
    replayed = walk.run("retrace replay raffle.retrace")
    assert replayed.stdout == recorded.stdout  # exactly what the recording printed, though the world moved on
    walk.run("git checkout entrants.txt")
    assert (folder / "entrants.txt").read_text() == entrants

    walk.run("sed -i")
    assert "winners.txt" in (folder / "raffle.py").read_text()
    diverged = walk.run("retrace replay raffle.retrace;")
    status = claim(diverged.step.says, r"exit \d+", "the exit status").group()
    assert diverged.stdout.strip().splitlines()[-1] == status, diverged
    assert diverged.step and diverged.step.output, "the divergence report is no longer shown under the command"
    assert_shows(diverged.step.output, diverged.stderr, "examples/quickstart/")
    walk.finish()


def test_quickstart_crash_replays_with_the_same_traceback(tmp_path: Path,
                                                          shell_factory: Callable[..., Shell]) -> None:
    """README quickstart: "A run that ends with an uncaught exception (draw until mallory wins) replays with
    the same traceback and exit status 1". Mallory is made to win by an entrants file naming only her (the
    program takes the file as its argument) instead of drawing until she does."""
    quickstart = section((ROOT / "README.md").read_text(), "## Quickstart (one minute)")
    said = prose(quickstart, r"uncaught exception \(draw until `?mallory`? wins\) replays with the same traceback"
                             r" and exit status (\d+)", "how a crash replays")
    folder = stage("quickstart", tmp_path) / "examples" / "quickstart"
    (folder / "mallory.txt").write_text("mallory\n")
    shell = shell_factory(folder)
    recorded = shell.run("retrace record -o raffle.retrace raffle.py mallory.txt")
    assert recorded.returncode == int(said.group(1)), recorded
    assert "RuntimeError: mallory is banned from winning" in recorded.stderr, recorded
    replayed = shell.run("retrace replay raffle.retrace")
    assert replayed.returncode == int(said.group(1)), replayed
    assert (replayed.stdout, replayed.stderr) == (recorded.stdout, recorded.stderr)


@pytest.mark.postgres
def test_pricing(tmp_path: Path, shell_factory: Callable[..., Shell], shop_database: Database) -> None:
    """examples/pricing/README.md: record requests through a real werkzeug server backed by PostgreSQL, replay
    them with the server and the database gone, pin the crash, fix it; then the promo fix diverges."""
    readme = (EXAMPLES / "pricing" / "README.md").read_text()
    prose(readme, r"or set `SHOP_DSN`", "that SHOP_DSN names the database")
    port = free_port()
    shell = shell_factory(stage("pricing", tmp_path), port, SHOP_DSN=shop_database.dsn)
    shell.substitutions = {"/tmp/pricing": str(tmp_path / "pricing"), "8080": str(port)}
    walk = Walk("examples/pricing/README.md", readme, shell)
    folder = tmp_path / "pricing"

    walk.run("cp -r examples/pricing")
    assert shell.cwd == folder
    ready = walk.run("python setup_db.py")
    assert claim(ready.step.comment, r"shop tables ready", "what setup prints").group() in ready.stdout
    assert shop_database.tables(shop_database.name) == ["shop_orders", "shop_products", "shop_promos"]
    walk.run("python shop.py 8080 &")
    apple = walk.run("curl -s -XPOST")
    said = claim(apple.step.says, r"^(\{.*\})\s*<-", "the apple order's answer")
    assert json.loads(apple.stdout) == json.loads(said.group(1))
    kiwi = walk.run("curl -s -o /dev/null")
    assert kiwi.stdout.strip() == claim(kiwi.step.says, r"^(\d{3})\s*<-", "the kiwi status").group(1)
    # Right after the last answer, as a reader who pastes the block: the server writes what it answered on its way
    # out (the last recording is still being written when the client has the whole response).
    walk.run("kill %1")
    with pytest.raises(OSError):  # the server stopped
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    shop_database.drop()  # "and the database could be gone too"

    listed = walk.run("ls recordings/")
    pattern = as_glob(claim(listed.step.comment, r"(\S+\.retrace), one per request", "the names").group(1))
    names = listed.stdout.split()
    assert len(names) == 2 and all(fnmatch.fnmatch(name, pattern) for name in names), listed

    first = walk.run("pytest ", rc=1)
    outcomes = {}
    for note in first.step.notes:
        line = re.match(r"(\S+::replay) (PASSED|FAILED)\s+(.*)", note)
        if line:
            node = re.compile(".*".join(re.escape(part) for part in line.group(1).split("…")))
            shown = [found for found in re.findall(rf"^(\S+) {line.group(2)}\b", first.stdout, re.M)
                     if node.fullmatch(found)]
            assert len(shown) == 1, f"one {line.group(2)} line like {line.group(1)}, in:\n{first.stdout}"
            outcomes[line.group(2)] = shown[0].partition("::")[0]
            if line.group(2) == "FAILED":
                assert line.group(3) in first.stdout, first
    assert sorted(outcomes) == ["FAILED", "PASSED"], f"the documented PASSED and FAILED lines: {first.step}"
    apple_path, failing_path = outcomes["PASSED"], outcomes["FAILED"]
    assert pytest_outcome(first.stdout) == claim(first.step.says, r"\d+ failed, \d+ passed", "the outcome").group()
    claim(first.step.says, r"the summary says how to pin the crash", "that the summary says how to pin")
    assert f"retrace pin {failing_path}" in first.stdout, first

    shell.placeholders = {"the failing one": failing_path, "the apple one": apple_path}
    pinned = walk.run("retrace pin ")
    target = as_glob(claim(pinned.step.comment, r"-> (\S+)", "where the pinned file goes").group(1))
    pinned_files = list(folder.glob(target))
    assert len(pinned_files) == 1 and pinned_files[0].name in pinned.stdout, pinned

    apply_edit(folder, walk.edit())
    fixed = walk.run("pytest ")
    assert pytest_outcome(fixed.stdout) == claim(fixed.step.says, r"^\d+ passed", "the outcome after the fix").group()
    assert "2 crash fixed" in fixed.stdout and "1 ok" in fixed.stdout, fixed
    walk.finish()

    # The wrong total: the recorded queries, then the promo fix diverges at the promo query.
    wrong = section(readme, "## The wrong total")
    show = prose(wrong, r"`(retrace show [^`]+)`", "the show command").group(1)
    promo = prose(wrong, r"the promo query `([^`]+)`", "the promo query").group(1)
    shown = shell.run(show)
    assert shown.returncode == 0 and "'apple'" in shown.stdout, shown  # the apple one, as pytest said
    assert f"psycopg2.cursor.execute({promo!r}, ())" in shown.stdout, shown
    total = prose(wrong, r"total `(Decimal\([^`]+\))`", "the recorded total").group(1)
    assert re.search(rf"execute\('insert into shop_orders.*{re.escape(total)}", shown.stdout), shown
    prose(wrong, r"with `retrace show --json`", "that --json prints results whole")
    rows = prose(wrong, r"rows hold `([^`]+)`", "the promo rows").group(1)
    whole = shell.run(show.replace("retrace show", "retrace show --json", 1))
    promo_event = [event for event in json.loads(whole.stdout)["events"] if promo in str(event["args"])]
    assert len(promo_event) == 1 and promo_event[0]["result"]["rows"] == [f"({rows},)"], whole

    new_query, parameter = prose(wrong, r"\(`(select [^`]+)`, with `([^`]+)`\)", "the promo fix").groups()
    prose(wrong, r"the apple recording now \*\*diverges\*\* at that query, the report showing the recorded and the"
                 r" new SQL side by side", "what the replay after the promo fix shows")
    shop = folder / "shop.py"
    source = shop.read_text()
    call = f'cur.execute("{promo}", ())'
    assert source.count(call) == 1, f"shop.py no longer runs {call}"
    shop.write_text(source.replace(call, f'cur.execute("{new_query}", ({parameter},))'))
    replay = shell.run(walk.steps[-1].code)
    assert replay.returncode == 1 and pytest_outcome(replay.stdout) == "1 failed, 2 passed", replay
    assert re.search(rf"^FAILED {re.escape(apple_path)}::replay", replay.stdout, re.M), replay
    assert f"retrace: {apple_path}: diverged" in replay.stdout, replay
    assert f"expected  psycopg2.cursor.execute({promo!r}, ())" in replay.stdout, replay
    assert f"actual    psycopg2.cursor.execute({new_query!r}, (None,))" in replay.stdout, replay


def test_upstream(tmp_path: Path, shell_factory: Callable[..., Shell]) -> None:
    """examples/upstream/README.md: record a requests client against a good and a bad-day upstream, replay both
    with the upstream gone, pin the crash, fix it."""
    readme = (EXAMPLES / "upstream" / "README.md").read_text()
    port = free_port()
    checkout = stage("upstream", tmp_path)
    program = checkout / "examples" / "upstream" / "upstream.py"
    assert '("127.0.0.1", 8090)' in program.read_text(), "upstream.py no longer serves on 127.0.0.1:8090"
    program.write_text(program.read_text().replace("8090", str(port)))
    shell = shell_factory(checkout, port)
    shell.substitutions = {"/tmp/upstream": str(tmp_path / "upstream"), "8090": str(port)}
    walk = Walk("examples/upstream/README.md", readme, shell)
    folder = tmp_path / "upstream"

    walk.run("cp -r examples/upstream")
    assert shell.cwd == folder
    walk.run("python upstream.py &")
    good = walk.run("retrace record -o recordings/good.retrace")
    said = claim(good.step.comment, r"Oslo: -?\d+ °C", "the temperature line").group()
    assert re.fullmatch(re.sub(r"-?\d+", r"-?\\d+", said), good.stdout.strip()), good
    walk.run("kill %1; wait; python upstream.py --bad-day &")
    bad = walk.run("retrace record -o recordings/bad.retrace", rc=None)
    assert bad.returncode == int(claim(bad.step.comment, r"exit (\d+)", "the exit status").group(1)), bad
    assert claim(bad.step.comment, r"^\w+Error", "the error").group() in bad.stderr, bad
    walk.run("kill ")
    with pytest.raises(OSError):  # no upstream any more
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    shown = walk.run("retrace show recordings/bad.retrace")
    event = claim(shell.substitute(shown.step.comment, count=False), r"(requests\.send\('[^']+')", "the event").group(1)
    assert shown.stdout.count("requests.send(") == 1 and event in shown.stdout, shown  # one event per request
    replayed = walk.run("pytest ", rc=1)
    claim(replayed.step.comment, r"good passes; bad fails: the recorded crash still happens", "the verdicts")
    assert pytest_outcome(replayed.stdout) == "1 failed, 1 passed", replayed
    assert re.search(r"^FAILED recordings/bad\.retrace::replay", replayed.stdout, re.M), replayed
    assert "retrace: recordings/bad.retrace: crash-reproduced" in replayed.stdout, replayed
    pinned = walk.run("retrace pin recordings/bad.retrace")
    target = as_glob(claim(pinned.step.comment, r"-> (\S+)", "where the pinned file goes").group(1))
    assert len(list(folder.glob(target))) == 1, pinned

    assert apply_edit(folder, walk.edit()).name == "weather.py"
    fixed = walk.run("pytest ")
    assert pytest_outcome(fixed.stdout) == claim(fixed.step.comment, r"\d+ passed", "the outcome").group()
    walk.finish()

    # "The bad-day recordings now end with a clear message and exit status 1 instead of a traceback: no
    # exception, so `crash fixed`. The upstream answered from the recording: the same text, the same headers."
    after = readme.rpartition("```")[2]  # the prose under the last block
    status = int(prose(after, r"exit status (\d+) instead of a traceback", "the fixed exit status").group(1))
    prose(after, r"so `crash fixed`", "the verdict after the fix")
    assert "2 crash fixed" in fixed.stdout, fixed
    verdict = shell.run(f"retrace replay recordings/bad.retrace --verdict {tmp_path / 'verdict.json'}")
    found = json.loads((tmp_path / "verdict.json").read_text())
    assert found["status"] == "crash-fixed", found
    assert (found["replayed"]["status"], found["replayed"]["exception"]) == (status, None), found
    assert "upstream answered 200 'Service Unavailable', not JSON" in verdict.stderr, verdict


def test_worker(tmp_path: Path, shell_factory: Callable[..., Shell]) -> None:
    """examples/worker/README.md: a threaded worker replays its recorded ledger with either demultiplexer; a
    thread blocked where nothing is recorded makes the replay report a stuck replay instead of hanging."""
    readme = (EXAMPLES / "worker" / "README.md").read_text()
    shell = shell_factory(stage("worker", tmp_path))
    walk = Walk("examples/worker/README.md", readme, shell)
    folder = tmp_path / "checkout" / "examples" / "worker"

    walk.run("cd examples/worker")
    plain = walk.run("python worker.py; python worker.py")
    ledgers = re.findall(r"(?:^w\d .*\n)+booked .*\n", plain.stdout, re.M)
    claim(plain.step.comment, r"two different ledgers", "that two runs differ")
    assert len(ledgers) == 2 and ledgers[0] != ledgers[1], plain
    recorded = walk.run("retrace record ")
    assert re.fullmatch(r"(?:w\d .*\n){8}booked .*\n", recorded.stdout), recorded
    native = walk.run("retrace replay worker.retrace")
    assert native.stdout == recorded.stdout, native
    pure = walk.run("PYTEST_RETRACE_PUREPYTHON=1 retrace replay")
    assert pure.stdout == recorded.stdout, pure

    shown = walk.run("retrace show ")
    limit = claim(shown.step.code, r"--limit (\d+)", "how many events are shown").group(1)
    assert len(re.findall(r"^  #\d+ ", shown.stdout, re.M)) == int(limit) and not shown.stderr, shown
    for item in shown.step.comment.split(", "):
        assert item.strip(" …") in shown.stdout, f"{item!r} is not in:\n{shown.stdout}"
    walk.finish()

    # "add `os.read(os.pipe()[0], 1)` (with `import os`) at the top of `work` — and the replay does not hang:
    # after `--stuck-timeout` seconds (default 10) it reports a stuck replay".
    statement, module, function = prose(readme, r"add `([^`]+)` \(with `([^`]+)`\) at the top of `(\w+)`",
                                        "the change that blocks a thread").groups()
    option, default = prose(readme, r"after `(--[\w-]+)` seconds \(default (\d+)\)", "the stuck timeout").groups()
    program = folder / "worker.py"
    lines = program.read_text().splitlines(keepends=True)
    first_import = next(index for index, line in enumerate(lines) if line.startswith("import "))
    start = next(index for index, line in enumerate(lines) if line.startswith(f"def {function}("))
    indent = re.match(r"\s*", lines[start + 1]).group()
    lines.insert(start + 1, f"{indent}{statement}\n")
    lines.insert(first_import, f"{module}\n")
    program.write_text("".join(lines))
    replay_step = next(step for step in walk.steps
                       if isinstance(step, Step) and step.command.startswith("retrace replay"))
    began = time.monotonic()
    stuck = shell.run(replay_step.code.replace("retrace replay", f"retrace replay {option} 1", 1))
    assert time.monotonic() - began < int(default), f"the replay waited the default {default} s: {stuck}"
    assert stuck.returncode == 70, stuck
    assert re.search(r"^replay stuck at event #\d+ \(thread [\d.]+\)", stuck.stderr, re.M), stuck
    for thread in ("0", "0.1"):  # for each thread: what it waits for, its next recorded event, its stack
        listed = rf"^  thread {re.escape(thread)}: .*\n    next recorded event: #\d+ "
        assert re.search(listed, stuck.stderr, re.M), stuck
    assert statement in stuck.stderr, stuck


def test_recordings_travel(tmp_path: Path, shell_factory: Callable[..., Shell]) -> None:
    """README, "Recordings travel": the raffle recorded in the checkout replays in a copy of the project at
    another path, and runs the copy's code (a change to the copy alone diverges)."""
    travel = section((ROOT / "README.md").read_text(), "### Recordings travel")
    checkout = stage("quickstart", tmp_path)
    shell = shell_factory(checkout)
    shell.substitutions = {"/tmp/raffle": str(tmp_path / "raffle")}
    walk = Walk("README recordings travel", travel, shell)
    walk.run("cd examples/quickstart")
    recorded = walk.run("retrace record ", rc=(0, 1))
    for _ in range(40):  # as in the quickstart: a draw mallory won is a crash, recorded again
        if recorded.returncode == 0:
            break
        recorded = walk.again("retrace record --force -o raffle.retrace raffle.py")
    assert recorded.returncode == 0, recorded
    walk.run("cd /tmp/raffle")
    assert shell.cwd == tmp_path / "raffle"
    replayed = walk.run("retrace replay raffle.retrace")
    assert replayed.stdout == recorded.stdout, replayed  # what the recording printed
    walk.run("sed -i")
    assert "winners.txt" in (tmp_path / "raffle" / "raffle.py").read_text()
    assert "winners.txt" not in (checkout / "examples" / "quickstart" / "raffle.py").read_text()
    diverged = walk.run("retrace replay raffle.retrace;")
    status = claim(diverged.step.says if diverged.step else "", r"exit \d+", "the exit status").group()
    assert diverged.stdout.strip().splitlines()[-1] == status, diverged
    assert "actual    open('winners.txt', 'r')" in diverged.stderr, diverged
    walk.finish()


@pytest.mark.postgres
def test_bookshop(tmp_path: Path, shell_factory: Callable[..., Shell], shop_database: Database) -> None:
    """examples/bookshop/README.md: a Flask + SQLAlchemy + PostgreSQL service under gunicorn, sealed recordings of
    200 requests from 8 clients, stopped right after; every recording replays with the database gone, the crash
    is triaged, pinned, fixed; replays are deterministic; a changed ORDER BY diverges exactly the front page."""
    readme = (EXAMPLES / "bookshop" / "README.md").read_text()
    prose(readme, r"set `BOOKSHOP_DATABASE_URL`", "that BOOKSHOP_DATABASE_URL names the database")
    prose(readme, r"`BOOKSHOP_BIND` serves on another address than 127.0.0.1:8000", "that BOOKSHOP_BIND moves it")
    port = free_port()
    shell = shell_factory(stage("bookshop", tmp_path), port, BOOKSHOP_BIND=f"127.0.0.1:{port}",
                          BOOKSHOP_DATABASE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{shop_database.name}")
    shell.substitutions = {"/tmp/bookshop": str(tmp_path / "bookshop"), "8000": str(port)}
    walk = Walk("examples/bookshop/README.md", readme, shell)
    folder = tmp_path / "bookshop"

    walk.run("cp -r examples/bookshop")
    ready = walk.run("python -m bookshop.initdb")
    assert ready.step.comment in ready.stdout, ready
    assert shop_database.tables(shop_database.name) == ["books", "orders", "reviews", "users"]
    walk.run("retrace keygen")
    walk.run("export ")
    assert shell.env["BOOKSHOP_PROFILE"] == "staging" and shell.env["RETRACE_PRIVATE_KEY"] == "bookshop.key"
    walk.run("gunicorn ")
    browsed = walk.run("python traffic.py")
    assert browsed.stdout.strip() == walk.steps[walk.position - 1].notes[0], browsed  # type: ignore[union-attr]
    walk.run("kill %1; wait")  # right after the last answer
    counted = walk.run("ls recordings | wc -l")
    assert counted.stdout.strip() == counted.step.notes[0] == "200", counted
    assert not list((folder / "recordings").glob("*.partial")), "a recording left half written"

    walk.run("python -m bookshop.dropdb")
    replayed = walk.run("pytest -q -n 2", rc=1)
    crashes = claim(replayed.step.says, r"^(\d+) failed, (\d+) passed", "the outcome")
    assert pytest_outcome(replayed.stdout) == crashes.group(), replayed
    reproduced = re.findall(r"^retrace: recordings/\S+: crash-reproduced$", replayed.stdout, re.M)  # one a report
    assert len(reproduced) == int(crashes.group(1)), replayed
    triaged = walk.run("retrace triage recordings")
    assert_shows("\n".join(triaged.step.notes), triaged.stdout, "bookshop")
    suggested = claim(triaged.stdout, r"retrace pin (recordings/\S+\.retrace)", "the recording to pin").group(1)
    shell.placeholders = {"the crash": suggested}
    pinned = walk.run("retrace pin ")
    target = as_glob(claim(pinned.step.comment, r"-> (\S+)", "where the pinned file goes").group(1))
    assert len(list(folder.glob(target))) == 1, pinned
    failing = walk.run("pytest -q --retrace-recordings=tests/recordings", rc=1)
    assert pytest_outcome(failing.stdout) == claim(failing.step.says, r"^\d+ failed", "the pinned outcome").group()

    apply_edit(folder, walk.edit())
    fixed = walk.run("pytest -q --retrace-recordings=tests/recordings")
    assert pytest_outcome(fixed.stdout) == claim(fixed.step.says, r"^\d+ passed", "the fixed outcome").group()
    deterministic = walk.run("pytest -q -n 2 --retrace-recordings=recordings --retrace-determinism-runs=3")
    assert pytest_outcome(deterministic.stdout) == claim(deterministic.step.says, r"^\d+ passed", "all pass").group()

    # A change to a query: exactly the front page's requests diverge, naming both queries.
    change = section(readme, "## A change to a query")
    old, new = prose(change, r"replace `([^`]+)`\s+with `([^`]+)`", "the query change").groups()
    app = folder / "bookshop" / "app.py"
    assert app.read_text().count(old) == 1, f"bookshop/app.py no longer has {old}"
    app.write_text(app.read_text().replace(old, new))
    diverged = walk.run("pytest -q -n 2", rc=1)
    expected = claim(diverged.step.says, r"^(\d+) failed, (\d+) passed", "the outcome after the change")
    assert pytest_outcome(diverged.stdout) == expected.group(), diverged
    assert_shows("\n".join(diverged.step.notes[1:]), diverged.stdout, "bookshop")
    front = re.findall(r"^retrace: (recordings/\S+): diverged$", diverged.stdout, re.M)
    assert len(front) == int(expected.group(1)), diverged
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRACE_PRIVATE_KEY", str(folder / "bookshop.key"))
        paths = {name: read_recording(folder / name).header["entry"]["environ"]["PATH_INFO"]
                 for name in (p.relative_to(folder).as_posix() for p in (folder / "recordings").glob("*.retrace"))}
    assert {paths[name] for name in front} == {"/"} and list(paths.values()).count("/") == len(front)
    walk.finish()


def test_self_check(tmp_path: Path, shell_factory: Callable[..., Shell]) -> None:
    """README, "Self-check": the ticket desk's tests run under --retrace-self-check (also under xdist), each
    replayed faithfully from the state it began in; saved, they replay as recordings."""
    walkthrough_text = section((ROOT / "README.md").read_text(), "### Self-check: the test suite proves it replays")
    checkout = stage("selfcheck", tmp_path)
    shell = shell_factory(checkout)
    walk = Walk("README self-check", walkthrough_text, shell)
    walk.run("cd examples/selfcheck")
    for prefix in ("pytest --retrace-self-check  ", "pytest --retrace-self-check -n 2"):
        checked = walk.run(prefix)
        says = checked.step.says if checked.step else ""
        summary = claim(says, r"\d+ self-checked, \d+ faithful, \d+ diverged, \d+ not checkable", "the summary")
        assert summary.group() in checked.stdout.splitlines(), checked
        if "passed" in says:
            assert claim(says, r"\d+ passed", "the outcome").group() in checked.stdout, checked
    saved = walk.run("pytest --retrace-self-check --retrace-self-check-save=")
    count = int(claim(saved.step.says if saved.step else "", r"(\d+) saved to", "the saved count").group(1))
    assert f"{count} saved to " in saved.stdout, saved
    folder = shell.cwd / "recordings" / "suite"
    assert len(list(folder.rglob("*.retrace"))) == count
    replayed = walk.run("pytest --retrace-recordings=recordings/suite")
    assert claim(replayed.step.says if replayed.step else "", r"\d+ replayed, \d+ ok", "the verdicts").group() \
        in replayed.stdout.splitlines(), replayed
    walk.finish()
