"""The pytest plugin (entry point ``retrace``): every recording a test case.

Options, markers, fixtures and hooks live here, grouped by pytest phase; the replay machinery
(``front/`` and what it uses) is imported only when a recording is actually collected or a
test self-checked, so loading the plugin costs a project nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .front.items import RecordingFile
    from .front.selfcheck import Settings
    from .front.sources import Source

SUFFIX = ".retrace"
KINDS = ("process", "wsgi", "call")  # format.tape.Kind's values (not imported: loading the plugin stays cheap)
_SELF_CHECK: pytest.StashKey[Settings] = pytest.StashKey()  # present when the session self-checks its tests
_UNINSTALL: pytest.StashKey[Callable[[], None]] = pytest.StashKey()  # undoes the self-check's boundaries
# The folders (and files) recordings are collected under: the recordings paths, testpaths, and what the command
# line names; not the rest of a rootdir pytest walks because it was given nothing (a production folder there).
_COLLECTED_UNDER: pytest.StashKey[list[Path]] = pytest.StashKey()
_PASSED_OVER: pytest.StashKey[list[Path]] = pytest.StashKey()  # recordings found outside those, for the header
_ON_THE_WAY: pytest.StashKey[tuple[str, ...]] = pytest.StashKey()  # the recordings paths: folders to walk into
# pytest was given no paths and walks the invocation folder (pytest 7 spells it INCOVATION_DIR).
_WALKED_EVERYTHING = (getattr(pytest.Config.ArgsSource, "INVOCATION_DIR", None)
                      or pytest.Config.ArgsSource["INCOVATION_DIR"])


# -- options ---------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("retrace", "pytest-retrace: replay recorded executions as tests")
    group.addoption("--retrace-recordings", action="append", dest="retrace_recordings", default=[], metavar="PATH",
                    help="replay every *.retrace recording in PATH as a test: a file, a folder, a glob pattern "
                         "(** for any depth) or a URL (s3://bucket/prefix, gs://…, file://…); repeatable")
    group.addoption("--retrace-determinism-runs", dest="retrace_determinism_runs", type=int, default=None,
                    metavar="N", help="replay each recording N times and fail when two replays differ")
    group.addoption("--retrace-accept", dest="retrace_accept", action="store_true", default=False,
                    help="rewrite a recording's outcome when only the outcome changed and every call matched")
    group.addoption("--retrace-record-mode", dest="retrace_record_mode", default="none",
                    choices=("none", "rewrite", "rewrite-all"),
                    help="none: replay only (the default); rewrite: record a diverged request or call recording again "
                         "against the live world (real database, real HTTP) from its recorded input, keeping the old "
                         "one as NAME.retrace.orig; rewrite-all: process recordings too")
    group.addoption("--retrace-prune", dest="retrace_prune", action="store_true", default=False,
                    help="delete pinned recordings whose script, module, function or app is gone from the code "
                         "(the summary lists such obsolete recordings)")
    group.addoption("--retrace-report", dest="retrace_report", metavar="FILE", default=None,
                    help="write the replay verdicts and counts as JSON to FILE")
    group.addoption("--retrace-self-check", dest="retrace_self_check", action="store_true", default=None,
                    help="record each ordinary test while it runs and replay it from the state it began in (in a "
                         "fork); fail when the replay is not faithful")
    group.addoption("--retrace-self-check-save", dest="retrace_self_check_save", metavar="DIR", default=None,
                    help="with --retrace-self-check: write each faithfully replayed test's recording into DIR, "
                         "named by its node id (replay them with --retrace-recordings=DIR)")
    parser.addini("retrace_self_check", type="bool", default=False, help="default for --retrace-self-check")
    group.addoption("--retrace-stuck-timeout", dest="retrace_stuck_timeout", type=float, default=None,
                    metavar="SECONDS", help="how long a replay may make no progress before it counts as stuck")
    group.addoption("--retrace-key-file", dest="retrace_key_file", action="append", default=[], metavar="FILE",
                    help="a private key that opens encrypted recordings (also $RETRACE_PRIVATE_KEY); repeatable")
    parser.addini("retrace_key_file", type="paths", default=[],
                  help="private key files that open encrypted recordings (keep them out of the repository)")
    group.addoption("--retrace-allow-outside-project", dest="retrace_allow_outside_project", action="store_true",
                    default=None, help="replay recordings whose script, module, function or folder is outside the "
                    "rootdir (the project), or installed code; only for recordings you trust")
    parser.addini("retrace_allow_outside_project", type="bool", default=False,
                  help="default for --retrace-allow-outside-project")
    group.addoption("--retrace-sandbox", dest="retrace_sandbox", action="store_true", default=None,
                    help="replay each recording in a network namespace with no interface (unshare), beneath the "
                         "replay guard; each replay starts cold")
    parser.addini("retrace_sandbox", type="bool", default=False, help="default for --retrace-sandbox")
    # Not type="paths": that would turn a URL or a glob into a path; relative entries are the ini file's folder's.
    parser.addini("retrace_recordings", type="linelist", default=[],
                  help="recordings (files, folders, glob patterns, URLs) replayed when pytest runs without explicit "
                       "paths")
    parser.addini("retrace_determinism_runs", default="1", help="default for --retrace-determinism-runs")
    parser.addini("retrace_stuck_timeout", default="10", help="default for --retrace-stuck-timeout (seconds)")
    parser.addini("retrace_redact", type="linelist", default=[],
                  help="name patterns (words of a name, | between alternatives) redacted besides the defaults, in "
                       "self-check recordings")
    parser.addini("retrace_no_redact", type="linelist", default=[],
                  help="default redaction patterns (by their text or value-pattern name) not to apply in self-checks")


def _self_checks(config: pytest.Config, early: bool = False) -> bool:
    """Whether the session self-checks its tests (``early``: asked before the command line is parsed whole)."""
    if early:
        self_check = getattr(config.known_args_namespace, "retrace_self_check", None)
    else:
        self_check = config.getoption("retrace_self_check")
    return bool(config.getini("retrace_self_check") if self_check is None else self_check)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """A self-checking session installs the boundaries before conftest files and test modules are imported:
    what they bind at import (``from time import time``) is then recorded."""
    if _self_checks(early_config, early=True):
        # The self-check's machinery first: it takes the real functions it uses at import (os.fork, os.read …),
        # before the boundaries replace them.
        from .front.selfcheck import check  # noqa: F401
        from .kinds.inprocess import install_for_session

        uninstall = install_for_session()
        if uninstall is not None:
            early_config.stash[_UNINSTALL] = uninstall


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall = config.stash.get(_UNINSTALL, None)
    if uninstall is not None:
        del config.stash[_UNINSTALL]
        uninstall()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "retrace(recordings): parametrize the test over recordings (files or folders); the retrace_replay "
        "fixture replays each one and returns its outcome",
    )
    for kind in KINDS:
        config.addinivalue_line("markers", f"retrace_kind_{kind}: a replayed recording of kind {kind}")
    config.addinivalue_line("markers", "retrace_tag(**tags): a replayed recording's tags (retrace record --tag K=V, "
                            "the recorders' tags=); select with -m \"retrace_tag(team='billing')\"")
    config.addinivalue_line("markers", "retrace_pinned: a replayed recording pinned as a regression case")
    entries: list[str] = list(config.getoption("retrace_recordings"))
    from_ini = not entries
    base = config.invocation_params.dir
    paths: list[Path] = []
    if from_ini and config.args_source != pytest.Config.ArgsSource.ARGS:
        entries = list(config.getini("retrace_recordings"))
        base = config.inipath.parent if config.inipath is not None else config.rootpath  # as the ini file says
    if entries:
        option = "retrace_recordings (ini)" if from_ini else "--retrace-recordings"
        # An xdist worker's output is not the terminal's (it lists and links what the controller fetched).
        quiet = config.getoption("verbose", 0) < 0 or hasattr(config, "workerinput")
        paths = [path for entry in entries for path in _recordings(entry, base, option, config, quiet).collect]
        if not from_ini and config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = []  # `pytest --retrace-recordings=DIR` replays DIR, not the default test paths too
        # A path or node id given inside a recordings folder selects within it (`pytest DIR/x.retrace::replay
        # --retrace-recordings=DIR` runs that one): the folder is not added beside it. One inside a path given
        # is not added either: walking that path reaches it (pytest_ignore_collect), and pytest 8 collects only
        # the inner of two nested arguments.
        selected = [_arg_path(arg, config.invocation_params.dir) for arg in config.args]
        config.args.extend(str(p) for p in paths
                           if not any(s == p.resolve() or p.resolve() in s.parents or s in p.resolve().parents
                                      for s in selected))
    _collect_under(config, paths)
    if entries:
        from .front.debugging import check_single_worker

        check_single_worker(config)
    key_files = config.getoption("retrace_key_file") or config.getini("retrace_key_file")
    if key_files:
        from .errors import RetraceError
        from .format.sealing import add_private_key_file

        for key_file in key_files:
            try:
                add_private_key_file(str(key_file))
            except RetraceError as exc:
                raise pytest.UsageError(f"--retrace-key-file: {exc}") from None
    config.addinivalue_line(
        "markers",
        "retrace_self_check(enabled=True, reason=None): retrace_self_check(False, reason='…') leaves the test "
        "out of --retrace-self-check; the summary shows the reason",
    )
    self_check = _self_checks(config)
    if config.getoption("retrace_self_check_save") and not self_check:
        raise pytest.UsageError("--retrace-self-check-save: give --retrace-self-check too (or set "
                                "retrace_self_check = true in the ini file)")
    if self_check:
        _configure_self_check(config)
    from .front.summary import RetraceSummary  # cheap: the replay machinery loads when a recording is replayed

    config.pluginmanager.register(RetraceSummary(config), "retrace-summary")


def _configure_self_check(config: pytest.Config) -> None:
    from .front.selfcheck import SelfCheckSummary, Settings
    from .redaction import Redaction

    try:
        redaction = Redaction.configured(config.getini("retrace_redact"), config.getini("retrace_no_redact"))
    except ValueError as exc:
        raise pytest.UsageError(f"retrace_redact / retrace_no_redact (ini): {exc}") from None
    save = config.getoption("retrace_self_check_save")
    folder = None
    if save:
        folder = (config.invocation_params.dir / save).resolve()
        if folder.exists() and not folder.is_dir():
            raise pytest.UsageError(f"--retrace-self-check-save: {save} is a file; give a folder for the recordings")
    stuck = config.getoption("retrace_stuck_timeout")
    stuck = float(stuck if stuck is not None else config.getini("retrace_stuck_timeout"))
    config.stash[_SELF_CHECK] = Settings(redaction, folder, stuck)
    config.pluginmanager.register(SelfCheckSummary(config, folder), "retrace-self-check-summary")


def _collect_under(config: pytest.Config, recordings: list[Path]) -> None:
    """Where a ``.retrace`` file pytest comes across is a test: under the recordings paths, the ``testpaths``, or
    a path the command line gives; a plain ``pytest`` with neither walks the whole rootdir, and a folder of
    production recordings kept there is no test suite."""
    walked_everything = config.args_source == _WALKED_EVERYTHING
    given = [] if walked_everything else [_arg_path(arg, config.invocation_params.dir) for arg in config.args]
    config.stash[_COLLECTED_UNDER] = [p.resolve() for p in recordings] + given
    # As given and as resolved: pytest walks the paths as they are written (/tmp/x where it is /private/tmp/x).
    config.stash[_ON_THE_WAY] = tuple({form for p in recordings for form in (os.path.abspath(p), str(p.resolve()))})
    if walked_everything:  # otherwise pytest looks into folders on its way to what it was given: no news
        config.stash[_PASSED_OVER] = []


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A folder on the way to recordings, or in them, is walked into, even where pytest would pass it over (hidden,
    or in norecursedirs: object storage's tree is under ``.pytest_cache``)."""
    roots = config.stash.get(_ON_THE_WAY, ())
    if roots:
        path = str(collection_path)
        if any(root == path or root.startswith(path + os.sep) or path.startswith(root + os.sep) for root in roots):
            return False
    return None


