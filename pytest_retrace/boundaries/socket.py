"""The socket layer: ``socket``, ``ssl``, name resolution, ``select``/``poll``/``epoll``/``selectors``.

The catch-all beneath http.client, urllib, requests, redis clients and the like.
Sockets stay real OS sockets on replay (options, timeouts and ``fileno`` work)
but never connect: every exchange with a peer is answered from the recording.
Readiness results are recorded as positions among the watched objects, since file
descriptor numbers differ between the two runs. TLS is recorded above the encryption,
at the ``SSLSocket`` API: plaintext in, plaintext out, handshake results as values.

Payloads that are HTTP (a send that starts with a request line, a receive that starts with a status line)
are redacted by the recording's policy before they become a call key or a recorded result: the request
target's secret query parameters and secret header lines (``Authorization``, ``Cookie``, ``Set-Cookie`` …).
A replay redacts what the program sends the same way, so the keys still match; the program gets the
recorded, redacted responses. A header line split across two receives is not seen as one.
"""

from __future__ import annotations

import select
import selectors
import socket as _socket
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..engine.base import Engine, payload, with_engine
from ..engine.state import internal
from .payloads import received, sent

if TYPE_CHECKING:
    from ..engine.patch import Patcher
    from ..hooks.specs import Options

_REAL_SOCKET = _socket.socket
_REAL_POLL = select.poll
_REAL_EPOLL = getattr(select, "epoll", None)  # Linux only
_RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "gethostname", "getnameinfo")


class RecordedSocket(_REAL_SOCKET):  # type: ignore[misc, valid-type]
    """Recorded ``socket.socket``, installed through :func:`~pytest_retrace.engine.base.with_engine`."""

    __slots__ = ()
    _retrace_engine: Engine

    def connect(self, address: Any) -> None:
        self._retrace_engine.call("socket.connect", (address,), _REAL_SOCKET.connect, self, address)

    def connect_ex(self, address: Any) -> int:
        return self._retrace_engine.call(  # type: ignore[no-any-return]
            "socket.connect_ex", (address,), _REAL_SOCKET.connect_ex, self, address)

    def bind(self, address: Any) -> None:
        self._retrace_engine.call("socket.bind", (address,), _REAL_SOCKET.bind, self, address)

    def listen(self, *backlog: int) -> None:
        self._retrace_engine.call("socket.listen", backlog, _REAL_SOCKET.listen, self, *backlog)

    def accept(self) -> tuple[Any, Any]:
        def real_accept() -> list[Any]:
            conn, address = _REAL_SOCKET.accept(self)
            holder.append(conn)
            return [conn.family, conn.type, conn.proto, address]

        holder: list[Any] = []
        family, type_, proto, address = self._retrace_engine.call("socket.accept", None, real_accept)
        conn = holder[0] if holder else type(self)(family, type_, proto)
        return conn, address

    # Sends check first: their call key holds the payload, or its digest.
    def send(self, data: Any, flags: int = 0) -> int:
        engine = self._retrace_engine
        if engine.passes():
            return _REAL_SOCKET.send(self, data, flags)  # type: ignore[no-any-return]
        return engine.call("socket.send", (sent(engine, data), flags), _REAL_SOCKET.send, self, data, flags)  # type: ignore[no-any-return]

    def sendall(self, data: Any, flags: int = 0) -> None:
        engine = self._retrace_engine
        if engine.passes():
            return _REAL_SOCKET.sendall(self, data, flags)  # type: ignore[no-any-return]
        engine.call("socket.sendall", (sent(engine, data), flags), _REAL_SOCKET.sendall, self, data, flags)

    def sendto(self, data: Any, *rest: Any) -> int:
        engine = self._retrace_engine
        if engine.passes():
            return _REAL_SOCKET.sendto(self, data, *rest)  # type: ignore[no-any-return]
        return engine.call("socket.sendto", (payload(data), *rest), _REAL_SOCKET.sendto, self, data, *rest)  # type: ignore[no-any-return]

    def _recv(self, size: int, flags: int) -> bytes:
        engine = self._retrace_engine
        if engine.passes():  # a server's own reads, outside every recording: no redaction to pay for
            return _REAL_SOCKET.recv(self, size, flags)  # type: ignore[no-any-return]
        run, holder = received(engine, size, lambda: _REAL_SOCKET.recv(self, size, flags))
        data = engine.call("socket.recv", (size, flags), run)
        return holder[0] if holder else data  # type: ignore[no-any-return]

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._recv(bufsize, flags)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return tuple(self._retrace_engine.call(  # type: ignore[return-value]
            "socket.recvfrom", (bufsize, flags), _REAL_SOCKET.recvfrom, self, bufsize, flags))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self._retrace_engine.passes():
            # Straight into the caller's buffer: going through recv would allocate a bytes object as large as the
            # buffer (a server's read buffer: 64 KiB and more) on every read, which the heap grows and trims for.
            return _REAL_SOCKET.recv_into(self, buffer, nbytes, flags)  # type: ignore[no-any-return]
        size = nbytes or len(buffer)
        data = self._recv(size, flags)
        buffer[: len(data)] = data
        return len(data)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        if self._retrace_engine.passes():  # as recv_into
            return _REAL_SOCKET.recvfrom_into(self, buffer, nbytes, flags)  # type: ignore[no-any-return]
        size = nbytes or len(buffer)
        data, address = self._retrace_engine.call(
            "socket.recvfrom", (size, flags), _REAL_SOCKET.recvfrom, self, size, flags)
        buffer[: len(data)] = data
        return len(data), address

    def shutdown(self, how: int) -> None:
        self._retrace_engine.call("socket.shutdown", (how,), _REAL_SOCKET.shutdown, self, how)

    def getpeername(self) -> Any:
        return self._retrace_engine.call("socket.getpeername", None, _REAL_SOCKET.getpeername, self)

    def getsockname(self) -> Any:
        return self._retrace_engine.call("socket.getsockname", None, _REAL_SOCKET.getsockname, self)


