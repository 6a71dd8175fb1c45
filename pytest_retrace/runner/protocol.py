"""What the launcher and the child it starts agree on: the child's configuration and the result it reports.

The launcher (parent side) starts a fresh interpreter running :data:`CHILD_CODE` with the
configuration, as JSON, in the environment variable :data:`CHILD_ENV`: a :class:`RecordConfig`,
a :class:`ReplayConfig` or a :class:`ForkServerConfig`. A recording or replaying child writes
a :class:`ChildResult` as JSON to the file the configuration names; a fork server answers on a
pipe. Both ends are the same version of pytest-retrace, so this is no stored format.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..engine.divergence import Divergence
from ..engine.keyed import KeyedSummary
from ..engine.state import internal
from ..enums import StrEnum
from ..kinds.outcome import Outcome

CHILD_ENV = "_PYTEST_RETRACE_CHILD"  # the child's configuration, as JSON
CHILD_CODE = "from pytest_retrace.runner.child import main; main()"


class Mode(StrEnum):
    RECORD = "record"
    REPLAY = "replay"
    FORKSERVER = "forkserver"


@dataclass
class RecordConfig:
    """Record the program ``entry`` (``{"script": …}`` or ``{"module": …}``) with ``argv`` into ``output``."""

    output: str
    entry: dict[str, str]
    argv: list[str]
    hash_seed: int
    live_paths: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    redact: str | None = None  # None: the default pattern
    result: str = ""  # where the child writes its ChildResult
    plugins: list[str] = field(default_factory=list)  # installed packages' plugins, found by the launcher
    mode = Mode.RECORD


@dataclass
class ReplayConfig:
    """Replay ``recording``. A fork server's child also gets the files its stdout and stderr go to."""

    recording: str
    stuck_timeout: float = 10.0
    result: str = ""
    plugins: list[str] = field(default_factory=list)
    stdout: str | None = None
    stderr: str | None = None
    mode = Mode.REPLAY


@dataclass
class ForkServerConfig:
    """Prepare as a replay of ``recording`` would, then fork a replay per command; answer on fd ``answers``."""

    recording: str
    answers: int
    plugins: list[str] = field(default_factory=list)
    mode = Mode.FORKSERVER


ChildConfig = RecordConfig | ReplayConfig | ForkServerConfig
_CONFIGS: dict[str, type[ChildConfig]] = {c.mode: c for c in (RecordConfig, ReplayConfig, ForkServerConfig)}


def encode_config(config: ChildConfig) -> str:
    return json.dumps({"mode": str(config.mode), **asdict(config)})


def decode_config(text: str) -> ChildConfig:
    data = json.loads(text)
    return _CONFIGS[data.pop("mode")](**data)


@dataclass
class ChildResult:
    """What a child reports when the program ended (or a replay diverged)."""

    outcome: Outcome | None = None
    events: int | None = None  # recording: events written
    recording_error: str | None = None  # recording: why the recording is incomplete
    events_consumed: int | None = None  # replay
    divergence: Divergence | None = None  # replay: the divergence that ended it
    keyed: KeyedSummary | None = None  # replay of a crash that took a new path: how calls were answered
    unconsumed: Divergence | None = None  # replay: the program ended before the recorded calls did

    def to_json(self) -> dict[str, Any]:
        return {name: value.to_json() if hasattr(value, "to_json") else value for name, value in vars(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChildResult:
        def typed(name: str, record: Any) -> Any:
            return None if data.get(name) is None else record.from_json(data[name])

        return cls(typed("outcome", Outcome), data.get("events"), data.get("recording_error"),
                   data.get("events_consumed"), typed("divergence", Divergence), typed("keyed", KeyedSummary),
                   typed("unconsumed", Divergence))

    def write(self, path: str) -> None:
        """Write to ``path`` atomically (the launcher may read it as soon as the child is gone); behind the
        gate: boundaries may still be installed in the child."""
        with internal:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
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
