"""Stand-ins wear their original's face: the program cannot tell a recorded callable from the plain one.

Each property is checked on the native stand-in and on its pure-Python twin (the fallback when the
extension cannot be built), except the traceback, which only the native one can keep clean.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
import pickle
import socket
import sys
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_retrace.engine import standin
from pytest_retrace.engine.patch import Patcher
from pytest_retrace.engine.recorder import Recorder
from pytest_retrace.engine.replayer import Replayer
from pytest_retrace.engine.state import STATE, end_main_thread, install, start_main_thread
from pytest_retrace.format.tape import MemoryTape
from pytest_retrace.frames import PACKAGE_DIR, rebuilt_traceback, recorded_frames

KINDS = [pytest.param((standin.StandIn, standin.MethodStandIn), id="native"),
         pytest.param((standin.PyStandIn, standin.PyMethodStandIn), id="pure")]


def ours(source: str, name: str) -> Callable[..., Any]:
    """A function compiled as if it were pytest-retrace's own code (its frames are ours)."""
    namespace: dict[str, Any] = {}
    exec(compile(source, os.path.join(PACKAGE_DIR, "boundaries", "clock.py"), "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]


@pytest.fixture(params=KINDS)
def kinds(request: pytest.FixtureRequest) -> tuple[type, type]:
    return request.param  # type: ignore[no-any-return]


def test_a_builtins_stand_in_reads_as_the_builtin(kinds: tuple[type, type]) -> None:
    plain, _ = kinds
    fake = plain(lambda *a: time.localtime(*a), time.localtime)
    assert (fake.__name__, fake.__qualname__, fake.__module__, fake.__doc__) == (
        "localtime", "localtime", "time", time.localtime.__doc__)
    assert repr(fake) == repr(time.localtime)
    assert isinstance(fake, types.BuiltinFunctionType) and inspect.isbuiltin(fake)
    assert not hasattr(fake, "__wrapped__") and not hasattr(fake, "__get__")
    assert functools.wraps(fake)(lambda: 0).__name__ == "localtime"
    assert inspect.signature(plain(len, os.urandom)) == inspect.signature(os.urandom)


def test_a_builtins_stand_in_never_binds_where_a_class_keeps_it(kinds: tuple[type, type]) -> None:
    plain, _ = kinds

    class Formatter(logging.Formatter):
        converter = plain(lambda *a: time.localtime(*a), time.localtime)

    record = logging.makeLogRecord({"msg": "hi", "created": 0.0})
    assert Formatter("%(asctime)s").format(record) == logging.Formatter("%(asctime)s").format(record)


def test_a_methods_stand_in_binds_as_the_method(kinds: tuple[type, type]) -> None:
    _, method = kinds
    seen = []

    def getsockname(self: socket.socket) -> Any:
        seen.append(self)
        return socket.socket.getsockname(self)

    class Socket(socket.socket):
        pass

    Socket.getsockname = method(getsockname, socket.socket.getsockname)  # type: ignore[method-assign]
    with Socket() as s:
        assert s.getsockname() == ("0.0.0.0", 0) and seen == [s]
    assert Socket.getsockname.__qualname__ == "socket.getsockname"

    def python_function(a: int, b: int = 2, *, c: int) -> int:
        return a + b + c

    fake = method(python_function, python_function)
    assert inspect.signature(fake) == inspect.signature(python_function) and inspect.isfunction(fake)


def test_stand_ins_pickle_and_copy_by_reference(kinds: tuple[type, type], monkeypatch: pytest.MonkeyPatch) -> None:
    plain, _ = kinds
    fake = plain(lambda: 1.0, time.time)
    monkeypatch.setattr(time, "time", fake)
    assert pickle.loads(pickle.dumps(time.time)) is fake
    assert copy.copy(fake) is fake and copy.deepcopy(fake) is fake


def test_no_frame_of_ours_in_the_traceback_of_an_exception_from_the_original() -> None:
    opener = ours("def opener(path):\n    return open(path)\n", "opener")
    fake = standin.StandIn(opener, open)

    def program() -> None:
        fake("/nonexistent/file")

    with pytest.raises(FileNotFoundError) as caught:
        program()
    files = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert files == [__file__, __file__], files


def test_recorded_frames_are_rebuilt_into_the_same_traceback() -> None:
    def library() -> None:
        data: dict[str, int] = {}
        data["key"] += 1

    try:
        library()
    except KeyError as exc:
        original = exc
    rebuilt = KeyError("key").with_traceback(rebuilt_traceback(recorded_frames(original.__traceback__)))
    assert traceback.format_exception(rebuilt) == traceback.format_exception(original)


def test_an_error_of_ours_while_recording_passes_through_and_marks_the_recording(
        capfd: pytest.CaptureFixture[str]) -> None:
    tape = MemoryTape()
    patcher = Patcher()
    start_main_thread()
    undo = install(Recorder(tape))
    try:
        patcher.set(os, "getcwd", ours("def getcwd():\n    raise KeyError('a bug')\n", "getcwd"))
        assert os.getcwd() == os.getcwd.__retrace_original__() and os.getcwd() == os.getcwd()
    finally:
        patcher.undo()
        undo()
        end_main_thread()
    assert tape.error is not None and "KeyError" in tape.error and "getcwd" in tape.error
    assert capfd.readouterr().err.count("pytest-retrace: warning:") == 1


def test_an_error_of_ours_on_replay_is_not_hidden() -> None:
    patcher = Patcher()
    start_main_thread()
    undo = install(Replayer([]))
    try:
        patcher.set(os, "getcwd", ours("def getcwd():\n    raise KeyError('a bug')\n", "getcwd"))
        with pytest.raises(KeyError):
            os.getcwd()
    finally:
        patcher.undo()
        undo()
        end_main_thread()
    assert STATE.installed is None


def test_recorded_frames_out_of_any_sources_range_are_left_out() -> None:
    # A recording is untrusted input: a crafted line number must not make the replay build a huge source.
    frames = [["/x.py", 10**12, "f", None, None, None], ["/y.py", 3, "g", 3, 4, 9], ["/z.py", 5, 7, None, None, None],
              ["/w.py", 2, "h", 2, 0, 10**9]]
    assert [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(rebuilt_traceback(frames))] == [
        ("/y.py", 3, "g")]


def test_a_frame_far_down_a_file_costs_no_more_source_than_one_at_its_top(tmp_path: Path) -> None:
    """A recording is untrusted: a frame at line 1,000,000 must not buy a megabyte of compiled source. The
    rebuilt frame still reads, and underlines, as the recorded one."""
    from pytest_retrace import frames as frames_module

    source = tmp_path / "deep.py"
    source.write_text("\n" * 999_999 + "    total = compute(a, b)\n")
    for lineno in (2, 1_000_000):
        text, _ = frames_module._source_at(lineno, lineno, 12, 24)
        assert len(text) < 40
    rebuilt = rebuilt_traceback([[str(source), 1_000_000, "work", 1_000_000, 12, 24]])
    [entry] = traceback.extract_tb(rebuilt)
    assert (entry.lineno, entry.name, entry.line) == (1_000_000, "work", "total = compute(a, b)")
    if sys.version_info >= (3, 11):
        assert (entry.colno, entry.end_colno) == (12, 24)


def test_frames_of_one_shape_are_compiled_once_and_long_spans_lose_their_columns() -> None:
    """A small file may hold many frames (many exceptions, 1100 frames each): each costs a copy of code compiled
    once per shape of call, not a compile of its own; a span of more than 100 lines is not built line by line."""
    from pytest_retrace import frames as frames_module

    frames_module._SHAPES.clear()
    many = [[f"/srv/app/m{i}.py", 10 + i, f"f{i}", 10 + i, 4, 20] for i in range(1100)]
    entries = traceback.extract_tb(rebuilt_traceback(many))
    assert [(e.filename, e.lineno, e.name) for e in entries] == [(f[0], f[1], f[2]) for f in many]
    assert len(frames_module._SHAPES) == 1
    [wide] = traceback.extract_tb(rebuilt_traceback([["/srv/app/w.py", 5, "w", 9005, 3, 40]]))
    assert (wide.lineno, wide.name) == (5, "w")
    if sys.version_info >= (3, 11):
        assert wide.end_lineno == 5  # not 9005: the span is not built
