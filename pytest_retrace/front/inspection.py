"""What an agent asks of recordings (the ``retrace mcp`` tools), answered as typed records that write themselves
as JSON: the recordings in a folder, one recording's header and outcome, its events.

Everything here only reads: a recording is untrusted input, and reading one runs no code. Values are shown as
bounded reprs (:func:`~.fitting.fit`, then escaped by :func:`~.report.printable`), as the recording holds them —
redacted at record time, and sealed ones only with their key.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RetraceError
from ..fitting import fit
from ..format.tape import Recording, TapeStatus, read_recording
from ..kinds.entry import Project
from ..kinds.outcome import Outcome
from ..kinds.subject import Subject
from ..record import Record
from .pinning import Crash, crash_of, recordings_in
from .report import printable

if TYPE_CHECKING:
    from .incidents import Incident

VALUE_WIDTH = 200  # characters of a value's repr an answer holds
MAX_EVENTS = 500  # events one list_events answer holds at most


def shown(value: Any, width: int = VALUE_WIDTH) -> str:
    """A value from a recording as an answer holds it: a bounded, printable repr."""
    return printable(fit(value, width))


class RecordingSummary(Record):
    """A recording as ``list_recordings`` lists it."""

    __slots__ = ("path", "status", "problem", "subject", "created_at", "events", "crash")

    def __init__(self, path: str, status: str, problem: str | None = None, subject: Subject | None = None,
                 created_at: str | None = None, events: int | None = None, crash: Crash | None = None
                 ) -> None:
        self.path = path
        self.status = status  # complete, truncated, corrupt, or unreadable
        self.problem = problem
        self.subject = subject
        self.created_at = created_at
        self.events = events
        self.crash = crash


class Frame(Record):
    """A frame of a recorded traceback (the program's own, or library code)."""

    __slots__ = ("file", "line", "function", "source")

    def __init__(self, file: str, line: int, function: str, source: str | None) -> None:
        self.file = file
        self.line = line
        self.function = function
        self.source = source


class Trace(Record):
    """One recording opened (``open_trace``): what it is, how it ended, how many events and threads."""

    __slots__ = ("summary", "argv", "python", "platform", "threads", "exit_status", "exception", "traceback",
                 "returned")

    def __init__(self, summary: RecordingSummary, argv: list[str], python: str | None, platform: str | None,
                 threads: list[str], exit_status: int | None, exception: str | None, traceback: list[Frame],
                 returned: str | None) -> None:
        self.summary = summary
        self.argv = argv
        self.python = python
        self.platform = platform
        self.threads = threads
        self.exit_status = exit_status
        self.exception = exception  # "Type: message" of the uncaught exception, if any
        self.traceback = traceback
        self.returned = returned  # a request's response or a call's return value, as recorded


class EventView(Record):
    """One recorded event: its position, thread, the call and what it answered."""

    __slots__ = ("index", "thread", "name", "args", "result")

    def __init__(self, index: int, thread: str, name: str, args: str, result: str) -> None:
        self.index = index
        self.thread = thread
        self.name = name
        self.args = args
        self.result = result


def _read(path: str | os.PathLike[str], events: bool) -> Recording:
    rec = read_recording(path, events=events)
    if events and rec.status == TapeStatus.CORRUPT:
        raise rec.corrupt_error()
    return rec


def _summary(rec: Recording) -> RecordingSummary:
    crash = crash_of(rec) if rec.status == TapeStatus.COMPLETE else None
    return RecordingSummary(rec.path, str(rec.status), rec.problem, Subject.of(rec.header),
                            rec.header.get("created_at"), rec.count,
                            crash)


def _folder(folder: str | os.PathLike[str]) -> Path:
    found = Path(folder)
    if not found.is_dir():
        raise RetraceError(f"{folder}: not a folder; give the folder that holds the recordings")
    return found


def list_recordings(folder: str | os.PathLike[str]) -> list[RecordingSummary]:
    """The recordings under ``folder`` (at any depth), each summarized; one that cannot be read says why."""
    found = _folder(folder)
    listed = []
    for path in recordings_in(found):
        try:
            listed.append(_summary(_read(path, events=False)))
        except RetraceError as exc:
            listed.append(RecordingSummary(str(path), "unreadable", problem=str(exc)))
    return listed


def open_trace(path: str | os.PathLike[str]) -> Trace:
    rec = _read(path, events=True)
    outcome = Outcome.from_json(rec.end or {})
    exception = outcome.exception
    frames = [Frame(str(f[0]), int(f[1]), str(f[2]), str(f[3]) if len(f) > 3 and f[3] else None)
              for f in (exception.traceback if exception else [])]
    threads = sorted({str(e.tid) for e in rec.events()})
    returned = outcome.returned
    return Trace(_summary(rec), [str(a) for a in rec.header.get("argv", [])], rec.header.get("python"),
                 rec.header.get("platform"), threads, outcome.status,
                 printable(f"{exception.type}: {exception.message}") if exception else None, frames,
                 shown(returned.head) if returned is not None and returned.head is not None else None)


def list_events(path: str | os.PathLike[str], start: int = 0, count: int = 50, name: str | None = None,
                thread: str | None = None) -> list[EventView]:
    """Events from position ``start`` on, at most ``count`` (bounded by :data:`MAX_EVENTS`), only those whose call
    name holds ``name`` and that ran on ``thread`` when given."""
    if start < 0 or count < 0:
        raise RetraceError(f"start {start} and count {count}: give positions from 0 on and a count of 0 or more")
    events = _read(path, events=True).events()
    count = min(count, MAX_EVENTS)
    listed: list[EventView] = []
    for index in range(start, len(events)):
        if len(listed) >= count:
            break
        event = events[index]
        if (name is not None and name not in event.name) or (thread is not None and str(event.tid) != thread):
            continue
        listed.append(EventView(index, str(event.tid), printable(event.name), shown(event.args),
                                shown(event.result)))
    return listed


def incidents(folder: str | os.PathLike[str]) -> list[Incident]:
    """The crash incidents of the recordings in ``folder``, as its state holds them (``incidents.py``)."""
    from .incidents import list_incidents

    return list_incidents(_folder(folder))


# -- answers from a replay: the program's state at a stop ---------------------------------------------------------


def _project() -> Project:
    """The project replays run the code of: the one the server was started in (its root found upwards)."""
    from ..paths import project_root_of

    return Project(project_root_of(Path.cwd()), allow_option="--allow-outside-project to retrace replay (the MCP "
                   "server runs only its project's code)")


def crash_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Replay the recording to its crash: the exception, and the program's stack (outermost first) with each frame's
    locals as the crash found them."""
    trace = open_trace(path)
    if trace.exception is None:
        raise RetraceError(f"{path}: the recorded run did not crash (exit status {trace.exit_status}); "
                           "inspect_stack shows the program's state before any event")
    answer = _inspect(os.fspath(path), _project())
    return {"exception": trace.exception, "recorded_traceback": [f.to_json() for f in trace.traceback], **answer}


def stack_at(path: str | os.PathLike[str], event: int) -> dict[str, Any]:
    """Replay the recording to just before event ``event``: the program's stack there with its locals."""
    _check_position(path, event)
    return _inspect(os.fspath(path), _project(), at=event)


def _check_position(path: str | os.PathLike[str], event: int | None) -> None:
    if event is None:
        return
    count = _read(path, events=False).count
    if not 0 <= event < count:
        raise RetraceError(f"{path}: there is no event #{event}: the recording has events #0 to #{count - 1} "
                           "(list_events shows them)")


def provenance(path: str | os.PathLike[str], name: str, event: int | None = None,
               frame: int | None = None) -> dict[str, Any]:
    """How local ``name`` of stack frame ``frame`` (outermost first; None: the innermost) got its value, at the
    crash or just before event ``event``."""
    _check_position(path, event)
    return _inspect(os.fspath(path), _project(), at=event, frame=frame, name=name)


def _inspect(path: str, project: Project, at: int | None = None, frame: int | None = None,
             name: str | None = None) -> dict[str, Any]:
    """Replay ``path`` to its crash (or to just before event ``at``) and answer: the program's stack with its locals,
    and with ``name`` how that local (in stack frame ``frame``) got its value. Raises RetraceError saying why when
    the replay gives no answer (it ended before, or cannot run). The program's own output is kept from our stdout
    (the MCP server talks there)."""
    from ..runner.debugging import DebugSettings
    from ..runner.inspector import Question
    from ..runner.launcher import DebugQuit, debug_replay

    fd, answer = tempfile.mkstemp(prefix="retrace-inspect-", suffix=".json")
    os.close(fd)
    try:
        question = Question(answer, at, frame, name)
        settings = DebugSettings(at=at, inspect=question.to_json())
        try:
            verdict = debug_replay(path, project, settings, passthrough=False)
            if verdict.problem and not os.path.getsize(answer):  # the replay could not run (corrupt …)
                raise RetraceError(verdict.problem)
        except DebugQuit:
            verdict = None
        with open(answer, encoding="utf-8") as f:
            text = f.read()
        if not text:
            said = verdict.problem if verdict is not None and verdict.problem else None
            where = f"event #{at}" if at is not None else "a crash"
            raise RetraceError(f"{path}: the replay ended without reaching {where}"
                               + (f" ({said})" if said else "") + "; list its events to pick one it reaches")
        return json.loads(text)  # type: ignore[no-any-return]
    finally:
        os.unlink(answer)
