"""Recordings as pytest items: replay, verdict, failure report, accept, determinism."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .errors import RecordingError, RetraceError
from .launcher import check_program, replay
from .report import format_verdict
from .tape import read_recording, rewrite_end

_CLOSES_SERVERS = pytest.StashKey[bool]()


def _replay(config: pytest.Config, path: str, **options: Any) -> dict[str, Any]:
    """Replay in this session's fork servers (``forkserver.py``); they stop with the session, as they hold
    the code as it was when they imported it."""
    if not config.stash.get(_CLOSES_SERVERS, False):
        from . import forkserver

        config.add_cleanup(forkserver.close_all)
        config.stash[_CLOSES_SERVERS] = True
    return replay(path, forked=True, **options)


class RetraceFailure(Exception):
    """A replay that is not a pass; its text is the verdict's report."""

    def __init__(self, verdict: dict[str, Any], text: str | None = None) -> None:
        self.verdict = verdict
        super().__init__(text or format_verdict(verdict, detailed=True))


class RecordingUnusable(Exception):
    """A recording that cannot be replayed at all (truncated, corrupt, newer format)."""


def _int_option(config: pytest.Config, name: str) -> int:
    value = config.getoption(name)
    return int(value if value is not None else config.getini(name))


def _float_option(config: pytest.Config, name: str) -> float:
    value = config.getoption(name)
    return float(value if value is not None else config.getini(name))


class RecordingFile(pytest.File):
    """A ``*.retrace`` file: one test, the replay of the recording."""

    def collect(self) -> list[pytest.Item]:
        return [RecordingItem.from_parent(self, name="replay")]


class RecordingItem(pytest.Item):
    """Replays one recording in a fresh interpreter and turns the verdict into an outcome."""

    @property
    def shown_path(self) -> str:
        """The recording's path as reports show it: relative to where pytest was started."""
        return os.path.relpath(self.path, self.config.invocation_params.dir)

    def setup(self) -> None:
        try:
            rec = read_recording(self.shown_path)
            rec.events()
        except RecordingError as exc:
            self._unusable(str(exc), "corrupt")
        if rec.status != "complete":
            self._unusable(f"{rec.problem}" if rec.problem and rec.problem.startswith(self.shown_path)
                           else f"{self.shown_path}: {rec.status} recording: {rec.problem}", rec.status)
        try:
            check_program(rec.header["entry"], rec.header["cwd"])
        except RetraceError as exc:
            self._unusable(f"{self.shown_path}: {exc}", "missing-program")
        self.recording = rec
        self.pinned = bool(rec.header.get("pin"))

    def _unusable(self, problem: str, status: str) -> None:
        self.user_properties.append(("retrace", {"recording": str(self.path), "status": status, "problem": problem}))
        raise RecordingUnusable(problem)

    def runtest(self) -> None:
        config = self.config
        stuck = _float_option(config, "retrace_stuck_timeout")
        verdict = _replay(config, self.shown_path, stuck_timeout=stuck, passthrough=False, recording=self.recording)
        info: dict[str, Any] = {"recording": str(self.path), "status": verdict["status"], "pinned": self.pinned,
                                "events_recorded": verdict["events_recorded"],
                                "events_consumed": verdict["events_consumed"]}
        self.user_properties.append(("retrace", info))
        outcome_only = verdict["status"] == "diverged" and verdict["divergence"]["kind"] == "outcome"
        info["outcome_only"] = outcome_only
        if outcome_only and config.getoption("retrace_accept"):
            rewrite_end(self.path, verdict["_replayed_end"])
            info["counter"] = "accepted"
            return
        for _ in range(_int_option(config, "retrace_determinism_runs") - 1):
            again = _replay(config, self.shown_path, stuck_timeout=stuck, passthrough=False,
                            recording=self.recording)
            difference = _difference(verdict, again)
            if difference is not None:
                info["counter"] = "nondeterministic"
                raise RetraceFailure(verdict, difference)
        if verdict["status"] not in ("ok", "crash-fixed"):
            raise RetraceFailure(verdict)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (RetraceFailure, RecordingUnusable)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[return-value]

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"retrace replay of {self.path.name}"


_COMPARED = (("status", lambda v: v["status"]),
             ("events consumed", lambda v: v["events_consumed"]),
             ("exit status", lambda v: v["replayed"]["status"]),
             ("exception", lambda v: (v["replayed"]["exception"] or {}).get("fingerprint")),
             ("stdout", lambda v: v["replayed"]["stdout"]["digest"]),
             ("stderr", lambda v: v["replayed"]["stderr"]["digest"]),
             ("divergence", lambda v: (v["divergence"] or {}).get("index")))


def _difference(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    """The report for two replays of one recording that differ, or None."""
    for label, part in _COMPARED:
        a, b = part(first), part(second)
        if a != b:
            return (
                f"retrace: {first['recording']}: nondeterministic replay: two replays differ in {label}\n"
                f"  first replay:  {a!r}\n  second replay: {b!r}\n"
                f"--- first replay ---\n{format_verdict(first, detailed=True)}\n"
                f"--- second replay ---\n{format_verdict(second, detailed=True)}"
            )
    return None


class ReplayOutcome:
    """What the ``retrace_replay`` fixture hands a test: the replay's outcome, to assert on."""

    def __init__(self, path: Path, verdict: dict[str, Any], stdout: bytes, stderr: bytes) -> None:
        self.path = path
        self.verdict = verdict
        self.status: str = verdict["status"]
        self.exit_status: int | None = verdict["replayed"]["status"]
        self.exception: dict[str, Any] | None = verdict["replayed"]["exception"]
        self.stdout = stdout.decode("utf-8", "replace")
        self.stderr = stderr.decode("utf-8", "replace")
        self.events = read_recording(path).events()

    def __repr__(self) -> str:
        return f"<ReplayOutcome {self.path.name}: {self.status}, exit {self.exit_status}>"


def replay_outcome(path: Path, config: pytest.Config) -> ReplayOutcome:
    verdict = _replay(config, str(path), stuck_timeout=_float_option(config, "retrace_stuck_timeout"),
                      passthrough=False, keep_output=True)
    return ReplayOutcome(path, verdict, verdict.pop("_stdout"), verdict.pop("_stderr"))
