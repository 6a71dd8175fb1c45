"""The machine a recording ran on, as far as the program reads it without a call to intercept: its time zone.

The C library reads the zone once (from ``TZ``, else ``/etc/localtime``), and ``time.localtime(t)``,
``strftime('%Z')``, ``time.tzname``, ``datetime.fromtimestamp`` and ``astimezone()`` answer from it. The
recording's header holds the zone; a replay sets it (in the C library's environment only, then ``tzset``),
so a replay on a machine in another zone prints the times the recording printed.
"""

from __future__ import annotations

import os
import time

ZONEINFO = "zoneinfo/"


def zone() -> str:
    """The time zone this process runs in, as a ``TZ`` value."""
    tz = os.environ.get("TZ")
    if tz:
        return tz
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        target = ""
    if ZONEINFO in target:
        return ":" + target.split(ZONEINFO, 1)[1]
    # No name to give: the zone's standard offset as a POSIX TZ (its daylight-saving rules are not known here).
    hours, rest = divmod(abs(time.timezone), 3600)
    sign = "-" if time.timezone < 0 else "+"
    return f"<{time.tzname[0]}>{sign}{hours:02d}:{rest // 60:02d}"


def apply(tz: str | None) -> None:
    """Run in the time zone ``tz`` from now on (``os.environ`` is left as the recording had it)."""
    if tz:
        os.putenv("TZ", tz)
        time.tzset()
