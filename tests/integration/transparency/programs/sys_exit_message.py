"""Refuse to run with a bad configuration: sys.exit with a message."""
import json
import sys
import time

config = json.load(open("config.json"))
print("checked at", time.time())
if config["greeting"] != "bonjour":
    sys.exit(f"unsupported greeting {config['greeting']!r} (threshold {config['threshold']})")
print("ok")
