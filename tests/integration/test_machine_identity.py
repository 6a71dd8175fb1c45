"""The machine, the user, the locale and the zone: a recorded program reads what a plain one reads (law 1), and its
replay on "another machine" (another host name, user, CPU set, time zone, locale environment, zone data and
locale data gone) prints what the recording printed, touching nothing (law 2).

Each program of ``fixtures/programs/machine/`` prints on stdout what is stable from run to run (compared with a
plain run), and on stderr what changes every run (the load, CPU times, ``uuid1``): a replay prints both as recorded.
The other machine is made for real: ``unshare --uts`` (another host name), ``unshare --mount`` (another
``/etc/localtime``), ``setpriv`` (another user), ``taskset`` (another CPU set), another environment; each test first
checks that a plain run there does read something else, so that the replay's sameness says something.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, Run, assert_faithful, offline_prefix

OTHER_ENV = {"TZ": "Asia/Tokyo", "LC_ALL": "C", "LANG": "C", "LANGUAGE": "fr"}
ZONES = ("America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "EST5EDT", "UTC", "Asia/Kathmandu")


def works(*command: str) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_plain(program: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The fixture program run plainly (``prefix``: on the other machine)."""
    return subprocess.run([*prefix, sys.executable, str(PROGRAMS / program), *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60)


def replay_on(recorder: Recorder, prefix: tuple[str, ...], env: dict[str, str] | None = None,
              verdicts: Path | None = None) -> Run:
    """``retrace replay`` under ``prefix`` (the other machine), with no network, returning what the user sees."""
    verdict_path = (verdicts or recorder.folder) / "rec.verdict.json"
    proc = subprocess.run([*offline_prefix(), *prefix, sys.executable, "-m", "pytest_retrace", "replay", "rec.retrace",
                           "--verdict", str(verdict_path)], cwd=recorder.folder, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    if verdict_path.exists():
        run.verdict = json.loads(verdict_path.read_text())
    return run


def assert_same(recorded: Run, replayed: Run) -> None:
    assert replayed.stderr == recorded.stderr
    assert replayed.stdout == recorded.stdout
    assert replayed.returncode == recorded.returncode
    assert replayed.verdict is not None and replayed.verdict["faithful"] is True, replayed.verdict
    assert replayed.verdict["events_consumed"] == replayed.verdict["events_recorded"]


def record(recorder: Recorder, program: str, *args: str, env: dict[str, str] | None = None) -> Run:
    """Record ``program``; law 1: its stdout is a plain run's."""
    plain = run_plain(program, *args, cwd=recorder.folder, env=env)
    assert plain.returncode == 0, plain.stderr
    recorded = recorder.record(program, *args, env=env)
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout == plain.stdout
    assert recorded.stdout.count("\n") >= 5
    return recorded


# -- the host ------------------------------------------------------------------------------------------


def test_host_replays_on_a_host_of_another_name(recorder: Recorder) -> None:
    if not works("unshare", "--uts", "true"):
        pytest.skip("unshare --uts is not allowed here (needs root or user namespaces): no other host name to try")
    recorded = record(recorder, "machine/host.py")
    assert "uuid1 twice" in recorded.stderr
    elsewhere = ("unshare", "--uts", "sh", "-c", 'hostname replay-elsewhere && exec "$@"', "sh")
    other = run_plain("machine/host.py", cwd=recorder.folder, prefix=elsewhere)
    assert "platform.node replay-elsewhere" in other.stdout and other.stdout != recorded.stdout
    assert_same(recorded, replay_on(recorder, elsewhere, env=OTHER_ENV))


# -- the machine's figures -----------------------------------------------------------------------------


def test_figures_replay_on_another_cpu_set(recorder: Recorder) -> None:
    recorded = record(recorder, "machine/figures.py")
    assert "load (" in recorded.stderr and "rusage resource.struct_rusage(" in recorded.stderr
    if not works("taskset", "-c", "0", "true"):
        pytest.skip("taskset cannot pin a process to CPU 0 here")
    other = run_plain("machine/figures.py", cwd=recorder.folder, prefix=("taskset", "-c", "0"))
    if len(os.sched_getaffinity(0)) > 1:  # with one CPU the set cannot change, the replay still must match
        assert "affinity [0]\n" in other.stdout and other.stdout != recorded.stdout
    assert_same(recorded, replay_on(recorder, ("taskset", "-c", "0"), env=OTHER_ENV))


# -- the user ------------------------------------------------------------------------------------------


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A project folder another user may read (pytest's own tmp folders are the recording user's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="retrace-machine-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_nobody() -> tuple[str, ...]:
    """How to run a command as user and group 65534 with no other groups. Where this interpreter lives in a
    folder that user cannot enter (a root-only home), it may still read and search files (CAP_DAC_READ_SEARCH, an
    ambient capability: it writes nothing it could not, and it is still user 65534 to every id and access check)."""
    base = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("setpriv needs root to run as another user")
    # The interpreter starting another (the launcher its child): setpriv's own exec may still pass checks the
    # user's later ones do not.
    check = (sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)")
    if works(*base, *check):
        return base
    reading = (*base, "--inh-caps", "+dac_read_search", "--ambient-caps", "+dac_read_search")
    if works(*reading, *check):
        return reading
    pytest.skip("user 65534 cannot run this interpreter, even allowed to read everything")


def test_user_replays_as_another_user(shared_folder: Path) -> None:
    nobody = as_nobody()
    recorder = Recorder(shared_folder)
    recorded = record(recorder, "machine/user.py")
    assert f"ids {os.getuid()} {os.geteuid()} " in recorded.stdout
    (shared_folder / "rec.retrace").chmod(0o644)
    verdicts = Path(tempfile.mkdtemp(prefix="retrace-verdicts-"))
    verdicts.chmod(0o777)
    try:
        other = run_plain("machine/user.py", cwd=shared_folder, prefix=nobody, env={"USER": "nobody",
                                                                                    "LOGNAME": "nobody"})
        assert "ids 65534 65534 65534 65534 []" in other.stdout, other.stderr
        before = {p.name: p.stat().st_mtime_ns for p in shared_folder.iterdir()}
        replayed = replay_on(recorder, nobody, env={**OTHER_ENV, "USER": "nobody", "LOGNAME": "nobody",
                                                    "HOME": "/nonexistent"}, verdicts=verdicts)
        assert_same(recorded, replayed)
        assert {p.name: p.stat().st_mtime_ns for p in shared_folder.iterdir()} == before  # the umask touched nothing
    finally:
        shutil.rmtree(verdicts, ignore_errors=True)


# -- the time zone -------------------------------------------------------------------------------------


@pytest.fixture
def zone_data(tmp_path: Path) -> Path:
    """A zone database of the recording machine's own (``TZDIR``), which the replaying machine will not have.
    Its ``Start/Here`` zone is one no machine names so (Kathmandu's, +05:45)."""
    source = Path(os.environ.get("TZDIR") or "/usr/share/zoneinfo")
    if not all((source / zone).is_file() for zone in ZONES):
        pytest.skip(f"no zone data in {source} to copy")
    folder = tmp_path / "zones"
    for zone in ZONES:
        (folder / zone).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / zone, folder / zone)
    (folder / "Start").mkdir()
    shutil.copyfile(source / "Asia/Kathmandu", folder / "Start" / "Here")
    return folder


def other_localtime() -> tuple[str, ...]:
    """A mount namespace whose ``/etc/localtime`` is another zone's (empty when that cannot be made here)."""
    target = Path("/usr/share/zoneinfo/Pacific/Chatham")
    wrap = ("unshare", "--mount", "sh", "-c", f'mount --bind {target} /etc/localtime && exec "$@"', "sh")
    return wrap if target.is_file() and works(*wrap, "true") else ()


def test_zone_replays_in_another_zone_without_the_zone_data(recorder: Recorder, zone_data: Path) -> None:
    env = {"TZDIR": str(zone_data), "TZ": "Start/Here"}
    recorded = record(recorder, "machine/zone.py", env=env)
    assert "start ('+0545', '+0545') -20700" in recorded.stdout
    assert "TZ='America/New_York' ('EST', 'EDT') 18000 1" in recorded.stdout
    shutil.rmtree(zone_data)  # the replaying machine has none of those zones' data, in another zone
    elsewhere = other_localtime()
    other = run_plain("machine/zone.py", cwd=recorder.folder, env=env, prefix=elsewhere)
    assert other.stdout != recorded.stdout
    assert_same(recorded, replay_on(recorder, elsewhere, env=OTHER_ENV))


def test_zone_the_program_sets_itself_replays_faithfully_with_plain_tzset(recorder: Recorder) -> None:
    """The zone from ``/etc/localtime`` (no ``TZ``), replayed where ``TZ`` names another zone: assert_faithful's own
    replay, with the network off."""
    env = {"TZ": ""}  # set and empty: UTC (a program may see it so)
    recorded = record(recorder, "machine/zone.py", env=env)
    assert_faithful(recorder, recorded, env=OTHER_ENV, offline=True)


# -- the locale ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locale_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Locales this machine does not have installed, compiled into a folder of their own (``LOCPATH``): German
    (decimal comma, its month and day names, its collation) and Turkish (its dotted capital I)."""
    if not shutil.which("localedef") or not Path("/usr/share/i18n/locales/de_DE").exists():
        pytest.skip("no localedef or locale sources here: only the locales installed can be tried "
                    "(test_locale_c_and_posix covers C.UTF-8 and POSIX)")
    folder = tmp_path_factory.mktemp("locales")
    for name in ("de_DE", "tr_TR"):
        made = subprocess.run(["localedef", "-i", name, "-f", "UTF-8", str(folder / f"{name}.UTF-8")],
                              capture_output=True, text=True, timeout=120)
        if not (folder / f"{name}.UTF-8").is_dir():
            pytest.skip(f"localedef could not compile {name}.UTF-8: {made.stderr[-300:]}")
    return folder


def copy_of(folder: Path, into: Path) -> Path:
    copy = into / "locales"
    shutil.copytree(folder, copy)
    return copy


def test_locale_replays_where_the_environment_names_another(recorder: Recorder, locale_data: Path) -> None:
    env = {"LOCPATH": str(locale_data), "LC_ALL": "de_DE.UTF-8", "LANG": "de_DE.UTF-8"}
    recorded = record(recorder, "machine/locales.py", env=env)
    assert "setlocale de_DE.UTF-8" in recorded.stdout and "format n 1,23457e+06 9.876.543" in recorded.stdout
    assert "strftime Donnerstag 07 März 2024" in recorded.stdout
    other = run_plain("machine/locales.py", cwd=recorder.folder, env=OTHER_ENV)
    assert other.stdout != recorded.stdout
    assert_same(recorded, replay_on(recorder, (), env={**OTHER_ENV, "LOCPATH": "/nonexistent"}))


def test_locale_the_machine_lacks_is_a_divergence_that_names_it(recorder: Recorder, locale_data: Path,
                                                                 tmp_path: Path) -> None:
    locales = copy_of(locale_data, tmp_path)
    env = {"LOCPATH": str(locales), "LC_ALL": "de_DE.UTF-8"}
    record(recorder, "machine/locales.py", env=env)
    shutil.rmtree(locales)
    replayed = replay_on(recorder, (), env=OTHER_ENV)
    assert replayed.returncode == 70 and replayed.verdict is not None
    assert replayed.verdict["status"] == "diverged" and not replayed.verdict["faithful"]
    actual = replayed.verdict["divergence"]["actual"]
    assert actual["name"] == "locale.not_on_this_machine" and "'de_DE.UTF-8'" in actual["args"], actual
    assert "locale.not_on_this_machine('LC_CTYPE', 'de_DE.UTF-8')" in replayed.stderr


def test_locale_the_program_asks_for_is_taken_on_replay_or_reported(recorder: Recorder, locale_data: Path,
                                                                   tmp_path: Path) -> None:
    """The program starts in C.UTF-8 and asks for Turkish itself: the replay's C library takes Turkish too (its
    ``strxfrm`` and ``upper`` as recorded); where Turkish is gone, the replay says so at that call."""
    locales = copy_of(locale_data, tmp_path)
    env = {"LOCPATH": str(locales), "LC_ALL": "", "LANG": "C.UTF-8"}
    recorded = record(recorder, "machine/locales.py", "tr_TR.UTF-8", env=env)
    assert "collate tr_TR.UTF-8" in recorded.stdout
    assert_same(recorded, replay_on(recorder, (), env=OTHER_ENV))
    shutil.rmtree(locales)
    replayed = replay_on(recorder, (), env=OTHER_ENV)
    assert replayed.returncode == 70 and replayed.verdict is not None
    assert replayed.verdict["divergence"]["actual"]["call"] == \
        "locale.not_on_this_machine('LC_COLLATE', 'tr_TR.UTF-8')", replayed.verdict["divergence"]
    assert replayed.stdout == recorded.stdout.split("collate")[0]  # everything before the call, as recorded


@pytest.mark.parametrize("recorded_in, replayed_in", [("C.UTF-8", "POSIX"), ("POSIX", "C.UTF-8")])
def test_locale_c_and_posix(recorder: Recorder, recorded_in: str, replayed_in: str) -> None:
    """The locales every glibc machine has: recorded in one, replayed where the environment names the other."""
    recorded = record(recorder, "machine/locales.py", env={"LC_ALL": recorded_in, "LANG": recorded_in})
    assert f"setlocale {recorded_in if recorded_in != 'POSIX' else 'C'}" in recorded.stdout
    assert_same(recorded, replay_on(recorder, (), env={**OTHER_ENV, "LC_ALL": replayed_in, "LANG": replayed_in}))

