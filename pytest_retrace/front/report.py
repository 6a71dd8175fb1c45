"""Divergence reports: what a person reads when a replay is not faithful.

Written to read like pytest's assertion diffs: the first differing call with both
sides, their arguments diffed, the replay-side stack, and what matched before.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..engine.divergence import Call, Divergence, DivergenceKind, ThreadReport
from ..engine.keyed import KeyedSummary
from ..engine.setup import SetupSummary
from ..fitting import printable
from ..kinds.outcome import ExceptionInfo, Stream
from ..runner.verdict import Status, Verdict

MAX_DIFF_LINES = 40
_CRASH_HEADLINES = {
    Status.CRASH_REPRODUCED: "the recorded crash still happens",
    Status.CRASH_FIXED: "the recorded crash no longer happens",
    Status.NEW_CRASH: "the replay crashed in a way the recording did not",
}


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


def _call_divergence(d: Divergence) -> list[str]:
    actual: Call = d.actual
    expected: Call | None = d.expected
    where = f"event #{d.index} (thread {d.thread})"
    if d.kind == DivergenceKind.MISMATCH:
        assert expected is not None
        out = [f"replay diverged at {where}:",
               f"    expected  {expected.call}",
               f"    actual    {actual.call}"]
        if expected.name == actual.name:
            out.append("  arguments (- recorded, + replayed):")
            out += _diff(str(expected.args), str(actual.args))
    elif d.kind == DivergenceKind.EXTRA_CALL:
        out = [f"replay diverged at {where}: the program made a call after the last recorded one:",
               f"    actual    {actual.call}"]
    elif d.kind == DivergenceKind.STUCK:
        out = [f"replay stuck at {where}; it was stopped there",
               f"    next recorded  {expected.call if expected else '(none: the recording is over)'}"]
        return out + _threads(d.threads or []) + _preceding(d)
    else:
        out = [f"replay diverged at {where} ({d.kind})", f"    actual    {actual.call}"]
    return out + _stack(d.stack) + _preceding(d)


def _preceding(d: Divergence) -> list[str]:
    if not d.preceding:
        return []
    return ["  last matching events:"] + [f"    #{e.index} [{e.thread}] {e.call} -> {e.result}" for e in d.preceding]


def _threads(threads: list[ThreadReport]) -> list[str]:
    """Each thread of a stuck replay: where it stands, what the recording has it do next, its stack."""
    out = []
    for t in threads:
        out.append(f"  thread {t.thread}: {t.state}")
        out.append(f"    next recorded event: #{t.next_index} {t.next_call}" if t.next_index is not None else
                   "    next recorded event: none (the recording has no more events for it)")
        out += ["  " + line for line in _stack(t.stack)[1:]]
    return out


def _outcome_divergence(d: Divergence) -> list[str]:
    out = ["every recorded call matched, but the run ended differently:"]
    for part in d.differs or ():
        expected, actual = d.expected[part], d.actual[part]
        if not isinstance(expected, Stream):
            out.append(f"  exit status: recorded {expected}, replayed {actual}")
            continue
        out.append(f"  {part} differs: recorded {expected.size} bytes, replayed {actual.size} bytes "
                   "(- recorded, + replayed):")
        out += _diff(str(expected.head), str(actual.head))
    out.append("  something the program depends on is not intercepted (e.g. id() values, an unrecorded")
    out.append("  clock or a low-level os call); mark it with @pytest_retrace.boundary or report it.")
    return out


def _exception(label: str, exc: ExceptionInfo | None) -> list[str]:
    if exc is None:
        return [f"  {label}: no exception"]
    out = [f"  {label} traceback (most recent call last):"]
    for filename, lineno, name, text in exc.traceback:
        out.append(f'    File "{filename}", line {lineno}, in {name}')
        if text:
            out.append(f"      {text}")
    out.append(f"  {exc.type}: {exc.message}")
    return out


def _exception_line(exc: ExceptionInfo | None) -> str:
    return f"{exc.type}: {exc.message}" if exc else "no exception"


def _keyed(keyed: KeyedSummary) -> list[str]:
    first = keyed.first_divergence
    out = [f"  the code took a new path at event #{first.index}:"]
    if first.expected:
        out.append(f"    recorded  {first.expected.call}")
    out.append(f"    replayed  {first.actual.call}")
    out.append(f"  from there on {keyed.answered_by_key} calls were answered by call key from the recording")
    if keyed.answered_live:
        out.append(f"  {len(keyed.answered_live)} calls the recording never made were answered without it "
                   "(clocks and entropy read live, transaction control assumed to succeed)")
    if keyed.unanswered:
        out.append(f"  no answer for {len(keyed.unanswered)} calls (pytest_retrace.UnrecordedCall was raised):")
        out += [f"    {call}" for call in keyed.unanswered[:10]]
    return out


def format_verdict(verdict: Verdict, *, detailed: bool = False) -> str:
    """The report for a verdict: one line for a faithful one unless ``detailed``. What it quotes of the
    recording (an exception's message, a source line) goes out escaped, line by line."""
    return "\n".join(printable(line) for line in _verdict_text(verdict, detailed).split("\n"))


def _verdict_text(verdict: Verdict, detailed: bool) -> str:
    status = verdict.status
    d = verdict.divergence
    # A stuck replay is a divergence (its status says so) that reads as what it is: nothing moved any more.
    stuck = d is not None and d.kind == DivergenceKind.STUCK
    head = f"retrace: {verdict.recording}: {'stuck' if stuck else status}"
    if verdict.faithful and not (detailed and status == Status.CRASH_REPRODUCED):
        return "\n".join([f"{head} ({verdict.events_consumed} of {verdict.events_recorded} events replayed)",
                          *(_setup(verdict.setup) if verdict.setup and detailed else [])])
    lines = [head]
    if status.unusable:
        lines.append(f"  {verdict.problem}")
        if status == Status.TRUNCATED:
            lines.append("  the recorded process was killed before it finished; record it again to replay it whole")
        return "\n".join(lines)
    if stuck:
        lines[0] += f": {verdict.divergence.summary or 'no thread made progress'}"  # type: ignore[union-attr]
    if status in _CRASH_HEADLINES:
        recorded = verdict.recorded.exception if verdict.recorded else None
        replayed = verdict.replayed.exception if verdict.replayed else None
        lines.append(f"{_CRASH_HEADLINES[status]}: recorded {_exception_line(recorded)}; "
                     f"replayed {_exception_line(replayed)}")
        if verdict.keyed:
            lines += _keyed(verdict.keyed)
        lines += _exception("recorded", recorded)
        lines += _exception("replayed", replayed)
    elif d is not None:
        if d.kind == DivergenceKind.OUTCOME:
            lines += _outcome_divergence(d)
        elif d.kind == DivergenceKind.MISSING_CALLS:
            lines.append(f"replay diverged at event #{d.index} (thread {d.thread}): the program ended "
                         "without making the recorded call")
            lines.append(f"    expected  {d.expected.call}")
        elif d.kind == DivergenceKind.DIED:
            lines.append(str(d.summary))
        else:
            lines += _call_divergence(d)
    lines.append(f"  events: {verdict.events_consumed} of {verdict.events_recorded} replayed")
    if verdict.setup:
        lines += _setup(verdict.setup)
    return "\n".join(lines)


def _setup(setup: SetupSummary) -> list[str]:
    """What the replay did about connection set-up that the recorded request did not hold in order."""
    out = []
    if setup.answered:
        out.append(f"  {len(setup.answered)} calls setting up a connection the recorded request found open were "
                   "answered from the recording's set-up log:")
        out += [f"    {call}" for call in setup.answered[:5]] + (["    …"] if len(setup.answered) > 5 else [])
    if setup.passed_over:
        out.append(f"  {len(setup.passed_over)} recorded calls setting up a connection were not needed "
                   "(the replay's connection was set up already):")
        out += [f"    {call}" for call in setup.passed_over[:5]] + (["    …"] if len(setup.passed_over) > 5 else [])
    return out
