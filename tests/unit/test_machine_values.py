"""The values the machine and user boundaries record: every one is encodable and reads back as the same type and
value, the C modules whose structseqs they are may be named by a recording without running anything, and the
header's machine map (with the zone file's bytes) is one the reader accepts and a replay can apply."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import msgpack
import pytest

from pytest_retrace.boundaries import locales, machine
from pytest_retrace.format import codec
from pytest_retrace.format.shapes import header_problem

ROUND_TRIP = textwrap.dedent("""
    import os, sys, uuid, locale
    import pwd, grp, resource
    from pytest_retrace.format import codec
    values = [os.uname(), os.times(), pwd.getpwuid(0), grp.getgrgid(0), pwd.getpwall()[:3],
              resource.getrusage(resource.RUSAGE_SELF), resource.getrlimit(resource.RLIMIT_NOFILE),
              os.sched_getaffinity(0), os.terminal_size((80, 24)), uuid.uuid1(), locale.localeconv(),
              os.getgroups(), os.getloadavg()]
    with open(sys.argv[1], "wb") as f:
        f.write(codec.packb(values))
    print([f"{type(v).__module__}.{type(v).__qualname__}" for v in values])
    print(repr(values))
""")

READ_BACK = textwrap.dedent("""
    import sys
    from pytest_retrace.format import codec
    for name in ("pwd", "grp", "resource"):  # (Python 3.13's start-up imports pwd and grp)
        sys.modules.pop(name, None)
    before = {name for name in ("pwd", "grp", "resource") if name in sys.modules}
    values = codec.settled(codec.unpackb(sys.stdin.buffer.read()))
    print(sorted(before))
    print([f"{type(v).__module__}.{type(v).__qualname__}" for v in values])
    print(repr(values))
""")


def test_machine_and_user_values_read_back_in_a_reader_that_imported_none_of_their_modules(tmp_path: Path) -> None:
    packed = tmp_path / "values"
    shown = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(packed)], capture_output=True, text=True,
                           check=True).stdout
    read = subprocess.run([sys.executable, "-c", READ_BACK], input=packed.read_bytes(), capture_output=True,
                          check=True)
    lines = read.stdout.decode().splitlines()
    assert lines[0] == "[]"  # the reader had imported none of pwd, grp, resource: allowed, they are imported
    assert lines[1:] == shown.splitlines()  # the same types, the same values
    assert "pwd.struct_passwd" in lines[1] and "resource.struct_rusage" in lines[1] and "posix.uname_result" in lines[1]


@pytest.mark.parametrize("path", ["pwd:getpwnam", "posix:system", "resource:setrlimit", "grp:getgrall",
                                  "posix:uname_result.__new__"])
def test_the_allowed_c_modules_give_a_recording_their_structseq_types_and_nothing_else(path: str,
                                                                                       tmp_path: Path) -> None:
    value = msgpack.ExtType(codec.EXT_CODEC, codec.packb(
        ["structseq", [path, codec.packb(["touch", str(tmp_path / "ran")]), codec.packb({})]]))
    with pytest.raises(codec.MalformedValue):
        codec.settled(codec.unpackb(codec.packb(value)))
    assert not (tmp_path / "ran").exists()


def test_the_header_machine_map_is_one_the_reader_accepts() -> None:
    described = machine.describe()
    assert set(described) == {"zone", "zone_data", "locale"}
    assert set(described["locale"]) == set(locales.CATEGORIES)
    header = {"kind": "process", "hash_seed": 1, "entry": {"script": "p.py"}, "argv": ["p.py"], "cwd": "/",
              "environ": {}, "machine": described}
    assert header_problem(codec.unpackb(codec.packb(header))) is None
    assert "zone_data" in (header_problem({**header, "machine": {**described, "zone_data": "TZif"}}) or "")
    assert "locale" in (header_problem({**header, "machine": {**described, "locale": {"LC_CTYPE": 1}}}) or "")


APPLY = textwrap.dedent("""
    import os, sys, time
    from pytest_retrace.boundaries import machine
    data = bytes.fromhex(sys.argv[1])
    os.environ["TZDIR"] = "/nonexistent"  # no zone data on this 'machine'
    machine.apply({"zone": "Asia/Kolkata", "zone_data": data, "locale": {"LC_CTYPE": "xx_NOWHERE.UTF-8"}})
    print(time.tzname, time.timezone, time.strftime("%H:%M %Z", time.localtime(0)), os.environ.get("TZ"))
    import locale
    print(locale.setlocale(locale.LC_CTYPE))
    print(os.listdir(f"/proc/{os.getpid()}/fd"))
""")


def test_a_replay_runs_in_the_recorded_zone_from_its_bytes_alone() -> None:
    path = machine.zone_file("Asia/Kolkata")
    if path is None or not os.path.exists(path):
        pytest.skip("this machine has no Asia/Kolkata zone file to record")
    data = machine.zone_data("Asia/Kolkata")
    assert data is not None and data.startswith(b"TZif")
    env = {k: v for k, v in os.environ.items() if k not in ("TZ", "LC_ALL", "LANG", "LC_CTYPE")}
    out = subprocess.run([sys.executable, "-c", APPLY, data.hex()], capture_output=True, text=True, check=True,
                         env={**env, "TZ": "America/Denver"}).stdout.splitlines()
    assert out[0] == "('IST', 'IST') -19800 05:30 IST America/Denver"  # os.environ keeps the program's TZ
    assert out[1] == "C.UTF-8"  # a locale this machine lacks: the C locale of its encoding
    assert out[2] == "['0', '1', '2', '3']"  # the memory file the zone was read from is closed


def test_zone_files_are_read_for_the_zones_the_c_library_reads() -> None:
    assert machine.zone_file(None) == "/etc/localtime"
    assert machine.zone_file("") is None  # UTC
    assert machine.zone_file(":") == "/etc/localtime"
    assert machine.zone_file(":/srv/zone") == "/srv/zone"
    assert (machine.zone_file("Europe/Paris") or "").endswith("/Europe/Paris")
    assert machine.zone_data("<+0330>-3:30") is None  # a POSIX rule: no file
    assert machine.zone_data(":/etc/passwd") is None  # no zone file
    assert locales.same_encoding("de_DE.UTF-8") == "C.UTF-8" and locales.same_encoding("de_DE.utf8") == "C.UTF-8"
    assert locales.same_encoding("de_DE.ISO-8859-1") == "C"


def test_uuids_and_sets_round_trip() -> None:
    value = [uuid.uuid1(), {0, 1}, os.uname()]
    assert codec.unpackb(codec.packb(value)) == value
