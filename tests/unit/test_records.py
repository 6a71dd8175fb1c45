"""Typed records and closed sets of names: verdicts, outcomes, divergences, child results; statuses, kinds, keep."""

from __future__ import annotations

import json

import pytest

from pytest_retrace.engine.divergence import Call, Divergence, DivergenceKind, Preceding, ThreadReport
from pytest_retrace.engine.keyed import KeyedSummary
from pytest_retrace.errors import RecordingError
from pytest_retrace.format.tape import Kind
from pytest_retrace.kinds.entry import Project
from pytest_retrace.kinds.inprocess import Keep, keeps
from pytest_retrace.kinds.outcome import ExceptionInfo, Outcome, Stream
from pytest_retrace.redaction import Redaction
from pytest_retrace.runner.protocol import (
    ChildResult,
    ForkServerConfig,
    RecordConfig,
    ReplayConfig,
    decode_config,
    encode_config,
)
from pytest_retrace.runner.verdict import Status, Verdict, unreadable

# The verdict file's keys, in the order the contract writes them.
VERDICT_KEYS = ["recording", "faithful", "status", "divergence", "recorded", "replayed", "events_recorded",
                "events_consumed", "problem", "keyed"]


def crash() -> ExceptionInfo:
    try:
        {}["missing"]
    except KeyError as exc:
        return ExceptionInfo.of(exc)
    raise AssertionError("unreachable")


def mismatch() -> Divergence:
    return Divergence(DivergenceKind.MISMATCH, 3, "0.1", Call.of("open", ("a.txt", "r")), Call.of("open", ("b", "r")),
                      [["prog.py", 4, "<module>", "open('b')"]], [Preceding(2, "0", "time.time()", "1.5")])


def test_a_verdict_writes_the_contract_keys_in_order() -> None:
    verdict = Verdict("rec.retrace", Status.DIVERGED, mismatch(), Outcome(0, stdout=Stream("d", 3, "hi\n")),
                      Outcome(0, stdout=Stream("e", 4, "bye\n")), 10, 3)
    data = json.loads(json.dumps(verdict.to_json()))
    assert list(data) == VERDICT_KEYS and data["faithful"] is False and data["status"] == "diverged"
    assert list(data["divergence"]) == ["kind", "index", "thread", "expected", "actual", "stack", "preceding",
                                        "threads"]
    assert data["divergence"]["expected"] == {"name": "open", "args": "('a.txt', 'r')", "call": "open('a.txt', 'r')"}
    assert list(data["recorded"]) == ["status", "exception", "stdout", "stderr"]
    assert list(unreadable("bad.retrace", "bad.retrace: corrupt", 42).to_json()) == [*VERDICT_KEYS, "offset"]


@pytest.mark.parametrize("divergence", [
    mismatch(),
    Divergence(DivergenceKind.STUCK, 7, "0.1", Call.of("time.time", None), None, [], [],
               [ThreadReport("0", "waits for its turn", 8, "lock.acquire('p.py:f')", [["p.py", 3, "f", ""]]),
                ThreadReport("0.1", "finished", None, None, [])], summary="no thread made progress for 1 second"),
    Divergence(DivergenceKind.MISSING_CALLS, 4, "0", Call("time.time()")),
    Divergence(DivergenceKind.DIED, summary="the replay died with exit status -9 before reporting"),
])
def test_a_divergence_reads_back_what_it_wrote(divergence: Divergence) -> None:
    data = json.loads(json.dumps(divergence.to_json()))
    assert Divergence.from_json(data).to_json() == data
    assert ("threads" in data) is divergence.kind.found_by_engine
    assert ("summary" in data) is (divergence.kind in (DivergenceKind.DIED, DivergenceKind.STUCK))


def test_an_outcome_divergence_names_the_differing_parts_first() -> None:
    divergence = Divergence(DivergenceKind.OUTCOME, differs=["status", "stdout"],
                            expected={"status": 0, "stdout": Stream("a", 1, "x")},
                            actual={"status": 1, "stdout": Stream("b", 1, "y")})
    data = divergence.to_json()
    assert list(data)[:2] == ["kind", "differs"]
    assert data["expected"] == {"status": 0, "stdout": {"digest": "a", "size": 1, "head": "x"}}


