"""How long does the nightly stock check take, and when did it run?"""
import csv
import datetime
import time

started_wall = time.time()
started = time.perf_counter_ns()
stamp = datetime.datetime.now()
with open("inventory.csv", newline="") as f:
    rows = list(csv.DictReader(f))
total = sum(int(row["qty"]) for row in rows)
elapsed = time.perf_counter_ns() - started
print(f"stock check on {datetime.date.today().isoformat()} at {stamp:%H:%M:%S.%f}")
print(f"{len(rows)} items, {total} units")
print(f"took {elapsed}ns (monotonic {time.monotonic():.3f}, ns {time.time_ns()})")
print(f"since start: {time.time() - started_wall >= 0}, cpu {time.process_time() > 0}")
print("utc", datetime.datetime.utcnow().isoformat(timespec="microseconds"))
