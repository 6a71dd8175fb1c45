"""Untrusted recordings end to end: the plugin errors on crafted and damaged files without running what they
name (in a pytest subprocess, which a crash of the reader would kill), and values of the program's own types
(not imported yet when the replay reads the recording) still replay faithfully."""

from __future__ import annotations

import sys
from pathlib import Path

import msgpack
import pytest
from support import retrace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_untrusted import header, nested_tuples, payloads, write  # noqa: E402

from pytest_retrace.engine.state import end_main_thread, start_main_thread  # noqa: E402
from pytest_retrace.format import tape  # noqa: E402


@pytest.fixture
def recordings(pytester: pytest.Pytester) -> Path:
    """Crafted recordings (code-running type paths, deep nesting) and one with a header missing its cwd."""
    folder = pytester.path / "recs"
    folder.mkdir()
    start_main_thread()
    try:
        for n, value in enumerate([*payloads(pytester.path / "MARKER"), nested_tuples(1000)]):
            write(folder / f"r{n:02}.retrace", [1, value])
        head = header(folder)
        del head["cwd"]
        tape.TapeWriter(folder / "nocwd.retrace", head, background=False).close({"status": 0, "events": 0})
    finally:
        end_main_thread()
    return folder


def test_the_plugin_errors_on_crafted_recordings_and_runs_nothing(pytester: pytest.Pytester,
                                                                  recordings: Path) -> None:
    count = len(list(recordings.glob("*.retrace")))
    result = pytester.runpytest_subprocess("--retrace-recordings=recs", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=count)
    result.stdout.fnmatch_lines(["recs/r00.retrace: corrupt recording: builtins:exec is not an enum class*"
                                 " at offset *"])
    result.stdout.fnmatch_lines(["recs/r12.retrace: corrupt recording: values nested more than * at offset *"])
    result.stdout.fnmatch_lines(["recs/nocwd.retrace: corrupt recording: the header has no 'cwd' at offset 12"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "MARKER").exists()


APP = '''\
import pytest_retrace
from shop import kinds


@pytest_retrace.boundary
def lookup(n):
    if n < 0:
        raise kinds.Refused("no", n)
    return [kinds.Tier.GOLD, (kinds.Tier.SILVER, n), {kinds.Tier.GOLD: kinds.Flavour.SOUR}]


print(lookup(3))
try:
    lookup(-1)
except kinds.Refused as exc:
    print("refused", type(exc).__name__, exc.args, exc.note)
'''
KINDS = '''\
import enum


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


class Flavour(enum.IntEnum):
    SOUR = 2


class Refused(Exception):
    def __init__(self, *args):
        super().__init__(*args)
        self.note = "made by its own __init__"
'''


def test_values_of_the_programs_own_types_replay_faithfully(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "kinds.py").write_text(KINDS)
    (tmp_path / "app.py").write_text(APP)
    recorded = retrace("record", "-o", "app.retrace", "app.py", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert "refused Refused ('no', -1) made by its own __init__" in recorded.stdout
    rec = tape.read_recording(tmp_path / "app.retrace")
    looked_up = next(e for e in rec.events() if e.name.endswith("lookup"))
    assert "shop.kinds" not in sys.modules and "<enum shop.kinds:Tier 'gold'" in repr(looked_up.result)
    replayed = retrace("replay", "app.retrace", "--verdict", "v.json", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout


def test_replay_of_damaged_files_exits_2_with_a_corrupt_verdict(tmp_path: Path) -> None:
    start_main_thread()
    try:
        write(tmp_path / "deep.retrace", [1, nested_tuples(300)])
    finally:
        end_main_thread()
    data = (tmp_path / "deep.retrace").read_bytes()
    (tmp_path / "garbage.retrace").write_bytes(data[:40] + msgpack.packb(list(range(50))) + data[40:])
    for name in ("deep", "garbage"):
        run = retrace("replay", f"{name}.retrace", "--verdict", f"{name}.json", cwd=tmp_path)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith(f"retrace replay: {name}.retrace: corrupt recording: ") and " at offset " in (
            run.stderr), run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
        assert '"status": "corrupt"' in (tmp_path / f"{name}.json").read_text()


def test_a_real_crash_deeper_than_the_readers_bound_records_as_a_readable_crash(tmp_path: Path) -> None:
    """The reader refuses an END whose traceback is longer than any run's; the writer keeps a deep recursion's
    two ends within that bound, so a real crash never reads back as corrupt."""
    (tmp_path / "deep.py").write_text("import sys\nsys.setrecursionlimit(12000)\n\n"
                                      "def down(n):\n    return down(n + 1)\n\ndown(0)\n")
    recorded = retrace("record", "-o", "deep.retrace", "deep.py", cwd=tmp_path)
    assert recorded.returncode == 1 and "RecursionError" in recorded.stderr
    rec = tape.read_recording(tmp_path / "deep.retrace")
    assert rec.status == tape.TapeStatus.COMPLETE and rec.end is not None
    frames = rec.end["exception"]["traceback"]
    assert frames[0][2] == "<module>" and frames[-1][2] == "down"
    replayed = retrace("replay", "deep.retrace", "--verdict", "v.json", cwd=tmp_path)
    assert replayed.returncode == 1 and '"crash-reproduced"' in (tmp_path / "v.json").read_text()
