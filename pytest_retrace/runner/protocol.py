"""What the launcher and the child it starts agree on: the child's configuration and the result it reports.

The launcher (parent side) starts a fresh interpreter running :data:`CHILD_CODE` with the
configuration, as JSON, in the environment variable :data:`CHILD_ENV`: a :class:`RecordConfig`,
a :class:`ReplayConfig`, a :class:`ForkServerConfig` or a :class:`ZygoteConfig`. A recording or replaying
child writes a :class:`ChildResult` as JSON to the file the configuration names; a fork server answers
on a pipe, a zygote on its socket. Both ends are the same version of pytest-retrace, so this is no stored format.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..engine.divergence import Divergence
from ..engine.keyed import KeyedSummary
from ..engine.setup import SetupSummary
from ..engine.state import internal
from ..enums import StrEnum
from ..kinds.entry import Project
from ..kinds.outcome import Outcome
from ..record import Record, read_field
from ..redaction import Redaction

CHILD_ENV = "_PYTEST_RETRACE_CHILD"  # the child's configuration, as JSON
CHILD_CODE = "from pytest_retrace.runner.child import main; main()"
LAUNCHER_ENV = "_PYTEST_RETRACE_LAUNCHER"  # the launcher's pid: a recording or replaying child dies with it


class Mode(StrEnum):
    RECORD = "record"
    REPLAY = "replay"
    FORKSERVER = "forkserver"
    ZYGOTE = "zygote"


class RecordConfig(Record):
    """Record the program ``entry`` (``{"script": …}`` or ``{"module": …}``) with ``argv`` into ``output``."""

    __slots__ = ("output", "entry", "argv", "hash_seed", "live_paths", "tags", "redaction", "result", "plugins",
                 "parent", "sealer")
    mode = Mode.RECORD

    def __init__(self, output: str, entry: dict[str, str], argv: list[str], hash_seed: int,
                 live_paths: list[str] | None = None, tags: dict[str, str] | None = None,
                 redaction: Redaction | dict[str, Any] | None = None,
                 result: str = "", plugins: list[str] | None = None, parent: int | None = None,
                 sealer: dict[str, Any] | None = None) -> None:
        self.output = output  # "": the program runs unrecorded (the recording could not even be started)
        self.entry = entry
        self.argv = argv
        self.hash_seed = hash_seed
        self.live_paths: list[str] = live_paths or []
        self.tags: dict[str, str] = tags or {}
        # the policy (as JSON on the way to the child); None: the default
        self.redaction = Redaction(**redaction) if isinstance(redaction, dict) else redaction
        self.result = result  # where the child writes its ChildResult
        self.plugins: list[str] = plugins or []  # installed packages' plugins, found by the launcher
        self.parent = parent  # the launcher's parent: the program's parent as the user sees it
        self.sealer = sealer  # the recording's key, when it is sealed (the launcher seals END with it too)


class ReplayConfig(Record):
    """Replay ``recording``, running only the code of ``project``. A fork server's child also gets the files its
    stdout and stderr go to; a zygote's, the folder the launcher is in (where a cold child would start).
    ``progress``: the file the child keeps its count of consumed events in, when the launcher shows a progress
    line (``runner/progress.py``)."""

    __slots__ = ("recording", "project", "stuck_timeout", "result", "plugins", "stdout", "stderr", "cwd", "progress")
    mode = Mode.REPLAY

    def __init__(self, recording: str, project: Project | dict[str, Any], stuck_timeout: float = 10.0,
                 result: str = "", plugins: list[str] | None = None, stdout: str | None = None,
                 stderr: str | None = None, cwd: str | None = None, progress: str | None = None) -> None:
        self.recording = recording
        self.project = _project(project)
        self.stuck_timeout = stuck_timeout
        self.result = result
        self.plugins: list[str] = plugins or []
        self.stdout = stdout
        self.stderr = stderr
        self.cwd = cwd
        self.progress = progress


class ForkServerConfig(Record):
    """Prepare as a replay of ``recording`` would (for ``project``), then fork a replay per command; answer on fd
    ``answers``."""

    __slots__ = ("recording", "answers", "project", "plugins")
    mode = Mode.FORKSERVER

    def __init__(self, recording: str, answers: int, project: Project | dict[str, Any],
                 plugins: list[str] | None = None) -> None:
        self.recording = recording
        self.answers = answers
        self.project = _project(project)
        self.plugins: list[str] = plugins or []


class ZygoteConfig(Record):
    """Start as a process replay's interpreter starts, then fork a replay per command read from the socket on fd
    ``channel`` (``runner/zygote.py``)."""

    __slots__ = ("channel", "plugins")
    mode = Mode.ZYGOTE

    def __init__(self, channel: int, plugins: list[str] | None = None) -> None:
        self.channel = channel
        self.plugins: list[str] = plugins or []


def _project(project: Project | dict[str, Any]) -> Project:
    """The project a replay runs the code of, as given or as read back from the configuration's JSON."""
    return project if isinstance(project, Project) else Project.from_json(project)


