"""The user: who the program runs as, and what the user and group databases say.

Recorded: ``os.getuid``/``geteuid``/``getgid``/``getegid``/``getgroups``/``getresuid``/``getresgid`` (the fast
path: no arguments, never raising), ``os.getlogin``, ``os.getgrouplist``, ``os.umask``, ``os.access`` (what the
user may do with a path), and ``pwd``'s and ``grp``'s lookups; so ``getpass.getuser()``,
``os.path.expanduser`` without ``HOME`` and ``pathlib.Path.owner()`` answer as recorded. The calls that change who
the process is or what it creates with (``setuid`` … ``setgroups``, ``umask``) run while recording and never on
replay: a replay runs as whoever runs it, creates nothing, and answers from the recording.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .machine import calls

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

NOARG = ("getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid")
CALLS = ("getlogin", "getgrouplist", "umask", "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid",
         "setresuid", "setresgid", "setgroups", "initgroups")
DATABASES = {"pwd": ("getpwuid", "getpwnam", "getpwall"), "grp": ("getgrgid", "getgrnam", "getgrall")}


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    for name in NOARG:
        if hasattr(os, name):
            patcher.set(os, name, engine.wrap_noarg(f"os.{name}", getattr(os, name)))
    for name in CALLS:
        if hasattr(os, name):
            patcher.set(os, name, calls(engine, f"os.{name}", getattr(os, name)))
    real_access = os.access

    def access(path: Any, mode: int, *, dir_fd: int | None = None, effective_ids: bool = False,
               follow_symlinks: bool = True) -> bool:
        key = (os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else path, mode, dir_fd,
               effective_ids, follow_symlinks)
        return engine.call("os.access", key, real_access, path, mode, dir_fd=dir_fd,  # type: ignore[no-any-return]
                           effective_ids=effective_ids, follow_symlinks=follow_symlinks)

    patcher.set(os, "access", access)
    for module in DATABASES:
        patcher.when_imported(module, _database_installer(engine, patcher))


def _database_installer(engine: Engine, patcher: Patcher) -> Callable[[ModuleType], None]:
    def install_database(module: ModuleType) -> None:
        for name in DATABASES[module.__name__]:
            patcher.set(module, name, calls(engine, f"{module.__name__}.{name}", getattr(module, name)))

    return install_database
