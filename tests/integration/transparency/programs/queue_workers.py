"""Producer and consumers over a queue; an Event tells them to stop."""
import queue
import threading
import time

jobs = queue.Queue()
done = queue.Queue()
stop = threading.Event()


def worker():
    while not stop.is_set():
        try:
            item, qty = jobs.get(timeout=0.05)
        except queue.Empty:
            continue
        done.put((item, int(qty) * 2, time.monotonic_ns()))
        jobs.task_done()


workers = [threading.Thread(target=worker) for _ in range(2)]
for thread in workers:
    thread.start()
for line in open("inventory.csv").read().splitlines()[1:]:
    jobs.put(line.split(","))
jobs.join()
stop.set()
for thread in workers:
    thread.join()
results = sorted(done.get() for _ in range(done.qsize()))
for item, doubled, stamp in results:
    print(item, doubled, stamp)
print("finished at", time.time())
