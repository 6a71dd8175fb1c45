"""Draws a raffle winner: reads the entrants file, the clock, entropy and the host name.

Every run prints something different; a recorded run replays exactly.
"""

import datetime
import pathlib
import random
import socket
import sys
import uuid

entrants = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "entrants.txt").read_text().split()
ticket = uuid.uuid4()
winner = random.choice(entrants)
print(f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S} on {socket.gethostname()}")
print(f"ticket {ticket}: the winner among {len(entrants)} entrants is {winner}")
if winner == "mallory":
    raise RuntimeError("mallory is banned from winning")
