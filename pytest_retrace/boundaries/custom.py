"""Custom boundaries: ``@pytest_retrace.boundary`` records a function of the program as one external call.

For what the stdlib boundaries cannot see, or should not: an LLM client wrapper, a cache that
outlives a request, a licence check. While recording, the function runs and its result (or
exception) is recorded under the key ``module.qualname`` + its arguments, bound to parameter
names (so ``f(1, b=2)`` and ``f(1, 2)`` are one call; ``self``/``cls`` are left out). While
replaying, it does not run: the recorded result comes back. Calls beneath it are not recorded.
Outside a recording it is the plain function.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ..engine.base import payload
from ..engine.state import STATE

F = TypeVar("F", bound=Callable[..., Any])


def _key_arguments(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return tuple(
        (name, payload(value) if isinstance(value, (str, bytes, bytearray)) else value)
        for name, value in bound.arguments.items()
        if name not in ("self", "cls")
    )


@overload
def boundary(function: F) -> F: ...
@overload
def boundary(*, name: str | None = None) -> Callable[[F], F]: ...


def boundary(function: Any = None, *, name: str | None = None) -> Any:
    """Record calls of the decorated function as external calls; ``name`` overrides the key's name."""

    def decorate(fn: F) -> F:
        key = name or f"{fn.__module__}.{fn.__qualname__}"
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            engine = STATE.installed  # the engine of the recording or replay under way, if any
            if engine is None:
                return fn(*args, **kwargs)
            return engine.call(key, _key_arguments(signature, args, kwargs), fn, *args, **kwargs)

        return recorded  # type: ignore[return-value]

    return decorate(function) if function is not None else decorate
