"""The machine a recording ran on: its host, its figures, its time zone and the locale the program started in.

Two halves. What the program reads through a call is recorded as any call is (:func:`install`): the host
(``os.uname``, hence ``platform.node()``/``uname()``; ``uuid.getnode``/``uuid1``; ``socket.gethostname``
and ``getfqdn`` are the socket boundary's), the machine's figures (``os.cpu_count``, ``sched_getaffinity``,
``getloadavg``, ``sysconf``/``confstr``, ``times``, ``getpriority``, ``get_terminal_size``, and ``resource``'s
limits, usage and page size), and what changes them (``setrlimit``, ``setpriority``, ``nice``,
``sched_setaffinity``: performed while recording, never on replay, which answers from the recording).

What the C library reads without a call to intercept is state, restored on replay: the time zone and the locale.
The C library reads the zone (from ``TZ``, else ``/etc/localtime``), and ``time.localtime(t)``,
``strftime('%Z')``, ``time.tzname``, ``datetime.fromtimestamp`` and ``astimezone()`` answer from it. The
recording's header holds the zone: its ``TZ`` value and the bytes of the zone file the C library read
(:func:`describe`). A replay gives the C library those bytes (through a memory file, see :func:`apply_zone`),
so it gets the recorded zone's answers even on a machine in another zone or with other (or no) time zone data.
``time.tzset()`` called by the program is such a point too: the zone it made the C library read is its event.
The locale is :mod:`.locales`'.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from ..engine.state import internal
from .locales import apply as apply_locale
from .locales import state as locale_state

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

ZONEINFO = "zoneinfo/"
LOCALTIME = "/etc/localtime"
MAX_ZONE_FILE = 1 << 20  # a zone file is a few kilobytes; anything larger is no zone file
# Taken at import, before any boundary replaces them (the boundaries are imported first thing, see ``areas``).
_REAL_TZSET = time.tzset
_os_open, _os_read, _os_close, _os_write, _os_stat = os.open, os.read, os.close, os.write, os.stat

# os functions without arguments that never raise: the fast path (see Engine.wrap_noarg).
OS_NOARG = ("cpu_count", "process_cpu_count", "uname", "times")
# os functions whose arguments make the call key (answers that may raise: recorded raised).
OS_CALLS = ("getloadavg", "sched_getaffinity", "sysconf", "confstr", "fpathconf", "pathconf", "getpriority",
            "get_terminal_size", "sched_getscheduler", "sched_rr_get_interval")
# os functions that change the process's share of the machine: performed while recording, answered on replay.
OS_CHANGES = ("setpriority", "nice", "sched_setaffinity")
# What decides the locale and the encodings an interpreter starts with.
STARTUP_VARIABLES = ("LC_ALL", "LC_CTYPE", "LANG", "LOCPATH", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONCOERCECLOCALE")
RESOURCE_CALLS = ("getrlimit", "getrusage", "setrlimit", "prlimit")


# -- the header: the zone and the locale the program started in ----------------------------------------


def zone() -> str:
    """The time zone this process runs in, as a ``TZ`` value."""
    tz = os.environ.get("TZ")
    if tz:
        return tz
    try:
        target = os.readlink(LOCALTIME)
    except OSError:
        target = ""
    if ZONEINFO in target:
        return ":" + target.split(ZONEINFO, 1)[1]
    # No name to give: the zone's standard offset as a POSIX TZ (its daylight-saving rules are not known here).
    hours, rest = divmod(abs(time.timezone), 3600)
    sign = "-" if time.timezone < 0 else "+"
    return f"<{time.tzname[0]}>{sign}{hours:02d}:{rest // 60:02d}"


def zone_file(tz: str | None) -> str | None:
    """The zone file the C library reads for ``TZ`` value ``tz`` (None: ``TZ`` unset), or None when it reads none
    (an empty ``TZ`` is UTC; a POSIX rule such as ``EST5EDT,M3.2.0,M11.1.0`` needs no file when there is none)."""
    if tz is None:
        return LOCALTIME
    name = tz[1:] if tz.startswith(":") else tz
    if not name:
        return LOCALTIME if tz else None
    if name.startswith("/"):
        return name
    return os.path.join(os.environ.get("TZDIR") or "/usr/share/zoneinfo", name)


def zone_data(tz: str | None) -> bytes | None:
    """The bytes of the zone file the C library reads for ``tz``, or None (no such file: a POSIX rule, or UTC).
    A service's every request recording asks: the last answer is kept while the file is the same one unchanged."""
    global _last_zone
    path = zone_file(tz)
    if path is None:
        return None
    try:
        st = _os_stat(path)
    except OSError:
        return None
    seen = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    last = _last_zone
    if last is not None and last[0] == seen:
        return last[1]
    data = _read_zone(path)
    _last_zone = (seen, data)
    return data


_last_zone: tuple[tuple[Any, ...], bytes | None] | None = None


def _read_zone(path: str) -> bytes | None:
    try:
        fd = _os_open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        chunks, size = [], 0
        while size <= MAX_ZONE_FILE:
            chunk = _os_read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError:  # a directory, or unreadable: the C library reads no zone from it either
        return None
    finally:
        _os_close(fd)
    data = b"".join(chunks)
    return data if data.startswith(b"TZif") and len(data) <= MAX_ZONE_FILE else None


