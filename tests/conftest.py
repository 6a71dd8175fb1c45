"""What every test of the suite shares."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_hash_seed_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PYTHONHASHSEED set in the caller's shell (tox sets one) would fix the seed of every program a test runs
    plainly or records; tests that want a seed say so."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
