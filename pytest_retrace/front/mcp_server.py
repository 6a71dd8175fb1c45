"""``retrace mcp``: an MCP server (stdio transport) through which an agent reads recordings.

The tools answer from :mod:`.inspection` (records written as JSON). A tool given something it cannot use — a
path that is no recording, a folder that is missing, a sealed recording without its key — fails with the
message the ``retrace`` commands print, which says what to do. The ``mcp`` SDK is an optional extra
(``pip install 'pytest-retrace[mcp]'``), imported only here.
"""

from __future__ import annotations

from typing import Any

from ..errors import RetraceError
from . import inspection

INSTRUCTIONS = (
    "Recordings (*.retrace) of real Python executions made by pytest-retrace: list them in a folder, open one "
    "(what ran, how it ended, its crash), and list its recorded external calls (events) by position. Values are "
    "bounded reprs of what the recording holds, redacted as it was recorded."
)


def _answer(call: Any) -> Any:
    """Run a tool's body; our errors become the tool's error message (what happened, where, what next). Anything
    else is a bug of ours: the SDK answers it as a generic failure and logs it on the server's stderr."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        return call()
    except RetraceError as exc:
        raise ToolError(str(exc)) from None


def make_server() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("pytest-retrace", instructions=INSTRUCTIONS)

    @server.tool()
    def list_recordings(folder: str) -> dict[str, Any]:
        """The recordings under a folder (at any depth): each one's path, status (complete, truncated, corrupt,
        unreadable), kind, entry point, route, tags, creation time, event count and crash (exception type,
        message, place, fingerprint), if it crashed."""
        return _answer(lambda: {"recordings": [r.to_json()  # type: ignore[no-any-return]
                                               for r in inspection.list_recordings(folder)]})

    @server.tool()
    def open_trace(path: str) -> dict[str, Any]:
        """One recording: what ran (kind, entry point, route, argv, Python, platform), its threads, and how it
        ended (exit status, the uncaught exception and its recorded traceback, or what it returned)."""
        return _answer(lambda: inspection.open_trace(path).to_json())  # type: ignore[no-any-return]

    @server.tool()
    def list_events(path: str, start: int = 0, count: int = 50, name: str | None = None,
                    thread: str | None = None) -> dict[str, Any]:
        """A recording's events (the external calls it made, in recorded order) from position ``start``: at most
        ``count`` (500 at most), only those whose call name contains ``name`` and that ran on logical thread
        ``thread`` ("0" is the main thread, "0.1" its first child) when given."""
        return _answer(lambda: {"events": [e.to_json() for e in  # type: ignore[no-any-return]
                                           inspection.list_events(path, start, count, name, thread)]})

    @server.tool()
    def get_crash_state(path: str) -> dict[str, Any]:
        """Replay a crash recording to its crash (the program's own code runs again, every external call answered
        from the recording, nothing real touched) and give the exception, the recorded traceback, and the
        program's stack at the crash, outermost first, with each frame's locals (bounded reprs, redacted as
        recorded). The replay runs the code of the project the server was started in."""
        return _answer(lambda: inspection.crash_state(path))  # type: ignore[no-any-return]

    @server.tool()
    def inspect_stack(path: str, event: int) -> dict[str, Any]:
        """Replay a recording to just before event ``event`` (a position from list_events) and give the program's
        stack there, outermost first, with each frame's locals (bounded reprs, redacted as recorded)."""
        return _answer(lambda: inspection.stack_at(path, event))  # type: ignore[no-any-return]

    @server.tool()
    def trace_provenance(path: str, name: str, event: int | None = None, frame: int | None = None) -> dict[str, Any]:
        """How local ``name`` got its value, at the crash (``event`` omitted) or just before event ``event``, in stack
        frame ``frame`` (an index of the stack, outermost first; omitted: the innermost): the chain of lines that
        assigned it and the names they read, back to the recorded external calls (events, with their answers) and
        constants it came from, found by a traced replay of the program's frames. It cannot see through C code or
        library frames, attributes, containers changed in place, or globals; a parameter ends the chain."""
        return _answer(lambda: inspection.provenance(path, name, event, frame))  # type: ignore[no-any-return]

    @server.tool()
    def list_incidents(folder: str) -> dict[str, Any]:
        """The crash incidents of a folder of recordings, by crash fingerprint, most recently seen first: exception,
        message, place, first and last seen, count, status (new, pinned, fixed, regressed), the pinned case and the
        dated history of its status, as `retrace triage` and pytest runs over pinned cases keep them. Reads only:
        a folder triage never saw has none."""
        return _answer(lambda: {"incidents": [i.to_json()  # type: ignore[no-any-return]
                                              for i in inspection.incidents(folder)]})

    return server


def serve() -> None:
    make_server().run("stdio")
