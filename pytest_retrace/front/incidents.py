"""Crash incidents across runs: the state file beside the recordings.

One incident per crash fingerprint, with when it was first and last seen, how often, and its status:
``new`` (triage found it) → ``pinned`` (``retrace pin`` kept it as a regression case) → ``fixed`` (its pinned case
passed as crash-fixed) → ``regressed`` (it fails again after passing) → ``fixed`` … Each change is a transition
in the incident's history, with its date.

Where the state lives: ``.retrace-incidents.json`` in the folder of the recordings, found as the nearest one in that
folder or above it (else made there). ``retrace triage DIR`` keeps DIR's; ``retrace pin`` marks the incident in the
state of the folder the crash came from and in the regression folder's; a pytest run over pinned cases updates the
regression folder's. The two meet through the incident's pinned path: triage takes a pinned incident's status and
later history from the state beside its pinned case, so the production folder's state says what the tests found.

Writers take an exclusive lock on the folder (``flock``) around read, change and write, and write a temporary file
renamed into place (mode 0600): runs at the same time wait for each other instead of losing what the other counted.
A damaged or hand-edited file that does not read as a state is an error that names it; it is never rebuilt silently,
since the statuses and history it holds are not in the recordings.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..enums import StrEnum
from ..errors import RetraceError
from ..format.tape import TapeStatus, read_header, read_recording
from ..record import Record
from .pinning import Crash, crash_of, recordings_in

STATE_NAME = ".retrace-incidents.json"
SEALED = "(sealed)"  # the message of a sealed recording's crash: not kept in the clear
_FORMAT = "retrace-incidents"
_VERSION = 1


class IncidentStateError(RetraceError):
    """An incident state file that cannot be read or written."""


class IncidentStatus(StrEnum):
    NEW = "new"
    PINNED = "pinned"
    FIXED = "fixed"
    REGRESSED = "regressed"


class Happening(StrEnum):
    """What moves an incident on."""

    PINNED = "pinned"  # retrace pin kept it as a regression case
    PASSED = "passed"  # its pinned case passed: crash-fixed
    FAILED = "failed"  # its pinned case failed: crash-reproduced


def next_status(status: IncidentStatus, happening: Happening) -> IncidentStatus:
    """The status an incident moves to (its own when nothing changes): pinning pins whatever it was; a pinned case
    that passes is fixed; one that fails again after it passed has regressed, and a failing one that never passed
    stays pinned."""
    if happening == Happening.PINNED:
        return IncidentStatus.PINNED
    if happening == Happening.PASSED:
        return IncidentStatus.FIXED
    return IncidentStatus.REGRESSED if status == IncidentStatus.FIXED else status


class Transition(Record):
    """A change of an incident's status: to what, when (UTC, ISO 8601), and why."""

    __slots__ = ("status", "at", "why")

    def __init__(self, status: IncidentStatus, at: str, why: str) -> None:
        self.status = status
        self.at = at
        self.why = why


