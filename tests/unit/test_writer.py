"""The writer of in-process recordings: off the caller's thread, waited for when the process stops (within a
bound, what is lost said), one per process across forks; rotation that keeps the newest and never touches a
file being written."""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest

from pytest_retrace.kinds import writer as writing
from pytest_retrace.kinds.writer import Job, RecordingWriter, rotate


def test_recordings_are_written_on_the_writer_thread_and_a_flush_waits_for_them(tmp_path: Path) -> None:
    writer, written = RecordingWriter(), []

    def slow(n: int) -> None:
        time.sleep(0.05)
        written.append((n, threading.get_ident()))

    for n in range(3):
        writer.submit(Job(lambda n=n: slow(n), tmp_path))
    assert len(written) < 3  # the caller went on at once
    assert writer.flush(5, "test") == 0
    assert [n for n, _ in written] == [0, 1, 2] and threading.get_ident() not in {t for _, t in written}


def test_a_failing_write_is_logged_and_the_next_one_is_written(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    writer, written = RecordingWriter(), []

    def fail() -> None:
        raise OSError("No space left on device")

    writer.submit(Job(fail, tmp_path))
    writer.submit(Job(lambda: written.append(1), tmp_path))
    with caplog.at_level(logging.WARNING, logger="pytest_retrace"):
        assert writer.flush(5, "test") == 0
    assert written == [1]
    assert f"a recording could not be written to {tmp_path}: No space left on device" in caplog.text


def test_a_flush_gives_up_after_its_bound_and_says_what_is_lost(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    writer, stuck = RecordingWriter(), threading.Event()
    writer.submit(Job(lambda: stuck.wait(10), tmp_path))  # a disk that hangs
    writer.submit(Job(lambda: None, tmp_path))
    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="pytest_retrace"):
        assert writer.flush(0.2, "stopping on SIGTERM") == 2
    assert time.monotonic() - began < 2
    assert (f"stopping on SIGTERM: after waiting 0.2 s, 2 recordings are not written (to {tmp_path}) and 0 "
            "requests or calls are still under way: they are lost") in caplog.text
    stuck.set()
    assert writer.flush(5, "test") == 0


class Request:
    """Stands for a recording under way (the writer holds it weakly); ``holder``: what can end it at exit."""

    holder: Any = None


class Body:
    """Stands for a response body handed over and never closed, which holds its recording open."""

    def __init__(self, writer: RecordingWriter, recording: Request) -> None:
        self.writer, self.recording, self.ended = writer, recording, 0

    def end_at_exit(self) -> None:
        self.ended += 1
        self.writer.closed(self.recording)


def test_a_flush_waits_for_recordings_under_way_on_other_threads_only(tmp_path: Path) -> None:
    writer = RecordingWriter()
    own = Request()
    writer.opened(own)  # a signal handler interrupting this thread's request: that one cannot end meanwhile
    assert writer.flush(0, "test") == 0
    other, done = Request(), threading.Event()

    def request() -> None:
        writer.opened(other)
        done.wait(5)
        writer.submit(Job(lambda: time.sleep(0.05), tmp_path))
        writer.closed(other)

    thread = threading.Thread(target=request)
    thread.start()
    while id(other) not in writer._open:
        time.sleep(0.001)
    assert writer.flush(0.05, "test") == 1  # still answering
    threading.Timer(0.1, done.set).start()
    assert writer.flush(5, "test") == 0  # answered, and its recording written
    thread.join()


def test_a_flush_ends_this_threads_recordings_that_their_holder_can_end(tmp_path: Path) -> None:
    """At exit, a response body still held by the program (a test client's response in a variable) ends its
    recording, once; a recording of this thread with no holder (its own code interrupted) is left, and one of
    another thread is waited for, never ended from here."""
    writer = RecordingWriter()
    held, interrupted, other = Request(), Request(), Request()
    body = Body(writer, held)
    held.holder = weakref.ref(body)
    writer.opened(held)
    writer.opened(interrupted)
    elsewhere = Body(writer, other)
    other.holder = weakref.ref(elsewhere)
    started, done = threading.Event(), threading.Event()

    def request() -> None:
        writer.opened(other)
        started.set()
        done.wait(5)
        writer.closed(other)

    thread = threading.Thread(target=request)
    thread.start()
    started.wait(5)
    threading.Timer(0.1, done.set).start()
    assert writer.flush(5, "test") == 0
    thread.join()
    assert (body.ended, elsewhere.ended) == (1, 0)
    assert list(writer._open) == [id(interrupted)]
    del body
    assert writer.flush(0, "test") == 0  # its holder gone: nothing to end, and not waited for (this thread's)


def test_a_recording_dropped_unfinished_is_not_waited_for() -> None:
    writer = RecordingWriter()
    threading.Thread(target=lambda: writer.opened(Request())).start()  # a streamed body the server dropped
    time.sleep(0.05)
    assert writer.flush(0, "test") == 0


def test_a_forked_child_writes_with_a_writer_of_its_own(tmp_path: Path) -> None:
    parent = writing.writer()
    release = threading.Event()
    parent.submit(Job(lambda: release.wait(10), tmp_path))  # the parent's writer is busy at the fork
    marker = tmp_path / "child"
    with warnings.catch_warnings():  # 3.12+ warns of fork with threads running: forking such a process is the case
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: not the parent's writer or queue, and its own thread writes
        code = 1
        try:
            child = writing.writer()
            child.submit(Job(lambda: marker.write_text(str(os.getpid())), tmp_path))
            code = 0 if child is not parent and child.flush(5, "test") == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    release.set()
    assert os.waitstatus_to_exitcode(status) == 0
    assert marker.read_text() == str(pid)
    assert parent.flush(5, "test") == 0


def recordings(folder: Path, sizes: list[int]) -> list[Path]:
    """Recordings of those sizes, oldest first (modification times a second apart)."""
    folder.mkdir(exist_ok=True)
    made = []
    for n, size in enumerate(sizes):
        path = folder / f"r{n}.retrace"
        path.write_bytes(b"x" * size)
        os.utime(path, ns=(n * 10**9, n * 10**9))
        made.append(path)
    return made


def test_rotation_keeps_the_newest_and_leaves_files_being_written_alone(tmp_path: Path) -> None:
    made = recordings(tmp_path, [10] * 6)
    temp = tmp_path / ".r9.retrace.abcd1234.partial"  # another process is writing it
    temp.write_bytes(b"y" * 100)
    os.utime(temp, ns=(0, 0))
    (tmp_path / "sub.retrace").mkdir()
    rotate(tmp_path, 4, None)
    assert sorted(p.name for p in tmp_path.glob("*.retrace") if p.is_file()) == [p.name for p in made[2:]]
    assert temp.exists() and (tmp_path / "sub.retrace").is_dir()


def test_rotation_by_size_keeps_the_newest_that_fit(tmp_path: Path) -> None:
    made = recordings(tmp_path, [10, 40, 10, 30, 20])
    rotate(tmp_path, None, 60)  # the newest 20 + 30 + 10 fit; the 40 before them does not, nor what is older
    assert sorted(p.name for p in tmp_path.glob("*.retrace")) == [p.name for p in made[2:]]
    rotate(tmp_path, None, None)  # no limit: nothing goes
    assert len(list(tmp_path.glob("*.retrace"))) == 3
