"""Print the traceback of an expected failure and carry on."""
import time
import traceback

started = time.time()
try:
    with open("settings.ini") as f:
        print(f.read())
except FileNotFoundError:
    traceback.print_exc()
print("fallback to config.json:", open("config.json").read().strip())
print("took", time.time() - started)
