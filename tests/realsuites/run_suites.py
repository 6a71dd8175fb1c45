#!/usr/bin/env python3
"""Run real projects' test suites plainly and under ``pytest --retrace-self-check``, and compare them side by side.

For each package of ``SUITES`` (versions pinned below):

1. its sdist is downloaded with ``pip download --no-binary :all: --no-deps`` into the cache folder (``--cache``,
   default ``~/.cache/pytest-retrace-suites``; a cached sdist is not downloaded again);
2. it is extracted into the work folder (``--workdir``, default a new temporary folder, removed at the end unless
   ``--keep``);
3. a venv is made for the suite, layered over the environment of the interpreter running this script: a ``.pth``
   file in the suite venv adds this environment's site-packages *after* the venv's own. pytest, pytest-retrace
   (with its built extension) and pytest-xdist come from this environment; the package under test is installed
   into the suite venv (not editable, as tox does) with ``--ignore-installed`` together with its runtime
   dependencies, then its test dependencies are installed there unless this environment already satisfies them
   (this interpreter's pip with ``--prefix`` does both: same Python, so the venv's layout).
   This environment is never changed. Run the script with the interpreter of the venv pytest-retrace is installed in;
4. the suite's tests run twice with the same command from the sdist's folder (its own pytest configuration applies),
   ``python -m pytest -p no:cacheprovider -p retrace_suitelog ...`` plainly, then with ``--retrace-self-check``.
   ``retrace_suitelog.py`` beside this script writes one JSON line per report (outcome, failure text and the
   self-check's user property), so nothing is parsed from the terminal but INTERNALERROR lines, which are counted.

Then it prints a table (plain vs self-check outcomes, self-check statuses, wall times), lists every test that passed
plainly but not under self-check (node id and the failure's first line; the whole text is written to
``<workdir>/<package>/selfcheck-regressions.txt``), and the not-checkable reasons.

Exit status: 0 when every test that passed plainly passed under self-check and no run had an INTERNALERROR; 1 when
one did not or one had; 2 when a suite could not be set up or a run did not finish (timeout, usage error).

    python tests/realsuites/run_suites.py                          # all packages
    python tests/realsuites/run_suites.py --packages jinja2 click --keep -k "not slow" -n 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Suite:
    package: str  # the distribution name, as pip knows it
    version: str
    module: str  # the import name, to check the suite venv imports its own copy
    test_deps: tuple[str, ...] = ()  # from the sdist's tests requirements / dependency group
    pytest_args: tuple[str, ...] = ()  # extra arguments for both runs (paths default to the project's testpaths)


SUITES = {
    s.package: s
    for s in (
        Suite("markupsafe", "3.0.4", "markupsafe"),
        Suite("itsdangerous", "2.2.0", "itsdangerous", ("freezegun",)),
        Suite("jinja2", "3.1.6", "jinja2", ("trio",)),
        Suite("click", "8.5.1", "click"),
        Suite("werkzeug", "3.1.9", "werkzeug",
              ("cffi", "cryptography", "ephemeral-port-reserve", "pytest-timeout", "watchdog")),
        # The "tests" dependency group of its pyproject.toml (pytest-xdist comes from this environment); the
        # "mypy" group's pytest-mypy-plugins is left out, so tests/test_mypy.yml is not collected, and
        # tests/test_pyright.py skips itself without pyright.
        Suite("attrs", "26.1.0", "attrs", ("cloudpickle", "hypothesis", "pympler")),
    )
}

DEFAULT_CACHE = Path("~/.cache/pytest-retrace-suites").expanduser()


class SetupFailed(Exception):
    pass


# -- preparing a suite ---------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[run_suites] {message}", file=sys.stderr, flush=True)


def run_checked(cmd: list[str], **kwargs) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise SetupFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def fetch_sdist(suite: Suite, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    prefixes = {f"{name}-{suite.version}".lower() for name in (suite.package, suite.package.replace("-", "_"))}

    def cached() -> Path | None:
        for path in sorted(cache.iterdir()):
            name = path.name.lower()
            if any(name.startswith(p + ".") for p in prefixes) and name.endswith((".tar.gz", ".zip", ".tgz")):
                return path
        return None

    found = cached()
    if found is None:
        log(f"downloading {suite.package}=={suite.version}")
        run_checked([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                     f"{suite.package}=={suite.version}", "-d", str(cache)])
        found = cached()
        if found is None:
            raise SetupFailed(f"pip download left no sdist of {suite.package}=={suite.version} in {cache}")
    return found


def extract(sdist: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    if sdist.name.endswith(".zip"):
        shutil.unpack_archive(str(sdist), str(into))
    else:
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):  # (3.12+, and security releases of older ones)
                tar.extractall(into, filter="data")
            else:
                tar.extractall(into)  # noqa: S202 - a pinned sdist from the package index
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise SetupFailed(f"{sdist} does not unpack to one folder: {tops}")
    return tops[0]


def make_venv(suite: Suite, source: Path, venv: Path) -> Path:
    """The suite's venv, over this environment; returns its python."""
    run_checked([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in sorted(ours))
    # Named to sort last: the suite venv's own packages stay first on sys.path.
    Path(purelib, "zzz_retrace_parent_env.pth").write_text(lines)
    # This environment's pip installs into the suite venv (--prefix): builds run under this interpreter, away from
    # the .pth (inside pip's isolated build environment it would put this environment's old setuptools first).
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--prefix", str(venv),
           "--no-warn-script-location"]
    log(f"{suite.package}: installing it into {venv}")
    run_checked(pip + ["--ignore-installed", str(source)])
    if suite.test_deps:
        log(f"{suite.package}: installing test dependencies {', '.join(suite.test_deps)}")
        run_checked(pip + list(suite.test_deps))
    probe = subprocess.run([str(python), "-c", f"import {suite.module}, pytest_retrace, pytest; "
                            f"print({suite.module}.__file__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SetupFailed(f"the suite venv cannot import {suite.module}/pytest_retrace:\n{probe.stderr[-3000:]}")
    if not Path(probe.stdout.strip()).resolve().is_relative_to(venv.resolve()):
        raise SetupFailed(f"the suite venv imports {suite.module} from {probe.stdout.strip()}, not its own copy")
    return python


# -- running it ----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    wall: float = 0.0
    exit_status: int | None = None
    timed_out: bool = False
    internal_errors: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> passed/failed/skipped/error/xfailed/xpassed
    failures: dict[str, str] = field(default_factory=dict)  # node id -> failure text (the first failing phase)
    checks: dict[str, dict] = field(default_factory=dict)  # node id -> the self-check's user property
    collect_errors: list[str] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(self.outcomes.values())


def run_pytest(label: str, python: Path, source: Path, args: list[str], logdir: Path, timeout: float) -> Run:
    run = Run(label)
    report = logdir / f"{label}.jsonl"
    output = logdir / f"{label}.out"
    cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "retrace_suitelog",
           f"--retrace-suitelog={report}", *args]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env.pop("PYTEST_ADDOPTS", None)
    log(f"{source.name}: {label}: {' '.join(cmd[1:])}")
    started = time.monotonic()
    with open(output, "w") as out:
        proc = subprocess.Popen(cmd, cwd=source, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            run.exit_status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            run.timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    run.wall = time.monotonic() - started
    text = output.read_text(errors="replace")
    run.internal_errors = sum(1 for line in text.splitlines() if line.startswith("INTERNALERROR"))
    if report.exists():
        _read_report(run, report)
    return run


def _read_report(run: Run, path: Path) -> None:
    phases: dict[str, dict[str, dict]] = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if rec["kind"] == "report":
            phases.setdefault(rec["nodeid"], {})[rec["when"]] = rec
            if rec["check"] is not None:
                run.checks[rec["nodeid"]] = rec["check"]
        elif rec["kind"] == "collecterror":
            run.collect_errors.append(rec["nodeid"])
        elif rec["kind"] == "internalerror":
            run.internal_errors = max(run.internal_errors, 1)
    for nodeid, by in phases.items():
        outcome, text = _outcome(by)
        run.outcomes[nodeid] = outcome
        if text:
            run.failures[nodeid] = text


def _outcome(by: dict[str, dict]) -> tuple[str, str]:
    setup, call, teardown = by.get("setup"), by.get("call"), by.get("teardown")
    if setup is not None and setup["outcome"] == "failed":
        return "error", setup["text"]
    if setup is not None and setup["outcome"] == "skipped":
        return ("xfailed" if setup["wasxfail"] is not None else "skipped"), ""
    if call is None:
        return "error", "no call phase reported (the run ended early?)"
    if call["outcome"] == "failed":
        return "failed", call["text"]
    if call["outcome"] == "skipped":
        return ("xfailed" if call["wasxfail"] is not None else "skipped"), ""
    if teardown is not None and teardown["outcome"] == "failed":
        return "error", teardown["text"]
    return ("xpassed" if call["wasxfail"] is not None else "passed"), ""


# -- reporting -----------------------------------------------------------------------------------------------------


def first_line(text: str) -> str:
    """The failure's first line, with what tells the divergence apart: the expected and actual calls (or how the
    replay ended) and the innermost frame of the replay stack."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no failure text)"
    parts = [lines[0].split(": ", 1)[-1] if lines[0].startswith("retrace") else lines[0]]
    picked = [line for line in lines[1:6] if line.startswith(("expected ", "actual ", "replay:"))]
    parts += [" ".join(line.split()) for line in picked]
    frames = [line for line in lines if line.startswith("File ")]
    if frames and "replay stack" in text:
        parts.append("at " + frames[-1].replace("File ", "", 1))
    return " | ".join(part[:160] for part in parts)


def four(run: Run) -> str:
    """passed/failed/skipped/errors; xpassed count as passed, xfailed as skipped."""
    c = run.counts()
    return f"{c['passed'] + c['xpassed']}/{c['failed']}/{c['skipped'] + c['xfailed']}/{c['error']}"


def check_counts(run: Run) -> tuple[Counter, Counter]:
    statuses, reasons = Counter(), Counter()
    for info in run.checks.values():
        statuses[info.get("status")] += 1
        if info.get("status") == "not checkable":
            reasons[(info.get("reason") or "").splitlines()[0] if info.get("reason") else ""] += 1
    return statuses, reasons


def print_table(results: list[tuple[Suite, Run, Run]]) -> None:
    header = ["package", "plain p/f/s/e", "self-check p/f/s/e", "faithful/diverged/errors/not-checkable",
              "plain s", "self-check s", "ratio", "INTERNALERROR"]
    rows = []
    for suite, plain, check in results:
        st, _ = check_counts(check)
        ratio = f"{check.wall / plain.wall:.2f}x" if plain.wall else "-"
        rows.append([f"{suite.package} {suite.version}", four(plain) + (" TIMEOUT" if plain.timed_out else ""),
                     four(check) + (" TIMEOUT" if check.timed_out else ""),
                     f"{st['faithful']}/{st['diverged']}/{st['error']}/{st['not checkable']}",
                     f"{plain.wall:.1f}", f"{check.wall:.1f}", ratio,
                     str(plain.internal_errors + check.internal_errors)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    print("(p/f/s/e = passed/failed/skipped/errors; xpassed count as passed, xfailed as skipped)")


def regressions(plain: Run, check: Run) -> list[tuple[str, str, str]]:
    """Tests that passed plainly but not under self-check: (node id, outcome, failure text)."""
    found = []
    for nodeid, outcome in plain.outcomes.items():
        if outcome not in ("passed", "xpassed"):
            continue
        other = check.outcomes.get(nodeid)
        if other == outcome:
            continue
        found.append((nodeid, other or "not run", check.failures.get(nodeid, "not run under self-check")))
    return found


# -- main ----------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", nargs="+", choices=sorted(SUITES), default=list(SUITES),
                        metavar="PKG", help=f"which suites (default all: {', '.join(SUITES)})")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where sdists are kept (default %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where suites are unpacked and run (default a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, failure texts, venvs)")
    parser.add_argument("-k", dest="keyword", default=None, help="passed to pytest as -k")
    parser.add_argument("-n", "--jobs", default=None, help="passed to pytest-xdist as -n")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one pytest run may take")
    parser.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for both pytest runs (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="retrace-suites-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    common = ["-q", "--tb=short", "-rN", *args.pytest_arg]
    if args.keyword:
        common += ["-k", args.keyword]
    if args.jobs:
        common += ["-n", str(args.jobs)]
    results: list[tuple[Suite, Run, Run]] = []
    broken: list[str] = []
    try:
        for name in args.packages:
            suite = SUITES[name]
            folder = workdir / suite.package
            if folder.exists():
                shutil.rmtree(folder)
            try:
                source = extract(fetch_sdist(suite, args.cache.expanduser()), folder / "src")
                python = make_venv(suite, source, folder / "venv")
            except (SetupFailed, OSError, subprocess.CalledProcessError) as problem:
                broken.append(f"{suite.package}: set-up failed: {problem}")
                log(broken[-1])
                continue
            pytest_args = [*common, *suite.pytest_args]
            plain = run_pytest("plain", python, source, pytest_args, folder, args.timeout)
            check = run_pytest("selfcheck", python, source, [*pytest_args, "--retrace-self-check"], folder,
                               args.timeout)
            for run in (plain, check):
                if run.timed_out or run.exit_status not in (0, 1, 5):
                    broken.append(f"{suite.package}: {run.label} run " + (
                        f"timed out after {args.timeout:.0f}s" if run.timed_out else
                        f"exited {run.exit_status} (see {folder / (run.label + '.out')})"))
                if run.collect_errors:
                    broken.append(f"{suite.package}: {run.label} run: {len(run.collect_errors)} collection "
                                  f"errors: {', '.join(run.collect_errors[:5])}")
            results.append((suite, plain, check))
            _write_regressions(folder, regressions(plain, check))
        return _report(results, broken, workdir, args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _write_regressions(folder: Path, found: list[tuple[str, str, str]]) -> None:
    with open(folder / "selfcheck-regressions.txt", "w") as out:
        for nodeid, outcome, text in found:
            out.write(f"===== {nodeid} [{outcome}]\n{text}\n\n")


def _report(results: list[tuple[Suite, Run, Run]], broken: list[str], workdir: Path, keep: bool) -> int:
    print()
    print_table(results)
    failing = False
    internal = 0
    for suite, plain, check in results:
        internal += plain.internal_errors + check.internal_errors
        found = regressions(plain, check)
        _, reasons = check_counts(check)
        if found:
            failing = True
            print(f"\n{suite.package}: {len(found)} tests passed plainly but not under --retrace-self-check:")
            for nodeid, outcome, text in found:
                print(f"  {nodeid} [{outcome}]\n      {first_line(text)}")
        for reason, n in reasons.most_common():
            print(f"{suite.package}: not checkable ({n}): {reason}")
        also = [n for n, info in check.checks.items() if info.get("status") in ("diverged", "error")
                and plain.outcomes.get(n) not in ("passed", "xpassed")]
        if also:
            print(f"{suite.package}: {len(also)} more tests diverged/errored under self-check but did not pass "
                  f"plainly either: {', '.join(also[:5])}{' …' if len(also) > 5 else ''}")
    print(f"\nINTERNALERROR lines: {internal}")
    for problem in broken:
        print(f"PROBLEM: {problem.splitlines()[0]}")
    if keep:
        print(f"work folder kept: {workdir} (per package: plain.out, selfcheck.out, *.jsonl, "
              f"selfcheck-regressions.txt)")
    if broken:
        return 2
    return 1 if failing or internal else 0


if __name__ == "__main__":
    sys.exit(main())
