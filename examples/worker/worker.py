"""A threaded worker: four threads take jobs from a queue, fetch a rate and book totals under a lock.
Which thread books which job, and in which order, is scheduling: replay reproduces it."""
import queue
import random
import threading
import time

jobs = queue.Queue()
ledger, ledger_lock = [], threading.Lock()


def work(name):
    while (job := jobs.get()) is not None:
        time.sleep(random.uniform(0, 0.01))  # the rate service
        rate = random.choice([0.9, 1.0, 1.1])
        with ledger_lock:
            ledger.append((name, job, round(job * rate, 2)))
        jobs.task_done()
    jobs.task_done()


workers = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
for w in workers:
    w.start()
for amount in (10, 20, 30, 40, 50, 60, 70, 80):
    jobs.put(amount)
for _ in workers:
    jobs.put(None)
jobs.join()
for w in workers:
    w.join()
for line in ledger:
    print(*line)
print("booked", round(sum(total for *_, total in ledger), 2))
