"""A client whose upstream is down: the ConnectionError ends the program."""
import os
import time

import requests

print("calling upstream at", time.time(), "from", os.environ["TR_REGION"], flush=True)
response = requests.get(os.environ["TR_CLOSED_URL"] + "stock", timeout=2)
print(response.status_code)
