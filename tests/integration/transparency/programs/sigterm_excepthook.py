"""An excepthook reports the error, then the process ends itself with SIGTERM."""
import os
import signal
import sys
import time


def hook(kind, value, tb):
    print(f"fatal {kind.__name__}: {value} at {time.time()}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


sys.excepthook = hook
threshold = int(open("config.json").read().split(":")[1].split(",")[0])
print("threshold", threshold, flush=True)
raise ValueError(f"threshold {threshold} is not allowed")
