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

from ..engine.router import Router
from ..engine.state import tls

if TYPE_CHECKING:
    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

SEED_BYTES = 32


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    real_urandom = os.urandom

    def urandom(size: int) -> bytes:
        return engine.call("os.urandom", (size,), real_urandom, size)

    patcher.set(os, "urandom", urandom)
    patcher.set(random, "_urandom", urandom)  # SystemRandom draws through this module global

    if hasattr(os, "getrandom"):
        real_getrandom = os.getrandom

        def getrandom(size: int, flags: int = 0) -> bytes:
            return engine.call("os.getrandom", (size, flags), real_getrandom, size, flags)

        patcher.set(os, "getrandom", getrandom)

    real_seed = random.Random.seed

    def seed(self: random.Random, a: Any = None, version: int = 2) -> None:
        if a is None:
            a = int.from_bytes(engine.call("random.seed", None, real_urandom, SEED_BYTES), "big")
        real_seed(self, a, version)

    patcher.set(random.Random, "seed", seed)
    # The module-level functions are bound methods of one hidden instance, bound at import: seeded now
    # through the seed boundary, a recording starts from a state it holds, whatever earlier code drew.
    # (In-process recordings leave the service's generator alone: each gets one of its own, own_generator.)
    if not isinstance(engine, Router):
        random._inst.seed()  # type: ignore[attr-defined]
    for name in ("seed", "getstate", "setstate"):
        patcher.set(random, name, on_module_generator(name))


def own_generator(engine: Engine) -> int:
    """The seed of a generator of its own for an in-process recording, behind the module-level functions while
    it is open (see :func:`module_generator`, which makes it the first time the request draws). The seed is drawn
    from the module's generator — a service that seeded it keeps a reproducible series of requests, and requests
    recorded at once get different ones — and is the recording's ``random.seed`` event, from which replay seeds
    the module's generator."""
    drawn = random._inst.getrandbits(SEED_BYTES * 8).to_bytes(SEED_BYTES, "big")  # type: ignore[attr-defined]
    return int.from_bytes(engine.call("random.seed", None, lambda: drawn), "big")


def module_generator() -> random.Random:
    """The generator behind the module-level ``random`` functions for the calling thread: an in-process
    recording's own (requests recorded at once must not draw from each other's; on replay, where the
    recording is alone, the module's own generator is seeded as the recording's was), else the module's."""
    engine = tls.engine
    if engine is not None and engine.open and engine.generator is not None:
        generator = engine.generator
        if type(generator) is int:  # its seed: most requests never draw, and a generator takes time to make
            generator = engine.generator = random.Random(generator)
        return generator  # type: ignore[no-any-return]
    return random._inst  # type: ignore[attr-defined,no-any-return]


def on_module_generator(name: str) -> Any:
    """A module-level ``random`` function that calls method ``name`` of :func:`module_generator`."""
    method = getattr(random.Random, name)

    def module_function(*args: Any, **kwargs: Any) -> Any:
        return method(module_generator(), *args, **kwargs)

    return module_function
