"""What a recording is of, in words a test runner selects by: its kind, its entry point, the request's route or
the function, its tags and whether it is pinned; read from the header alone (a sealed recording's readable
header has the kind, the tags and the pin, not the entry)."""

from __future__ import annotations

from typing import Any

from ..fitting import printable
from ..record import Record

_LONGEST = 200  # characters kept of a word from the file: a crafted header does not make a huge keyword


def _word(value: Any) -> str:
    """Text from a recording made safe to hold as a keyword or a marker's value: a string, bounded, its control
    characters escaped."""
    return printable(value)[:_LONGEST]


class Subject(Record):
    """A recording's kind and what it ran, for markers, keywords and reports.

    ``entry``: the script, module, WSGI app (``module:attribute``) or function (``module:qualname``); ``route``:
    a request's method and path (``POST /orders``); ``tags``: what ``retrace record --tag`` or the recorder's
    ``tags=`` attached."""

    __slots__ = ("kind", "entry", "route", "tags", "pinned")

    def __init__(self, kind: str | None, entry: str | None = None, route: str | None = None,
                 tags: dict[str, str] | None = None, pinned: bool = False) -> None:
        self.kind = kind
        self.entry = entry
        self.route = route
        self.tags = tags or {}
        self.pinned = pinned

    @classmethod
    def of(cls, header: dict[str, Any]) -> Subject:
        from ..format.tape import Kind  # here: the summary imports this module as the plugin loads

        kind = header.get("kind", Kind.PROCESS)
        # An unknown kind is None here: the replay says what is wrong with it.
        kind = str(kind) if isinstance(kind, str) and kind in Kind.__members__.values() else None
        entry = header.get("entry")
        entry = entry if isinstance(entry, dict) else {}
        named = entry.get("app") or entry.get("function") or entry.get("script") or entry.get("module")
        route = None
        environ = entry.get("environ")
        if kind == "wsgi" and isinstance(environ, dict):
            route = f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO') or '/'}"
        tags = header.get("tags")
        tags = {_word(k): _word(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
        return cls(kind, None if named is None else _word(named), None if route is None else _word(route), tags,
                   bool(header.get("pin")))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Subject:
        return cls(**data)

    @property
    def keywords(self) -> set[str]:
        """The words ``pytest -k`` matches a recording's test by (besides its node id's parts)."""
        words = {f"retrace_{self.kind}"} if self.kind else set()
        words.update(part for part in (self.entry, self.route) if part)
        for key, value in self.tags.items():
            words.update((key, value, f"{key}={value}"))
        if self.pinned:
            words.add("retrace_pinned")
        return words

    def properties(self) -> list[tuple[str, str]]:
        """The junitxml properties that describe the recording."""
        found = [("retrace_kind", self.kind), ("retrace_entry", self.entry), ("retrace_route", self.route)]
        found += [(f"retrace_tag_{key}", value) for key, value in sorted(self.tags.items())]
        return [(name, value) for name, value in found if value is not None]
