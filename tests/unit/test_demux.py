"""The demultiplexer: native and pure-Python twins hand events out in the recorded order."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from pytest_retrace.engine import _demux_py, demux

IMPLEMENTATIONS = [_demux_py]
try:
    from pytest_retrace import _native

    IMPLEMENTATIONS.append(_native)
except ImportError:  # pragma: no cover - the CI build always has it; see test_native_is_in_use
    pass


def test_native_is_in_use_unless_forced_pure() -> None:
    forced = os.environ.get(demux.PURE_ENV, "") not in ("", "0")
    assert demux.NATIVE is (not forced)


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def impl(request: pytest.FixtureRequest):
    return request.param


def run_threads(impl, order: list[int]) -> list[tuple[int, int]]:
    d = impl.Demux(order)
    taken: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker(tid: int) -> None:
        for _ in range(order.count(tid)):
            index = d.claim(tid, 5.0)
            assert index >= 0
            with lock:
                taken.append((tid, index))

    threads = [threading.Thread(target=worker, args=(t,)) for t in sorted(set(order))]
    random.shuffle(threads)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return taken


def test_threads_get_their_turns_in_the_recorded_order(impl) -> None:
    rng = random.Random(7)
    order = [rng.randrange(4) for _ in range(2000)]
    taken = sorted(run_threads(impl, order), key=lambda t: t[1])
    assert [index for _, index in taken] == list(range(len(order)))
    assert [tid for tid, _ in taken] == order


def script(seed: int) -> tuple[list[int], list[tuple[str, int]]]:
    """A recorded order of three threads and a random run of calls on it, made by one thread: every call
    returns at once (no wait, and no grace period that could run out), so its answer is the state machine's."""
    rng = random.Random(seed)
    order = [rng.randrange(3) for _ in range(40)]
    ops = [(rng.choice(["claim", "claim", "turn", "advance", "park", "expected", "position"]), rng.randrange(3))
           for _ in range(300)]
    if seed % 4 == 0:
        ops.insert(rng.randrange(len(ops)), ("abort", 0))
    return order, ops


def answers(impl, order: list[int], ops: list[tuple[str, int]]) -> list[object]:
    d = impl.Demux(order, grace=600.0)
    out: list[object] = []
    for op, tid in ops:
        if op in ("claim", "turn"):
            result = getattr(d, op)(tid, 0.0)
            out.append(result if result < 0 else ("index", result))  # statuses compared by name below
        elif op in ("advance", "park"):
            out.append(d.advance() if op == "advance" else d.park(tid))
        elif op == "abort":
            out.append(d.abort())
        else:
            out.append(d.expected() if op == "expected" else d.position)
        if isinstance(out[-1], int) and op in ("claim", "turn"):
            out[-1] = {impl.TIMED_OUT: "timed out", impl.EXHAUSTED: "exhausted", impl.ABORTED: "aborted"}[out[-1]]
    return out


@pytest.mark.skipif(len(IMPLEMENTATIONS) < 2, reason="the native extension is not built here")
@pytest.mark.parametrize("seed", range(40))
def test_native_and_pure_answer_every_call_alike(seed: int) -> None:
    order, ops = script(seed)
    native, pure = (answers(impl, order, ops) for impl in (_native, _demux_py))
    first = next((i for i, (a, b) in enumerate(zip(native, pure, strict=True)) if a != b), None)
    assert first is None, f"call #{first} {ops[first]}: native {native[first]!r}, pure {pure[first]!r}"
    assert len(set(map(str, native))) > 3  # the script reached more than one kind of answer


def test_timeout_when_the_turn_never_comes(impl) -> None:
    d = impl.Demux([1, 0])
    start = time.monotonic()
    assert d.claim(0, 0.2) == impl.TIMED_OUT
    assert 0.15 <= time.monotonic() - start < 2
    assert d.position == 0 and d.expected() == 1


def test_exhausted_and_abort(impl) -> None:
    d = impl.Demux([0])
    assert d.claim(0, 1.0) == 0
    assert d.claim(0, 1.0) == impl.EXHAUSTED and d.expected() == -1 and len(d) == 1
    waiting = impl.Demux([1])
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(waiting.claim(0, 10.0)))
    t.start()
    time.sleep(0.1)
    waiting.abort()
    t.join(5)
    assert got == [impl.ABORTED]


def test_waiting_releases_the_gil(impl) -> None:
    d = impl.Demux([1, 0])
    progress: list[int] = []
    t = threading.Thread(target=lambda: progress.append(d.claim(0, 5.0)))
    t.start()
    counter = 0
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        counter += 1  # the main thread runs Python code while the other waits
    assert counter > 1000
    assert d.claim(1, 1.0) == 0
    t.join(5)
    assert progress == [1]


def test_a_held_turn_keeps_every_other_thread_out_until_advance(impl) -> None:
    d = impl.Demux([0, 1])
    assert d.turn(0, 1.0) == 0 and d.position == 0
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(d.claim(1, 5.0)))
    t.start()
    time.sleep(0.1)
    assert got == []  # thread 1 waits while thread 0 holds event 0
    d.advance()
    t.join(5)
    assert got == [1] and d.position == 2


def test_the_baton_waits_for_the_last_runner_to_come_back(impl) -> None:
    d = impl.Demux([0, 1, 0], grace=5.0)
    assert d.claim(0, 1.0) == 0  # thread 0 runs from here
    got: list[tuple[int, float]] = []
    start = time.monotonic()

    def second() -> None:
        got.append((d.claim(1, 10.0), time.monotonic() - start))
        d.park(1)  # as a thread does when it ends

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.2)
    assert got == []  # event 1 is thread 1's, but thread 0 has not come back yet
    d.park(0)  # thread 0 waits elsewhere (a join): thread 1 may go
    t.join(5)
    assert got[0][0] == 1 and 0.15 < got[0][1] < 4
    assert d.claim(0, 1.0) == 2


def test_the_baton_is_passed_on_after_the_grace_period(impl) -> None:
    d = impl.Demux([0, 1], grace=0.2)
    assert d.claim(0, 1.0) == 0
    start = time.monotonic()
    assert d.claim(1, 5.0) == 1  # thread 0 never comes back: thread 1 goes once the grace is over
    assert 0.15 < time.monotonic() - start < 2


def test_timeout_counts_from_the_last_progress_anywhere(impl) -> None:
    d = impl.Demux([1, 1, 1, 0], grace=0.0)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(d.claim(0, 0.4)))
    t.start()
    for _ in range(3):  # each event handed out to thread 1 restarts thread 0's patience
        time.sleep(0.25)
        assert d.claim(1, 1.0) >= 0
    t.join(5)
    assert got == [3]
