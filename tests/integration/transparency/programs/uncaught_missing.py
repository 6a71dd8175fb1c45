"""A script that expects a file and dies when it is not there."""
import time

print("run at", time.time(), flush=True)
print(open("config.json").read().strip(), flush=True)
with open("notes/a.txt") as f:
    print("a:", f.read().strip(), flush=True)
with open("settings.ini") as f:
    print(f.read())
