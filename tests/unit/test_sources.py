"""Where recordings come from (front/sources.py): files, folders, glob patterns and fsspec URLs (``memory://``,
``file://``), the download cache behind URLs, and the usage error of each kind of entry that gives nothing."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_retrace.front.sources import Source, resolve

fsspec = pytest.importorskip("fsspec")
MemoryFileSystem = pytest.importorskip("fsspec.implementations.memory").MemoryFileSystem
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "recordings" / "format-1.6"
CLOCKS = (FIXTURES / "clocks.retrace").read_bytes()
REPEATS = (FIXTURES / "repeats.retrace").read_bytes()
OPTION = "--retrace-recordings"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rootdir, and a download cache of the test's own."""
    monkeypatch.setenv("RETRACE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "project"
    for name in ("recordings/2026-12-01/checkout-1.retrace", "recordings/2026-12-02/checkout-2.retrace",
                 "recordings/2026-12-02/refund-3.retrace", "recordings/2027-01-01/checkout-4.retrace"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(CLOCKS)
    (root / "recordings" / "README.txt").write_text("not a recording")
    return root


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh folder of the in-memory file system, as a URL."""
    folder = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield f"memory://{folder}"
    fs = fsspec.filesystem("memory")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)


def names(source: Source) -> list[str]:
    return source.names


def usage_error(entry: str, base: Path) -> str:
    with pytest.raises(pytest.UsageError) as raised:
        resolve(entry, base, OPTION, base)
    return str(raised.value)


# -- local entries ---------------------------------------------------------------------------------------


def test_a_folder_is_searched_at_any_depth_and_a_file_is_itself(project: Path) -> None:
    folder = resolve("recordings", project, OPTION, project)
    assert folder.collect == [project / "recordings"]
    assert names(folder) == ["recordings/2026-12-01/checkout-1.retrace", "recordings/2026-12-02/checkout-2.retrace",
                             "recordings/2026-12-02/refund-3.retrace", "recordings/2027-01-01/checkout-4.retrace"]
    one = resolve(str(project / "recordings/2026-12-02/refund-3.retrace"), project / "elsewhere", OPTION, project)
    assert one.collect == one.recordings == [project / "recordings/2026-12-02/refund-3.retrace"]
    assert names(one) == ["refund-3.retrace"]  # outside the base: its name


def test_glob_patterns_match_files_and_folders_with_double_star_at_any_depth(project: Path) -> None:
    checkouts = resolve("recordings/**/checkout-*.retrace", project, OPTION, project)
    assert names(checkouts) == ["recordings/2026-12-01/checkout-1.retrace", "recordings/2026-12-02/checkout-2.retrace",
                                "recordings/2027-01-01/checkout-4.retrace"]
    assert checkouts.collect == checkouts.recordings  # the files themselves, not their folders
    december = resolve("recordings/2026-12-*", project, OPTION, project)  # folders: searched
    assert names(december) == ["recordings/2026-12-01/checkout-1.retrace", "recordings/2026-12-02/checkout-2.retrace",
                               "recordings/2026-12-02/refund-3.retrace"]
    assert names(resolve(str(project / "recordings/*/refund-?.retrace"), project, OPTION, project)) == [
        "recordings/2026-12-02/refund-3.retrace"]


def test_each_kind_of_local_entry_that_gives_nothing_is_a_usage_error_saying_what_to_do(project: Path) -> None:
    (project / "empty").mkdir()
    assert usage_error("missing", project) == (
        f"{OPTION}: missing does not exist; give a .retrace file, a folder of them, a glob pattern or a URL")
    assert usage_error("recordings/README.txt", project) == (
        f"{OPTION}: recordings/README.txt is not a recording (recordings end in .retrace)")
    assert usage_error("empty", project).startswith(f"{OPTION}: no *.retrace recordings in empty; record some first")
    nothing = usage_error("recordings/2025-*", project)
    assert nothing.startswith(f"{OPTION}: the pattern recordings/2025-* gives no *.retrace recording (it matches no "
                              "file or folder); check it (** matches any depth of folders")
    assert "record some first" in nothing
    assert "(it matches 1 files or folders, and none is a recording nor holds one)" in usage_error(
        "recordings/*.txt", project)


# -- URLs --------------------------------------------------------------------------------------------------


def test_a_memory_prefix_is_fetched_once_into_the_rootdir_and_named_by_the_object(
        project: Path, bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    fs = fsspec.filesystem("memory")
    path = bucket.removeprefix("memory://")
    fs.pipe({f"{path}/prod/a.retrace": CLOCKS, f"{path}/prod/deep/b.retrace": REPEATS, f"{path}/prod/c.txt": b"x"})
    first = resolve(f"{bucket}/prod", project, OPTION, project)
    stem = f"memory/{path.lstrip('/')}/prod"
    assert names(first) == [f"{stem}/a.retrace", f"{stem}/deep/b.retrace"]
    tree = project / ".pytest_cache" / "retrace"
    assert first.collect == [tree / stem]
    assert first.recordings == [tree / stem / "a.retrace", tree / stem / "deep" / "b.retrace"]
    assert [p.read_bytes() for p in first.recordings] == [CLOCKS, REPEATS]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in first.recordings)
    fetched = f"2 fetched ({_kb(CLOCKS, REPEATS)})"
    assert capsys.readouterr().out == f"retrace: {bucket}/prod: 2 recordings: {fetched}, 0 cached\n"

    shutil.rmtree(tree)  # a fresh checkout: the tree is made again from the store, nothing fetched
    resolve(f"{bucket}/prod", project, OPTION, project)
    assert capsys.readouterr().out == f"retrace: {bucket}/prod: 2 recordings: 0 fetched, 2 cached\n"

    fs.pipe(f"{path}/prod/a.retrace", REPEATS)  # rewritten under its name
    fs.rm(f"{path}/prod/deep/b.retrace")
    third = resolve(f"{bucket}/prod", project, OPTION, project)
    assert capsys.readouterr().out.startswith(f"retrace: {bucket}/prod: 1 recordings: 1 fetched (")
    assert third.recordings == [tree / stem / "a.retrace"] and third.recordings[0].read_bytes() == REPEATS
    assert not (tree / stem / "deep" / "b.retrace").exists()  # gone from the bucket: not collected


def _kb(*contents: bytes) -> str:
    return f"{sum(map(len, contents)) / 1000:.1f} kB"


def test_one_object_and_globs_of_a_url(project: Path, bucket: str) -> None:
    fs = fsspec.filesystem("memory")
    path = bucket.removeprefix("memory://")
    fs.pipe({f"{path}/prod/2026-12-01/checkout-1.retrace": CLOCKS, f"{path}/prod/2026-12-02/refund-2.retrace": CLOCKS,
             f"{path}/prod/2027-01-01/checkout-3.retrace": REPEATS})
    stem = f"memory/{path.lstrip('/')}/prod"
    one = resolve(f"{bucket}/prod/2026-12-02/refund-2.retrace", project, OPTION, project, quiet=True)
    assert names(one) == [f"{stem}/2026-12-02/refund-2.retrace"] and one.collect == one.recordings
    checkouts = resolve(f"{bucket}/prod/**/checkout-*.retrace", project, OPTION, project, quiet=True)
    assert names(checkouts) == [f"{stem}/2026-12-01/checkout-1.retrace", f"{stem}/2027-01-01/checkout-3.retrace"]
    december = resolve(f"{bucket}/prod/2026-12-*", project, OPTION, project, quiet=True)
    assert names(december) == [f"{stem}/2026-12-01/checkout-1.retrace", f"{stem}/2026-12-02/refund-2.retrace"]


def test_a_file_url_prefix_and_glob(project: Path) -> None:
    folder = project / "recordings"
    source = resolve(f"file://{folder}/2026-12-02", project, OPTION, project, quiet=True)
    stem = f"file/{str(folder).lstrip('/')}/2026-12-02"
    assert names(source) == [f"{stem}/checkout-2.retrace", f"{stem}/refund-3.retrace"]
    assert [p.read_bytes() for p in source.recordings] == [CLOCKS, CLOCKS]
    pattern = resolve(f"file://{folder}/**/checkout-*.retrace", project, OPTION, project, quiet=True)
    assert len(pattern.recordings) == 3


def test_each_kind_of_url_that_gives_nothing_is_a_usage_error_saying_what_to_do(project: Path, bucket: str) -> None:
    fs = fsspec.filesystem("memory")
    path = bucket.removeprefix("memory://")
    fs.pipe({f"{path}/prod/notes.txt": b"x"})
    assert usage_error(f"{bucket}/none", project).startswith(
        f"{OPTION}: no recordings in {bucket}/none: looked for *.retrace objects under {bucket}/none (there is no such "
        "object or prefix); check the URL (a prefix, one object, or a glob; ** matches any depth of folders), or "
        f"record some first (RecordingMiddleware(app, \"{bucket}/none\")")
    assert f"looked for *.retrace objects under {bucket}/prod;" in usage_error(f"{bucket}/prod", project)
    assert (f"looked for the object {bucket}/prod/notes.txt (it is not a recording: recordings end in .retrace)"
            in usage_error(f"{bucket}/prod/notes.txt", project))
    assert f"looked for objects matching {bucket}/*/x-*.retrace;" in usage_error(f"{bucket}/*/x-*.retrace", project)
    unknown = usage_error("nosuch://bucket/prefix", project)
    assert unknown.startswith(f"{OPTION}: nosuch://bucket/prefix: ") and "nosuch" in unknown.split(": ", 2)[2]


def test_an_object_whose_key_climbs_out_is_refused(project: Path, bucket: str) -> None:
    fs = fsspec.filesystem("memory")
    path = bucket.removeprefix("memory://")
    fs.pipe(f"{path}/prod/x.retrace", CLOCKS)
    fs.store[f"{path}/prod/../../escape.retrace"] = fs.store[f"{path}/prod/x.retrace"]  # a key as a bucket may hold
    message = usage_error(f"{bucket}/prod", project)
    assert message.startswith(f"{OPTION}: memory://{path}/prod/../../escape.retrace: this object's name is not "
                              "usable as a file name"), message
    assert not any((project / ".pytest_cache").rglob("escape.retrace"))


def _resolve_in_a_process(url: str, project: str, cache: str) -> list[str]:
    os.environ["RETRACE_CACHE_DIR"] = cache
    return [str(p) for p in resolve(url, Path(project), OPTION, Path(project), quiet=True).recordings]


def test_processes_filling_one_cache_at_once_agree_and_leave_no_partial_file(project: Path, tmp_path: Path) -> None:
    url = f"file://{project / 'recordings'}"
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(_resolve_in_a_process, [(url, str(project), str(tmp_path / "cache"))] * 4)
    assert all(result == results[0] for result in results) and len(results[0]) == 4
    everything = [*(tmp_path / "cache").rglob("*"), *(project / ".pytest_cache").rglob("*")]
    assert [p for p in everything if p.name.endswith(".partial")] == []
    assert len(list((tmp_path / "cache" / "recordings").glob("*.retrace"))) == 1  # four objects, one content


def test_a_recording_another_process_linked_first_leaves_no_temporary_name(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes link one blob into the tree at once: the loser's rename between two links of the same file
    does nothing (POSIX), and its temporary name must not stay behind."""
    from pytest_retrace.format.storage import StoredObject
    from pytest_retrace.front.downloads import DownloadCache

    cache = DownloadCache(tmp_path / "store", tmp_path / "tree")
    blob = tmp_path / "store" / "abc.retrace"
    blob.parent.mkdir()
    blob.write_bytes(b"RETRACE\x00 a recording")
    obj = StoredObject("memory://bucket/x.retrace", "memory/bucket/x.retrace", 20, "v1")
    target = cache.tree / obj.name
    target.parent.mkdir(parents=True)
    os.link(blob, target)  # the other process won
    monkeypatch.setattr(os.path, "samefile", lambda a, b: False)  # it won after this one looked
    assert cache._materialise(obj, blob) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.retrace"]


class NoBucket(MemoryFileSystem):  # type: ignore[misc]
    """An object store whose bucket is not there: every upload is refused as S3 refuses it (NoSuchBucket, which
    s3fs raises as FileNotFoundError). No local server shows it: SeaweedFS makes buckets on the first upload."""

    protocol = ("nobucket",)

    def put_file(self, lpath: str, rpath: str, **kwargs: object) -> None:
        raise FileNotFoundError(f"The specified bucket does not exist: {rpath}")


def test_an_upload_to_a_missing_bucket_waits_in_the_spool_and_says_so(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from pytest_retrace.format.storage import Spool

    fsspec.register_implementation("nobucket", NoBucket, clobber=True)
    spool = Spool("nobucket://gone/jobs", str(tmp_path / "spool"))
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "job-1.retrace").write_bytes(CLOCKS)
    with caplog.at_level("WARNING", logger="pytest_retrace"):
        assert spool.upload() == 1
    assert (tmp_path / "spool" / "job-1.retrace").exists()
    assert "1 recordings could not be uploaded to nobucket://gone/jobs (FileNotFoundError: The specified bucket " \
           "does not exist" in caplog.text
