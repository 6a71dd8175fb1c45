"""Clocks: ``time.*`` (with ``clock_gettime``), ``datetime.now/utcnow/today``, ``date.today``; ``time.sleep``.

The datetime sources are recorded as integer microseconds (12 bytes an event,
exact), and rebuilt into datetimes by code that runs the same way on both sides.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

NOARG_SOURCES = (
    "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
    "process_time", "process_time_ns", "thread_time", "thread_time_ns",
)

# Python 3.12+ warns on datetime.utcnow(); the replacement warns in its place (the real one, called from our
# frame, would warn about our code, which the default filters hide).
UTCNOW_DEPRECATED = ("datetime.datetime.utcnow() is deprecated and scheduled for removal in a future version. Use "
                     "timezone-aware objects to represent datetimes in UTC: datetime.datetime.now(datetime.UTC)."
                     if sys.version_info >= (3, 12) else "")
_EPOCH_NAIVE = _dt.datetime(1970, 1, 1)
_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICRO = _dt.timedelta(microseconds=1)


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    for name in NOARG_SOURCES:
        if hasattr(time, name):
            patcher.set(time, name, engine.wrap_noarg(f"time.{name}", getattr(time, name)))
    for name in ("clock_gettime", "clock_gettime_ns"):
        if hasattr(time, name):
            patcher.set(time, name, _clock_by_id(engine, name, getattr(time, name)))
    # threading and queue bound the monotonic clock at import, for their timeouts (Semaphore,
    # Condition.wait_for, Barrier, Queue.get/put): how often a timed wait loops is scheduling too.
    import queue
    import threading

    patcher.set(threading, "_time", time.monotonic)
    patcher.set(queue, "time", time.monotonic)
    _install_struct_time(engine, patcher)
    _install_sleep(engine, patcher)
    _install_datetime(engine, patcher)


def _clock_by_id(engine: Engine, name: str, real: Any) -> Any:
    def clock(clk_id: int) -> Any:
        return engine.call(f"time.{name}", (clk_id,), real, clk_id)

    return clock


def _install_struct_time(engine: Engine, patcher: Patcher) -> None:
    """``localtime()``/``gmtime()``/``ctime()``/``asctime()``/``strftime(fmt)`` read the clock only
    without a time argument; with one they are pure functions and run as they are."""
    real_localtime, real_gmtime = time.localtime, time.gmtime
    real_asctime, real_strftime = time.asctime, time.strftime

    def localtime(secs: float | None = None) -> time.struct_time:
        if secs is None:
            return engine.call("time.localtime", None, real_localtime)
        return real_localtime(secs)

    def gmtime(secs: float | None = None) -> time.struct_time:
        if secs is None:
            return engine.call("time.gmtime", None, real_gmtime)
        return real_gmtime(secs)

    def ctime(secs: float | None = None) -> str:
        return real_asctime(localtime(secs))

    def asctime(t: Any = None) -> str:
        return real_asctime(localtime() if t is None else t)

    def strftime(fmt: str, t: Any = None) -> str:
        return real_strftime(fmt, localtime() if t is None else t)

    for fn in (localtime, gmtime, ctime, asctime, strftime):
        patcher.set(time, fn.__name__, fn)


def _install_sleep(engine: Engine, patcher: Patcher) -> None:
    real_sleep = time.sleep

    def sleep(secs: float) -> None:
        # On replay the recorded return comes back at once: replay runs faster than real time.
        engine.call("time.sleep", (secs,), real_sleep, secs)

    patcher.set(time, "sleep", sleep)


def _install_datetime(engine: Engine, patcher: Patcher) -> None:
    real_now = _dt.datetime.now

    def local_micros() -> int:
        return (real_now() - _EPOCH_NAIVE) // _MICRO

    def utc_micros() -> int:
        return (real_now(_dt.timezone.utc) - _EPOCH_UTC) // _MICRO


    def now(cls: type[_dt.datetime], tz: _dt.tzinfo | None = None) -> _dt.datetime:
        if tz is None:
            value = _EPOCH_NAIVE + _MICRO * engine.call("datetime.now", None, local_micros)
            return value if cls is _dt.datetime else cls.combine(value.date(), value.time())
        value = (_EPOCH_UTC + _MICRO * engine.call("datetime.now", ("tz",), utc_micros)).astimezone(tz)
        return value if cls is _dt.datetime else cls.combine(value.date(), value.timetz())

    def utcnow(cls: type[_dt.datetime]) -> _dt.datetime:
        if UTCNOW_DEPRECATED:  # warned about where the program called it, as the real one warns
            warnings.warn(UTCNOW_DEPRECATED, DeprecationWarning, stacklevel=2)
        value = _EPOCH_NAIVE + _MICRO * engine.call("datetime.utcnow", None, utc_micros)
        return value if cls is _dt.datetime else cls.combine(value.date(), value.time())

    def today(cls: type[_dt.date]) -> _dt.date:
        value = _EPOCH_NAIVE + _MICRO * engine.call("datetime.today", None, local_micros)
        if issubclass(cls, _dt.datetime):
            return value if cls is _dt.datetime else cls.combine(value.date(), value.time())
        return cls(value.year, value.month, value.day)

    patcher.set(_dt.datetime, "now", classmethod(now))
    patcher.set(_dt.datetime, "utcnow", classmethod(utcnow))
    patcher.set(_dt.date, "today", classmethod(today))
