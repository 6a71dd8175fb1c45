"""The descriptors a replay serves a data file's recorded bytes from: real, read-only, at the lowest free
number, answering the recorded stat only while the number still holds the file made for it."""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
from pathlib import Path

import pytest

from pytest_retrace.boundaries import descriptors
from pytest_retrace.boundaries.descriptors import Descriptors, Snapshot


@pytest.fixture(params=["memfd", "temporary file"])
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    if request.param == "memfd" and descriptors._memfd_create is None:
        pytest.skip("no memfd_create here")
    if request.param == "temporary file":
        monkeypatch.setattr(descriptors, "_memfd_create", None)
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return str(request.param)


def test_a_served_descriptor_holds_the_bytes_read_only_and_answers_the_recorded_stat(
    kind: str, tmp_path: Path
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"recorded bytes" * 1000)
    snapshot = Snapshot.of(Snapshot.value(data.read_bytes(), os.stat(data)))
    assert snapshot.stat == os.stat(data)
    lowest = os.dup(0)
    os.close(lowest)
    served = Descriptors()
    fd = served.serve(snapshot)
    assert fd == lowest, "the number a plain open would have got"
    assert not os.get_inheritable(fd)
    assert os.pread(fd, 14, 0) == b"recorded bytes" and os.lseek(fd, 0, os.SEEK_CUR) == 0
    with pytest.raises(OSError) as refused:
        os.write(fd, b"x")
    assert refused.value.errno == errno.EBADF
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as m:
        assert len(m) == 14000
    assert served.stat(fd, os.fstat(fd)) == os.stat(data)
    assert sorted(os.listdir(tmp_path)) == ["data.bin"], "nothing left behind in the folder"
    os.close(fd)
    # The number is free again: a pipe takes it and answers its own stat.
    r, w = os.pipe()
    try:
        assert r == fd and served.stat(r, os.fstat(r)) is None
    finally:
        os.close(r), os.close(w)


def test_recordings_made_before_the_stat_was_kept_still_serve_their_bytes() -> None:
    snapshot = Snapshot.of(b"old form")
    assert snapshot.stat is None
    fd = Descriptors().serve(snapshot)
    try:
        assert os.read(fd, 100) == b"old form"
    finally:
        os.close(fd)