class _Poller:
    """A recorded poll/epoll object: the real one watches, readiness is answered by position.

    File objects are numbered in registration order; a poll result is recorded as
    (position, events) pairs and mapped back to this run's descriptors.
    """

    default_mask = 0
    _retrace_engine: Engine

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
        fds, real, engine = self._fds, self._real, self._retrace_engine
        if engine.passes():
            return real.poll(*args)  # type: ignore[no-any-return]

        def positions() -> list[list[int]]:
            return [[fds.index(fd), events] for fd, events in real.poll(*args)]

        return [(fds[i], events) for i, events in engine.call(name, (len(fds), *args), positions)]


class RecordedPoll(_Poller):
    """Recorded ``select.poll()``."""

    default_mask = select.POLLIN | select.POLLPRI | select.POLLOUT

    def __init__(self) -> None:
        super().__init__(_REAL_POLL())

    def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
        return self._poll("select.poll", (timeout,))


class RecordedEpoll(_Poller):
    """Recorded ``select.epoll()`` (what ``selectors.DefaultSelector`` uses on Linux)."""

    default_mask = getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLPRI", 0) | getattr(select, "EPOLLOUT", 0)

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        super().__init__(_REAL_EPOLL(sizehint, flags))  # type: ignore[misc]

    def poll(self, timeout: float | None = None, maxevents: int = -1) -> list[tuple[int, int]]:
        return self._poll("select.epoll", (timeout, maxevents))

    def fileno(self) -> int:
        return self._real.fileno()  # type: ignore[no-any-return]

    def close(self) -> None:
        self._real.close()

    @property
    def closed(self) -> bool:
        return self._real.closed  # type: ignore[no-any-return]

    def __enter__(self) -> RecordedEpoll:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        with internal:  # our own import, never the program's: here, as wrapt's is costly and most never wrap
            from .tls import TLSSocket

        return TLSSocket(wrapped[0] if wrapped else sock, engine)

    patcher.set(ssl.SSLContext, "wrap_socket", wrap_socket)


def install(engine: Engine, patcher: Patcher, options: Options) -> None:
    patcher.set(_socket, "socket", with_engine(RecordedSocket, engine, name="socket", module="socket"))
    patcher.when_imported("ssl", lambda ssl: _install_tls(engine, patcher, ssl))
    for name in _RESOLVERS:
        real = getattr(_socket, name)

        def resolver(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            key = args + tuple(sorted(kwargs.items())) if kwargs else args
            return engine.call(f"socket.{_name}", key, _real, *args, **kwargs)

        patcher.set(_socket, name, resolver)

    real_select = select.select

    def select_(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> tuple[list, list, list]:
        lists = (list(rlist), list(wlist), list(xlist))

        def run() -> list[list[int]]:
            ready = real_select(*lists, timeout)
            return [[i for i, o in enumerate(watched) if o in got] for watched, got in zip(lists, ready, strict=True)]

        positions = engine.call("select.select", (len(lists[0]), len(lists[1]), len(lists[2]), timeout), run)
        return tuple([watched[i] for i in found] for watched, found in zip(lists, positions, strict=True))  # type: ignore[return-value]

    patcher.set(select, "select", select_)
    poll = with_engine(RecordedPoll, engine, name="poll", module="select")
    patcher.set(select, "poll", poll)
    patcher.set(selectors.PollSelector, "_selector_cls", poll)
    if _REAL_EPOLL is not None:
        epoll = with_engine(RecordedEpoll, engine, name="epoll", module="select")
        patcher.set(select, "epoll", epoll)
        patcher.set(selectors.EpollSelector, "_selector_cls", epoll)
