"""The event form: names numbered per recording, flat events split and decoded."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from pytest_retrace.format.events import FORM_ARGS, FORM_PLAIN, FORM_THREAD, MAIN, NameTable, decode_events, split


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switch after every few bytecodes: a race between two of them shows up at once."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def meet_names_at_once(threads: int, per_thread: int) -> tuple[NameTable, dict[str, int]]:
    """``threads`` threads, released at once, each registering names of its own; the table and the ids they got."""
    table = NameTable()
    start = threading.Barrier(threads)
    got: dict[str, int] = {}

    def register(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            got[f"t{t}.n{i}"] = table.name_id(f"t{t}.n{i}")

    workers = [threading.Thread(target=register, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return table, got


def test_threads_meeting_new_names_at_once_get_one_id_each(busy_switching: None) -> None:
    for _ in range(10):
        table, got = meet_names_at_once(threads=8, per_thread=1000)
        assert sorted(got.values()) == list(range(8 * 1000))
        assert all(table.names[nid] == name for name, nid in got.items())


def test_a_name_keeps_its_id() -> None:
    table = NameTable()
    assert [table.name_id(n) for n in ("time.time", "open", "time.time")] == [0, 1, 0]
    assert table.names == ["time.time", "open"]


def test_split_and_decode_agree_on_every_form() -> None:
    flat = [0 << 2 | FORM_PLAIN, 1.5, 1 << 2 | FORM_ARGS, None, ["a.txt", "r"], 0 << 2 | FORM_THREAD, 2.5, None, "0.1"]
    assert list(split(flat)) == [flat[0:2], flat[2:5], flat[5:9]]
    events = decode_events(flat, ["time.time", "open"])
    assert [(e.index, e.name, e.args, e.result, e.tid) for e in events] == [
        (0, "time.time", None, 1.5, MAIN), (1, "open", ("a.txt", "r"), None, MAIN), (2, "time.time", None, 2.5, "0.1")]


@pytest.mark.parametrize("flat", [[1 << 2 | FORM_ARGS, None], ["time.time", 1.0]])
def test_a_malformed_stream_is_refused(flat: list[object]) -> None:
    with pytest.raises(ValueError, match="malformed event stream at value 0"):
        list(split(flat))
    with pytest.raises(ValueError, match="malformed event stream at value 0"):
        decode_events(flat, ["time.time", "open"])


def test_arguments_that_all_hash_alike_cost_no_more_than_a_bounded_walk_each() -> None:
    """Equal arguments share one tuple; a crafted file can give thousands of distinct ones the same hash
    (integers hash to themselves modulo 2**61 - 1), and an unbounded table then made reading quadratic."""
    import time

    from pytest_retrace.format.events import FORM_ARGS, decode_events

    modulus = 2**61 - 1
    count = 20_000
    flat: list[object] = []
    for k in range(count):
        flat += [FORM_ARGS, None, [1 + k * modulus]]  # all of one hash, all distinct
    assert len({hash((1 + k * modulus,)) for k in range(100)}) == 1
    start = time.process_time()
    events = decode_events(flat, ["os.urandom"])
    assert time.process_time() - start < 5  # unbounded, this took minutes; bounded, well under a second
    assert len(events) == count and events[-1].args == (1 + (count - 1) * modulus,)
