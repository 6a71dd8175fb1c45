"""A class keeps its clock and id source as class attributes, so tests can swap them."""
import os
import time


class Stamp:
    clock = time.time
    pid = os.getpid
    sleep = time.sleep

    def __init__(self):
        self.sleep(0.001)
        self.at = self.clock()
        self.who = self.pid()


stamp = Stamp()
print("stamped at", stamp.at, "by", stamp.who)
print("class clock works:", Stamp.clock() >= stamp.at)
print("region", os.environ["TR_REGION"])
