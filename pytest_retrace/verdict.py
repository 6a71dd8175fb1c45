"""Verdicts: what a replay proved, as the JSON contract of DESIGN §3 describes.

``status`` is one of ok, diverged, crash-reproduced, crash-fixed, new-crash,
truncated, corrupt; ``faithful`` is true for ok and crash-reproduced (the replay
made the recorded calls and ended as the recording did).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .launcher import ChildRun
    from .tape import Recording

FAITHFUL = ("ok", "crash-reproduced")


def public(verdict: dict[str, Any]) -> dict[str, Any]:
    """The verdict as the JSON contract has it (keys starting with _ are for pytest-retrace's own use)."""
    return {k: v for k, v in verdict.items() if not k.startswith("_")}


def _outcome(status: int | None, exception: Any, stdout: Any, stderr: Any, returned: Any = None) -> dict[str, Any]:
    outcome = {"status": status, "exception": exception, "stdout": _stream(stdout), "stderr": _stream(stderr)}
    if returned is not None:  # a call recording: what the function returned
        outcome["returned"] = _stream(returned)
    return outcome


def _stream(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    head = summary.get("head", b"")
    return {"digest": summary["digest"], "size": summary["size"],
            "head": head.decode("utf-8", "replace") if isinstance(head, bytes) else head}


def _verdict(path: str, status: str, **fields: Any) -> dict[str, Any]:
    verdict = {
        "recording": path,
        "faithful": status in FAITHFUL,
        "status": status,
        "divergence": None,
        "recorded": None,
        "replayed": None,
        "events_recorded": None,
        "events_consumed": None,
        "problem": None,
        "keyed": None,  # for a crash recording whose replay took a new path: how calls were answered
    }
    verdict.update(fields)
    return verdict


def unreadable(path: str, status: str, problem: str, offset: int | None = None) -> dict[str, Any]:
    return _verdict(path, status, problem=problem, offset=offset)


def _same_crash(recorded: dict[str, Any] | None, replayed: dict[str, Any] | None) -> bool:
    if not recorded or not replayed:
        return False
    return recorded["type"] == replayed["type"] and recorded["fingerprint"] == replayed["fingerprint"]


def conclude(rec: Recording, run: ChildRun) -> dict[str, Any]:
    end = rec.end or {}
    recorded = _outcome(end.get("status"), end.get("exception"), end.get("stdout"), end.get("stderr"),
                        end.get("returned"))
    result = run.result or {}
    replay_outcome = result.get("outcome") or {}
    replayed = _outcome(
        replay_outcome.get("status", run.returncode), replay_outcome.get("exception"),
        run.stdout.summary(), run.stderr.summary(), replay_outcome.get("returned"),
    )
    replayed_end = {
        "status": replayed["status"], "exception": replayed["exception"], "stdout": run.stdout.summary(),
        "stderr": run.stderr.summary(), "events": end.get("events"),
    }
    fields = {
        "_replayed_end": replayed_end,  # what END would say of this replay: --retrace-accept writes it
        "recorded": recorded,
        "replayed": replayed,
        "events_recorded": len(rec.events()),
        "events_consumed": result.get("events_consumed"),
        "keyed": result.get("keyed"),
    }
    divergence = result.get("divergence")
    if divergence is not None:
        if divergence["kind"] == "truncated":
            return _verdict(rec.path, "truncated", problem=f"{rec.path}: {rec.problem}", **fields)
        return _verdict(rec.path, "diverged", divergence=divergence, **fields)
    if run.result is None:
        return _verdict(rec.path, "diverged", divergence={
            "kind": "died", "index": None, "thread": None, "expected": None, "actual": None, "stack": [],
            "preceding": [], "summary": f"the replay died with exit status {run.returncode} before reporting",
        }, **fields)
    if rec.status == "truncated":
        return _verdict(rec.path, "truncated", problem=f"{rec.path}: {rec.problem}", **fields)
    rec_exc, rep_exc = recorded["exception"], replayed["exception"]
    crashed = bool(rec_exc) or recorded["status"] not in (0, None)
    if rep_exc and not _same_crash(rec_exc, rep_exc):
        return _verdict(rec.path, "new-crash", **fields)
    if crashed and not rep_exc and (rec_exc or replayed["status"] == 0):
        return _verdict(rec.path, "crash-fixed", **fields)
    if result.get("keyed"):  # the crash happened again on a new path: its output may well differ
        return _verdict(rec.path, "crash-reproduced", **fields)
    if "next_expected" in result:
        nxt = result["next_expected"]
        return _verdict(rec.path, "diverged", divergence={
            "kind": "missing-calls", "index": nxt["index"], "thread": nxt["thread"],
            "expected": {"call": nxt["call"]}, "actual": None, "stack": [], "preceding": [],
        }, **fields)
    mismatch = _outcome_mismatch(recorded, replayed)
    if mismatch is not None:
        return _verdict(rec.path, "diverged", divergence=mismatch, **fields)
    return _verdict(rec.path, "crash-reproduced" if crashed else "ok", **fields)


def _outcome_mismatch(recorded: dict[str, Any], replayed: dict[str, Any]) -> dict[str, Any] | None:
    """Every call matched; the end-of-run comparison catches what no boundary intercepted."""
    def compared(outcome: dict[str, Any], part: str) -> Any:
        value = outcome.get(part)
        return value["digest"] if isinstance(value, dict) else value

    # A call recording holds no process output: only the parts the recording has are compared.
    parts = ["status"] + [p for p in ("stdout", "stderr", "returned") if recorded.get(p) is not None]
    differing = [part for part in parts if compared(recorded, part) != compared(replayed, part)]
    if not differing:
        return None
    return {
        "kind": "outcome",
        "differs": differing,
        "index": None,
        "thread": None,
        "expected": {part: recorded[part] for part in differing},
        "actual": {part: replayed[part] for part in differing},
        "stack": [],
        "preceding": [],
    }
