"""TLS at the ``SSLSocket`` API: what ``SSLContext.wrap_socket`` returns while recording and replaying.

Imported only when the program opens its first TLS connection (see ``socket.py``): wrapt's import is
costly, and most programs that import ``ssl`` (``http.client`` does) never open one.
"""

from __future__ import annotations

import socket
from typing import Any

import wrapt

from ..engine.base import Engine, payload


class TLSSocket(wrapt.ObjectProxy):  # type: ignore[misc]
    """A proxy of the real ``SSLSocket`` while recording, of the plain (never connected) socket on replay;
    either way every TLS-level call is an event."""

    def __init__(self, wrapped: Any, engine: Engine) -> None:
        super().__init__(wrapped)
        self._self_call = engine.call

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

    def send(self, data: Any, flags: int = 0) -> int:
        return self._self_tls("send", (payload(data), flags), data, flags)  # type: ignore[no-any-return]

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._self_tls("sendall", (payload(data), flags), data, flags)

    def write(self, data: Any) -> int:
        return self._self_tls("write", (payload(data),), data)  # type: ignore[no-any-return]

    def recv(self, bufsize: int = 1024, flags: int = 0) -> bytes:
        return self._self_tls("recv", (bufsize, flags), bufsize, flags)  # type: ignore[no-any-return]

    def read(self, size: int = 1024) -> bytes:
        return self._self_tls("recv", (size, 0), size)  # type: ignore[no-any-return]

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        size = nbytes or len(buffer)
        data = self._self_tls("recv", (size, flags), size, flags)
        buffer[: len(data)] = data
        return len(data)

    # The buffered file layer calls back into this proxy's recv_into, not the real socket's. (The function
    # is socket.socket's own, whether or not the recorded socket class is installed now.)
    makefile = socket.socket.makefile
