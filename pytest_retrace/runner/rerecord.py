"""Recording again, live (``pytest --retrace-record-mode=rewrite``): after a deliberate change a recording
diverges for good; this runs what it recorded once more against the live world — the real database, the real
HTTP services, this machine's environment — from the recorded input, and writes a new recording in its place,
keeping the old one beside it as ``NAME.retrace.orig``.

- A request is sent again to the app (its recorded environ and body: what was redacted goes as the placeholder,
  unless the recording was sealed, which holds the real values), a call is made again with its recorded
  arguments, each in a fresh interpreter (:func:`main`) under a recorder of our own with the recording's tags,
  redaction policy and, for a sealed one, its project key. The app's or function's own recorder, set up as the
  module imports, records nothing inside ours.
- A process recording (only when asked: ``rewrite-all``) is recorded again by ``retrace record`` with its
  recorded arguments, in its folder.

The new recording is put in place only after it replays faithfully; until then nothing is changed, and a
re-recording that fails or does not replay leaves the original where it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import RetraceError
from ..format.sealing import key_for, keys_for_child
from ..format.tape import Kind, Recording
from ..kinds.entry import Project, check_entry, localized
from ..record import Record

ORIGINAL = ".orig"  # the suffix the replaced recording keeps
TIMEOUT = 300.0  # seconds a live re-run may take (it talks to real services)


class Rerecording(Record):
    """A new recording made live in ``folder`` (a temporary folder beside the old one), not yet in place."""

    __slots__ = ("path", "folder")

    def __init__(self, path: str, folder: str) -> None:
        self.path = path
        self.folder = folder

    def put_in_place(self, old: str) -> str:
        """Move the old recording to ``old + .orig`` (over an earlier one) and this one to ``old``; returns the
        original's new path."""
        original = old + ORIGINAL
        os.replace(old, original)
        os.replace(self.path, old)
        self.discard()
        return original

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def record_again(path: str, rec: Recording, project: Project, timeout: float = TIMEOUT) -> Rerecording:
    """Run what ``rec`` (read from ``path``) recorded again, live, into a new recording beside it. Raises
    :class:`RetraceError` saying why when no recording comes of it."""
    header = rec.header
    location = check_entry(header, project, path)
    here = localized(header, location)
    folder = tempfile.mkdtemp(prefix=".rerecord-", dir=os.path.dirname(os.path.abspath(path)))
    env = dict(os.environ, PYTHONHASHSEED=str(header.get("hash_seed", 0)))
    keys_for_child(env)
    public = key_for(rec.envelope, path).public.text() if rec.envelope is not None else None
    kind = Kind.of(header)
    if kind == Kind.PROCESS:
        target = os.path.join(folder, os.path.basename(path))
        command = [sys.executable, "-m", "pytest_retrace", "record", "-o", target]
        command += [arg for key, value in (here.get("tags") or {}).items() for arg in ("--tag", f"{key}={value}")]
        command += ["--public-key", public] if public else []
        entry = here["entry"]
        argv = [str(arg) for arg in here["argv"]]
        command += ["-m", str(entry["module"]), "--", *argv[1:]] if "module" in entry else ["--", *argv]
        cwd = location.cwd or str(project.root)
    else:
        config = {"recording": os.path.abspath(path), "project": project.to_json(), "folder": folder,
                  "public_key": public}
        command = [sys.executable, "-m", "pytest_retrace.runner.rerecord", json.dumps(config)]
        cwd = str(project.root)
    try:
        ran = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        shutil.rmtree(folder, ignore_errors=True)
        raise RetraceError(f"{path}: recording it again took longer than {timeout:.0f} s; nothing changed") from None
    made = sorted(Path(folder).glob("*.retrace"))
    if len(made) != 1:
        shutil.rmtree(folder, ignore_errors=True)
        said = ran.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RetraceError(f"{path}: recording it again made {len(made)} recordings, not one (exit status "
                           f"{ran.returncode}); nothing changed" + (f"\n{said}" if said else ""))
    return Rerecording(str(made[0]), folder)


# -- the child: a fresh interpreter that answers the request or makes the call again, recorded ------------------


def _again(config: dict[str, Any]) -> None:
    import threading

    from ..format.sealing import keys_from_parent
    from ..format.tape import read_recording
    from ..kinds.call import record_calls
    from ..kinds.entry import resolve
    from ..kinds.request import RecordingMiddleware, replay_environ, request_outcome
    from ..redaction import Redaction

    keys_from_parent()
    path = config["recording"]
    project = Project.from_json(config["project"])
    rec = read_recording(path, events=False)
    location = check_entry(rec.header, project, path)
    header = localized(rec.header, location)
    if location.cwd is not None:
        os.chdir(location.cwd)
    entry = header["entry"]
    redaction = Redaction.from_header(header)
    options = {"redact": redaction, "public_key": config["public_key"], "tags": header.get("tags") or None}
    target = resolve(entry, project)  # the app or function itself: its own recorder, if any, is inside ours
    if Kind.of(header) == Kind.WSGI:
        app = RecordingMiddleware(target, config["folder"], "all", entry=entry["app"], **options)

        def again() -> None:
            request_outcome(app, replay_environ(entry["environ"], entry["body"]), lambda: None, redaction)
    else:
        function = record_calls(config["folder"], "all", **options)(target)

        def again() -> None:
            try:
                function(*entry["args"], **entry["kwargs"])
            except Exception:  # the recording holds how the call ended
                pass

    # On a thread of its own, as a server's worker answers a request; the recording is written as the process
    # exits (the writer waits for it).
    worker = threading.Thread(target=again, name="retrace-rerecord")
    worker.start()
    worker.join()


def main() -> None:
    _again(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
