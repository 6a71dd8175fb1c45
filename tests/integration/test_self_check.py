"""``--retrace-self-check`` on tests as real suites write them: each test's replay starts from the state its run
began in (a fork taken before the call), touches nothing, and nothing of it reaches the session.

Each session runs in a process of its own, as a user's does: a self-checking session installs the boundaries
before it imports the tests (pytester's in-process runs would also re-import msgpack's classes between runs)."""

from __future__ import annotations

import json
import re

import pytest

XDIST = [[], ["-n", "2"]]

SUITE = '''
import itertools, os, random, subprocess, sys, tempfile, time, uuid
import pytest

REGISTRY = []
WORLD = os.path.join(os.path.dirname(__file__), "world.log")


@pytest.fixture(scope="session")
def app():
    return {"requests": 0, "first": True}


@pytest.fixture
def box():
    return []


def test_session_fixture_remembers_its_first_request(app):
    # An app "that has already handled its first request" refuses set-up calls: a replay with the run's
    # fixture objects would fail here.
    first, app["first"] = app["first"], False
    app["requests"] += 1
    REGISTRY.append(app["requests"])
    assert first or len(REGISTRY) > 1


@pytest.mark.parametrize("n", range(3))
def test_function_fixture_and_module_state(box, n):
    box.append(time.time())
    REGISTRY.append(n)
    assert len(box) == 1


def test_creates_files_in_tmp_path(tmp_path):
    with open(tmp_path / "made.txt", "x") as f:  # exists after the run: a replay that touched disk would fail
        f.write(str(uuid.uuid4()))
    os.mkdir(tmp_path / "sub")
    assert (tmp_path / "made.txt").read_text()


def test_tempfile_names():
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("x")
    folder = tempfile.mkdtemp()
    names = [f.name, folder]
    os.unlink(f.name)
    os.rmdir(folder)
    assert all(os.path.basename(n).startswith("tmp") for n in names)


def test_changes_the_world_once():
    with open(WORLD, "a") as f:
        f.write(f"test {random.random()}\\n")
    subprocess.run([sys.executable, "-c", f"open({WORLD!r}, 'a').write('process\\\\n')"], check=True)


@pytest.mark.retrace_self_check(False, reason="talks to hardware")
def test_opted_out():
    pass
'''


def test_tests_that_change_their_fixtures_files_and_the_world_replay_faithfully(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines([
        "*= retrace self-check =*",
        "7 self-checked, 7 faithful, 0 diverged, 1 not checkable",
        "not checkable (1): opted out: talks to hardware",
        "    test_suite.py::test_opted_out",
    ])
    assert "INTERNALERROR" not in result.stdout.str()
    # The replays wrote nothing and started nothing: the run's line and its process's, once.
    world = (pytester.path / "world.log").read_text().splitlines()
    assert len(world) == 2 and world[0].startswith("test ") and world[1] == "process"


DIVERGING = '''
import os, threading, time
from concurrent.futures import ThreadPoolExecutor


def test_diverges_in_threads_and_a_pool(tmp_path):
    def work(n):
        fd = os.open("/dev/urandom", os.O_RDONLY)  # os.read is below the boundary: the replay draws anew
        name = os.read(fd, 4).hex()
        os.close(fd)
        with open(tmp_path / f"{n}-{name}", "w") as f:
            f.write("x")
        return name

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    with ThreadPoolExecutor(3) as pool:
        names = list(pool.map(work, range(10, 16)))
    for t in threads:
        t.join()
    lock, cond = threading.Lock(), threading.Condition()
    with lock, cond:
        cond.notify_all()
    assert len(names) == 6


def test_later_one():
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(abs, [-1, -2])) == [1, 2]


def test_later_two(tmp_path):
    (tmp_path / "x").write_text(str(time.time()))
'''


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_a_divergence_in_threads_fails_that_test_and_the_session_goes_on(pytester: pytest.Pytester,
                                                                         extra: list[str]) -> None:
    pytester.makepyfile(test_threads=DIVERGING)
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider", *extra)
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output.split("short test summary")[-1]
    result.stdout.fnmatch_lines([
        "*replay diverged at event #*",
        "*expected  open(*",
        "*= retrace self-check =*",
        "3 self-checked, 2 faithful, 1 diverged, 0 not checkable",
        "*FAILED test_threads.py::test_diverges_in_threads_and_a_pool*",
    ])


def test_xdist_workers_report_into_one_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["7 self-checked, 7 faithful, 0 diverged, 1 not checkable"])
    assert len((pytester.path / "world.log").read_text().splitlines()) == 2