class Incident(Record):
    """A crash, by its fingerprint, across the runs that met it. ``first_seen``/``last_seen`` come from the
    recordings' created-at (UTC); ``count`` is every crash recording triage met, also those rotated away since;
    ``recordings`` are the ones still in the folder that were counted (paths relative to the state's folder), so a
    second triage counts each recording once; ``pinned`` is the pinned case's path, relative to the state's
    folder."""

    __slots__ = ("fingerprint", "exception", "message", "place", "first_seen", "last_seen", "count", "status",
                 "pinned", "history", "recordings")

    def __init__(self, fingerprint: str, exception: str, message: str, place: str, first_seen: str | None = None,
                 last_seen: str | None = None, count: int = 0, status: IncidentStatus = IncidentStatus.NEW,
                 pinned: str | None = None, history: list[Transition] | None = None,
                 recordings: list[str] | None = None) -> None:
        self.fingerprint = fingerprint
        self.exception = exception
        self.message = message
        self.place = place
        self.first_seen = first_seen
        self.last_seen = last_seen
        self.count = count
        self.status = status
        self.pinned = pinned
        self.history = history if history is not None else []
        self.recordings = recordings if recordings is not None else []

    @classmethod
    def of(cls, crash: Crash, sealed: bool = False) -> Incident:
        """A new incident of ``crash``; of a sealed recording without its message, which may hold what the seal
        keeps (the type and place are in the pinned case's name already)."""
        return cls(crash.fingerprint, crash.type, SEALED if sealed else crash.message, crash.place)

    @property
    def title(self) -> str:
        """How a summary names it: ``ValueError in pricing-total``."""
        return f"{self.exception.rsplit('.', 1)[-1]} in {self.place}"

    def move(self, happening: Happening, why: str, at: str | None = None) -> Transition | None:
        """Apply what happened; the transition made, or None when the status stays."""
        status = next_status(self.status, happening)
        if status == self.status:
            return None
        self.status = status
        transition = Transition(status, at or now(), why)
        self.history.append(transition)
        return transition

    def seen(self, created_at: str | None) -> None:
        if created_at is None:
            return
        self.first_seen = min(self.first_seen or created_at, created_at)
        self.last_seen = max(self.last_seen or created_at, created_at)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def utc(created_at: Any) -> str | None:
    """A recording's created-at (local time with its offset) in UTC, so that times from machines in other zones
    compare; None when the header holds no such time."""
    try:
        moment = datetime.datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        return None
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="seconds")


# -- the file ---------------------------------------------------------------------------------------------------

class IncidentState:
    """The incidents of one state file, by fingerprint."""

    def __init__(self, path: Path, incidents: dict[str, Incident] | None = None) -> None:
        self.path = path
        self.incidents = incidents if incidents is not None else {}

    @property
    def folder(self) -> Path:
        return self.path.parent

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": _VERSION,
                "incidents": [incident.to_json() for incident in self.incidents.values()]}

    def relative(self, path: str | os.PathLike[str]) -> str:
        """A path as the state holds it: relative to its folder, so that the state travels with the folders."""
        return os.path.relpath(os.path.abspath(path), os.path.abspath(self.folder))

    def absolute(self, path: str) -> Path:
        return Path(os.path.normpath(self.folder.absolute() / path))


def state_file_for(folder: str | os.PathLike[str]) -> Path:
    """The state file of the recordings in ``folder``: the nearest one in it or above it, else a new one in it."""
    start = Path(os.path.abspath(folder))
    for place in (start, *start.parents):
        if (place / STATE_NAME).is_file():
            return place / STATE_NAME
    return start / STATE_NAME


