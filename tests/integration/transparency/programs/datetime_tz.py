"""Timestamps with time zones for an audit line."""
import datetime
import os
import time

utc = datetime.datetime.now(datetime.timezone.utc)
local = datetime.datetime.now().astimezone()
print("utc", utc.isoformat(), "offset", utc.utcoffset())
print("local offset", local.utcoffset(), "tzname", time.tzname[0] != "", "daylight", time.daylight in (0, 1))
print("today", datetime.date.today() == local.date() or "near midnight")
print("audit", f"{os.environ['TR_REGION']}:{int(time.time() * 1000)}")