def test_the_ini_option_turns_it_on_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nretrace_self_check = true\n")
    pytester.makepyfile(test_one="import time\ndef test_clock():\n    assert time.time() > 0\n")
    on = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    on.assert_outcomes(passed=1)
    on.stdout.fnmatch_lines(["1 self-checked, 1 faithful, 0 diverged, 0 not checkable"])
    assert "retrace self-check" in on.stdout.str()
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "retrace_self_check=false")
    plain.assert_outcomes(passed=1)
    assert "retrace self-check" not in plain.stdout.str()


def test_saving_needs_the_self_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--retrace-self-check-save=recs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--retrace-self-check-save: give --retrace-self-check too*"])


SAVED = '''
import json, os, random, time, urllib.request
import pytest


def test_clock_and_files(tmp_path):
    (tmp_path / "seen.txt").write_text(f"{time.time()} {random.random()}")
    assert len((tmp_path / "seen.txt").read_text()) > 10


@pytest.mark.parametrize("word", ["a b", "c/d"])
def test_params(word):
    assert os.getpid() > 0 and word


def test_with_monkeypatch(monkeypatch):
    monkeypatch.setenv("X", "1")
    assert os.environ["X"] == "1"


class TestInAClass:
    def test_method(self):
        assert time.time() > 0
'''


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_saved_recordings_replay_ok_as_regression_cases(pytester: pytest.Pytester, extra: list[str]) -> None:
    pytester.makepyfile(test_saved=SAVED)
    run = pytester.runpytest_subprocess("--retrace-self-check", "--retrace-self-check-save=recs", "-p",
                                        "no:cacheprovider", *extra)
    run.assert_outcomes(passed=5)
    run.stdout.fnmatch_lines([
        "5 self-checked, 5 faithful, 0 diverged, 0 not checkable, 3 saved to *recs",
        "not saved (1): a test method*",
        "not saved (1): fixture 'monkeypatch' holds a MonkeyPatch, which a recording cannot hold",
    ])
    saved = sorted(str(p.relative_to(pytester.path / "recs")) for p in (pytester.path / "recs").rglob("*.retrace"))
    assert saved == ["test_saved/test_clock_and_files.retrace", "test_saved/test_params[a b].retrace",
                     "test_saved/test_params[c_d].retrace"]
    replay = pytester.runpytest_subprocess("--retrace-recordings=recs", "-p", "no:cacheprovider",
                                           "--retrace-report=r.json")
    replay.assert_outcomes(passed=3)
    report = json.loads((pytester.path / "r.json").read_text())
    assert [r["status"] for r in report["recordings"]] == ["ok"] * 3
    # A second run replaces the saved recordings: the folder is the suite as it last ran.
    again = pytester.runpytest_subprocess("test_saved.py", "--retrace-self-check", "--retrace-self-check-save=recs",
                                          "-p", "no:cacheprovider")
    again.assert_outcomes(passed=5)
    assert len(list((pytester.path / "recs").rglob("*.retrace"))) == 3


