"""Scan a binary file through mmap."""
import mmap

with open("blob.bin", "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
    print("size", len(view))
    print("head", view[:8].hex(), "tail", view[-8:].hex())
    print("first 0x10 at", view.find(b"\x10"), "count of 0xff", view[:].count(b"\xff"))
