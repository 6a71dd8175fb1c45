"""Socket payloads as recordings hold them: those that are HTTP redacted by the recording's policy.

Shared by the plain socket layer (``socket.py``) and TLS (``tls.py``): a send that starts with a request
line has its request target and secret header lines redacted in its call key; a receive that starts with a
status (or request) line is recorded redacted, while the program gets what really came.
"""

from __future__ import annotations

from typing import Any

from ..engine.base import Engine, payload


def _maybe_http(data: Any) -> bool:
    """Cheap: whether a payload may start an HTTP request or response (:meth:`Redaction.http_head` decides)."""
    first = bytes(data[:8])
    return first.startswith(b"HTTP/1.") or (len(first) > 3 and first[:3].isupper() and first[:3].isalpha())


def sent(engine: Engine, data: Any) -> Any:
    """A sent payload as its call key holds it: redacted when it is HTTP, whole when small, else a Digest
    (whose preview is of the redacted bytes)."""
    if engine.redaction.replace_secrets and _maybe_http(data):
        data = engine.redaction.http_head(bytes(data))
    return payload(data)


def received(engine: Engine, size: int, receive: Any) -> Any:
    """``receive()`` for real, its data recorded redacted when it is HTTP: a function for ``engine.call`` and
    a holder that gets the real data (empty on replay, where the recorded data is the answer). A redacted
    receive longer than the ``size`` asked for (a short secret) keeps its length with ``*`` instead."""
    holder: list[Any] = []

    def run() -> Any:
        data = receive()
        holder.append(data)
        redaction = engine.redaction
        if not redaction.replace_secrets or not _maybe_http(data if isinstance(data, bytes) else data[0]):
            return data
        raw = data if isinstance(data, bytes) else data[0]
        redacted = redaction.http_head(raw)
        if len(redacted) > size:
            redacted = _masked(raw, redacted)
        return redacted if isinstance(data, bytes) else [redacted, data[1]]

    return run, holder


def _masked(raw: bytes, redacted: bytes) -> bytes:
    """``raw`` with the value of every head line that redaction changed as ``*`` (its length kept)."""
    head, blank, rest = raw.partition(b"\r\n\r\n")
    lines, changed = head.split(b"\r\n"), redacted.split(b"\r\n\r\n")[0].split(b"\r\n")
    for i, (line, other) in enumerate(zip(lines, changed, strict=False)):
        if line != other:
            name, colon, value = line.partition(b":" if i else b" ")
            lines[i] = name + colon + b"*" * len(value)
    return b"\r\n".join(lines) + blank + rest
