"""The program's frames at a stop, as data: places, source lines, bounded locals, the recording's redaction."""

from __future__ import annotations

import sys
from types import FrameType

from pytest_retrace.redaction import PLACEHOLDER, Redaction
from pytest_retrace.runner.snapshot import crash_stack, stack_of


def checkout(cart: list[int], api_key: str) -> float:
    subtotal = sum(cart)
    note = "paid with https://shop:hunter2@pay.example/charge"
    return 100 / subtotal if note else 0.0


def ours(filename: str) -> bool:
    return filename == __file__


def test_the_crash_stack_holds_the_program_s_frames_and_redacted_locals() -> None:
    redaction = Redaction.configured([], [])
    try:
        checkout([], api_key="sk-live-1")
    except ZeroDivisionError as exc:
        frames = crash_stack(exc.__traceback__, ours, repr, redaction)
    assert [f.function for f in frames] == ["test_the_crash_stack_holds_the_program_s_frames_and_redacted_locals",
                                            "checkout"]
    crash = frames[-1]
    assert crash.source == "return 100 / subtotal if note else 0.0" and crash.file == __file__
    assert crash.locals["cart"] == "[]" and crash.locals["subtotal"] == "0"
    assert crash.locals["api_key"] == PLACEHOLDER  # named like a secret
    assert "hunter2" not in crash.locals["note"] and PLACEHOLDER in crash.locals["note"]  # secret-shaped


def test_a_stack_from_a_running_frame_leaves_out_frames_that_are_not_the_program_s() -> None:
    def inner() -> FrameType:
        marker = 42
        return sys._getframe() if marker else sys._getframe()

    frames = stack_of(inner(), ours, lambda v: f"<{v!r}>", Redaction.configured([], []))
    assert frames[-1].function == "inner" and frames[-1].locals == {"marker": "<42>"}
    assert all(f.file == __file__ for f in frames)