def describe() -> dict[str, Any]:
    """The machine as a recording's header holds it: the zone (its ``TZ`` value and its zone file's bytes) and the
    C library's locale the program starts in."""
    return {"zone": zone(), "zone_data": zone_data(os.environ.get("TZ")), "locale": locale_state()}


def startup_environ(header: dict[str, Any]) -> dict[str, str | None]:
    """The variables a replay's interpreter must start with (None: unset), from the recorded environment: those
    that decide the locale and the encodings Python settles on at start (UTF-8 mode, the file system's and the
    standard streams' encodings), which nothing can change once it runs."""
    recorded = header.get("environ") or {}
    return {name: recorded.get(name) for name in STARTUP_VARIABLES}


def apply(machine: dict[str, Any] | str | None) -> None:
    """Run in the recorded machine's zone and locale from now on (``os.environ`` is left as the recording had
    it). ``machine``: the header's ``machine`` map (a zone alone, from older callers)."""
    if not isinstance(machine, dict):
        machine = {"zone": machine}
    if machine.get("zone") or machine.get("zone_data"):
        apply_zone(machine.get("zone"), machine.get("zone_data"))
    if machine.get("locale"):
        apply_locale(machine["locale"])


def apply_zone(tz: str | None, data: bytes | None) -> None:
    """Make the C library run in the zone ``tz`` whose file held ``data``. With the bytes, the C library reads them
    from a memory file (``TZ=:/proc/self/fd/N``, closed once read: it reads a zone file whole, once), so neither
    this machine's zone nor its time zone data matter; without them, ``tz`` itself (a POSIX rule, UTC)."""
    if data and hasattr(os, "memfd_create"):
        with internal:
            fd = os.memfd_create("retrace-zone", getattr(os, "MFD_CLOEXEC", 0))
            try:
                view = memoryview(data)
                while view:
                    view = view[_os_write(fd, view):]
                # The C library reads TZ afresh only when its value changed: a memory file of the same number as
                # the previous one must not look like the zone it already has.
                os.putenv("TZ", "UTC0")
                _REAL_TZSET()
                os.putenv("TZ", f":/proc/self/fd/{fd}")
                _REAL_TZSET()
            finally:
                _os_close(fd)
        return
    if tz is None:
        os.unsetenv("TZ")
    else:
        os.putenv("TZ", tz)
    _REAL_TZSET()


# -- the boundary --------------------------------------------------------------------------------------


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    for name in OS_NOARG:
        if hasattr(os, name):
            patcher.set(os, name, engine.wrap_noarg(f"os.{name}", getattr(os, name)))
    for name in OS_CALLS + OS_CHANGES:
        if hasattr(os, name):
            patcher.set(os, name, calls(engine, f"os.{name}", getattr(os, name)))

    def install_resource(resource: Any) -> None:
        for name in RESOURCE_CALLS:
            if hasattr(resource, name):
                patcher.set(resource, name, calls(engine, f"resource.{name}", getattr(resource, name)))
        patcher.set(resource, "getpagesize", engine.wrap_noarg("resource.getpagesize", resource.getpagesize))

    patcher.when_imported("resource", install_resource)
    # platform.uname() keeps os.uname()'s answer: one taken before the recording began (our header's
    # platform.platform()) must not answer the program, which would then read no os.uname() while recording.
    patcher.when_imported("platform", lambda platform: patcher.set(platform, "_uname_cache", None))
    patcher.when_imported("uuid", lambda uuid: _install_uuid(engine, patcher, uuid))
    _install_tzset(engine, patcher)


def calls(engine: Engine, name: str, real: Any) -> Any:
    """``real`` recorded as a call keyed by its arguments (a path among them as a string)."""

    def recorded(*args: Any) -> Any:
        return engine.call(name, tuple(os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else a
                                       for a in args), real, *args)

    return recorded


def _install_uuid(engine: Engine, patcher: Patcher, uuid: Any) -> None:
    """The host's hardware address (found through libuuid, a socket ioctl or ``ip link``, then kept in
    ``uuid._node``) and ``uuid1()`` (time, clock sequence and that address, from libuuid or Python's own
    code), recorded whole."""
    real_getnode, real_uuid1 = uuid.getnode, uuid.uuid1

    def getnode() -> int:
        return engine.call("uuid.getnode", None, real_getnode)  # type: ignore[no-any-return]

    def uuid1(node: int | None = None, clock_seq: int | None = None) -> Any:
        return engine.call("uuid.uuid1", (node, clock_seq), real_uuid1, node, clock_seq)

    patcher.set(uuid, "getnode", getnode)
    patcher.set(uuid, "uuid1", uuid1)


def _install_tzset(engine: Engine, patcher: Patcher) -> None:
    """``time.tzset()``: the C library reads the zone ``TZ`` names now (or ``/etc/localtime``). Its event is the
    ``TZ`` value with the bytes of the zone file that was read; a replay makes the C library read those."""

    def read_zone() -> list[Any]:
        _REAL_TZSET()
        tz = os.environ.get("TZ")
        return [tz, zone_data(tz)]

    def redo(recorded: Any) -> None:
        if type(recorded) is not list or len(recorded) != 2:
            raise TypeError(f"a recorded time zone that is not [TZ, zone file]: {recorded!r}")
        apply_zone(*recorded)

    def tzset() -> None:
        engine.sync("time.tzset", (os.environ.get("TZ"),), redo, read_zone)

    patcher.set(time, "tzset", tzset)