def _collects(config: pytest.Config, file_path: Path) -> bool:
    under = config.stash.get(_COLLECTED_UNDER, None)
    if under is None:  # not configured by us (a pytester-style in-process run before configure): as before
        return True
    path = file_path.resolve()
    if any(root == path or root in path.parents for root in under):
        return True
    passed_over = config.stash.get(_PASSED_OVER, None)
    if passed_over is not None:
        passed_over.append(path)
    return False


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    passed_over = config.stash.get(_PASSED_OVER, [])
    if not passed_over:
        return None
    shown = os.path.relpath(passed_over[0], config.invocation_params.dir)
    return (f"retrace: {len(passed_over)} recording(s) not collected ({shown} …): a plain pytest collects recordings "
            "only under testpaths or the retrace_recordings ini list; name them with --retrace-recordings=PATH")


def _arg_path(arg: str, invoked_in: Path) -> Path:
    """The file or folder a command-line argument (a path, or a node id ``path::name``) names, absolute."""
    return (invoked_in / arg.partition("::")[0]).resolve()


def _recordings(entry: str, base: Path, option: str, config: pytest.Config, quiet: bool = False) -> Source:
    """The recordings an entry names (a file, a folder, a glob, a URL: see ``front/sources.py``), fetched when
    they are in object storage; a usage error when there are none."""
    from .front.sources import resolve

    return resolve(entry, base, option, config.rootpath, quiet)


