"""The ticket desk's own tests, as real suites write them: they change their fixtures and the disk."""

import pathlib

import pytest

import tickets


@pytest.fixture(scope="session")
def desk():
    return {"open": True, "served": 0}


@pytest.fixture
def counter(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "counter.txt"


def test_first_ticket_is_number_one(counter, desk):
    desk["served"] += 1  # a session fixture the run changes: its replay starts from before
    assert tickets.issue(counter, "ada").startswith("#1 ada ")
    assert counter.read_text() == "1"


def test_tickets_count_up(counter):
    numbers = [tickets.issue(counter, "grace").split()[0] for _ in range(3)]
    assert numbers == ["#1", "#2", "#3"]


def test_every_ticket_is_remembered(counter):
    ticket = tickets.issue(counter, "edsger")
    assert tickets.ISSUED[-1] == ticket


def test_many_holders_at_once(tmp_path):
    issued = tickets.issue_many(tmp_path, ["ada", "grace", "edsger", "barbara"])
    assert sorted(t.split()[1] for t in issued) == ["ada", "barbara", "edsger", "grace"]
