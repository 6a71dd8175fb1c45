"""Replay runs only the project's own code (issue 12, item 2).

A recording is untrusted input: its header names what replay runs. Crafted headers that point at the
standard library (``os:remove``, ``os:kill``, ``os:execv``, ``subprocess:run``, ``builtins:exec``), at a module
outside the project, at a script or folder outside it, are refused by ``retrace replay`` (exit 2, one line) and
by the plugin (a test error), before anything is imported or run: each payload's effect would be visible (a
marker file, a removed file, a killed process) and must not happen. With the allow option, a legitimate
recording made in another folder replays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Run, retrace

from pytest_retrace.format.tape import read_recording, rewrite

JOBS = """\
import os
from os import system
from pytest_retrace import record_calls

@record_calls("recordings")
def double(x):
    return x * 2

if __name__ == "__main__":
    print(double(21))
"""

SERVICE = """\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

if __name__ == "__main__":
    import io
    from pytest_retrace.wsgi import RecordingMiddleware
    recorded = RecordingMiddleware(app, "recordings", entry="service:app")
    body = recorded({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": io.BytesIO()},
                    lambda status, headers, exc_info=None: None)
    print(b"".join(body)); body.close()
"""


class World:
    """A project with legitimate recordings, a folder outside it, and what payloads would touch."""

    def __init__(self, base: Path) -> None:
        self.project = base / "project"
        self.outside = base / "outside"
        self.crafted = self.project / "crafted"
        for folder in (self.project, self.outside, self.crafted):
            folder.mkdir()
        self.marker = self.outside / "marker"
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("keep me")
        (self.project / "pytest.ini").write_text("[pytest]\n")
        (self.project / "jobs.py").write_text(JOBS)
        (self.project / "service.py").write_text(SERVICE)
        (self.project / "stamp.py").write_text("import time\nprint(time.time())\n")
        # An attacker's module and script outside the project: importing or running them leaves the marker.
        (self.outside / "evilmod.py").write_text(
            f"open({str(self.marker)!r}, 'w').close()\ndef run(*a):\n    pass\napp = run\n")
        (self.outside / "evil.py").write_text(f"open({str(self.marker)!r}, 'w').close()\n")
        for script in ("jobs.py", "service.py"):
            subprocess.run([sys.executable, script], cwd=self.project, check=True, capture_output=True)
        assert retrace("record", "-o", "stamp.retrace", "stamp.py", cwd=self.project).returncode == 0
        self.call = next((self.project / "recordings").glob("double-*.retrace"))
        self.request = next((self.project / "recordings").glob("GET*.retrace"))
        self.process = self.project / "stamp.retrace"

    def craft(self, name: str, source: Path, entry: dict[str, Any] | None = None, **header: Any) -> Path:
        """A copy of ``source`` with its header's entry changed (merged) and other header fields set."""
        old = read_recording(source).header
        new = dict(old, **header)
        new["entry"] = dict(old["entry"], **(entry or {}))
        target = self.crafted / f"{name}.retrace"
        rewrite(source, header=new, into=target)
        return target

    def untouched(self, sleeper: subprocess.Popen[bytes]) -> None:
        assert not self.marker.exists(), "a payload ran"
        assert self.victim.read_text() == "keep me", "a payload removed a file"
        assert sleeper.poll() is None, "a payload killed a process"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("confinement"))


@pytest.fixture(scope="module")
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def payloads(world: World, sleeper: subprocess.Popen[bytes]) -> dict[str, Path]:
    """Each crafted recording, by what it tries."""
    outside, marker = world.outside, str(world.marker)
    call, request, process = world.call, world.request, world.process
    return {
        "function-os-remove": world.craft("f-remove", call, {"function": "os:remove", "args": [str(world.victim)]}),
        "function-os-kill": world.craft("f-kill", call, {"function": "os:kill", "args": [sleeper.pid, 9]}),
        "function-os-execv": world.craft("f-execv", call, {"function": "os:execv",
                                                           "args": ["/bin/sh", ["sh", "-c", f"touch {marker}"]]}),
        "function-subprocess-run": world.craft("f-run", call, {"function": "subprocess:run",
                                                               "args": [["touch", marker]]}),
        "function-builtins-exec": world.craft("f-exec", call, {"function": "builtins:exec",
                                                               "args": [f"open({marker!r}, 'w')"]}),
        "function-imported-into-app": world.craft("f-imported", call, {"function": "jobs:system",
                                                                       "args": [f"touch {marker}"]}),
        "function-through-module": world.craft("f-through", call, {"function": "jobs:os.system",
                                                                   "args": [f"touch {marker}"]}),
        "function-root-outside": world.craft("f-root", call, {"function": "evilmod:run", "root": str(outside)}),
        "app-os-system": world.craft("a-system", request, {"app": "os:system"}),
        "app-builtins-exec": world.craft("a-exec", request, {"app": "builtins:exec"}),
        "app-root-outside": world.craft("a-root", request, {"app": "evilmod:app", "root": str(outside)}),
        "script-outside": world.craft("s-outside", process, {"script": str(outside / "evil.py")}),
        "script-relative-escape": world.craft("s-escape", process, {"script": "../outside/evil.py"}),
        "cwd-outside": world.craft("s-cwd", process, {"script": "evil.py"}, cwd=str(outside)),
        "module-installed": world.craft("m-json", process, {"module": "json.tool"}),
        "function-cwd-outside": world.craft("f-cwd", call, {"function": "evilmod:run", "root": None},
                                            cwd=str(outside)),
    }


