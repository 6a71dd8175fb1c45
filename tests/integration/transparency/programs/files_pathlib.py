"""Collect the notes folder into one digest."""
from pathlib import Path

notes = Path("notes")
for path in sorted(notes.glob("*.txt")):
    lines = path.read_text().splitlines()
    print(f"{path.name}: {len(lines)} lines, {path.stat().st_size} bytes, first: {lines[0]!r}")
print("has c.txt:", (notes / "c.txt").exists(), "is dir:", notes.is_dir())
print("config bytes", len(Path("config.json").read_bytes()))