def read_state(path: Path) -> IncidentState:
    """The state in ``path`` (empty when there is none yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return IncidentState(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise IncidentStateError(f"{path}: cannot read the incident state file ({exc}); {_REMEDY}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _damaged(path, f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise _damaged(path, f"not a {_FORMAT} file")
    if data.get("version") != _VERSION:
        raise IncidentStateError(f"{path}: incident state version {data.get('version')!r}, this pytest-retrace "
                                 f"reads version {_VERSION}; upgrade pytest-retrace, or {_REMEDY}")
    entries = data.get("incidents")
    if not isinstance(entries, list):
        raise _damaged(path, "'incidents' is not a list")
    incidents: dict[str, Incident] = {}
    for index, entry in enumerate(entries):
        try:
            incident = _incident(entry)
        except (TypeError, ValueError) as exc:
            raise _damaged(path, f"incident #{index}: {exc}") from None
        if incident.fingerprint in incidents:
            raise _damaged(path, f"incident #{index}: fingerprint {incident.fingerprint} is listed twice")
        incidents[incident.fingerprint] = incident
    return IncidentState(path, incidents)


_REMEDY = ("delete it and run `retrace triage` to start again (the statuses and history it held are lost), or "
           "restore it from version control")


def _damaged(path: Path, what: str) -> IncidentStateError:
    from .report import printable  # what a hand-edited file says goes to a terminal escaped

    return IncidentStateError(printable(f"{path}: damaged incident state file: {what}; {_REMEDY}"))


def _field(entry: dict[str, Any], name: str, kinds: tuple[type, ...]) -> Any:
    if name not in entry:
        raise ValueError(f"no '{name}'")
    value = entry[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ValueError(f"'{name}' is a {type(value).__name__} ({str(value)[:40]!r})")
    return value


def _incident(entry: Any) -> Incident:
    """An incident from the file, every field checked (the file may have been edited by hand)."""
    if not isinstance(entry, dict):
        raise TypeError(f"is a {type(entry).__name__}, not an object")
    optional = (str, type(None))
    history = []
    for item in _field(entry, "history", (list,)):
        if not isinstance(item, dict):
            raise TypeError("a transition is not an object")
        history.append(Transition(IncidentStatus(_field(item, "status", (str,))), _field(item, "at", (str,)),
                                  _field(item, "why", (str,))))
    recordings = _field(entry, "recordings", (list,))
    if not all(isinstance(path, str) for path in recordings):
        raise TypeError("'recordings' holds something other than paths")
    count = _field(entry, "count", (int,))
    if count < 0:
        raise ValueError(f"'count' is negative ({count})")
    return Incident(_field(entry, "fingerprint", (str,)), _field(entry, "exception", (str,)),
                    _field(entry, "message", (str,)), _field(entry, "place", (str,)),
                    _field(entry, "first_seen", optional), _field(entry, "last_seen", optional), count,
                    IncidentStatus(_field(entry, "status", (str,))), _field(entry, "pinned", optional), history,
                    recordings)


def _write(state: IncidentState) -> None:
    """Write the state atomically: a temporary file (0600, as recordings are: it names production crashes) renamed
    into place."""
    text = json.dumps(state.to_json(), indent=2) + "\n"
    try:
        fd, temporary = tempfile.mkstemp(dir=state.folder, prefix=STATE_NAME + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, state.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise IncidentStateError(f"{state.path}: cannot write the incident state file ({exc.strerror}); make its "
                                 "folder writable") from None


@contextlib.contextmanager
def updating(path: Path) -> Iterator[IncidentState]:
    """The state in ``path`` to change, written back when the block ends (if it changed). The folder is locked
    meanwhile: another writer waits, then reads what this one wrote."""
    import fcntl

    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise IncidentStateError(f"{path.parent}: cannot keep the incident state there ({exc.strerror})") from None
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        state = read_state(path)
        before = state.to_json()
        yield state
        if state.to_json() != before:
            _write(state)
    finally:
        os.close(folder)  # and the lock with it


# -- triage -----------------------------------------------------------------------------------------------------

def triage(folder: str | os.PathLike[str], unreadable: list[str] | None = None) -> list[Incident]:
    """Meet the crash recordings in ``folder`` (and below it) and update its state: a new fingerprint is a ``new``
    incident, each recording not counted before adds to its count and moves its first and last seen, a pinned
    case found there pins it, and a pinned incident takes the status the state beside its pinned case holds.
    Returns every incident of the state, most frequent first. Recordings that cannot be read, or are corrupt, are
    left out; ``unreadable`` is told why, one line each."""
    found = list(_crashes(Path(folder), unreadable))
    with updating(Path(os.path.abspath(folder)) / STATE_NAME) as state:
        present: dict[str, set[str]] = {}
        for path, crash, created_at, pin, sealed in found:
            incident = state.incidents.setdefault(crash.fingerprint, Incident.of(crash, sealed))
            where = state.relative(path)
            if not incident.history:
                incident.history.append(Transition(IncidentStatus.NEW, now(), f"first met in {where}"))
            present.setdefault(crash.fingerprint, set()).add(where)
            if where not in incident.recordings:
                incident.count += 1
                incident.seen(created_at)
            if pin and incident.pinned is None:
                incident.pinned = where
                incident.move(Happening.PINNED, f"pinned as {where}", utc(pin.get("pinned_at")))
        for incident in state.incidents.values():  # recordings rotated away stay counted, no longer listed
            incident.recordings = sorted(present.get(incident.fingerprint, ()))
        _follow_pinned_cases(state)
        # A sealed crash's message stays out of the state file; shown here, it is the one its opened recording holds.
        opened = {crash.fingerprint: crash.message for _, crash, _, _, _ in found}
        shown = [incident.replace(message=opened[incident.fingerprint])
                 if incident.message == SEALED and incident.fingerprint in opened else incident
                 for incident in state.incidents.values()]
        return sorted(shown, key=lambda i: (-i.count, i.first_seen or ""))


def _crashes(folder: Path,
             unreadable: list[str] | None) -> Iterator[tuple[Path, Crash, str | None, dict[str, Any], bool]]:
    """The crash recordings in ``folder``: path, crash, created-at (UTC), pin metadata, and whether it is sealed."""
    for path in recordings_in(folder):
        try:
            rec = read_recording(path)
            if rec.status == TapeStatus.CORRUPT:
                raise rec.corrupt_error()
        except RetraceError as exc:
            if unreadable is not None:
                unreadable.append(str(exc))
            continue
        if rec.status == TapeStatus.TRUNCATED and unreadable is not None:  # how its run ended is not in it
            unreadable.append(f"{path}: truncated ({rec.problem}): the recorded process was killed before it ended, "
                              "so the recording holds no outcome to triage")
        crash = crash_of(rec) if rec.status == TapeStatus.COMPLETE else None
        if crash is not None:
            pin = rec.header.get("pin")
            yield (path, crash, utc(rec.header.get("created_at")), pin if isinstance(pin, dict) else {},
                   rec.envelope is not None)


_FOLLOWED = (IncidentStatus.FIXED, IncidentStatus.REGRESSED)  # what a pinned case's replays move it to


def _follow_pinned_cases(state: IncidentState) -> None:
    """Pinned incidents take the status, and the transitions, that the state beside their pinned case holds (what
    pytest runs over the pinned cases found)."""
    for incident in state.incidents.values():
        if incident.pinned is None:
            continue
        other_path = state_file_for(state.absolute(incident.pinned).parent)
        if other_path == state.path or not other_path.is_file():
            continue
        there = read_state(other_path).incidents.get(incident.fingerprint)
        if there is None:
            continue
        # Fixed and regressed come only from there, in its order: take the ones after those taken before (by
        # count: two of one status may share a second, which is all the dates tell apart).
        taken = sum(1 for t in incident.history if t.status in _FOLLOWED)
        incident.history += [t for t in there.history if t.status in _FOLLOWED][taken:]
        incident.history.sort(key=lambda t: t.at)  # stable: same-second transitions keep their order
        if there.status != IncidentStatus.NEW:
            incident.status = there.status


def list_incidents(folder: str | os.PathLike[str]) -> list[Incident]:
    """The incidents of the recordings in ``folder`` as its state holds them, pinned ones with the status found
    beside their pinned case; most recently seen first. Reads only (for other tools: the MCP server)."""
    state = read_state(state_file_for(folder))
    _follow_pinned_cases(state)
    return sorted(state.incidents.values(), key=lambda i: i.last_seen or "", reverse=True)


# -- pin --------------------------------------------------------------------------------------------------------

def states_of_pin(source: str | os.PathLike[str], into: str | os.PathLike[str]) -> list[Path]:
    """The state files a pin from ``source`` into the folder ``into`` updates, each once, every one readable (so
    that a damaged one stops the pin before anything is copied). The source's is left out when its folder cannot
    be written (a read-only mount of production recordings)."""
    paths = [state_file_for(into)]
    source_state = state_file_for(Path(source).parent)
    if source_state not in paths and (source_state.is_file() or os.access(source_state.parent, os.W_OK)):
        paths.append(source_state)
    for path in paths:
        read_state(path)
    return paths


def record_pin(source: str | os.PathLike[str], target: Path, states: Iterable[Path]) -> None:
    """Mark the incident of the crash pinned from ``source`` as ``target`` pinned, in each of ``states``."""
    rec = read_recording(target, events=False)
    crash = crash_of(rec)
    assert crash is not None  # only crashes are pinned
    pin = rec.header["pin"]
    for path in states:
        with updating(path) as state:
            incident = state.incidents.setdefault(crash.fingerprint, Incident.of(crash, rec.envelope is not None))
            if not incident.history:
                incident.history.append(Transition(IncidentStatus.NEW, pin["pinned_at"],
                                                   f"first met in {state.relative(source)}"))
                incident.count = 1
                incident.seen(utc(rec.header.get("created_at")))
            incident.pinned = state.relative(target)
            incident.move(Happening.PINNED, f"pinned as {incident.pinned}", pin["pinned_at"])


# -- pytest -----------------------------------------------------------------------------------------------------

class Change(Record):
    """A transition a pytest run made: the incident (as it is now), the transition, the pinned case, and the state
    file that holds it."""

    __slots__ = ("incident", "transition", "recording", "state")

    def __init__(self, incident: Incident, transition: Transition, recording: str, state: str) -> None:
        self.incident = incident
        self.transition = transition
        self.recording = recording
        self.state = state

    def to_json(self) -> dict[str, Any]:
        incident = self.incident
        return {"fingerprint": incident.fingerprint, "exception": incident.exception, "place": incident.place,
                "status": str(self.transition.status), "at": self.transition.at, "why": self.transition.why,
                "recording": self.recording, "state": self.state}


def record_results(results: Iterable[tuple[str, Happening]]) -> tuple[list[Change], list[str]]:
    """Move the incidents of pinned cases on by what their replays did (``results``: the pinned recording's path,
    and whether it passed or failed), in the state beside each. Returns the transitions made, and the problems met
    (a damaged state file, an unreadable header), one line each."""
    by_state: dict[Path, list[tuple[str, Happening, dict[str, Any]]]] = {}
    problems: list[str] = []
    for recording, happening in results:
        pin = (read_header(recording) or {}).get("pin")
        if not isinstance(pin, dict) or not isinstance(pin.get("fingerprint"), str):
            problems.append(f"{recording}: its pin metadata cannot be read; its incident was not updated")
            continue
        by_state.setdefault(state_file_for(Path(recording).parent), []).append((recording, happening, pin))
    changes: list[Change] = []
    for path, cases in by_state.items():
        try:
            with updating(path) as state:
                for recording, happening, pin in cases:
                    # A sealed case's readable pin holds only its fingerprint and date.
                    exception, message, place = (pin[key] if isinstance(pin.get(key), str) else SEALED
                                                 for key in ("exception", "message", "place"))
                    crash = Crash(exception, message, place, pin["fingerprint"])
                    incident = state.incidents.get(crash.fingerprint)
                    if incident is None:  # pinned before the state was kept: it starts pinned
                        incident = state.incidents[crash.fingerprint] = Incident.of(crash)
                        incident.move(Happening.PINNED, f"pinned as {state.relative(recording)}",
                                      utc(pin.get("pinned_at")))
                    incident.pinned = incident.pinned or state.relative(recording)
                    verdict = "crash-fixed" if happening == Happening.PASSED else "crash-reproduced"
                    transition = incident.move(happening, f"its pinned case replayed as {verdict}")
                    if transition is not None:
                        changes.append(Change(incident, transition, recording, str(path)))
        except IncidentStateError as exc:
            problems.append(str(exc))
    return changes, problems


def describe(changes: list[Change]) -> str:
    """The summary's line: ``incidents: 1 fixed (ValueError in pricing-total), 1 regressed (…)``."""
    parts = []
    for status in IncidentStatus:
        titles = [change.incident.title for change in changes if change.transition.status == status]
        if titles:
            parts.append(f"{len(titles)} {status} ({', '.join(titles)})")
    return "incidents: " + ", ".join(parts)