def test_a_child_result_travels_as_json() -> None:
    keyed = KeyedSummary(mismatch(), 4, ["requests.send('GET http://x')"], ["time.time()"])
    result = ChildResult(Outcome(1, crash(), returned=Stream("f", 2, "{}")), events_consumed=5, keyed=keyed,
                         unconsumed=Divergence(DivergenceKind.MISSING_CALLS, 5, "0", Call("time.time()")))
    again = ChildResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result


def test_child_configurations_say_what_the_child_is_to_do() -> None:
    configs = [RecordConfig("out.retrace", {"script": "a.py"}, ["a.py"], 7,
                            redaction=Redaction.configured(add=["x"], remove=["jwt"], replace_secrets=False)),
               ReplayConfig("rec.retrace", Project("/srv/app", True, "--x"), 2.5, stdout="/tmp/1.stdout"),
               ForkServerConfig("rec.retrace", 5, Project("/srv/app"))]
    assert [decode_config(encode_config(c)) for c in configs] == configs


def test_an_outcome_becomes_an_end_frame_and_reads_back() -> None:
    outcome = Outcome(1, crash(), Stream("d", 3, b"hi\n"), Stream("e", 0, b""))
    end = outcome.to_end(12, "disk full")
    assert end["events"] == 12 and end["recording_error"] == "disk full"
    assert Outcome.from_json(end) == outcome and outcome.crashed
    assert outcome.as_text().stdout == Stream("d", 3, "hi\n")


def test_a_crash_is_described_by_the_programs_frames_and_a_stable_fingerprint() -> None:
    first, second = crash(), crash()
    assert first.type == "KeyError" and first.message == "'missing'"
    assert first.traceback[-1][2] == "crash" and first.same_crash(second)
    assert ExceptionInfo.from_json(first.to_json()) == first


def test_statuses_say_whether_a_replay_is_faithful_passes_or_unusable() -> None:
    assert [s for s in Status if s.faithful] == [Status.OK, Status.CRASH_REPRODUCED]
    assert [s for s in Status if s.passes] == [Status.OK, Status.CRASH_FIXED]
    assert [s for s in Status if s.unusable] == [Status.TRUNCATED, Status.CORRUPT]
    assert f"{Status.CRASH_FIXED}" == str(Status.CRASH_FIXED) == "crash-fixed" == Status.CRASH_FIXED
    assert json.dumps({"status": Status.NEW_CRASH}) == '{"status": "new-crash"}'


@pytest.mark.parametrize(("value", "policy"), [("all", Keep.ALL), ("errors", Keep.ERRORS), (0.25, 0.25), (0.0, 0.0)])
def test_keep_takes_all_errors_or_a_share(value: object, policy: object) -> None:
    assert Keep.parse(value, "record_calls") == policy


@pytest.mark.parametrize("value", ["some", 1, 1.5, -0.1, None, ["all"]])
def test_keep_refuses_anything_else_naming_who_asked(value: object) -> None:
    with pytest.raises(ValueError, match=r"RecordingMiddleware: keep=.* is not 'all', 'errors' or a share"):
        Keep.parse(value, "RecordingMiddleware")


def test_keep_errors_writes_only_failed_recordings() -> None:
    assert keeps(Keep.ALL, False) and keeps(0.5, False) and keeps(Keep.ERRORS, True)
    assert not keeps(Keep.ERRORS, False)


def test_a_recording_kind_is_one_this_version_knows() -> None:
    assert [Kind.of({"kind": k}) for k in ("process", "call", "wsgi")] == [Kind.PROCESS, Kind.CALL, Kind.WSGI]
    assert Kind.of({}) is Kind.PROCESS and not Kind.PROCESS.in_process and Kind.WSGI.in_process
    with pytest.raises(RecordingError, match="unknown kind 'martian' .*newer pytest-retrace, or it is damaged"):
        Kind.of({"kind": "martian"})