ChildConfig = RecordConfig | ReplayConfig | ForkServerConfig | ZygoteConfig
_CONFIGS: dict[str, type[ChildConfig]] = {c.mode: c for c in (RecordConfig, ReplayConfig, ForkServerConfig,
                                                                ZygoteConfig)}


def encode_config(config: ChildConfig) -> str:
    return json.dumps({"mode": str(config.mode), **config.to_json()})


def decode_config(text: str) -> ChildConfig:
    data = json.loads(text)
    return _CONFIGS[data.pop("mode")](**data)


class ChildResult(Record):
    """What a child reports when the program ended (or a replay diverged)."""

    __slots__ = ("outcome", "events", "recording_error", "events_consumed", "divergence", "keyed", "unconsumed",
                 "abandoned", "setup", "corrupt", "offset")

    def __init__(self, outcome: Outcome | None = None, events: int | None = None, recording_error: str | None = None,
                 events_consumed: int | None = None, divergence: Divergence | None = None,
                 keyed: KeyedSummary | None = None, unconsumed: Divergence | None = None,
                 abandoned: bool = False, setup: SetupSummary | None = None, corrupt: str | None = None,
                 offset: int | None = None) -> None:
        self.outcome = outcome
        self.events = events  # recording: events written
        self.recording_error = recording_error  # recording: why the recording is incomplete
        self.abandoned = abandoned  # recording: the disk refused it; there is nothing worth keeping
        self.events_consumed = events_consumed  # replay
        self.divergence = divergence  # replay: the divergence that ended it
        self.keyed = keyed  # replay of a crash that took a new path: how calls were answered
        self.unconsumed = unconsumed  # replay: the program ended before the recorded calls did
        self.setup = setup  # replay: connection set-up answered from the recording's log, or passed over
        # replay: what made the recording corrupt, found as its values were decoded (the launcher only counts
        # events), and the offset of the frame; nothing of the program ran
        self.corrupt = corrupt
        self.offset = offset

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChildResult:
        return cls(read_field(data, "outcome", Outcome), data.get("events"), data.get("recording_error"),
                   data.get("events_consumed"), read_field(data, "divergence", Divergence),
                   read_field(data, "keyed", KeyedSummary), read_field(data, "unconsumed", Divergence),
                   bool(data.get("abandoned")), read_field(data, "setup", SetupSummary), data.get("corrupt"),
                   data.get("offset"))

    def write(self, path: str) -> None:
        """Write to ``path`` atomically (the launcher may read it as soon as the child is gone); behind the
        gate: boundaries may still be installed in the child."""
        with internal:
            tmp = path + ".tmp"
            # 0600: it holds the program's outcome (an exception's message may quote production data)
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(self.to_json(), f, default=repr)
            os.replace(tmp, path)

    @classmethod
    def read(cls, path: str) -> ChildResult | None:
        """The result at ``path`` (removed once read), or None when the child wrote none."""
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        os.unlink(path)
        return cls.from_json(data)
