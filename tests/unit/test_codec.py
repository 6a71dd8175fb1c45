"""Round trip of every value type the trace holds; a value nothing can encode is a clear error."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import os
import socket
import subprocess
import time
import uuid
import zoneinfo

import pytest

from pytest_retrace.format import codec


class Color(enum.IntEnum):
    RED = 1


VALUES = [
    None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 + 5, -(2**100), 1.5, math.inf, -math.inf,
    "text", "ünïcödé", b"\x00bytes", [1, [2, 3]], {"a": {"b": 1}}, {1: "int key"},
    (1, (2, "x")), {1, 2}, frozenset({"a"}), complex(1, -2),
    decimal.Decimal("12.340"), decimal.Decimal("-Infinity"), uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.date(2024, 2, 29), dt.time(13, 14, 15, 16), dt.time(1, 2, tzinfo=dt.timezone.utc),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")),
    dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
    Color.RED, socket.AddressFamily.AF_INET, os.stat("."), time.gmtime(0),
    codec.Digest.of(b"x" * 5000),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip_keeps_value_and_type(value: object) -> None:
    back = codec.unpackb(codec.packb(value))
    assert type(back) is type(value)
    assert back == value
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        assert back.utcoffset() == value.utcoffset() and back.tzname() == value.tzname()


def test_byte_buffers_read_back_as_bytes() -> None:
    assert codec.unpackb(codec.packb([bytearray(b"ab"), memoryview(b"cd")])) == [b"ab", b"cd"]


def test_nan_round_trips() -> None:
    assert math.isnan(codec.unpackb(codec.packb(math.nan)))


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad", 3),
        FileNotFoundError(2, "No such file or directory", "/x"),
        subprocess.CalledProcessError(1, ["false"], b"out", b"err"),
        KeyError("k"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_round_trip(exc: BaseException) -> None:
    back = codec.unpackb(codec.packb(codec.Raised(exc))).exception
    assert type(back) is type(exc) and str(back) == str(exc) and back.args == exc.args
    if isinstance(exc, OSError):
        assert (back.errno, back.filename) == (exc.errno, exc.filename)


def test_exception_of_unknown_type_becomes_recorded_error() -> None:
    payload = codec.packb(["nowhere.module:Gone", codec.packb(("x",)), "x", {}])
    deferred = codec.ext_hook(codec.EXT_EXCEPTION, payload)
    assert isinstance(deferred, codec.Deferred) and "nowhere.module:Gone" in repr(deferred)
    back = codec.settled(deferred, final=True)
    assert isinstance(back, codec.RecordedError) and "nowhere.module.Gone: x" in str(back)


def test_unencodable_value_names_type_and_boundary() -> None:
    with pytest.raises(codec.UnencodableValue) as info:
        codec.packb(object())
    err = codec.UnencodableValue(object(), "my.boundary")
    assert "builtins.object" in str(err) and "'my.boundary'" in str(err) and "register a codec" in str(err)
    assert info.value.value_type == "builtins.object"


def test_registered_codec() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    codec.register_codec("test.money", Money, lambda m: m.cents, Money)
    back = codec.unpackb(codec.packb([Money(250)]))
    assert isinstance(back[0], Money) and back[0].cents == 250


def test_unknown_ext_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="newer pytest-retrace"):
        codec.ext_hook(99, b"")
