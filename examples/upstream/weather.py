"""Reports the temperature from an upstream JSON API (URL from argv) with requests."""
import sys

import requests

response = requests.get(f"{sys.argv[1]}/temperature", params={"city": "Oslo"}, timeout=5)
reading = response.json()  # BUG: an upstream having a bad day answers text, and this raises
print(f"Oslo: {reading['celsius']} °C")
