"""A long job the user interrupts (the program raises it itself to simulate Ctrl-C)."""
import time

total = 0
for line in open("inventory.csv").read().splitlines()[1:]:
    total += int(line.split(",")[1])
    print("running total", total, time.monotonic(), flush=True)
    if total > 7:
        raise KeyboardInterrupt
print("finished", total)
