"""Query the stock service with requests: GET per item, then POST an order."""
import os

import requests

base = os.environ["TR_URL"]
with requests.Session() as session:
    for item in ["apple", "pear", "fig"]:
        answer = session.get(f"{base}/stock/{item}", timeout=5)
        answer.raise_for_status()
        print(item, answer.json())
    order = session.post(f"{base}/orders", json={"item": "plum", "qty": 2}, timeout=5)
    print("order", order.status_code, order.headers["Content-Type"], order.json())
