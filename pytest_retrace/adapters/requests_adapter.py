"""requests, at ``HTTPAdapter.send``: one event per HTTP request.

The call key is ``"GET https://host/path?query"`` with the request headers that matter (sorted,
lower-cased; ``User-Agent`` left out as it names library versions), the body (whole when small, else a
digest) and the ``stream`` and ``timeout`` arguments, all redacted by the recording's policy (URL userinfo
and secret query parameters, secret headers, secret form and JSON fields: the same on replay, so keys
match). The result is the whole response, its ``Set-Cookie`` values, secret headers and secret
JSON fields redacted (the replayed program gets the placeholders) — status, reason, URL, headers as sent
(repeated ``Set-Cookie`` included), body, encoding, elapsed, cookies — recorded as plain values
when it arrives and rebuilt on replay, when the program asks, as a real ``requests.Response``
that a ``Session`` takes cookies from as usual; ``iter_content`` and ``iter_lines`` work on it.
(Not a codec: decoding a recording must not import requests before the program does.)
Connection errors and timeouts are recorded and raised again.

While the adapter's call runs, the socket layer beneath is not recorded (the phase gate): one
request is one event. A response is read whole when it arrives, even with ``stream=True``.
"""

from __future__ import annotations

import http.client
import io
from typing import TYPE_CHECKING, Any

from ..engine.base import payload
from ..format.codec import interned
from ..hooks.specs import hookimpl
from ..redaction import DEFAULT, PLACEHOLDER, Redaction

if TYPE_CHECKING:
    from types import ModuleType

    from ..engine.base import Engine
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

NAME = "requests.send"
UNKEYED_HEADERS = frozenset({"user-agent"})
# Headers whose values seldom come back the same: every other header's name and value is stored once in a
# recording (they come back with every request), these values in place.
CHANGING_HEADERS = frozenset({"date", "expires", "last-modified", "etag", "age", "set-cookie", "cookie",
                              "content-length", "x-request-id", "x-correlation-id", "traceparent", "authorization"})


def _stored_once(headers: list[list[Any]]) -> list[list[Any]]:
    """Headers as the recording holds them: names and unchanging values stored once (still a list of pairs)."""
    return [[interned(name), value if name.lower() in CHANGING_HEADERS else interned(value)]
            for name, value in headers]


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def call_key(request: Any, stream: bool, timeout: Any, redaction: Redaction = DEFAULT) -> tuple[Any, ...]:
    body = request.body
    if body is not None and not isinstance(body, (bytes, str)):
        body = f"<streamed {type(body).__name__}>"  # an iterator or a file: sent as it is read
    redacted = redaction.body(body, request.headers.get("Content-Type"))
    headers = []
    for name, value in sorted((k.lower(), v) for k, v in request.headers.items()):
        if name in UNKEYED_HEADERS:
            continue
        if redacted is not body and name == "content-length":
            value = str(len(redacted))  # of the body as keyed: the same whatever length the secrets had
        headers.append([name, redaction.header(name, _text(value)) if redaction.replace_secrets else value])
    body = redacted
    return (f"{request.method} {redaction.url(request.url)}", _stored_once(headers),
            None if body is None else payload(body),
            {"stream": bool(stream), "timeout": timeout})


def encode_response(response: Any, redaction: Redaction = DEFAULT) -> dict[str, Any]:
    original = getattr(response.raw, "_original_response", None)
    raw_headers = list(original.msg.items()) if original is not None else list(response.headers.items())
    replacing = redaction.replace_secrets
    return {
        "status": response.status_code,
        "reason": response.reason,
        "url": redaction.url(response.url),
        "headers": _stored_once(redaction.headers([list(pair) for pair in raw_headers])),
        "body": redaction.body(response.content, response.headers.get("Content-Type")),
        "encoding": response.encoding,
        "elapsed": response.elapsed,
        "history": [encode_response(r, redaction) for r in response.history],
        "cookies": [[c.name, PLACEHOLDER if replacing else c.value, c.domain, c.path, c.secure, c.expires]
                    for c in response.cookies],
    }


class _ReplayedRaw(io.BytesIO):
    """Stands in for urllib3's response: the body, and the headers where cookie handling looks for them."""

    def __init__(self, body: bytes, headers: list[list[str]], status: int, reason: str | None) -> None:
        super().__init__(body)
        message = http.client.HTTPMessage()
        for name, value in headers:
            message[name] = value  # appends: repeated headers (Set-Cookie) stay repeated
        self.headers = message
        self.status = status
        self.reason = reason
        self._original_response = self  # requests' cookie extraction reads ``_original_response.msg``
        self.msg = message

    def stream(self, amount: int = 2**16, decode_content: bool | None = None) -> Any:
        while chunk := self.read(amount):
            yield chunk

    def release_conn(self) -> None:
        pass


def decode_response(state: dict[str, Any]) -> Any:
    import requests
    from requests.cookies import RequestsCookieJar
    from requests.structures import CaseInsensitiveDict

    response = requests.Response()
    response.status_code = state["status"]
    response.reason = state["reason"]
    response.url = state["url"]
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for name, value in state["headers"]:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response.headers = headers
    response._content = state["body"]
    response._content_consumed = True
    response.raw = _ReplayedRaw(state["body"], state["headers"], state["status"], state["reason"])
    response.encoding = state["encoding"]
    response.elapsed = state["elapsed"]
    response.history = [decode_response(h) for h in state["history"]]
    jar = RequestsCookieJar()
    for name, value, domain, path, secure, expires in state["cookies"]:
        jar.set(name, value, domain=domain, path=path, secure=secure, expires=expires)
    response.cookies = jar
    return response


@hookimpl
def retrace_install_boundaries(engine: Engine, patcher: Patcher, options: Options) -> None:
    def patch(adapters: ModuleType) -> None:
        real_send = adapters.HTTPAdapter.send

        def send(self: Any, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
                 cert: Any = None, proxies: Any = None) -> Any:
            received: list[Any] = []

            def send_and_describe() -> dict[str, Any]:
                received.append(real_send(self, request, stream, timeout, verify, cert, proxies))
                return encode_response(received[0], redaction)  # the event's result: the response as plain values

            redaction = engine.redaction
            state = engine.call(NAME, call_key(request, stream, timeout, redaction), send_and_describe)
            response = received[0] if received else decode_response(state)  # recording, or replaying
            response.request = request
            response.connection = self
            return response

        patcher.set(adapters.HTTPAdapter, "send", send)

    patcher.when_imported("requests.adapters", patch)
