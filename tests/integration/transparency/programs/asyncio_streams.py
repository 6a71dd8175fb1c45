"""An asyncio echo server and its client on loopback."""
import asyncio
import uuid


async def handle(reader, writer):
    data = await reader.readline()
    writer.write(b"echo " + data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for line in open("inventory.csv").read().splitlines()[1:3]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"{line} {uuid.uuid4()}\n".encode())
            await writer.drain()
            print((await reader.readline()).decode().strip())
            writer.close()
            await writer.wait_closed()
    print("port was ephemeral:", port > 1024)


asyncio.run(main())