BROKEN_CODEC = '''
import os
import pytest_retrace
from pytest_retrace.format import codec

RUN = os.getpid()


class Token:
    def __init__(self, text):
        self.text = text


def _decode(text):
    if os.getpid() != RUN:  # only in the replay's fork: a bug of the replay side
        raise RuntimeError("decoder bug")
    return Token(text)


codec.register_codec("tests.Token", Token, lambda t: t.text, _decode)


@pytest_retrace.boundary
def fetch():
    return Token("t")


def test_replay_crashes_ours():
    assert fetch().text == "t"


def test_next_one():
    assert True
'''


def test_a_replay_that_crashes_ours_is_an_error_naming_it_and_the_session_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN_CODEC)
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*retrace self-check error: pytest-retrace failed while replaying test_broken.py::test_replay_crashes_ours*",
        "*decoder bug*",
        "2 self-checked, 1 faithful, 0 diverged, 1 errors (pytest-retrace failed: please report), 0 not checkable",
        "error (1): *decoder bug*",
        "    test_broken.py::test_replay_crashes_ours",
    ])
    assert "INTERNALERROR" not in result.stdout.str()


def test_a_test_whose_calls_no_recording_holds_is_not_checkable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_odd='''
        import pytest_retrace

        class Odd:
            pass

        @pytest_retrace.boundary
        def fetch():
            return Odd()

        def test_odd():
            assert isinstance(fetch(), Odd)
    ''')
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["0 self-checked, 0 faithful, 0 diverged, 1 not checkable",
                                 "not checkable (1): cannot be recorded: cannot record a value of type *Odd*"])


def test_summary_names_each_cause_once_however_many_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_many='''
        import pytest

        @pytest.mark.retrace_self_check(False, reason="flaky clock")
        @pytest.mark.parametrize("n", range(12))
        def test_n(n):
            pass
    ''')
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    out = result.stdout.str()
    assert out.count("not checkable (12): opted out: flaky clock") == 1
    assert "… 2 more" in out
    assert len(re.findall(r"^    test_many.py::test_n\[\d+\]$", out, re.M)) == 10


def test_work_handed_to_threads_from_before_the_test_is_not_checkable_and_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pool='''
        import time
        from concurrent.futures import ThreadPoolExecutor
        import pytest

        @pytest.fixture(scope="session")
        def pool():
            with ThreadPoolExecutor(1, thread_name_prefix="shared-pool") as p:
                p.submit(abs, 1).result()  # its worker runs from here on, before any test
                yield p

        def test_uses_the_shared_pool(pool):
            assert pool.submit(time.time).result() > 0

        def test_after(tmp_path):
            (tmp_path / "x").write_text("y")
    ''')
    result = pytester.runpytest_subprocess("--retrace-self-check", "--retrace-stuck-timeout=1", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "1 self-checked, 1 faithful, 0 diverged, 1 not checkable",
        "not checkable (1): its replay waits for what threads running before the test did for it (shared-pool_0*)*",
        "    test_pool.py::test_uses_the_shared_pool",
    ])


BOUND_AT_IMPORT = '''
import os, subprocess, sys
from socket import socket

import pytest
from time import time

_getpid = os.getpid


def test_functions_bound_at_import_are_recorded(tmp_path):
    s = socket()
    s.bind(("127.0.0.1", 0))  # a replay that ran it for real would be refused
    port = s.getsockname()[1]
    s.close()
    (tmp_path / "stamp").write_text(f"{time()} {port} {_getpid()}")


def test_own_writes_to_captured_descriptors(capfd):
    os.write(1, b"to fd 1\\n")
    print("printed")
    assert capfd.readouterr().out == "to fd 1\\nprinted\\n"


def test_output_a_process_writes_to_captured_descriptors(capfd):
    subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    assert capfd.readouterr().out == "from a child\\n"


@pytest.fixture
def noisy():
    print("set-up noise", file=sys.stderr)
    os.write(2, b"more set-up noise\\n")


def test_captured_stderr_after_a_noisy_set_up(capfd, noisy):
    # The capture file holds the set-up's output when the test forks; the run empties it at once.
    assert "set-up noise" in capfd.readouterr().err
    os.write(2, b"mine\\n")
    assert capfd.readouterr().err == "mine\\n"


def test_a_process_whose_output_is_piped_stays_checkable(capfd):
    done = subprocess.run([sys.executable, "-c", "print('piped')"], capture_output=True, text=True, check=True)
    print(done.stdout.strip())
    assert capfd.readouterr().out == "piped\\n"


def test_failing_with_captured_output():
    print("the run's own output")
    os.write(1, b"and its descriptor's\\n")
    assert False
'''


