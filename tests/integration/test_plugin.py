"""The pytest plugin end to end, as a user meets it: pytester runs pytest on recordings of a
small HTTP client, recorded for real against a local server that is gone when they replay."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import LiveServer, retrace

from pytest_retrace.format.tape import read_recording

CLIENT = '''\
import json, sys, urllib.request

def price(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
        return json.loads(response.read())["price"]

print("price", price(sys.argv[1], sys.argv[2]))
'''
FIXED = CLIENT.replace('''        return json.loads(response.read())["price"]''', '''        body = response.read()
    try:
        return json.loads(body)["price"]
    except ValueError:
        return None''')

XDIST = [[], ["-n", "2"]]


@pytest.fixture
def project(pytester: pytest.Pytester, http_server: LiveServer) -> Path:
    """A project with two recordings of client.py: one answered, one that crashed on a text answer."""
    root = pytester.path
    (root / "client.py").write_text(CLIENT)
    (root / "recordings").mkdir()
    port = str(http_server.port)
    ok = retrace("record", "-o", "recordings/ok.retrace", "client.py", port, "/quote", cwd=root)
    assert ok.returncode == 0, ok.stderr
    crash = retrace("record", "-o", "recordings/crash.retrace", "client.py", port, "/text", cwd=root)
    assert crash.returncode == 1 and "JSONDecodeError" in crash.stderr
    http_server.stop()
    return root


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_crash_fails_until_fixed_then_guards(pytester: pytest.Pytester, project: Path, extra: list[str]) -> None:
    result = pytester.runpytest("--retrace-recordings=recordings", *extra)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*the recorded crash still happens: recorded json.decoder.JSONDecodeError: Expecting value*",
        "*retrace summary*",
        "2 replayed, 1 ok, 1 crash reproduced",
        "recorded crashes still happen: fix them, then run again",
        "keep a crash as a regression case: retrace pin recordings/crash.retrace",
        "*FAILED recordings/crash.retrace::replay*",
    ])
    (project / "client.py").write_text(FIXED)
    fixed = pytester.runpytest("--retrace-recordings=recordings", *extra)
    fixed.assert_outcomes(passed=2)
    fixed.stdout.fnmatch_lines(["2 replayed, 1 ok, 1 crash fixed"])


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_changed_url_is_a_divergence_naming_the_call(pytester: pytest.Pytester, project: Path,
                                                     extra: list[str]) -> None:
    (project / "client.py").write_text(CLIENT.replace("{port}{path}", "{port}/v2{path}"))
    result = pytester.runpytest("--retrace-recordings=recordings/ok.retrace", *extra)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*replay diverged at event #*",
        "*expected  socket.sendall(b'GET /quote HTTP/1.1*",
        "*actual    socket.sendall(b'GET /v2/quote HTTP/1.1*",
    ])


def test_usage_errors(pytester: pytest.Pytester) -> None:
    (pytester.path / "empty").mkdir()
    empty = pytester.runpytest("--retrace-recordings=empty")
    assert empty.ret == pytest.ExitCode.USAGE_ERROR
    empty.stderr.fnmatch_lines(["*--retrace-recordings: no *.retrace recordings in empty*"])
    missing = pytester.runpytest("--retrace-recordings=nowhere")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--retrace-recordings: nowhere does not exist*"])


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_truncated_and_corrupt_recordings_are_errors(pytester: pytest.Pytester, project: Path,
                                                     extra: list[str]) -> None:
    ok = project / "recordings" / "ok.retrace"
    data = ok.read_bytes()
    (project / "recordings" / "cut.retrace").write_bytes(data[:-10])
    broken = bytearray(data)
    broken[40] ^= 0xFF
    (project / "recordings" / "bad.retrace").write_bytes(bytes(broken))
    result = pytester.runpytest("--retrace-recordings=recordings", *extra)
    result.assert_outcomes(passed=1, failed=1, errors=2)
    result.stdout.fnmatch_lines(["recordings/bad.retrace: corrupt recording: CRC mismatch in frame at offset 12"])
    result.stdout.fnmatch_lines(["recordings/cut.retrace: truncated recording: partial frame at offset *"])


def test_selection_node_ids_last_failed_and_junitxml(pytester: pytest.Pytester, project: Path) -> None:
    selected = pytester.runpytest("--retrace-recordings=recordings", "-k", "ok")
    selected.assert_outcomes(passed=1)
    by_id = pytester.runpytest("recordings/crash.retrace::replay")
    by_id.assert_outcomes(failed=1)
    last_failed = pytester.runpytest("--retrace-recordings=recordings", "--lf")
    last_failed.assert_outcomes(failed=1)
    pytester.runpytest("--retrace-recordings=recordings", "--junitxml=out.xml")
    import xml.etree.ElementTree as ElementTree

    cases = ElementTree.parse(project / "out.xml").getroot().iter("testcase")
    failures = {case.get("classname"): case.find("failure") for case in cases}
    assert set(failures) == {"recordings.crash.retrace", "recordings.ok.retrace"}
    assert failures["recordings.ok.retrace"] is None
    assert "the recorded crash still happens" in failures["recordings.crash.retrace"].text


def test_pin_then_fix_then_regress(pytester: pytest.Pytester, project: Path) -> None:
    pinned = retrace("pin", "recordings/crash.retrace", "--into", "tests/recordings", cwd=project)
    assert pinned.returncode == 0, pinned.stderr
    [case] = (project / "tests" / "recordings").glob("*.retrace")
    assert case.name.startswith("JSONDecodeError-client_") and case.name.endswith(".retrace")
    assert read_recording(case).header["pin"]["exception"] == "json.decoder.JSONDecodeError"
    again = retrace("pin", "recordings/crash.retrace", "--into", "tests/recordings", cwd=project)
    assert again.returncode == 2 and f"already pinned as tests/recordings/{case.name}" in again.stderr
    # A plain pytest run picks the pinned case up from the test folder.
    pytester.runpytest("tests").assert_outcomes(failed=1)
    (project / "client.py").write_text(FIXED)
    pytester.runpytest("tests").assert_outcomes(passed=1)
    (project / "client.py").write_text(CLIENT)
    regressed = pytester.runpytest("tests")
    regressed.assert_outcomes(failed=1)
    regressed.stdout.fnmatch_lines(["1 replayed, 1 crash reproduced, 1 regressed"])


def test_triage_groups_crashes(pytester: pytest.Pytester, project: Path) -> None:
    import shutil

    shutil.copy(project / "recordings" / "crash.retrace", project / "recordings" / "crash2.retrace")
    triaged = retrace("triage", "recordings", cwd=project)
    assert triaged.returncode == 0
    assert "2 x  json.decoder.JSONDecodeError: Expecting value" in triaged.stdout
    assert "retrace pin recordings/crash.retrace" in triaged.stdout
    groups = json.loads(retrace("triage", "recordings", "--json", cwd=project).stdout)
    assert [g["count"] for g in groups] == [2]


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_determinism_runs(pytester: pytest.Pytester, project: Path, extra: list[str]) -> None:
    steady = pytester.runpytest("--retrace-recordings=recordings/ok.retrace", "--retrace-determinism-runs=3", *extra)
    steady.assert_outcomes(passed=1)
    (project / "ids.py").write_text("print(id(object()))\n")
    assert retrace("record", "-o", "recordings/ids.retrace", "ids.py", cwd=project).returncode == 0
    shaky = pytester.runpytest("--retrace-recordings=recordings/ids.retrace", "--retrace-determinism-runs=2", *extra)
    shaky.assert_outcomes(failed=1)
    shaky.stdout.fnmatch_lines(["*nondeterministic replay: two replays differ in stdout*", "*1 nondeterministic*"])


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_accept_rewrites_only_an_outcome_change(pytester: pytest.Pytester, project: Path, extra: list[str]) -> None:
    (project / "greet.py").write_text("import time\nprint('hello', time.time() > 0)\n")
    assert retrace("record", "-o", "recordings/greet.retrace", "greet.py", cwd=project).returncode == 0
    (project / "greet.py").write_text("import time\nprint('hello again', time.time() > 0)\n")
    pytester.runpytest("--retrace-recordings=recordings/greet.retrace").assert_outcomes(failed=1)
    accepted = pytester.runpytest("--retrace-recordings=recordings/greet.retrace", "--retrace-accept", *extra)
    accepted.assert_outcomes(passed=1)
    accepted.stdout.fnmatch_lines(["1 replayed, 1 accepted", "*"])
    accepted.stdout.no_fnmatch_line("*run again with --retrace-accept*")  # settled: no hint about it
    accepted.stdout.no_fnmatch_line("diverged replays:*")
    pytester.runpytest("--retrace-recordings=recordings/greet.retrace").assert_outcomes(passed=1)
    # Never when a call diverged: the URL change is not an outcome change.
    (project / "client.py").write_text(CLIENT.replace("{port}{path}", "{port}/v2{path}"))
    before = (project / "recordings" / "ok.retrace").read_bytes()
    refused = pytester.runpytest("--retrace-recordings=recordings/ok.retrace", "--retrace-accept")
    refused.assert_outcomes(failed=1)
    assert (project / "recordings" / "ok.retrace").read_bytes() == before


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_json_report(pytester: pytest.Pytester, project: Path, extra: list[str]) -> None:
    pytester.runpytest("--retrace-recordings=recordings", "--retrace-report=report.json", *extra)
    report = json.loads((project / "report.json").read_text())
    assert report["counts"]["replayed"] == 2 and report["counts"]["crash reproduced"] == 1
    statuses = {Path(r["recording"]).name: r["status"] for r in report["recordings"]}
    assert statuses == {"ok.retrace": "ok", "crash.retrace": "crash-reproduced"}


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_marker_and_fixture_for_custom_assertions(pytester: pytest.Pytester, project: Path, extra: list[str]) -> None:
    pytester.makepyfile(test_invariants='''
        import pytest

        @pytest.mark.retrace(recordings="recordings")
        def test_prices_are_positive(retrace_replay):
            if retrace_replay.exception:
                assert retrace_replay.exception["type"] == "json.decoder.JSONDecodeError"
                return
            assert retrace_replay.exit_status == 0
            assert float(retrace_replay.stdout.split()[1]) > 0
            assert any(e.name == "socket.connect" for e in retrace_replay.events)
    ''')
    result = pytester.runpytest("test_invariants.py", "-v", *extra)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_prices_are_positive[[]recordings/crash.retrace[]]*"])


@pytest.mark.parametrize("extra", XDIST, ids=["plain", "xdist"])
def test_self_check_fails_tests_that_do_not_replay(pytester: pytest.Pytester, http_server: LiveServer,
                                                   extra: list[str]) -> None:
    pytester.makepyfile(test_app=f'''
        import json, os, random, time, urllib.request, uuid

        def test_clock_and_entropy(tmp_path):
            (tmp_path / "seen.txt").write_text(str(time.time()) + str(uuid.uuid4()) + str(random.random()))
            assert len((tmp_path / "seen.txt").read_text()) > 40

        def test_http():
            with urllib.request.urlopen("http://127.0.0.1:{http_server.port}/quote") as response:
                assert json.loads(response.read())["price"] > 0

        def test_depends_on_an_unrecorded_source(tmp_path):
            fd = os.open("/dev/urandom", os.O_RDONLY)  # os.read is below the boundary
            with open(tmp_path / f"obj-{{os.read(fd, 4).hex()}}.txt", "w") as f:
                f.write("x")
            os.close(fd)

        def test_plain_failure():
            assert time.time() < 0
    ''')
    result = pytester.runpytest("--retrace-self-check", *extra)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*replay diverged at event #*",
        "*expected  open(*obj-*",
        "*FAILED test_app.py::test_depends_on_an_unrecorded_source*",
        "*FAILED test_app.py::test_plain_failure - assert*",
    ])


def test_ini_option_replays_when_no_paths_are_given(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini("[pytest]\ntestpaths = tests\nretrace_recordings = recordings/ok.retrace\n")
    (project / "tests").mkdir()
    (project / "tests" / "test_unit.py").write_text("def test_unit():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)  # the project's own test and the recording
    explicit = pytester.runpytest("tests/test_unit.py")
    explicit.assert_outcomes(passed=1)  # explicit paths win over the ini recordings


def test_self_check_replays_a_threaded_test_in_the_recorded_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_worker_threads='''
        import random, threading, time

        def test_threads_append_under_a_lock():
            lock, log = threading.Lock(), []

            def work(name):
                for _ in range(4):
                    time.sleep(random.uniform(0, 0.003))
                    with lock:
                        log.append(name)

            threads = [threading.Thread(target=work, args=(n,)) for n in "abcd"]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(log) == sorted("abcd" * 4)
            print("order", "".join(log))
    ''')
    result = pytester.runpytest("--retrace-self-check", "-s")
    result.assert_outcomes(passed=1)
    # The replay, in a fork whose output goes nowhere, followed the run's order: another order diverges.
    assert len(re.findall(r"order ([abcd]+)", result.stdout.str())) == 1
    result.stdout.fnmatch_lines(["1 self-checked, 1 faithful, 0 diverged, 0 not checkable"])
