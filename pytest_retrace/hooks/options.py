"""What a project can configure about where the boundary sits, handed to every ``retrace_install_boundaries``.

Apart from ``specs`` so that installing the stdlib boundaries does not import pluggy: a program with no
installed plugins and no library adapter in use never needs it.
"""

from __future__ import annotations

from ..record import Record


class Options(Record):
    """What a project can configure about where the boundary sits."""

    __slots__ = ("live_paths", "code_folders")

    def __init__(self, live_paths: list[str] | None = None, code_folders: list[str] | None = None) -> None:
        self.live_paths: list[str] = list(live_paths or [])  # fnmatch patterns read live on replay, never recorded
        self.code_folders: list[str] = list(code_folders or [])  # folders whose files are code, read live
