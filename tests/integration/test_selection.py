"""Selecting replays as pytest selects tests: a recording's kind, tags, route and entry point are markers and
keywords (``-m retrace_kind_wsgi``, ``-m "retrace_tag(team='billing')"``, ``-k billing``, ``-k orders``), and they
travel into junitxml properties and the ``--retrace-report`` JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from support import retrace

CLOCK = "import time\nprint('now', time.time() > 0)\n"
# -m with a marker's arguments (retrace_tag(team='billing')) is pytest 8.3's: the README says so.
MARKER_ARGUMENTS = tuple(int(part) for part in pytest.__version__.split(".")[:2]) >= (8, 3)
SHOP = '''\
import json, threading, urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

from pytest_retrace.wsgi import RecordingMiddleware


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"path": environ["PATH_INFO"], "stock": 3}).encode()]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, RecordingMiddleware(app, "recordings/web", tags={"team": "shop"}),
                         handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for path in ("/orders/7", "/stock"):
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}") as answer:
            print(answer.read().decode())
    server.shutdown()
'''
JOBS = '''\
import pytest_retrace


@pytest_retrace.record_calls("recordings/jobs", tags={"team": "billing", "queue": "nightly"})
def invoice(n):
    return {"total": n * 3}


if __name__ == "__main__":
    print(invoice(4))
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """Recordings of each kind: two process recordings (one tagged team=billing), two requests of a WSGI app
    (tagged team=shop), one call (tagged team=billing, queue=nightly)."""
    root = pytester.path
    (root / "clock.py").write_text(CLOCK)
    (root / "shop.py").write_text(SHOP)
    (root / "jobs.py").write_text(JOBS)
    (root / "recordings" / "cli").mkdir(parents=True)
    for name, tags in (("tagged", ["--tag", "team=billing"]), ("plain", [])):
        ran = retrace("record", "-o", f"recordings/cli/{name}.retrace", *tags, "clock.py", cwd=root)
        assert ran.returncode == 0, ran.stderr
    for program in ("shop.py", "jobs.py"):
        subprocess.run([sys.executable, program], cwd=root, check=True, capture_output=True, timeout=60)
    assert len(list(root.glob("recordings/*/*.retrace"))) == 5
    return root


def selected(pytester: pytest.Pytester, *args: str) -> set[str]:
    """What a run with ``args`` replays (each must pass), by the start of each recording's name."""
    result = pytester.runpytest("--retrace-recordings=recordings", "--strict-markers", "-p", "no:cacheprovider",
                                "-rA", *args)
    passed = {line.split()[1] for line in result.outlines if line.startswith("PASSED ")}
    result.assert_outcomes(passed=len(passed))
    return {Path(nodeid.partition("::")[0]).name.split("-")[0].removesuffix(".retrace") for nodeid in passed}


def test_kinds_tags_routes_and_entry_points_select_replays(pytester: pytest.Pytester, project: Path) -> None:
    assert selected(pytester, "-m", "retrace_kind_wsgi") == {"GET_orders_7", "GET_stock"}
    assert selected(pytester, "-m", "retrace_kind_process") == {"tagged", "plain"}
    assert selected(pytester, "-m", "retrace_kind_call") == {"invoice"}
    if MARKER_ARGUMENTS:
        assert selected(pytester, "-m", "retrace_tag(team='billing')") == {"tagged", "invoice"}
        assert selected(pytester, "-m", "retrace_tag(queue='nightly')") == {"invoice"}
    assert selected(pytester, "-m", "retrace_tag and not retrace_kind_call") == {"tagged", "GET_orders_7", "GET_stock"}
    assert selected(pytester, "-k", "billing") == {"tagged", "invoice"}
    assert selected(pytester, "-k", "orders") == {"GET_orders_7"}  # the route: GET /orders/7
    assert selected(pytester, "-k", "jobs:invoice") == {"invoice"}  # the entry point
    assert selected(pytester, "-k", "shop and not /orders") == {"GET_stock"}  # the app's tag, the other route


