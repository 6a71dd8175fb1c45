"""TLS at the ``SSLSocket`` API: what ``SSLContext.wrap_socket`` returns while recording and replaying.

Imported only when the program opens its first TLS connection (see ``socket.py``): wrapt's import is
costly, and most programs that import ``ssl`` (``http.client`` does) never open one.
"""

from __future__ import annotations

import socket
from typing import Any

import wrapt

from ..engine.base import Engine
from .payloads import received, sent


class TLSSocket(wrapt.ObjectProxy):  # type: ignore[misc]
    """A proxy of the real ``SSLSocket`` while recording, of the plain (never connected) socket on replay;
    either way every TLS-level call is an event."""

    def __init__(self, wrapped: Any, engine: Engine) -> None:
        super().__init__(wrapped)
        self._self_call = engine.call
        self._self_engine = engine

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        import ssl

        return ssl.SSLSocket

    def _self_tls(self, op: str, args: Any, *real_args: Any) -> Any:
        wrapped = self.__wrapped__
        return self._self_call(f"ssl.{op}", args, lambda: getattr(wrapped, op)(*real_args))

    def do_handshake(self, *block: Any) -> None:
        self._self_tls("do_handshake", None, *block)

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._self_tls("getpeercert", (binary_form,), binary_form)

    def cipher(self) -> Any:
        return self._self_tls("cipher", None)

    def version(self) -> Any:
        return self._self_tls("version", None)

    def selected_alpn_protocol(self) -> Any:
        return self._self_tls("selected_alpn_protocol", None)

    def compression(self) -> Any:
        return self._self_tls("compression", None)

    def pending(self) -> int:
        return self._self_tls("pending", None)  # type: ignore[no-any-return]

    def unwrap(self) -> Any:
        self._self_tls("unwrap", None)
        return self.__wrapped__

    # Payloads that are HTTP are redacted as on plain sockets (see socket.py).
    def send(self, data: Any, flags: int = 0) -> int:
        return self._self_tls("send", (sent(self._self_engine, data), flags), data, flags)  # type: ignore[no-any-return]

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._self_tls("sendall", (sent(self._self_engine, data), flags), data, flags)

    def write(self, data: Any) -> int:
        return self._self_tls("write", (sent(self._self_engine, data),), data)  # type: ignore[no-any-return]

    def _self_recv(self, size: int, *real_args: Any) -> bytes:
        wrapped = self.__wrapped__
        run, holder = received(self._self_engine, size, lambda: wrapped.recv(*real_args))
        data = self._self_call("ssl.recv", (size, real_args[1] if len(real_args) > 1 else 0), run)
        return holder[0] if holder else data  # type: ignore[no-any-return]

    def recv(self, bufsize: int = 1024, flags: int = 0) -> bytes:
        return self._self_recv(bufsize, bufsize, flags)

    def read(self, size: int = 1024) -> bytes:
        return self._self_recv(size, size)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        size = nbytes or len(buffer)
        data = self._self_recv(size, size, flags)
        buffer[: len(data)] = data
        return len(data)

    # The buffered file layer calls back into this proxy's recv_into, not the real socket's. (The function
    # is socket.socket's own, whether or not the recorded socket class is installed now.)
    makefile = socket.socket.makefile