@pytest.fixture(scope="module")
def crafted(world: World, sleeper: subprocess.Popen[bytes]) -> dict[str, Path]:
    link = world.project / "linked.py"  # inside the project by name, outside by its real path
    link.symlink_to(world.outside / "evil.py")
    found = payloads(world, sleeper)
    found["script-symlink-out"] = world.craft("s-link", world.process, {"script": "linked.py"})
    return found


def refused_by_cli(world: World, recording: Path, *flags: str) -> Run:
    return retrace("replay", *flags, str(recording.relative_to(world.project)), cwd=world.project)


@pytest.mark.parametrize("payload", [
    "function-os-remove", "function-os-kill", "function-os-execv", "function-subprocess-run",
    "function-builtins-exec", "function-imported-into-app", "function-through-module", "function-root-outside",
    "function-cwd-outside", "app-os-system", "app-builtins-exec", "app-root-outside", "script-outside",
    "script-relative-escape", "script-symlink-out", "cwd-outside", "module-installed",
])
def test_the_cli_refuses_code_outside_the_project(world: World, crafted: dict[str, Path],
                                                  sleeper: subprocess.Popen[bytes], payload: str) -> None:
    run = refused_by_cli(world, crafted[payload])
    assert run.returncode == 2, (run.stdout, run.stderr)
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"retrace replay: crafted/{crafted[payload].name}: the recording's "), line
    assert f"the project {os.path.realpath(world.project)}" in line and "--allow-outside-project" in line, line
    world.untouched(sleeper)


def test_the_refusal_says_what_the_recording_points_at(world: World, crafted: dict[str, Path]) -> None:
    said = {name: refused_by_cli(world, crafted[name]).stderr for name in
            ("function-os-remove", "function-imported-into-app", "script-outside", "cwd-outside", "module-installed")}
    assert f"entry point 'os:remove' is outside the project ({os.path.realpath(os.__file__)})" in \
        said["function-os-remove"]
    assert "'system', which jobs imports from elsewhere" in said["function-imported-into-app"]
    assert f"script is outside the project ({world.outside.resolve() / 'evil.py'})" in said["script-outside"]
    assert f"working folder is outside the project ({world.outside.resolve()})" in said["cwd-outside"]
    assert "entry point 'json.tool' is outside the project" in said["module-installed"]


def test_the_plugin_reports_each_as_an_error(world: World, crafted: dict[str, Path],
                                             sleeper: subprocess.Popen[bytes]) -> None:
    ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=crafted",
                          "-rE", "-q"], cwd=world.project, capture_output=True, text=True, timeout=300)
    assert f"{len(crafted)} errors" in ran.stdout and "failed" not in ran.stdout, ran.stdout
    for path in crafted.values():
        assert f"crafted/{path.name}: the recording's " in ran.stdout, path.name
    errors = ran.stdout.partition("short test summary info")[0]  # the summary repeats them (whole under CI=true)
    assert errors.count("pass --retrace-allow-outside-project if you trust this recording") == len(crafted)
    assert "Traceback" not in ran.stdout
    world.untouched(sleeper)


def test_legit_recordings_replay_in_their_project(world: World) -> None:
    for recording in (world.call, world.request, world.process):
        run = retrace("replay", str(recording), cwd=world.project)
        assert run.returncode == 0, run.stderr
    ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--retrace-recordings=recordings",
                          "--retrace-recordings=stamp.retrace", "-q"], cwd=world.project, capture_output=True,
                         text=True, timeout=300)
    assert "3 passed" in ran.stdout, ran.stdout


def test_the_allow_option_replays_a_recording_from_another_folder(world: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # not the recording's project
    elsewhere.mkdir()
    (elsewhere / "pytest.ini").write_text("[pytest]\n")
    for recording in (world.call, world.process):
        refused = retrace("replay", str(recording), cwd=elsewhere)
        assert refused.returncode == 2 and "--allow-outside-project" in refused.stderr, refused.stderr
        allowed = retrace("replay", "--allow-outside-project", str(recording), cwd=elsewhere)
        assert allowed.returncode == 0, allowed.stderr
    pytest_run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--retrace-recordings={world.call}", "-q"]
    refused_run = subprocess.run(pytest_run, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert "1 error" in refused_run.stdout, refused_run.stdout
    allowed_run = subprocess.run([*pytest_run, "--retrace-allow-outside-project"], cwd=elsewhere,
                                 capture_output=True, text=True, timeout=300)
    assert "1 passed" in allowed_run.stdout, allowed_run.stdout
    (elsewhere / "pytest.ini").write_text("[pytest]\nretrace_allow_outside_project = true\n")
    by_ini = subprocess.run(pytest_run, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert "1 passed" in by_ini.stdout, by_ini.stdout
