"""The engine in-process: phase gate, replay answers, divergence, and patches that undo cleanly."""

from __future__ import annotations

import datetime as dt
import os
import random
import select
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_retrace import boundaries
from pytest_retrace.engine.divergence import ReplayDivergence
from pytest_retrace.engine.patch import Patcher
from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.replayer import Replayer
from pytest_retrace.engine.state import STATE, end_main_thread, start_main_thread
from pytest_retrace.format.tape import MemoryTape


def under(engine: Any, program: Callable[[], Any]) -> Any:
    patcher = Patcher()
    start_main_thread()
    try:
        boundaries.install(engine, patcher, boundaries.Options())
        return program()
    finally:
        patcher.undo()
        end_main_thread()


def record_then_replay(program: Callable[[], Any]) -> tuple[Any, Any, MemoryTape]:
    tape = MemoryTape()
    recorded = under(Recorder(tape), program)
    replayed = under(Replayer(tape.events()), program)
    return recorded, replayed, tape


def test_phase_gate_records_only_the_outer_call() -> None:
    tape = MemoryTape()
    engine = Recorder(tape)
    start_main_thread()

    def outer() -> int:
        engine.call("inner", None, lambda: 1)
        return 2

    try:
        assert engine.call("outer", None, outer) == 2
    finally:
        end_main_thread()
    assert [e.name for e in tape.events()] == ["outer"]


def test_clock_entropy_and_sockets_replay_in_process() -> None:
    def program() -> Any:
        a, b = socket.socketpair()
        b.sendall(b"ping")
        ready = select.select([a], [], [], 1.0)[0]
        got = a.recv(4) if ready == [a] else None
        a.close(), b.close()
        return (time.time(), dt.datetime.now(), dt.date.today(), random.random(), os.urandom(4), got,
                random.Random().random())

    recorded, replayed, tape = record_then_replay(program)
    assert recorded == replayed
    assert recorded[5] == b"ping"
    assert "select.select" in {e.name for e in tape.events()}


def test_replay_raises_the_recorded_exception() -> None:
    def program() -> str:
        try:
            os.stat("/definitely/not/here")
        except FileNotFoundError as exc:
            return f"{exc.errno} {exc.filename}"
        return "found"

    recorded, replayed, _ = record_then_replay(program)
    assert recorded == replayed == "2 /definitely/not/here"


def test_divergence_in_process_raises_with_a_report() -> None:
    tape = MemoryTape()
    under(Recorder(tape), lambda: time.sleep(0.01))
    with pytest.raises(ReplayDivergence) as info:
        under(Replayer(tape.events()), lambda: time.sleep(0.02))
    divergence = info.value.divergence
    assert divergence.kind == "mismatch" and divergence.index == 1
    assert divergence.expected.call == "time.sleep(0.01)" and divergence.actual.call == "time.sleep(0.02)"
    assert any(frame[2] == "<lambda>" for frame in divergence.stack)


def test_patches_undo_cleanly() -> None:
    originals = (time.time, dt.datetime.now, dt.date.today, os.urandom, socket.socket, open, random.seed,
                 os.stat, select.select)
    tape = MemoryTape()
    under(Recorder(tape), lambda: None)
    assert (time.time, dt.datetime.now, dt.date.today, os.urandom, socket.socket, open, random.seed,
            os.stat, select.select) == originals
    assert "now" in dt.datetime.__dict__ and type(dt.datetime.__dict__["now"]).__name__ == "classmethod_descriptor"
    assert isinstance(dt.datetime.now(), dt.datetime)


def test_datetime_subclass_now_keeps_its_type() -> None:
    class Stamp(dt.datetime):
        pass

    recorded, replayed, _ = record_then_replay(lambda: (Stamp.now(), Stamp.now(dt.timezone.utc), Stamp.today()))
    assert recorded == replayed
    assert all(type(v) is Stamp for v in replayed)


def test_a_result_mutated_after_the_call_is_recorded_as_returned(tmp_path) -> None:
    (tmp_path / "a").write_text("")
    (tmp_path / "b").write_text("")

    def program() -> list[str]:
        names = os.listdir(tmp_path)
        first = sorted(names)
        names.clear()  # the program consumes its list before the writer encodes it
        return first

    recorded, replayed, _ = record_then_replay(program)
    assert recorded == replayed == ["a", "b"]


