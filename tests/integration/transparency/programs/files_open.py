"""Report low stock from a CSV file and a JSON config."""
import csv
import json

with open("config.json") as f:
    config = json.load(f)
with open("inventory.csv", newline="") as f:
    rows = list(csv.DictReader(f))
low = [row["item"] for row in rows if int(row["qty"]) < config["threshold"]]
print(config["greeting"], f"{len(rows)} items")
print("low stock:", ", ".join(low) or "none")
with open("blob.bin", "rb") as f:
    head = f.read(16)
print("blob head", head.hex())
