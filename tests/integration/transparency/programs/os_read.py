"""Read a binary file with descriptors: os.open, os.read, os.pread, os.fstat."""
import os

fd = os.open("blob.bin", os.O_RDONLY)
try:
    print("size", os.fstat(fd).st_size)
    print("first", os.read(fd, 8).hex())
    print("at 100", os.pread(fd, 4, 100).hex())
    os.lseek(fd, -4, os.SEEK_END)
    print("last", os.read(fd, 16).hex())
finally:
    os.close(fd)