# -- collection ------------------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> RecordingFile | None:
    if file_path.suffix != SUFFIX or not _collects(parent.config, file_path):
        return None
    from .front.items import RecordingFile

    return RecordingFile.from_parent(parent, path=file_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("retrace")
    if marker is None or "retrace_replay" not in metafunc.fixturenames:
        return
    recordings = marker.kwargs.get("recordings", marker.args[0] if marker.args else None)
    if recordings is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.retrace needs recordings=PATH")
    base = Path(metafunc.definition.fspath).parent
    found: list[Path] = []
    ids: list[str] = []
    for entry in [recordings] if isinstance(recordings, (str, os.PathLike)) else recordings:
        source = _recordings(os.fspath(entry), base, f"{metafunc.definition.nodeid}: @pytest.mark.retrace",
                             metafunc.config, quiet=True)
        found += source.recordings
        ids += source.names
    metafunc.parametrize("retrace_replay", found, indirect=True, ids=ids)


@pytest.fixture
def retrace_replay(request: pytest.FixtureRequest) -> Any:
    """Replays the recording this test is parametrized with and returns what happened."""
    if not hasattr(request, "param"):
        raise pytest.UsageError("retrace_replay: mark the test with @pytest.mark.retrace(recordings=PATH)")
    from .front.items import replay_outcome

    return replay_outcome(Path(request.param), request.config)


# -- running ---------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    settings = pyfuncitem.config.stash.get(_SELF_CHECK, None)
    if settings is None:
        return (yield)
    from .front.selfcheck import check

    return (yield from check(pyfuncitem, settings))


# -- reporting -------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and type(call.excinfo.value).__name__ == "RecordingUnusable":
        report.longrepr = str(call.excinfo.value)  # a plain message, not a traceback into pytest-retrace
    return report
