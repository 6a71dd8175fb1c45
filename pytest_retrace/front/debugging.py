"""pytest's ``--pdb`` and ``--trace`` for replayed recordings: the replay runs again in a foreground child under pdb
(``runner/debugging.py``), on the terminal pytest runs in, with pytest's capture suspended meanwhile."""

from __future__ import annotations

import os

import pytest

from ..format.tape import Recording
from ..kinds.entry import Project
from ..runner.debugging import DebugSettings
from ..runner.launcher import DebugQuit, debug_replay
from ..runner.verdict import Verdict

PDB, TRACE = "pdb", "trace"


def debugging(config: pytest.Config) -> str | None:
    """How pytest was asked to debug: ``--trace`` (at each program's first line), ``--pdb`` (at each failing
    replay's crash or divergence), or None."""
    if config.getoption("trace", False):
        return TRACE
    if config.getoption("usepdb", False):
        return PDB
    return None


def check_single_worker(config: pytest.Config) -> None:
    """Debugging talks to the terminal from the replay's own process: not from an xdist worker."""
    if debugging(config) and (getattr(config.option, "tx", None) or getattr(config.option, "numprocesses", None)):
        flag = "--trace" if debugging(config) == TRACE else "--pdb"
        raise pytest.UsageError(f"{flag}: debugging a replay needs a single worker, on pytest's terminal; run "
                                "without -n (or with -n 0, or -p no:xdist)")


def debug_in_session(config: pytest.Config, path: str, recording: Recording, project: Project,
                     trace: bool) -> Verdict:
    """Replay the recording at ``path`` under pdb on pytest's terminal (capture suspended); its verdict. Quitting
    the debugger ends the test session, as pdb's ``q`` does under pytest."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    terminal = [os.dup(0), os.dup(1)]
    try:
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("")
            reporter.write_sep(">", f"retrace: debugging the replay of {path}")
        return debug_replay(path, project, DebugSettings(terminal, trace=trace), recording=recording)
    except DebugQuit:
        pytest.exit("retrace: quit from the debugger")
    finally:
        for fd in terminal:
            os.close(fd)
        if capture is not None:
            capture.resume_global_capture()

