"""Data files read the ways programs read them: a recorded program gets the file objects and descriptors a plain
one gets (law 1), and its replay reads what the recording read after the files changed or went, touching
nothing (law 2).

Each case of ``fixtures/programs/file_objects.py`` runs plainly and recorded in the same folder (the same
output, error output and exit status), then the world changes, then the replay prints the same with every
event consumed, and leaves the folder as it found it.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support import PROGRAMS, Recorder, assert_faithful

BIG = 6 * 1024 * 1024


def write_data(folder: Path) -> None:
    folder.mkdir()
    (folder / "data.txt").write_bytes(b"first line\nsecond line\r\nthird line\n")
    (folder / "mixed.txt").write_bytes("caf\u00e9\r\nna\u00efve\rend\nlast".encode())
    (folder / "utf16.txt").write_bytes("\u00e9t\u00e9\r\nhiver\nfin".encode("utf-16"))
    (folder / "latin.txt").write_bytes("\u00e0 la\r\nligne\n".encode("latin-1"))
    (folder / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256) + b"tail")
    with zipfile.ZipFile(folder / "data.zip", "w") as z:
        z.writestr("inner.txt", "zipped")
    (folder / "data.gz").write_bytes(gzip.compress(b"gzipped words\n"))


def change_world(folder: Path) -> None:
    """Every data file edited (other sizes, other bytes, a later mtime), one deleted, one missing one created."""
    for path in folder.iterdir():
        path.write_bytes(b"changed since " + path.name.encode())
    (folder / "big.bin").unlink()
    (folder / "missing.txt").write_text("here now")


def world(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` (but the replay's own verdict): content and mtime."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".verdict.json")}


def run_plain(case: str, folder: Path, cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, str(PROGRAMS / "file_objects.py"), case, str(folder)], cwd=cwd,
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


CASES: dict[str, Callable[[str], None]] = {
    # type(open(p)), open(p, 'rb'), open(p, 'rb', buffering=0): TextIOWrapper/BufferedReader/FileIO, with name,
    # mode, encoding, closed, peek, read1, readinto, seek/tell; codecs.open
    "types": lambda out: out.startswith("TextIOWrapper BufferedReader FileIO ") and "\nFileIO " in out,
    # fileno() works, os.fstat and os.stat(fd) answer the data file's stat, os.read on the descriptor
    # (the lowest free number, as plain; writing to it refused as on a file opened for reading)
    "descriptor": lambda out: "fstat size=35 " in out and "write refused OSError 9" in out,
    # mmap of a data file's descriptor (and mmap for writing refused as on a read-only file)
    "mmap": lambda out: "mmap 35 b'first line'" in out and "PermissionError 13" in out,
    # os.open + read + pread + readv + lseek + fstat + mmap + close; a reused number answers its own stat
    "low_level": lambda out: "os.read b'first' b' line'" in out and "reused True pipe is a fifo True 0" in out,
    # select.select on a data file's descriptor
    "select": lambda out: "select [1, 0, 0] True b'firs'" in out,
    # text iteration, readline, seek/tell with \r\n, \r and \n, in UTF-8, UTF-16 and Latin-1, four newline modes
    "text": lambda out: out.count("\n") == 15 and "mixed.txt None 'café\\n'" in out,
    # several MB: readinto and mmap
    "big": lambda out: f"size {BIG + 4}" in out,
    # the same FileNotFoundError (errno, strerror, filename) from open, os.open and pathlib; a directory too
    "missing": lambda out: out.count("FileNotFoundError 2 No such file or directory missing.txt") == 5
    and "IsADirectoryError 21" in out,
    # the program rewrites the file between two reads: each read gets the content of its moment
    "twice": lambda out: "first ['first', 'line', 'second', 'line', 'third', 'line'] 35" in out
    and "second ['rewritten', 'by', 'the', 'program'] 25" in out and "third b'rewritten by the program\\n' 25" in out,
    # shutil copies a data file into another through the program's file objects on both sides
    "copy": lambda out: "copied b'first line\\n" in out,
    # zipfile, gzip, linecache (through tokenize.open, which holds the builtin open it imported), csv
    "stdlib": lambda out: "zipfile ['inner.txt'] b'zipped'" in out and "linecache 'second line\\n'" in out,
    # pathlib's read_bytes, read_text and open
    "paths": lambda out: "read_bytes b'first line\\nsecond line\\r\\nthird line\\n'" in out
    and "Path.open BufferedReader" in out,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_data_files_read_alike_plain_recorded_and_replayed(recorder: Recorder, tmp_path: Path, case: str) -> None:
    data = tmp_path / "data"
    write_data(data)
    plain = run_plain(case, data, tmp_path)
    if case in ("twice", "copy"):  # the program wrote a file: the recorded run starts from the same world
        write_data_again(data)
    recorded = recorder.record("file_objects.py", case, str(data))
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == plain, "recording changed what the program does"
    assert recorded.returncode == 0, recorded.stderr
    assert CASES[case](recorded.stdout), recorded.stdout

    change_world(data)
    before = world(tmp_path)
    assert_faithful(recorder, recorded)
    assert world(tmp_path) == before, "the replay changed, created or removed a file"


def write_data_again(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    write_data(folder)
