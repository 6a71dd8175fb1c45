"""Blocking work (file reads, entropy) pushed to the default executor."""
import asyncio
import os


def read(path):
    with open(path) as f:
        return f.read()


async def main():
    loop = asyncio.get_running_loop()
    inventory, config, salt = await asyncio.gather(
        loop.run_in_executor(None, read, "inventory.csv"),
        loop.run_in_executor(None, read, "config.json"),
        loop.run_in_executor(None, os.urandom, 8),
    )
    print("inventory lines", len(inventory.splitlines()), inventory.splitlines()[-1])
    print("config", config.strip())
    print("salt", salt.hex())


asyncio.run(main())