def test_junitxml_properties_and_the_json_report_name_kind_and_tags(pytester: pytest.Pytester,
                                                                   project: Path) -> None:
    result = pytester.runpytest("--retrace-recordings=recordings", "-p", "no:cacheprovider", "--junitxml=out.xml",
                                "--retrace-report=report.json")
    result.assert_outcomes(passed=5)
    properties = {}
    for case in ElementTree.parse(project / "out.xml").getroot().iter("testcase"):
        found = {p.get("name"): p.get("value") for p in case.iter("property")}
        properties[case.get("classname")] = found
    tagged = properties["recordings.cli.tagged.retrace"]
    assert tagged["retrace_kind"] == "process" and tagged["retrace_tag_team"] == "billing"
    assert tagged["retrace_entry"] == "clock.py"
    assert "retrace_tag_team" not in properties["recordings.cli.plain.retrace"]
    [web] = [found for name, found in properties.items() if name.startswith("recordings.web.")][:1]
    assert web["retrace_kind"] == "wsgi" and web["retrace_route"] in ("GET /orders/7", "GET /stock")
    assert web["retrace_entry"] == "shop:app" and web["retrace_tag_team"] == "shop"
    report = json.loads((project / "report.json").read_text())
    subjects = {Path(r["recording"]).name.split("-")[0]: r["subject"] for r in report["recordings"]}
    assert subjects["invoice"] == {"kind": "call", "entry": "jobs:invoice", "route": None,
                                   "tags": {"team": "billing", "queue": "nightly"}, "pinned": False}
    assert subjects["plain.retrace"]["tags"] == {}


def test_a_recorder_refuses_tags_that_are_not_text(pytester: pytest.Pytester) -> None:
    (pytester.path / "bad.py").write_text("import pytest_retrace\n\n"
                                          "@pytest_retrace.record_calls('recs', tags={'team': 7})\n"
                                          "def job():\n    return 1\n")
    ran = subprocess.run([sys.executable, "bad.py"], cwd=pytester.path, capture_output=True, text=True)
    assert ran.returncode == 1
    assert "record_calls: tags must be a dict of text to text, like {'team': 'billing'}; got {'team': 7}" in ran.stderr


def test_a_plain_pytest_collects_recordings_only_under_testpaths_or_the_ini_list(pytester: pytest.Pytester,
                                                                               project: Path) -> None:
    (project / "test_unit.py").write_text("def test_ordinary():\n    assert True\n")
    plain = pytester.runpytest("-p", "no:cacheprovider")  # no testpaths: the production folder is no test suite
    plain.assert_outcomes(passed=1)
    plain.stdout.fnmatch_lines(["retrace: 5 recording(s) not collected (recordings/* …): a plain pytest collects "
                                "recordings only under testpaths or the retrace_recordings ini list; name them "
                                "with --retrace-recordings=PATH"])
    assert pytester.runpytest("recordings/jobs", "-p", "no:cacheprovider").parseoutcomes() == {"passed": 1}
    assert pytester.runpytest("-p", "no:cacheprovider", "--retrace-recordings=recordings/cli",
                              "test_unit.py").parseoutcomes() == {"passed": 3}
    (project / "tests").mkdir()
    (project / "recordings" / "cli").rename(project / "tests" / "pinned")
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    under_testpaths = pytester.runpytest("-p", "no:cacheprovider")
    under_testpaths.assert_outcomes(passed=2)
    assert "not collected" not in under_testpaths.stdout.str()
    (project / "pytest.ini").write_text("[pytest]\nretrace_recordings = recordings/web\n")
    from_ini = pytester.runpytest("-p", "no:cacheprovider", "-v")
    from_ini.assert_outcomes(passed=3)  # test_unit.py and the two requests; not the jobs nor tests/pinned
    from_ini.stdout.fnmatch_lines(["retrace: 3 recording(s) not collected *"])
