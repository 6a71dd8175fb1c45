"""``Record``: the base of the project's typed records (verdicts, outcomes, divergences, child results …).

A record's fields are its class's ``__slots__``, set by the class's own ``__init__``; records compare
equal field by field, print as ``Name(field=value, …)``, copy with changes (:meth:`Record.replace`) and
write themselves as JSON (:meth:`Record.to_json`, field by field unless a class says otherwise).

Not dataclasses: every process that records or replays builds these classes on start, and there
``@dataclass`` costs about 0.3 ms a class (0.8 ms frozen) plus 5 ms for importing ``dataclasses``
(which imports ``inspect``); a replay of an empty program took 10 % longer with them.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # records are mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self.__slots__)})"

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        copy = object.__new__(type(self))
        for name in self.__slots__:
            object.__setattr__(copy, name, changes[name] if name in changes else getattr(self, name))
        return copy

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values, field by field (records and enums inside it too)."""
        return {name: to_json(getattr(self, name)) for name in self.__slots__}


def read_field(data: dict[str, Any], name: str, record: Any) -> Any:
    """Field ``name`` of a record's JSON read back with ``record.from_json``; None when it is absent or null."""
    value = data.get(name)
    return None if value is None else record.from_json(value)


def to_json(value: Any) -> Any:
    """A value as JSON holds it: records by their own ``to_json``, enums by their value, lists item by item."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value
