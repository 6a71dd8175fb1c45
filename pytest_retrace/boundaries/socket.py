"""The socket layer: ``socket``, ``ssl``, name resolution, ``select``/``poll``/``epoll``/``selectors``.

The catch-all beneath http.client, urllib, requests, redis clients and the like.
Sockets stay real OS sockets on replay (options, timeouts and ``fileno`` work)
but never connect: every exchange with a peer is answered from the recording.
Readiness results are recorded as positions among the watched objects, since file
descriptor numbers differ between the two runs. TLS is recorded above the encryption,
at the ``SSLSocket`` API: plaintext in, plaintext out, handshake results as values.
"""

from __future__ import annotations

import functools
import select
import selectors
import socket as _socket
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..engine import payload

if TYPE_CHECKING:
    from ..engine import Engine
    from ..patch import Patcher
    from . import Options

_REAL_SOCKET = _socket.socket
_RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "gethostname", "getnameinfo")


def make_socket(engine: Engine) -> type:
    call = engine.call
    passes = engine.passes
    base = _REAL_SOCKET

    class socket(base):  # type: ignore[misc, valid-type]
        """Recorded ``socket.socket``."""

        __slots__ = ()

        def connect(self, address: Any) -> None:
            call("socket.connect", (address,), base.connect, self, address)

        def connect_ex(self, address: Any) -> int:
            return call("socket.connect_ex", (address,), base.connect_ex, self, address)

        def bind(self, address: Any) -> None:
            call("socket.bind", (address,), base.bind, self, address)

        def listen(self, *backlog: int) -> None:
            call("socket.listen", backlog, base.listen, self, *backlog)

        def accept(self) -> tuple[Any, Any]:
            def real_accept() -> list[Any]:
                conn, address = base.accept(self)
                holder.append(conn)
                return [conn.family, conn.type, conn.proto, address]

            holder: list[Any] = []
            family, type_, proto, address = call("socket.accept", None, real_accept)
            conn = holder[0] if holder else socket(family, type_, proto)
            return conn, address

        # Sends check first: their call key holds the payload, or its digest.
        def send(self, data: Any, flags: int = 0) -> int:
            if passes():
                return base.send(self, data, flags)  # type: ignore[no-any-return]
            return call("socket.send", (payload(data), flags), base.send, self, data, flags)

        def sendall(self, data: Any, flags: int = 0) -> None:
            if passes():
                return base.sendall(self, data, flags)  # type: ignore[no-any-return]
            call("socket.sendall", (payload(data), flags), base.sendall, self, data, flags)

        def sendto(self, data: Any, *rest: Any) -> int:
            if passes():
                return base.sendto(self, data, *rest)  # type: ignore[no-any-return]
            return call("socket.sendto", (payload(data), *rest), base.sendto, self, data, *rest)

        def recv(self, bufsize: int, flags: int = 0) -> bytes:
            return call("socket.recv", (bufsize, flags), base.recv, self, bufsize, flags)

        def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
            return tuple(call("socket.recvfrom", (bufsize, flags), base.recvfrom, self, bufsize, flags))

        def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
            size = nbytes or len(buffer)
            data = call("socket.recv", (size, flags), base.recv, self, size, flags)
            buffer[: len(data)] = data
            return len(data)

        def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
            size = nbytes or len(buffer)
            data, address = call("socket.recvfrom", (size, flags), base.recvfrom, self, size, flags)
            buffer[: len(data)] = data
            return len(data), address

        def shutdown(self, how: int) -> None:
            call("socket.shutdown", (how,), base.shutdown, self, how)

        def getpeername(self) -> Any:
            return call("socket.getpeername", None, base.getpeername, self)

        def getsockname(self) -> Any:
            return call("socket.getsockname", None, base.getsockname, self)

    socket.__module__ = "socket"
    return socket


@functools.cache
def tls_socket_class() -> type:
    """The TLS proxy class, built on first use: wrapt's import is costly and most programs never
    open a TLS connection, so every replay would pay for it."""
    import wrapt

    class TLSSocket(wrapt.ObjectProxy):  # type: ignore[misc]
        """What ``SSLContext.wrap_socket`` returns: a proxy of the real ``SSLSocket`` while recording,
        of the plain (never connected) socket on replay; either way every TLS-level call is an event."""

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
            return self._self_tls("pending", None)

        def unwrap(self) -> Any:
            self._self_tls("unwrap", None)
            return self.__wrapped__

        def send(self, data: Any, flags: int = 0) -> int:
            return self._self_tls("send", (payload(data), flags), data, flags)

        def sendall(self, data: Any, flags: int = 0) -> None:
            self._self_tls("sendall", (payload(data), flags), data, flags)

        def write(self, data: Any) -> int:
            return self._self_tls("write", (payload(data),), data)

        def recv(self, bufsize: int = 1024, flags: int = 0) -> bytes:
            return self._self_tls("recv", (bufsize, flags), bufsize, flags)

        def read(self, size: int = 1024) -> bytes:
            return self._self_tls("recv", (size, 0), size)

        def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
            size = nbytes or len(buffer)
            data = self._self_tls("recv", (size, flags), size, flags)
            buffer[: len(data)] = data
            return len(data)

        # The buffered file layer calls back into this proxy's recv_into, not the real socket's.
        makefile = _REAL_SOCKET.makefile

    return TLSSocket


