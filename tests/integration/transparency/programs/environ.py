"""A service reads its settings from the environment, with defaults."""
import os

region = os.environ["TR_REGION"]
print("region", region)
print("zone", os.getenv("TR_ZONE", "default-zone"))
print("debug", os.environ.get("TR_DEBUG", "0") == "1")
print("settings", sorted(key for key in os.environ if key.startswith("TR_REGION")))
print("home set:", "HOME" in os.environ)
print("bucket", f"s3://stock-{region}/daily")
