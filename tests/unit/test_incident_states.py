"""The incident lifecycle in-process: the transitions, the state file (written atomically, 0600, read back field by
field, a damaged one an error naming it), where a folder's state is, and pinned incidents following the state
beside their pinned case."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pytest_retrace.front.incidents import (
    STATE_NAME,
    Happening,
    Incident,
    IncidentStateError,
    IncidentStatus,
    list_incidents,
    next_status,
    read_state,
    state_file_for,
    triage,
    updating,
    utc,
)

NEW, PINNED, FIXED, REGRESSED = IncidentStatus


@pytest.mark.parametrize("status, happening, after", [
    (NEW, Happening.PINNED, PINNED),
    (FIXED, Happening.PINNED, PINNED),  # pinned again (its case was deleted): it starts over
    (PINNED, Happening.PASSED, FIXED),
    (REGRESSED, Happening.PASSED, FIXED),
    (NEW, Happening.PASSED, FIXED),
    (FIXED, Happening.FAILED, REGRESSED),  # failed after it passed
    (PINNED, Happening.FAILED, PINNED),  # failing since it was pinned: not a regression
    (REGRESSED, Happening.FAILED, REGRESSED),
    (FIXED, Happening.PASSED, FIXED),
])
def test_transitions(status: IncidentStatus, happening: Happening, after: IncidentStatus) -> None:
    assert next_status(status, happening) == after


def incident(fingerprint: str = "ab" * 8, **fields: object) -> Incident:
    return Incident(fingerprint, "pricing.PriceError", "negative total", "pricing-total").replace(**fields)


def test_a_move_is_dated_in_the_history_and_a_repeat_is_none() -> None:
    crash = incident(status=PINNED)
    transition = crash.move(Happening.PASSED, "its pinned case passed", at="2026-12-07T10:00:00+00:00")
    assert transition is not None and transition.status == FIXED and crash.status == FIXED
    assert crash.history == [transition]
    assert crash.move(Happening.PASSED, "again") is None and crash.history == [transition]
    regressed = crash.move(Happening.FAILED, "its pinned case failed")
    assert regressed is not None and regressed.at >= transition.at and crash.status == REGRESSED
    assert crash.title == "PriceError in pricing-total"


def test_created_at_is_compared_in_utc() -> None:
    assert utc("2026-12-07T11:00:00+0100") == "2026-12-07T10:00:00+00:00"
    assert utc("2026-12-07T09:30:00-0030") == "2026-12-07T10:00:00+00:00"
    assert utc("yesterday") is None and utc(None) is None


def test_state_round_trip_written_atomically_0600_and_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / STATE_NAME
    assert read_state(path).incidents == {}  # none yet: empty
    with updating(path) as state:
        state.incidents["ab" * 8] = incident(count=3, recordings=["a.retrace"])
        state.incidents["ab" * 8].move(Happening.PINNED, "pinned as x.retrace")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_NAME]  # no temporary file left over
    assert read_state(path).incidents == state.incidents
    inode = path.stat().st_ino
    with updating(path):
        pass
    assert path.stat().st_ino == inode  # unchanged: not rewritten
    with updating(path) as again:
        again.incidents["ab" * 8].count += 1
    assert path.stat().st_ino != inode and read_state(path).incidents["ab" * 8].count == 4


def good_state() -> dict[str, object]:
    return {"format": "retrace-incidents", "version": 1, "incidents": [incident().to_json()]}


def with_incident(**changes: object) -> dict[str, object]:
    data = good_state()
    data["incidents"] = [dict(incident().to_json(), **changes)]
    return data


@pytest.mark.parametrize("content, problem", [
    ("{not json", "damaged incident state file: not JSON"),
    (json.dumps({"incidents": []}), "not a retrace-incidents file"),
    (json.dumps(dict(good_state(), version=7)), "incident state version 7, this pytest-retrace reads version 1"),
    (json.dumps(dict(good_state(), incidents={})), "'incidents' is not a list"),
    (json.dumps(with_incident(status="closed")), "incident #0: 'closed' is not a valid IncidentStatus"),
    (json.dumps(with_incident(count="3")), "incident #0: 'count' is a str"),
    (json.dumps(with_incident(count=True)), "incident #0: 'count' is a bool"),
    (json.dumps(with_incident(count=-1)), "'count' is negative"),
    (json.dumps(with_incident(history=[{"status": "new", "at": 1, "why": ""}])), "incident #0: 'at' is a int"),
    (json.dumps({**good_state(), "incidents": [incident().to_json()] * 2}), "is listed twice"),
    (json.dumps({**good_state(), "incidents": [{"fingerprint": "ab"}]}), "incident #0: no 'history'"),
])
def test_a_damaged_state_is_an_error_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / STATE_NAME
    path.write_text(content)
    with pytest.raises(IncidentStateError) as raised:
        read_state(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and problem in message, message
    assert "delete it and run `retrace triage`" in message
    with pytest.raises(IncidentStateError), updating(path):
        pass
    assert path.read_text() == content  # an error never rewrites it


def test_control_characters_of_a_hand_edited_file_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / STATE_NAME
    path.write_text(json.dumps(with_incident(status="\x1b[2Jclosed")))
    with pytest.raises(IncidentStateError) as raised:
        read_state(path)
    assert "\x1b" not in str(raised.value) and "\\x1b[2Jclosed" in str(raised.value)


def test_the_state_of_a_folder_is_the_nearest_one_up(tmp_path: Path) -> None:
    deep = tmp_path / "recordings" / "2026" / "12"
    deep.mkdir(parents=True)
    assert state_file_for(deep) == deep / STATE_NAME  # none anywhere: its own
    (tmp_path / "recordings" / STATE_NAME).write_text(json.dumps(good_state()))
    assert state_file_for(deep) == tmp_path / "recordings" / STATE_NAME
    assert state_file_for(tmp_path) == tmp_path / STATE_NAME


def test_listed_incidents_follow_the_state_beside_their_pinned_case(tmp_path: Path) -> None:
    """Production's state says pinned; the regression folder's (where pytest runs) says fixed: list_incidents
    of production says fixed, with the transition, and writes nothing."""
    production, regression = tmp_path / "recordings", tmp_path / "tests" / "recordings"
    production.mkdir()
    regression.mkdir(parents=True)
    with updating(production / STATE_NAME) as state:
        pinned = state.incidents["ab" * 8] = incident(last_seen="2026-12-07T10:00:00+00:00",
                                                       pinned="../tests/recordings/PriceError-pricing_total.retrace")
        pinned.move(Happening.PINNED, "pinned")
        state.incidents["cd" * 8] = incident("cd" * 8, last_seen="2026-12-07T11:00:00+00:00")
    with updating(regression / STATE_NAME) as there:
        case = there.incidents["ab" * 8] = incident(pinned="PriceError-pricing_total.retrace")
        case.move(Happening.PINNED, "pinned")
        fixed = case.move(Happening.PASSED, "its pinned case replayed as crash-fixed")
    before = (production / STATE_NAME).read_text()
    listed = list_incidents(production)
    assert [(i.fingerprint, i.status) for i in listed] == [("cd" * 8, NEW), ("ab" * 8, FIXED)]
    assert listed[1].history[-1] == fixed
    assert (production / STATE_NAME).read_text() == before
    assert list_incidents(tmp_path / "elsewhere") == []  # no state: no incidents


def test_a_pinned_incident_follows_every_transition_even_within_one_second(tmp_path: Path) -> None:
    """Fixed, regressed and fixed again within one second (dates keep seconds only), production triaged after
    each: its state takes all three, in order, once."""
    production, regression = tmp_path / "recordings", tmp_path / "tests" / "recordings"
    production.mkdir()
    regression.mkdir(parents=True)
    second = "2026-12-07T10:00:00+00:00"
    with updating(production / STATE_NAME) as state:
        pinned = state.incidents["ab" * 8] = incident(pinned="../tests/recordings/PriceError-pricing_total.retrace")
        pinned.move(Happening.PINNED, "pinned", second)
    with updating(regression / STATE_NAME) as there:
        case = there.incidents["ab" * 8] = incident(pinned="PriceError-pricing_total.retrace")
        case.move(Happening.PINNED, "pinned", second)
    for happening in (Happening.PASSED, Happening.FAILED, Happening.PASSED):
        with updating(regression / STATE_NAME) as there:
            there.incidents["ab" * 8].move(happening, "its pinned case replayed", second)
        triage(production)  # writes what it follows
    [followed] = read_state(production / STATE_NAME).incidents.values()
    assert [t.status for t in followed.history] == [PINNED, FIXED, REGRESSED, FIXED]
    assert followed.status == FIXED
    triage(production)
    assert read_state(production / STATE_NAME).incidents["ab" * 8].history == followed.history
