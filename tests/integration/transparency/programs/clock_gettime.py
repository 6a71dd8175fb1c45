"""Low-level clocks a scheduler reads to decide whether a job is due."""
import json
import time

config = json.load(open("config.json"))
now = time.clock_gettime(time.CLOCK_REALTIME)
mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
local = time.localtime()
utc = time.gmtime()
print("realtime", f"{now:.6f}", "monotonic_ns", mono)
print("local", time.strftime("%Y-%m-%d %H:%M:%S", local), "utc", time.strftime("%H:%M:%S", utc))
print("stamp", time.strftime("%Y%m%dT%H%M%S"))
due = int(now) % 60 >= config["threshold"]
print(f"threshold {config['threshold']}: job due? {due}")
