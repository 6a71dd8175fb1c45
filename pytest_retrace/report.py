"""Divergence reports: what a person reads when a replay is not faithful.

Written to read like pytest's assertion diffs: the first differing call with both
sides, their arguments diffed, the replay-side stack, and what matched before.
"""

from __future__ import annotations

import difflib
from typing import Any

MAX_DIFF_LINES = 40


def _diff(expected: str, actual: str, indent: str = "    ") -> list[str]:
    lines = [line.rstrip("\n") for line in difflib.ndiff(expected.splitlines(), actual.splitlines())]
    if len(lines) > 6:  # the intraline hints help on a short diff and clutter a long one
        lines = [line for line in lines if not line.startswith("? ")]
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"… {len(lines) - MAX_DIFF_LINES} more lines"]
    return [indent + line for line in lines]


def _stack(stack: list[list[Any]]) -> list[str]:
    out = ["  replay stack (most recent call last):"]
    for filename, lineno, name, text in stack[-12:]:
        out.append(f'    File "{filename}", line {lineno}, in {name}')
        if text:
            out.append(f"      {text}")
    return out


def _call_divergence(d: dict[str, Any]) -> list[str]:
    kind = d["kind"]
    actual = d["actual"]
    expected = d["expected"]
    where = f"event #{d['index']} (thread {d['thread']})"
    if kind == "mismatch":
        out = [f"replay diverged at {where}:",
               f"    expected  {expected['call']}",
               f"    actual    {actual['call']}"]
        if expected["name"] == actual["name"]:
            out.append("  arguments (- recorded, + replayed):")
            out += _diff(str(expected["args"]), str(actual["args"]))
    elif kind == "extra-call":
        out = [f"replay diverged at {where}: the program made a call after the last recorded one:",
               f"    actual    {actual['call']}"]
    elif kind == "stuck":
        out = [f"replay stuck at {where}: no thread made progress",
               f"    next recorded  {expected['call'] if expected else '(none: the recording is over)'}"]
        return out + _threads(d.get("threads") or []) + _preceding(d)
    else:
        out = [f"replay diverged at {where} ({kind})", f"    actual    {actual['call']}"]
    return out + _stack(d.get("stack") or []) + _preceding(d)


def _preceding(d: dict[str, Any]) -> list[str]:
    if not d.get("preceding"):
        return []
    out = ["  last matching events:"]
    for e in d["preceding"]:
        out.append(f"    #{e['index']} [{e['thread']}] {e['call']} -> {e['result']}")
    return out


def _threads(threads: list[dict[str, Any]]) -> list[str]:
    """Each thread of a stuck replay: where it stands, what the recording has it do next, its stack."""
    out = []
    for t in threads:
        out.append(f"  thread {t['thread']}: {t['state']}")
        nxt = t["next_recorded"]
        out.append(f"    next recorded event: #{nxt['index']} {nxt['call']}" if nxt else
                   "    next recorded event: none (the recording has no more events for it)")
        out += ["  " + line for line in _stack(t["stack"])[1:]]
    return out


def _outcome_divergence(d: dict[str, Any]) -> list[str]:
    out = ["every recorded call matched, but the run ended differently:"]
    for part in d["differs"]:
        expected, actual = d["expected"][part], d["actual"][part]
        if part == "status":
            out.append(f"  exit status: recorded {expected}, replayed {actual}")
            continue
        out.append(f"  {part} differs: recorded {expected['size']} bytes, replayed {actual['size']} bytes "
                   "(- recorded, + replayed):")
        out += _diff(expected["head"], actual["head"])
    out.append("  something the program depends on is not intercepted (e.g. id() values, an unrecorded")
    out.append("  clock or a low-level os call); mark it with @pytest_retrace.boundary or report it.")
    return out


def _exception(label: str, exc: dict[str, Any] | None) -> list[str]:
    if not exc:
        return [f"  {label}: no exception"]
    out = [f"  {label} traceback (most recent call last):"]
    for filename, lineno, name, text in exc["traceback"]:
        out.append(f'    File "{filename}", line {lineno}, in {name}')
        if text:
            out.append(f"      {text}")
    out.append(f"  {exc['type']}: {exc['message']}")
    return out


_CRASH_HEADLINES = {
    "crash-reproduced": "the recorded crash still happens",
    "crash-fixed": "the recorded crash no longer happens",
    "new-crash": "the replay crashed in a way the recording did not",
}


def _exception_line(exc: dict[str, Any] | None) -> str:
    return f"{exc['type']}: {exc['message']}" if exc else "no exception"


def _keyed(keyed: dict[str, Any]) -> list[str]:
    first = keyed["first_divergence"]
    out = [f"  the code took a new path at event #{first['index']}:"]
    if first.get("expected"):
        out.append(f"    recorded  {first['expected']['call']}")
    out.append(f"    replayed  {first['actual']['call']}")
    out.append(f"  from there on {keyed['answered_by_key']} calls were answered by call key from the recording")
    if keyed.get("answered_live"):
        out.append(f"  {len(keyed['answered_live'])} calls the recording never made were answered without it "
                   "(clocks and entropy read live, transaction control assumed to succeed)")
    if keyed["unanswered"]:
        out.append(f"  no answer for {len(keyed['unanswered'])} calls (pytest_retrace.UnrecordedCall was raised):")
        out += [f"    {call}" for call in keyed["unanswered"][:10]]
    return out


def format_verdict(verdict: dict[str, Any], *, detailed: bool = False) -> str:
    """The report for a verdict: one line for a faithful one unless ``detailed``."""
    status = verdict["status"]
    path = verdict["recording"]
    head = f"retrace: {path}: {status}"
    if verdict["faithful"] and not (detailed and status == "crash-reproduced"):
        return f"{head} ({verdict['events_consumed']} of {verdict['events_recorded']} events replayed)"
    lines = [head]
    if status in ("truncated", "corrupt"):
        lines.append(f"  {verdict['problem']}")
        if status == "truncated":
            lines.append("  the recorded process was killed before it finished; record it again to replay it whole")
        return "\n".join(lines)
    d = verdict.get("divergence")
    if status in _CRASH_HEADLINES:
        recorded, replayed = verdict["recorded"]["exception"], verdict["replayed"]["exception"]
        lines.append(f"{_CRASH_HEADLINES[status]}: recorded {_exception_line(recorded)}; "
                     f"replayed {_exception_line(replayed)}")
        if verdict.get("keyed"):
            lines += _keyed(verdict["keyed"])
        lines += _exception("recorded", recorded)
        lines += _exception("replayed", replayed)
    elif d is not None:
        if d["kind"] == "outcome":
            lines += _outcome_divergence(d)
        elif d["kind"] == "missing-calls":
            lines.append(f"replay diverged at event #{d['index']} (thread {d['thread']}): the program ended "
                         "without making the recorded call")
            lines.append(f"    expected  {d['expected']['call']}")
        elif d["kind"] == "died":
            lines.append(d["summary"])
        else:
            lines += _call_divergence(d)
    lines.append(f"  events: {verdict['events_consumed']} of {verdict['events_recorded']} replayed")
    return "\n".join(lines)
