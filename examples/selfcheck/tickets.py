"""A ticket desk: numbers tickets from a counter file, stamps them with the clock and a fresh id.

Its tests (``tests/``) change the counter file, keep state in a module-level list and a session-wide desk, and
start a thread pool: the walk-through in the README runs them under ``pytest --retrace-self-check``.
"""

from __future__ import annotations

import datetime
import pathlib
import uuid
from concurrent.futures import ThreadPoolExecutor

ISSUED: list[str] = []  # every ticket this process issued


def issue(counter: pathlib.Path, holder: str) -> str:
    """The next ticket for ``holder``: the counter file goes up by one."""
    number = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(number))
    ticket = f"#{number} {holder} {datetime.datetime.now():%H:%M:%S} {uuid.uuid4().hex[:8]}"
    ISSUED.append(ticket)
    return ticket


def issue_many(counter_dir: pathlib.Path, holders: list[str]) -> list[str]:
    """A ticket for each holder, each from a counter of its own, on a pool of threads."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda holder: issue(counter_dir / f"{holder}.count", holder), holders))
