"""Ask other programs: the date, a Python one-liner, a listing."""
import subprocess
import sys

now = subprocess.run(["date", "+%s.%N"], capture_output=True, text=True, check=True)
print("date says", now.stdout.strip())
roll = subprocess.check_output([sys.executable, "-c", "import random; print(random.randint(1, 10**6))"], text=True)
print("child rolled", roll.strip())
listing = subprocess.run(["ls", "notes"], capture_output=True, text=True)
print("notes:", listing.stdout.split(), "status", listing.returncode)
missing = subprocess.run(["ls", "nowhere"], capture_output=True, text=True)
print("missing status", missing.returncode, "stderr lines", len(missing.stderr.splitlines()))
