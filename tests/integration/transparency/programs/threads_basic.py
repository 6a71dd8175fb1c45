"""Price each item in its own thread; a lock guards the shared totals."""
import random
import threading
import time

lock = threading.Lock()
totals = {}
items = [line.split(",") for line in open("inventory.csv").read().splitlines()[1:]]


def price(item, qty):
    started = time.perf_counter()
    unit = random.randint(10**5, 10**6)
    time.sleep(0.01)
    with lock:
        totals[item] = (int(qty) * unit, time.perf_counter() - started > 0)


threads = [threading.Thread(target=price, args=row, name=f"price-{row[0]}") for row in items]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for item in sorted(totals):
    print(item, *totals[item])
print("threads done:", len(threads), "at", time.time())
