"""Query the stock service with urllib and http.client."""
import http.client
import json
import os
import urllib.request
from urllib.parse import urlsplit

base = os.environ["TR_URL"]
with urllib.request.urlopen(f"{base}/stock/plum", timeout=5) as answer:
    print("urllib", answer.status, json.load(answer))
url = urlsplit(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
conn.request("POST", "/orders", body=json.dumps({"item": "apple"}), headers={"Content-Type": "application/json"})
response = conn.getresponse()
print("http.client", response.status, response.read().decode())
conn.close()
