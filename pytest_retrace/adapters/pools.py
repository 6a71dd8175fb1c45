"""Where pools and frameworks open or look after a connection: everything done there is connection set-up
(engine/setup.py).

A driver's connect is set-up by itself (the adapters mark it). What a pool or framework does to a connection
it just opened — SQLAlchemy's first-connect and connect events (the dialect asks the server's version, schema
and settings), Django's ``init_connection_state`` (time zone, role, type registrations) — is set-up too: a
request served on a pooled connection holds none of it, and its replay, which opens the connection afresh,
gets it answered from the recording's set-up log. So is the upkeep of a connection found open — SQLAlchemy's
pre-ping, Django's check of a persistent connection's age and health at a request's start: a replay, which
found none open, passes it over.
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

# module: [(class, method)] that opens and sets up a connection, or looks after one found open
SETTING_UP = {
    "sqlalchemy.pool.base": [("_ConnectionRecord", "_ConnectionRecord__connect")],  # the private __connect
    "sqlalchemy.engine.default": [("DefaultDialect", "_do_ping_w_event")],  # pool_pre_ping on checkout
    "django.db.backends.base.base": [("BaseDatabaseWrapper", "connect"),
                                     ("BaseDatabaseWrapper", "close_if_unusable_or_obsolete")],
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
    for module_name, places in SETTING_UP.items():
        def patch(module: Any, places: list[tuple[str, str]] = places) -> None:
            for class_name, method in places:
                owner = getattr(module, class_name, None)
                if isinstance(owner, type):
                    _opening(patcher, owner, method)

        patcher.when_imported(module_name, patch)
