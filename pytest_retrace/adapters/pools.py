"""Where pools and frameworks open a connection: everything done there is connection set-up (engine/setup.py).

A driver's connect is set-up by itself (the adapters mark it). What a pool or framework does to a connection
it just opened — SQLAlchemy's first-connect and connect events (the dialect asks the server's version, schema
and settings), Django's ``init_connection_state`` (time zone, role, type registrations) — is set-up too: a
request served on a pooled connection holds none of it, and its replay, which opens the connection afresh,
gets it answered from the recording's set-up log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.state import setting_up
from ..hooks.specs import hookimpl

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

# module: (class, method) that opens and sets up one connection
OPENERS = {
    "sqlalchemy.pool.base": ("_ConnectionRecord", "_ConnectionRecord__connect"),  # the private __connect
    "django.db.backends.base.base": ("BaseDatabaseWrapper", "connect"),
}


def _opening(patcher: Patcher, owner: type, name: str) -> None:
    original: Callable[..., Any] | None = owner.__dict__.get(name)
    if original is None:  # another version of the library: its connections' set-up is not marked
        return

    def opening(*args: Any, **kwargs: Any) -> Any:
        with setting_up:
            return original(*args, **kwargs)

    patcher.set(owner, name, opening)


@hookimpl
def retrace_install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    for module_name, (class_name, method) in OPENERS.items():
        def patch(module: Any, class_name: str = class_name, method: str = method) -> None:
            owner = getattr(module, class_name, None)
            if isinstance(owner, type):
                _opening(patcher, owner, method)

        patcher.when_imported(module_name, patch)
