"""A bounded buffer with a Condition and a Semaphore limiting readers."""
import random
import threading
import time

buffer = []
cond = threading.Condition()
slots = threading.Semaphore(2)
lines = open("inventory.csv").read().splitlines()[1:]
seen = []


def producer():
    for line in lines:
        with cond:
            buffer.append((line, random.random()))
            cond.notify()
    with cond:
        buffer.append(None)
        cond.notify_all()


def consumer():
    while True:
        with cond:
            cond.wait_for(lambda: buffer)
            entry = buffer.pop(0)
            if entry is None:
                buffer.append(None)
                return
        with slots:
            seen.append((entry[0], f"{entry[1]:.6f}", time.time() > 0))


threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for entry in sorted(seen):
    print(*entry)