def test_what_modules_bind_at_import_and_captured_output(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bound=BOUND_AT_IMPORT)
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        # The replay, reading its own copy of the capture files, left the run's captured output as it was.
        "*- Captured stdout call -*",
        "the run's own output",
        "and its descriptor's",
        "*= retrace self-check =*",
        "5 self-checked, 5 faithful, 0 diverged, 1 not checkable",
        "not checkable (1): it reads back (capfd) what the processes it starts write to the descriptors it "
        "captures, which no recording holds",
    ])
    assert len(re.findall(r"^and its descriptor's$", result.stdout.str(), re.M)) == 1  # not twice: no replay wrote


def test_a_test_that_changes_a_file_its_replay_reads_live_is_not_checkable(pytester: pytest.Pytester) -> None:
    package = pytester.mkpydir("templates")  # a folder with __init__.py: its files count as code
    (package / "page.html").write_text("<p>{{ x }}</p>")
    pytester.makepyfile(test_touch='''
        import os, pathlib

        PAGE = pathlib.Path(__file__).parent / "templates" / "page.html"

        def test_touches_a_template():
            before = os.stat(PAGE).st_mtime_ns
            os.utime(PAGE, ns=(before + 10**9, before + 10**9))
            assert os.stat(PAGE).st_mtime_ns != before

        def test_writes_a_new_module(tmp_path):
            (tmp_path / "mod.py").write_text("X = 1")
            os.utime(tmp_path / "mod.py", (1, 1))  # its own file: the replay reads what the run wrote
    ''')
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "1 self-checked, 1 faithful, 0 diverged, 1 not checkable",
        "not checkable (1): it changes */templates/page.html, which its replay reads live as the run left it*",
    ])


def test_the_programs_own_collector_callbacks_stay_outside_the_recording(pytester: pytest.Pytester) -> None:
    # hypothesis times every collection from its first test on: a callback that calls a recorded function, at
    # whichever point of the test the collector happens to run.
    pytester.makepyfile(test_gc='''
        import gc, time

        _perf_counter = time.perf_counter

        def test_collections_between_recorded_calls():
            gc.callbacks.append(lambda phase, info: _perf_counter())
            gc.callbacks.insert(0, lambda phase, info: _perf_counter())  # (as hypothesis does)
            keep = []
            for _ in range(50):
                keep.append([[i] for i in range(100)])  # a gen-0 collection every few rounds
                time.time()
            assert len(keep) == 50
    ''')
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["1 self-checked, 1 faithful, 0 diverged, 0 not checkable"])


def test_without_fork_it_replays_in_the_process_and_says_so_once(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import os\ndel os.fork  # a platform without fork\n")
    pytester.makepyfile(test_nofork='''
        import random, time

        def test_one(tmp_path):
            (tmp_path / "x").write_text(str(time.time() + random.random()))

        def test_two():
            assert time.time() > 0
    ''')
    result = pytester.runpytest_subprocess("--retrace-self-check", "-p", "no:cacheprovider", "-W",
                                           "default::pytest.PytestWarning")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines([
        "*retrace self-check replays each test in this process (os.fork is not available on this platform)*",
        "2 self-checked, 2 faithful, 0 diverged, 0 not checkable",
        "replayed in this process, not in a fork: os.fork is not available on this platform",
    ])