class _Poller:
    """A recorded poll/epoll object: the real one watches, readiness is answered by position.

    File objects are numbered in registration order; a poll result is recorded as
    (position, events) pairs and mapped back to this run's descriptors.
    """

    default_mask = 0
    _call: Any = None  # the engine's call and passes, set on the subclass
    _passes: Any = None

    def __init__(self, real: Any) -> None:
        self._real = real
        self._fds: list[int] = []

    def register(self, fd: Any, eventmask: int | None = None) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        if fd not in self._fds:
            self._fds.append(fd)
        self._real.register(fd, self.default_mask if eventmask is None else eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        self._real.modify(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        if fd in self._fds:
            self._fds.remove(fd)
        self._real.unregister(fd)

    def _poll(self, name: str, args: tuple[Any, ...]) -> list[tuple[int, int]]:
        fds, real = self._fds, self._real
        if self._passes():
            return real.poll(*args)  # type: ignore[no-any-return]

        def positions() -> list[list[int]]:
            return [[fds.index(fd), events] for fd, events in real.poll(*args)]

        return [(fds[i], events) for i, events in self._call(name, (len(fds), *args), positions)]


def make_pollers(engine: Engine) -> tuple[Any, Any]:
    real_poll = select.poll
    real_epoll = getattr(select, "epoll", None)

    class Poll(_Poller):
        """Recorded ``select.poll()``."""

        default_mask = select.POLLIN | select.POLLPRI | select.POLLOUT
        _call = staticmethod(engine.call)
        _passes = staticmethod(engine.passes)

        def __init__(self) -> None:
            super().__init__(real_poll())

        def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
            return self._poll("select.poll", (timeout,))

    class Epoll(_Poller):
        """Recorded ``select.epoll()`` (what ``selectors.DefaultSelector`` uses on Linux)."""

        default_mask = select.EPOLLIN | select.EPOLLPRI | select.EPOLLOUT
        _call = staticmethod(engine.call)
        _passes = staticmethod(engine.passes)

        def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
            super().__init__(real_epoll(sizehint, flags))  # type: ignore[misc]

        def poll(self, timeout: float | None = None, maxevents: int = -1) -> list[tuple[int, int]]:
            return self._poll("select.epoll", (timeout, maxevents))

        def fileno(self) -> int:
            return self._real.fileno()

        def close(self) -> None:
            self._real.close()

        @property
        def closed(self) -> bool:
            return self._real.closed

        def __enter__(self) -> Epoll:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return Poll, Epoll if real_epoll is not None else None


def _install_tls(engine: Engine, patcher: Patcher, ssl: ModuleType) -> None:
    real_wrap = ssl.SSLContext.wrap_socket

    def wrap_socket(
        self: Any, sock: Any, server_side: bool = False, do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True, server_hostname: str | None = None, session: Any = None,
    ) -> Any:
        wrapped: list[Any] = []

        def handshake() -> Any:
            tls_sock = real_wrap(self, sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                 server_hostname, session)
            wrapped.append(tls_sock)
            return tls_sock.version()

        engine.call("ssl.wrap_socket", (server_hostname, server_side), handshake)
        return tls_socket_class()(wrapped[0] if wrapped else sock, engine)

    wrap_socket.__doc__ = real_wrap.__doc__
    patcher.set(ssl.SSLContext, "wrap_socket", wrap_socket)


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    patcher.set(_socket, "socket", make_socket(engine))
    patcher.when_imported("ssl", lambda ssl: _install_tls(engine, patcher, ssl))
    for name in _RESOLVERS:
        real = getattr(_socket, name)

        def resolver(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            key = args + tuple(sorted(kwargs.items())) if kwargs else args
            return engine.call(f"socket.{_name}", key, _real, *args, **kwargs)

        resolver.__name__, resolver.__doc__ = name, real.__doc__
        patcher.set(_socket, name, resolver)

    real_select = select.select

    def select_(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> tuple[list, list, list]:
        lists = (list(rlist), list(wlist), list(xlist))

        def run() -> list[list[int]]:
            ready = real_select(*lists, timeout)
            return [[i for i, o in enumerate(watched) if o in got] for watched, got in zip(lists, ready, strict=True)]

        positions = engine.call("select.select", (len(lists[0]), len(lists[1]), len(lists[2]), timeout), run)
        return tuple([watched[i] for i in found] for watched, found in zip(lists, positions, strict=True))  # type: ignore[return-value]

    select_.__name__, select_.__doc__ = "select", real_select.__doc__
    patcher.set(select, "select", select_)
    poll, epoll = make_pollers(engine)
    patcher.set(select, "poll", poll)
    patcher.set(selectors.PollSelector, "_selector_cls", poll)
    if epoll is not None:
        patcher.set(select, "epoll", epoll)
        patcher.set(selectors.EpollSelector, "_selector_cls", epoll)
