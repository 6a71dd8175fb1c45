"""Check several items concurrently with asyncio tasks."""
import asyncio
import random
import time


async def check(item, qty):
    await asyncio.sleep(random.random() / 50)
    return item, int(qty), time.time()


async def main():
    rows = [line.split(",") for line in open("inventory.csv").read().splitlines()[1:]]
    loop_started = asyncio.get_running_loop().time()
    task = asyncio.create_task(check("extra", "0"))
    results = await asyncio.gather(*(check(*row) for row in rows))
    await task
    for item, qty, stamp in results:
        print(item, qty, f"{stamp:.6f}")
    print("loop time moved:", asyncio.get_running_loop().time() > loop_started, task.result()[0])


asyncio.run(main())
