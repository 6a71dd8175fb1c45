"""A debugger front for agents: instead of pdb on a terminal, a debugging replay (``debugging.py``) answers one
question as JSON and ends — the program's stack with its locals at the replayed crash or just before event N
(``get_crash_state``, ``inspect_stack``), and how a local got its value there (``trace_provenance``, from the
:class:`~.provenance.ProvenanceTracer` the replay ran under).

The parent (``front/inspection.py``) starts the replay with :class:`Question` in its debug settings and reads the
answer from the file the question names.
"""

from __future__ import annotations

import json
import os
from types import FrameType, TracebackType
from typing import Any, NoReturn

from ..fitting import fit, printable
from ..frames import PACKAGE_DIR
from ..record import Record
from ..redaction import Redaction
from .provenance import ProvenanceTracer
from .snapshot import FrameState, crash_stack, stack_of

VALUE_WIDTH = 200
EVENT_WIDTH = 1000  # an event a value came from is shown wider: its rows are what the question is about


class Question(Record):
    """What the replay is asked: the stack at the crash (``at`` None) or before event ``at``; with ``name``, the
    provenance of that local in frame ``frame`` of the stack (an index, outermost first; None: the innermost)."""

    __slots__ = ("answer", "at", "frame", "name")

    def __init__(self, answer: str, at: int | None = None, frame: int | None = None, name: str | None = None) -> None:
        self.answer = answer  # the file the replay writes its answer to
        self.at = at
        self.frame = frame
        self.name = name

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        return cls(**data)


def _shown(value: Any, width: int = VALUE_WIDTH) -> str:
    try:
        return printable(fit(value, width))
    except Exception as exc:  # a repr of the program's that raises: said, not raised into the replay
        return f"<repr failed: {type(exc).__name__}>"


def program_file(project_root: str) -> Any:
    """Whether a file is the program's own code: under the project, not pytest-retrace, not an installed package."""
    root = project_root.rstrip(os.sep) + os.sep

    def mine(filename: str) -> bool:
        return (filename.startswith(root) and not filename.startswith(PACKAGE_DIR)
                and f"{os.sep}site-packages{os.sep}" not in filename)

    return mine


class Inspector:
    """The front a debugging replay's session talks to when an agent asked (it duck-types ``ReplayDebugger``)."""

    def __init__(self, question: Question, session: Any, project_root: str) -> None:
        self.question = question
        self.session = session
        self.program = program_file(project_root)
        self.redaction = Redaction.configured([], [])
        self.tracer: ProvenanceTracer | None = None
        self.notes: list[str] = []

    def start(self, engine: Any) -> None:
        """The program is about to run: locals are shown redacted as the recording was (``engine.redaction``), and
        its frames are traced when the question is a local's provenance."""
        self.redaction = getattr(engine, "redaction", None) or self.redaction
        if self.question.name is not None:
            self.tracer = ProvenanceTracer(self.program, lambda: self.session.position, _shown)
            self.tracer.install()

    # -- what the session tells a debugger front ---------------------------------------------------------------

    def message(self, text: str) -> None:
        self.notes.append(text)

    def stop_at(self, frame: FrameType | None, why: str) -> NoReturn:
        frames: list[FrameType] = []
        while frame is not None:
            if self.program(frame.f_code.co_filename):
                frames.append(frame)
            frame = frame.f_back
        frames.reverse()
        self._answer(why, stack_of(frames[-1] if frames else None, self.program, _shown, self.redaction), frames)

    def post_mortem(self, tb: TracebackType, why: str) -> NoReturn:
        frames: list[FrameType] = []
        walk: TracebackType | None = tb
        while walk is not None:
            if self.program(walk.tb_frame.f_code.co_filename):
                frames.append(walk.tb_frame)
            walk = walk.tb_next
        self._answer(why, crash_stack(tb, self.program, _shown, self.redaction), frames)

    def at_end(self, why: str) -> NoReturn:
        self._answer(why, [], [])

    def trace_from_first_line(self, project_root: str) -> None:  # pragma: no cover - not asked of an inspector
        pass

    # -- the answer ------------------------------------------------------------------------------------------

    def _answer(self, why: str, stack: list[FrameState], frames: list[FrameType]) -> NoReturn:
        if self.tracer is not None:
            self.tracer.uninstall()
        answer: dict[str, Any] = {"stopped": why, "position": self.session.position,
                                  "stack": [state.to_json() for state in stack]}
        question = self.question
        if question.name is not None:
            answer["provenance"] = self._provenance(frames)
        with open(question.answer, "w", encoding="utf-8") as f:
            json.dump(answer, f)
        self.session.quit()
        raise AssertionError("the session's quit() ends the replay")  # pragma: no cover

    def _provenance(self, frames: list[FrameType]) -> dict[str, Any]:
        question = self.question
        if not frames:
            return {"problem": "no frame of the program's at this stop"}
        index = len(frames) - 1 if question.frame is None else question.frame
        if not 0 <= index < len(frames):
            return {"problem": f"no frame #{index}: the program's stack here has frames #0 to #{len(frames) - 1}"}
        frame = frames[index]
        assert self.tracer is not None and question.name is not None
        chain = self.tracer.chain(frame, question.name)
        events = sorted({position for step in chain for position in step.events})
        return {"frame": index, "function": frame.f_code.co_name, "name": question.name,
                "chain": [step.to_json() for step in chain],
                "events": [self._event(position) for position in events]}

    def _event(self, position: int) -> dict[str, Any]:
        event = self.session.event(position)
        if event is None:
            return {"index": position}
        return {"index": position, "thread": str(event.tid), "name": event.name, "args": _shown(event.args),
                "result": _shown(event.result, EVENT_WIDTH)}

