"""``StrEnum``: the base of the project's closed sets of names (statuses, divergence kinds, keep policies).

A member is its value wherever a string is expected — compared, formatted, written to JSON — on every
Python the project supports (``enum.StrEnum`` arrived in 3.11, and 3.12 changed how a plain
``str, Enum`` mixin formats).
"""

from __future__ import annotations

import enum


class StrEnum(str, enum.Enum):
    def __str__(self) -> str:
        return str.__str__(self)

    __format__ = str.__format__  # type: ignore[assignment]
