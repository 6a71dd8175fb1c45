"""Has the inventory changed since the last import?"""
import os
import time

info = os.stat("inventory.csv")
print("size", info.st_size, "mtime", time.strftime("%Y-%m-%d", time.gmtime(info.st_mtime)))
print("age > 1 day:", time.time() - info.st_mtime > 86400)
print("lock file exists:", os.path.exists("import.lock"))
print("c note exists:", os.path.exists("notes/c.txt"), os.path.isfile("notes/a.txt"))
print("checked at", time.time())
