"""Entropy: seed the world instead of logging every random number.

Recorded: the bytes that seed the ``random`` module's instance and every new
``random.Random()``, and ``os.urandom``/``os.getrandom`` (which ``uuid4``,
``secrets`` and ``SystemRandom`` draw from). ``random.random()`` and friends then
run unintercepted and cost nothing.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine import Engine
    from ..patch import Patcher
    from . import Options

SEED_BYTES = 32


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    real_urandom = os.urandom

    def urandom(size: int) -> bytes:
        return engine.call("os.urandom", (size,), real_urandom, size)

    urandom.__doc__ = real_urandom.__doc__
    patcher.set(os, "urandom", urandom)
    patcher.set(random, "_urandom", urandom)  # SystemRandom draws through this module global

    if hasattr(os, "getrandom"):
        real_getrandom = os.getrandom

        def getrandom(size: int, flags: int = 0) -> bytes:
            return engine.call("os.getrandom", (size, flags), real_getrandom, size, flags)

        getrandom.__doc__ = real_getrandom.__doc__
        patcher.set(os, "getrandom", getrandom)

    real_seed = random.Random.seed

    def seed(self: random.Random, a: Any = None, version: int = 2) -> None:
        if a is None:
            a = int.from_bytes(engine.call("random.seed", None, real_urandom, SEED_BYTES), "big")
        real_seed(self, a, version)

    seed.__doc__ = real_seed.__doc__
    patcher.set(random.Random, "seed", seed)
    seed_module_generator()
    patcher.set(random, "seed", random._inst.seed)  # type: ignore[attr-defined]


def seed_module_generator() -> None:
    """Seed the generator behind the module-level functions (one hidden instance, bound at import) through the
    seed boundary: a recording starts from a state it holds, whatever earlier code drew."""
    random._inst.seed()  # type: ignore[attr-defined]
