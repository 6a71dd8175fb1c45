"""The pytest plugin (entry point ``retrace``). Kept cheap to import: the record/replay
core is imported only when a retrace option is in use.

Collection of recordings and verdict reporting arrive with the plugin issue; today
the plugin only registers its option group so the entry point is real.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("retrace", "pytest-retrace: replay recordings as tests")