@pytest.mark.parametrize("kind", ["poll", "epoll", "selector"])
def test_readiness_maps_to_this_runs_descriptors(kind: str) -> None:
    def program() -> list[int]:
        pairs = [socket.socketpair() for _ in range(3)]
        # Looked up inside the program: the patched classes exist only while it runs.
        poller = {"poll": select.poll, "epoll": select.epoll, "selector": selectors.DefaultSelector}[kind]()
        for a, _ in pairs:
            poller.register(a, select.POLLIN)  # == EPOLLIN == EVENT_READ
        pairs[1][1].sendall(b"x")
        ready = poller.select(1.0) if isinstance(poller, selectors.BaseSelector) else poller.poll(1000)
        fds = [key.fileobj.fileno() if isinstance(poller, selectors.BaseSelector) else key for key, _ in ready]
        which = [i for i, (a, _) in enumerate(pairs) if a.fileno() in fds]
        for a, b in pairs:
            a.close(), b.close()
        return which

    recorded, replayed, _ = record_then_replay(program)
    assert recorded == replayed == [1]


def test_patch_on_first_import_and_cancel_on_undo(tmp_path, monkeypatch) -> None:
    (tmp_path / "late_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[int] = []
    patcher = Patcher()
    patcher.when_imported("late_module", lambda m: seen.append(m.VALUE))
    assert seen == []
    import late_module  # noqa: F401

    assert seen == [1]
    patcher.when_imported("never_imported_module", lambda m: seen.append(2))
    patcher.undo()
    from pytest_retrace.engine import importhook

    assert importhook._pending.get("never_imported_module") == []


def test_boundaries_installed_over_others_are_undone_to_them() -> None:
    # A service's router stays installed for good; a self-check installs over it and must leave it in place.
    outer, inner = Recorder(MemoryTape()), Recorder(MemoryTape())
    outer_patches, inner_patches = Patcher(), Patcher()
    boundaries.install(outer, outer_patches, boundaries.Options())
    try:
        boundaries.install(inner, inner_patches, boundaries.Options())
        assert STATE.installed is inner
        inner_patches.undo()
        assert STATE.installed is outer
    finally:
        outer_patches.undo()
    assert STATE.installed is None


def polling_thread(idle_waits: int, clock_reads: int = 1) -> Callable[[], list[float]]:
    """A program whose second thread waits ``idle_waits`` times for nothing (a timed-out select), then reads the
    clock: a server loop that saw its stop flag after that many polls."""
    import threading

    def program() -> list[float]:
        seen: list[float] = []

        def serve() -> None:
            for _ in range(idle_waits):
                select.select([], [], [], 0)
            seen.extend(time.time() for _ in range(clock_reads))

        worker = threading.Thread(target=serve)
        worker.start()
        worker.join()
        return seen

    return program


def test_a_timed_out_wait_the_replay_does_not_make_is_left_out() -> None:
    # The thread saw the flag it loops on one poll sooner on replay: a schedule the program could have had.
    tape = MemoryTape()
    recorded = under(Recorder(tape), polling_thread(idle_waits=2))
    assert under(Replayer(tape.events()), polling_thread(idle_waits=1)) == recorded


def test_only_a_wait_that_timed_out_with_nothing_ready_may_be_left_out() -> None:
    from pytest_retrace.engine.replayer import _idle_wait
    from pytest_retrace.format.events import Event

    assert _idle_wait(Event(0, "select.select", (1, 0, 0, 0.5), [[], [], []], "0.1"))
    assert _idle_wait(Event(0, "select.poll", (1, 500), [], "0.1"))
    assert not _idle_wait(Event(0, "select.select", (1, 0, 0, 0.5), [[0], [], []], "0.1"))  # something was ready
    assert not _idle_wait(Event(0, "select.poll", (1, 500), [[0, 1]], "0.1"))
    assert not _idle_wait(Event(0, "time.time", None, 1.5, "0.1"))
    assert not _idle_wait(Event(0, "socket.recv", (8192, 0), b"", "0.1"))


def test_a_timed_out_wait_the_recording_does_not_have_answers_nothing_ready() -> None:
    # The other way round: the thread checked its flag before another thread set it, and polls once more.
    tape = MemoryTape()
    recorded = under(Recorder(tape), polling_thread(idle_waits=1))
    assert under(Replayer(tape.events()), polling_thread(idle_waits=3)) == recorded
