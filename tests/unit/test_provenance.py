"""The provenance tracer: a traced run notes which line gave each local its value and which events it consumed;
a name's chain walks back through the names each assigning line read, to the events and constants."""

from __future__ import annotations

import sys
from decimal import Decimal
from types import FrameType
from typing import Any

import pytest

from pytest_retrace.runner.provenance import ProvenanceTracer, names_read

CONSUMED: list[Any] = []  # the "recording": what the program's external calls answered, in order


def external(value: Any) -> Any:
    """An external call (a database row, a clock): one event consumed."""
    CONSUMED.append(value)
    return value


def place_order(order: dict[str, Any], stop: list[FrameType]) -> Decimal:
    (price,) = external((Decimal("1.20"),))
    total = price * order["qty"]
    now = external(1700000000.0)
    for (percent_off,) in external([(Decimal("100"),)]):
        total -= total * percent_off / 100
    total = total.quantize(Decimal("0.01"))
    stop.append(sys._getframe())
    return total if now else Decimal(0)


@pytest.fixture
def tracer() -> ProvenanceTracer:
    CONSUMED.clear()
    return ProvenanceTracer(lambda filename: filename == __file__, lambda: len(CONSUMED), repr)


def test_the_chain_of_a_total_leads_back_to_the_rows_it_came_from(tracer: ProvenanceTracer) -> None:
    stop: list[FrameType] = []
    tracer.install()
    try:
        assert place_order({"sku": "apple", "qty": 3}, stop) == Decimal("0.00")
    finally:
        tracer.uninstall()
    chain = tracer.chain(stop[0], "total")
    assert [(a.name, a.source) for a in chain] == [
        ("total", 'total = total.quantize(Decimal("0.01"))'),
        ("total", "total -= total * percent_off / 100"),
        ("total", 'total = price * order["qty"]'),
        ("percent_off", 'for (percent_off,) in external([(Decimal("100"),)]):'),
        ("price", '(price,) = external((Decimal("1.20"),))'),
    ]
    assert [a.value for a in chain] == ["Decimal('0.00')", "Decimal('0.00')", "Decimal('3.60')", "Decimal('100')",
                                        "Decimal('1.20')"]
    # The rows: event 2 (the promo) and event 0 (the price); the clock (event 1) is no part of the total.
    assert [a.events for a in chain] == [[], [], [], [2], [0]]
    assert chain[0].function == "place_order" and chain[0].file == __file__
    assert tracer.chain(stop[0], "now")[0].events == [1]
    assert tracer.chain(stop[0], "nothing") == []
    assert tracer.chain(stop[0], "order") == []  # a parameter: the chain stops there


def test_frames_of_other_files_are_not_traced(tracer: ProvenanceTracer) -> None:
    tracer.traced = lambda filename: False
    stop: list[FrameType] = []
    tracer.install()
    try:
        place_order({"sku": "pear", "qty": 1}, stop)
    finally:
        tracer.uninstall()
    assert tracer.chain(stop[0], "total") == [] and not tracer.by_frame


@pytest.mark.parametrize(("source", "reads"), [
    ("total = price * order['qty']", ["price", "order"]),
    ("total -= total * percent_off / 100", ["total", "percent_off"]),
    ("for (x,) in cur.fetchall():", ["cur"]),
    ("for (x,) in cur.fetchall():  # every row: counts", ["cur"]),
    ("with open(path) as f:", ["open", "path"]),
    ("return a + b", ["a", "b"]),
    ("x = (1 +", []),  # the first line of a statement that spans several: nothing known
])
def test_the_names_a_line_reads(source: str, reads: list[str]) -> None:
    assert names_read(source) == reads
