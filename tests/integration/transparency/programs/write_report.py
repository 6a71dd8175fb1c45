"""Write a report and a temporary file, read them back, tidy up."""
import os
import tempfile
import time
from pathlib import Path

rows = Path("inventory.csv").read_text().splitlines()[1:]
out = Path("out")
out.mkdir(exist_ok=True)
report = out / "report.txt"
report.write_text("".join(f"{row}\n" for row in rows) + f"written {time.time()}\n")
print("report:", report.read_text().splitlines()[0], "...", len(report.read_text().splitlines()), "lines")
with tempfile.NamedTemporaryFile("w+", suffix=".tmp", dir=".", delete=False) as tmp:
    tmp.write("scratch")
os.replace(tmp.name, out / "scratch.txt")
print("scratch:", (out / "scratch.txt").read_text())
os.remove(out / "scratch.txt")
print("files now:", sorted(os.listdir(out)))
