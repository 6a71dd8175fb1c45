"""Per-request recordings: a WSGI middleware writing one recording per request.

    app.wsgi_app = pytest_retrace.wsgi.RecordingMiddleware(app.wsgi_app, "recordings", keep="errors",
                                                           entry="myservice:app")
    # or, for Flask: pytest_retrace.wsgi.record_flask(app, "recordings", keep="errors")

Each recorded request holds the request (the WSGI environ's plain values and the body), every
external call the app makes while answering it on the request's thread (and threads it starts),
and as outcome the response (status, headers and body, compared by digest) or the uncaught
exception. The response passes through as the app makes it: a streamed body goes to the
server chunk by chunk, and the recording ends when the server closes it.
``pytest --retrace-recordings`` replays one by calling ``entry`` (the WSGI app, as
``module:attribute``) with the recorded request in a clean process (see the runner's fork
server). The recording machinery is that of per-call recordings (``inprocess.py``): boundaries
installed once, events in memory, only kept recordings written.

``keep``: ``"all"``, ``"errors"`` (an uncaught exception or a 5xx status), or a share of requests
(a float). ``max_files``/``max_bytes`` rotate. Requests served at the same time on several threads
are recorded each into its own recording. Recording failures are logged on the ``pytest_retrace``
logger and never break the request.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..engine.state import internal
from ..format import codec
from ..format.codec import blake2b
from ..format.tape import Kind
from ..redaction import Redaction
from .entry import Project, importable_name, module_root, resolve, use_project_of
from .inprocess import (
    InProcessRecording,
    Keep,
    begin,
    checked_tags,
    declare_code,
    destination,
    install_early,
    keeps,
    log,
    rewarm,
    sealing_policy,
    warm_state,
)
from .outcome import ExceptionInfo, Outcome, Stream

# What of the environ a request recording keeps: the CGI-style keys and the HTTP headers (server
# objects such as wsgi.input, wsgi.errors and file wrappers are rebuilt on replay).
_SERVER_OBJECTS = frozenset({"wsgi.input", "wsgi.errors", "wsgi.file_wrapper"})
_SERVER_PREFIXES = ("werkzeug.", "gunicorn.", "uwsgi.")


def _plain_environ(environ: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in environ.items()
            if k not in _SERVER_OBJECTS and not k.startswith(_SERVER_PREFIXES)
            and isinstance(v, (str, int, float, bool, tuple, type(None)))}


def _redacted_request(redaction: Redaction, environ: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
    """The request as its recording holds it, and as the app gets it on replay: headers (cookies keep their
    names), the query string, the URI and the body's secrets redacted, ``CONTENT_LENGTH`` kept true."""
    if not redaction.replace_secrets:
        return environ, body
    redacted: dict[str, Any] = {}
    for key, value in environ.items():
        if not isinstance(value, str):
            redacted[key] = value
        elif key.startswith("HTTP_"):
            redacted[key] = redaction.header(key[5:].replace("_", "-").lower(), value)
        elif key == "QUERY_STRING":
            redacted[key] = redaction.query(value)
        elif key in ("REQUEST_URI", "RAW_URI"):
            redacted[key] = redaction.url(value)
        else:
            redacted[key] = redaction.value(key, value)
    new_body = redaction.body(body, environ.get("CONTENT_TYPE"))
    if new_body is not body:
        redacted["CONTENT_LENGTH"] = str(len(new_body))
    return redacted, new_body


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body: CONTENT_LENGTH bytes, or, for a chunked request the server has
    de-chunked (``wsgi.input_terminated``), all there is."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > 0:
        return environ["wsgi.input"].read(length)  # type: ignore[no-any-return]
    if environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"].read()  # type: ignore[no-any-return]
    return b""


class Response:
    """A response as a request's outcome compares it, taken in as it streams by: status, headers and a digest
    of the body (a streamed body is never held whole), plus the body's first bytes for reports.

    Most recorded responses are dropped (keep="errors"): the body's chunks are only held (references, while they
    are few and small) and digested when a summary is asked for, or when they grow beyond :attr:`HELD`."""

    HEAD = 400
    HELD = 1 << 16  # bytes of chunks held undigested

    __slots__ = ("redaction", "status", "_headers", "size", "_head", "_body", "_held")

    def __init__(self, redaction: Redaction) -> None:
        self.redaction = redaction  # the head for reports holds no secret (a Set-Cookie, a token in the body)
        self.status: str | None = None
        self._headers: list[tuple[str, str]] | None = None
        self.size = 0
        self._head = b""
        self._body: Any = None  # the digest, made when first needed
        self._held: list[bytes] = []

    @property
    def headers(self) -> list[list[str]] | None:
        return None if self._headers is None else [list(h) for h in self._headers]

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        # A copy of the list (the app may change it next); WSGI's headers are tuples.
        self.status, self._headers = status, headers[:]

    def declared_size(self) -> int | None:
        """The body's size as its Content-Length header gives it, if it does."""
        for name, value in self._headers or ():
            if name.lower() == "content-length":
                value = value.strip()
                return int(value) if value.isdigit() else None
        return None

    def feed(self, chunk: bytes) -> None:
        if type(chunk) is not bytes:  # a bytearray or a view the app may change next: as it is now
            chunk = bytes(chunk)
        self._held.append(chunk)
        self.size += len(chunk)
        if self.size > self.HELD:
            self._digest_held()

    def _digest_held(self) -> None:
        if self._body is None:
            self._body = blake2b(digest_size=16)
        for chunk in self._held:
            self._body.update(chunk)
            if len(self._head) < self.HEAD:
                self._head += chunk[: self.HEAD - len(self._head)]
        self._held = []

    def summary(self) -> Stream:
        self._digest_held()
        headers = self.headers
        digest = blake2b(codec.packb([self.status, headers]), digest_size=16)
        digest.update(self._body.digest())
        shown = self.redaction.headers(headers) if headers else headers
        head = self.redaction.fragment(self._head.decode("latin-1")).encode("latin-1", "replace")
        # Whole (the body's part is HEAD bytes at most): `retrace show` reads status, headers and body back from it.
        return Stream(digest.hexdigest(), self.size, repr([self.status, shown, head]))


def replay_environ(recorded: dict[str, Any], body: bytes) -> dict[str, Any]:
    environ = dict(recorded)
    environ.update({"wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
                    "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False})
    return environ


def request_outcome(app: Callable[..., Any], environ: dict[str, Any], crash: Callable[[], BaseException | None],
                    redaction: Redaction, close: bool = True, taken: int | None = None) -> Outcome:
    """Replay: answer the request, reading the whole response (or the ``taken`` chunks the recorded server took)
    and closing it (unless the recorded server did not), and return the outcome (what
    :meth:`RecordingMiddleware._finish` recorded)."""
    response = Response(redaction)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        response.start(status, headers)
        return response.feed

    error: Exception | None = None
    try:
        body = app(environ, start_response)
        try:
            for chunk in body if taken is None else itertools.islice(body, taken):
                response.feed(chunk)
        finally:
            if close and hasattr(body, "close"):
                body.close()
    except Exception as exc:
        error = exc
    return outcome(response, error, crash)


def outcome(response: Response, error: Exception | None, crash: Callable[[], BaseException | None],
            summarize: bool = True, described: ExceptionInfo | None = None) -> Outcome:
    """A request's outcome: the exception the app raised (``described`` already, when it went on through the
    server's frames after we saw it), or else what ``crash()`` reports (a framework that turned it into a
    500 itself: Flask), and the response (unless the app raised, or not ``summarize``)."""
    crashed = error or crash()
    answered = summarize and error is None and response.status is not None
    exception = described or (ExceptionInfo.of(crashed) if crashed else None)
    return Outcome(1 if crashed else 0, exception, returned=response.summary() if answered else None)


def framework_code_folders(app: Any) -> list[str]:
    """The folders a WSGI app's framework reads code from that is no Python: a Flask app's (and its
    blueprints') template and static folders; a Django site's template folders (``TEMPLATES``' ``DIRS``) and
    ``STATICFILES_DIRS``. Files inside packages are code anyway; these matter for folders outside them (a
    one-module Flask app's ``templates/`` beside it, a Django project's top-level ``templates/``)."""
    handlers = sys.modules.get("django.core.handlers.wsgi")
    if handlers is not None and isinstance(app, handlers.WSGIHandler):
        return _django_code_folders()
    flask = sys.modules.get("flask")
    owner = getattr(app, "__self__", app)
    if flask is None or not isinstance(owner, flask.Flask):
        return []
    folders = []
    for scaffold in (owner, *owner.blueprints.values()):
        for folder in (scaffold.template_folder, scaffold.static_folder):
            if folder:
                folders.append(os.path.join(scaffold.root_path, folder))
    return folders


def _django_code_folders() -> list[str]:
    from django.conf import settings

    folders = [str(folder) for engine in getattr(settings, "TEMPLATES", []) for folder in engine.get("DIRS", [])]
    for entry in getattr(settings, "STATICFILES_DIRS", []):
        folders.append(str(entry[1] if isinstance(entry, (list, tuple)) else entry))  # (prefix, path) or path
    return folders


def stored_folders(folders: list[str], root: str | None) -> list[str]:
    """Code folders as a recording holds them: relative to the app's import root when inside it (the replaying
    checkout resolves them), else as they are."""
    if not root:
        return list(folders)
    base = os.path.join(root, "")
    return [os.path.relpath(f, root) if os.path.join(f, "").startswith(base) else f for f in folders]


def crash_catcher(app: Any) -> Callable[[], BaseException | None]:
    """What the calling thread's last request raised before the framework answered 500 itself (requests served
    at once on other threads have their own): Flask's ``got_request_exception`` for a Flask app, and Django's
    whenever Django is loaded (its signal fires only while a Django handler answers, whatever wraps it).
    Reading it clears it. For other apps nothing."""
    seen = threading.local()

    def raised() -> BaseException | None:
        exception, seen.exception = getattr(seen, "exception", None), None
        return exception

    flask = sys.modules.get("flask")
    owner = getattr(app, "__self__", app)
    caught = False
    if flask is not None and isinstance(owner, flask.Flask):
        def remember(sender: Any, exception: BaseException, **extra: Any) -> None:
            seen.exception = exception

        flask.got_request_exception.connect(remember, owner, weak=False)
        caught = True
    signals = sys.modules.get("django.core.signals")
    if signals is not None:
        def remember_django(sender: Any, **extra: Any) -> None:
            # Django sends it from inside its ``except`` block, without the exception: it is the one being handled.
            seen.exception = sys.exc_info()[1]

        signals.got_request_exception.connect(remember_django, weak=False)
        caught = True
    return raised if caught else lambda: None


class RecordingMiddleware:
    """WSGI middleware: one recording per request into ``directory``, a folder or a URL (``s3://bucket/prefix``,
    uploaded from a local spool on the writer thread; see the module's documentation)."""

    def __init__(self, app: Callable[..., Any], directory: str | Path, keep: str | float = "all",
                 entry: str | None = None, max_files: int | None = None, max_bytes: int | None = None,
                 crash: Callable[[], BaseException | None] | None = None,
                 redact: Redaction | str | list[str] | None = None, public_key: str | None = None,
                 code_folders: list[str] | None = None, tags: dict[str, str] | None = None) -> None:
        """``redact``: name patterns to redact besides the defaults, or a whole
        :class:`~pytest_retrace.redaction.Redaction` policy. ``public_key``: seal every recording for this
        project key (its text or a file holding it; default ``$RETRACE_PUBLIC_KEY``); secrets then travel
        sealed instead of redacted. ``code_folders``: folders whose files are code (read live, never events)
        besides the packages and the framework's template and static folders. ``tags``: KEY=VALUE pairs every
        recording's header holds (``{"team": "billing"}``), which pytest selects replays by."""
        self.app = app
        self.folder, self.spool = destination(directory)  # a URL: a spool folder, uploaded from
        self.keep = Keep.parse(keep, "RecordingMiddleware")
        self.entry, self.root = (entry, None) if entry else _find_entry(app)
        module = self.entry.partition(":")[0]
        if entry and module in sys.modules:
            self.root = module_root(module)
        use_project_of(lambda: {"app": self.entry, "root": self.root})
        self.max_files, self.max_bytes = max_files, max_bytes
        sealing = sealing_policy(Redaction.of(redact), public_key, "RecordingMiddleware")
        self.redaction, self.public_key = sealing.redaction, sealing.public_key
        if not sealing.records:
            self.keep = 0.0
        else:
            install_early()
        self.crash = crash or crash_catcher(app)
        self._extra_code = list(code_folders or [])
        self._code_folders: list[str] | None = None  # found at the first request: blueprints are registered by then
        self.tags = checked_tags(tags, "RecordingMiddleware")

    def _declared_code(self) -> list[str]:
        if self._code_folders is None:
            folders = [os.path.abspath(f) for f in [*framework_code_folders(self.app), *self._extra_code]]
            declare_code(folders)
            self._code_folders = stored_folders(folders, self.root)
        return self._code_folders

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not begin(self.keep):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        try:
            request = _Request(self, environ)
            recording = InProcessRecording(Kind.WSGI, request, request.stem, self.folder, self.redaction,
                                           self.public_key, carried=request.carried, spool=self.spool,
                                           tags=self.tags)
        except Exception as exc:
            log.warning("pytest-retrace: not recording this request: %s", exc)
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(request.body)
        self.crash()  # forget what a request this thread served unrecorded (sampled out) raised
        body = _RecordedBody(self, recording, Response(self.redaction), start_response)
        try:
            returned = self.app(environ, body.start_response)
            iterator = iter(returned)
        except Exception as exc:
            self._finish(recording, body._response, exc)
            raise
        recording.suspend()  # the server's own work between chunks is no part of the request
        body._returned, body._iterator = returned, iterator
        # What the app raised is known once it returns its body (Flask and Django answer 500 inside): read now
        # too, for a server that never reaches the body's end.
        body._crashed = self.crash()
        recording.holder = weakref.ref(body)
        return body

    def _finish(self, recording: InProcessRecording, response: Response, error: Exception | None,
                described: ExceptionInfo | None = None, crashed: BaseException | None = None,
                detached: bool = False) -> None:
        """End the request's recording. ``crashed``: what the app raised, as read already; ``detached``: ended away
        from the request's thread state (see :meth:`_RecordedBody.__del__`), where the crash is not read again."""
        crashed = error or crashed or (None if detached else self.crash())  # reading it clears it, kept or not
        failed = crashed is not None or str(response.status).startswith("5")
        if not keeps(self.keep, failed):
            recording.drop(detached)  # the outcome is made only for a recording that is kept
            return
        result = Outcome(1 if crashed else 0, described or (ExceptionInfo.of(crashed) if crashed else None))
        answered = error is None and response.status is not None
        recording.finish(result, True, self.max_files, self.max_bytes,
                         summary=response.summary if answered else None, detached=detached)


class _Request:
    """A request as it came, captured when its recording begins (the environ copied: the app may add to it; the
    body read whole: the app gets it anew), and what only a kept recording makes of it, on the writer thread: the
    header's entry (filtered, redacted) and the file's name."""

    __slots__ = ("middleware", "code_folders", "received", "body", "closed", "taken", "warm")

    def __init__(self, middleware: RecordingMiddleware, environ: dict[str, Any]) -> None:
        self.middleware = middleware
        self.code_folders = middleware._declared_code()
        self.body = _read_body(environ)
        self.received = dict(environ)
        self.closed = True  # the server closed the response (False: it dropped it, see _RecordedBody.__del__)
        self.taken: int | None = None  # the chunks it took, when it stopped short of the body's end (and its close)
        self.warm = warm_state()

    def __call__(self) -> dict[str, Any]:
        """The header's entry."""
        middleware = self.middleware
        environ, body = _redacted_request(middleware.redaction, _plain_environ(self.received), self.body)
        entry: dict[str, Any] = {"app": middleware.entry, "root": middleware.root,
                                 "code_folders": self.code_folders, "environ": environ, "body": body}
        if not self.closed:  # the replay does not close it either: the close-time code did not run
            entry["closed"] = False
        if self.taken is not None:  # nor does it take more chunks: the code that makes them did not run
            entry["taken"] = self.taken
        if self.warm is not None:
            entry["warm"] = self.warm
        return entry

    def stem(self) -> str:
        """The start of the recording's file name: method and path."""
        received = self.received
        # A sealed recording's name says nothing of the request: a path may hold a secret (/reset/<token>).
        path = "" if self.middleware.public_key is not None else received.get("PATH_INFO", "/").replace("/", "_")
        return f"{received.get('REQUEST_METHOD', 'GET')}{path}"[:60]

    def carried(self, redaction: Redaction) -> Redaction:
        return redaction.carried_by_request(self.received, self.body)


class _RecordedBody:
    """The app's response body, passed on to the server chunk by chunk: the app's code that runs while a
    chunk is made (a generator) or when the server closes the body (Flask's teardown) is the request's;
    the server's own work in between is not. The recording ends when the server closes the body.
    Its :meth:`start_response` is the one the app gets."""

    __slots__ = ("_middleware", "_recording", "_response", "_start_response", "_write", "_returned", "_iterator",
                 "_error", "_described", "_finished", "_complete", "_crashed", "_taken", "__weakref__")

    def __init__(self, middleware: RecordingMiddleware, recording: InProcessRecording, response: Response,
                 start_response: Callable[..., Any]) -> None:
        self._middleware, self._recording, self._response = middleware, recording, response
        self._start_response = start_response
        self._write: Callable[[bytes], Any] | None = None
        self._returned: Iterable[bytes] = ()
        self._iterator: Iterator[bytes] = iter(())
        self._error: Exception | None = None
        self._described: ExceptionInfo | None = None  # the error as it was when the app raised it
        self._finished = False
        self._complete = False  # the app's iterable ended
        self._crashed: BaseException | None = None  # what the app raised, read when it returned and at the end
        self._taken = 0  # chunks of the iterable handed to the server

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self._response.start(status, headers)
        self._write = self._start_response(status, headers, *(() if exc_info is None else (exc_info,)))
        return self.write

    def write(self, data: bytes) -> Any:
        """The legacy write() of WSGI: part of the body too."""
        self._response.feed(data)
        return self._write(data)  # type: ignore[misc]

    def __iter__(self) -> _RecordedBody:
        return self

    def __next__(self) -> bytes:
        recording = self._recording
        recording.resume()
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._complete = True
            # On the request's thread, in case close() never comes.
            self._crashed = self._middleware.crash() or self._crashed
            raise
        except Exception as exc:
            self._remember(exc)
            raise
        finally:
            recording.suspend()
        self._taken += 1
        self._response.feed(chunk)
        return chunk

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        request = self._recording.entry
        if not self._complete and self._error is None and isinstance(request, _Request):
            request.taken = self._taken  # the client hung up midway: the replay takes as many, then closes
        self._recording.resume()
        try:
            close = getattr(self._returned, "close", None)
            if close is not None:
                close()
        except Exception as exc:
            self._remember(exc)
            raise
        finally:
            self._middleware._finish(self._recording, self._response, self._error, self._described, self._crashed)

    def __del__(self) -> None:
        """The server dropped the body without closing it. werkzeug does when the client has gone (a reset while
        it drains the request's socket after the answer), and its test client with every response nobody closes,
        so a client that stops reading early would otherwise lose the request's recording."""
        self._end_unclosed("the server abandoned before its end")

    def end_at_exit(self) -> None:
        """The process exits with the body still held, unclosed (a test client's response kept in a variable):
        the recording ends now, or it would end when the interpreter frees the body, after the writer is gone."""
        self._end_unclosed("was not handed over whole when the process exited")

    def _end_unclosed(self, why: str) -> None:
        """A body handed over whole is recorded as answered (the close-time code did not run, here as in
        production, and the replay does not run it either); one abandoned midway is not, and that is logged."""
        if self._finished:
            return
        self._finished = True
        whole = self._whole()
        if not whole:
            log.warning("pytest-retrace: not recording a request whose response %s (%s)", why,
                        self._response.status or "no status yet")
            self._recording.drop(detached=True)
            return
        request = self._recording.entry
        if isinstance(request, _Request):
            request.closed = False
            if not self._complete:
                request.taken = self._taken
        self._middleware._finish(self._recording, self._response, self._error, self._described, self._crashed,
                                 detached=True)

    def _whole(self) -> bool:
        """The server has the whole body: the app's iterable ended, or what it took is all the Content-Length
        declared (werkzeug's test client stops after the first chunk of a body it is not asked to read)."""
        if self._complete:
            return True
        if self._error is not None:
            return False
        declared = self._response.declared_size()
        return declared is not None and declared == self._response.size

    def _remember(self, exc: Exception) -> None:
        """The app's first exception, described now: on its way up, the server's frames join its traceback,
        and a replay has no server."""
        if self._error is None:
            self._error, self._described = exc, ExceptionInfo.of(exc)


def _find_entry(app: Any) -> tuple[str, str | None]:
    """``module:attribute`` of a WSGI app, found where it is defined (a Flask app knows its module), and
    the sys.path root to import it from."""
    owner = getattr(app, "__self__", app)  # a bound wsgi_app method: its Flask app
    module_name = getattr(owner, "import_name", None) or getattr(owner, "__module__", None)
    module = sys.modules.get(module_name or "")
    for name, value in vars(module).items() if module is not None else ():
        if value is owner:
            # A Flask app is the WSGI app (its wsgi_app is what we wrap); a script is imported by its file name.
            return f"{importable_name(str(module_name))}:{name}", module_root(str(module_name))
    raise ValueError("RecordingMiddleware: cannot tell where this WSGI app lives; pass entry='module:attribute'")


def record_flask(flask_app: Any, directory: str | Path, keep: str | float = "all", **options: Any) -> None:
    """Record the requests of a Flask app (Flask turns an uncaught exception into a 500 response itself;
    the middleware catches it on its way, through ``got_request_exception``, so the recording holds it)."""
    flask_app.wsgi_app = RecordingMiddleware(flask_app.wsgi_app, directory, keep, crash=crash_catcher(flask_app),
                                             **options)


class DjangoSettings(NamedTuple):
    """What ``record_django`` takes from Django's settings: ``RETRACE_RECORDINGS`` (the keyword arguments of
    :func:`record_django`, ``directory`` included) and ``WSGI_APPLICATION`` (where replay finds the app)."""

    options: dict[str, Any]
    wsgi_application: str | None

    @classmethod
    def read(cls) -> DjangoSettings:
        from django.conf import settings

        options = getattr(settings, "RETRACE_RECORDINGS", None) or {}
        if not isinstance(options, dict):
            raise ValueError(f"record_django: settings.RETRACE_RECORDINGS is a {type(options).__name__}; make it a "
                             "dict of record_django's keyword arguments, e.g. {'directory': 'recordings', "
                             "'keep': 'errors'}")
        return cls(dict(options), getattr(settings, "WSGI_APPLICATION", None))


def django_entry(wsgi_application: str | None) -> tuple[str, str | None]:
    """``module:attribute`` of the site's WSGI app from ``settings.WSGI_APPLICATION`` (``mysite.wsgi.application``,
    as ``startproject`` writes it), and the sys.path root to import it from."""
    if not wsgi_application or "." not in wsgi_application:
        raise ValueError("record_django: cannot tell where the site's WSGI application lives (settings."
                         f"WSGI_APPLICATION is {wsgi_application!r}); set WSGI_APPLICATION = 'mysite.wsgi.application' "
                         "or pass entry='mysite.wsgi:application'")
    module, _, attribute = wsgi_application.rpartition(".")
    if module in sys.modules:  # record_django is usually called while that very module is imported
        return f"{module}:{attribute}", module_root(module)
    try:
        spec = importlib.util.find_spec(module)
    except ImportError:  # its package is not there either
        spec = None
    if spec is None or not spec.origin:
        raise ValueError(f"record_django: settings.WSGI_APPLICATION names {wsgi_application!r}, whose module is not "
                         "importable here; fix the setting or pass entry='module:attribute'")
    root = Path(spec.origin).resolve().parent
    for _ in range(module.count(".") + (Path(spec.origin).stem == "__init__")):
        root = root.parent
    return f"{module}:{attribute}", str(root)


def warm_django() -> None:
    """Do now what Django does lazily on the first request of a process and caches for the next ones: the URL
    conf, the default time zone, the default translation, the template engines and the folders they search.
    The first request of a process and the others then make the same calls, and a replay, which prepares the
    same way before the request, makes them too. Anything that fails is left for the request to meet."""
    from django.conf import settings
    from django.utils import timezone, translation

    steps: list[Callable[[], Any]] = [lambda: __import__("django.urls", fromlist=["get_resolver"]).get_resolver()
                                      .url_patterns]
    if settings.USE_TZ:
        steps.append(timezone.get_default_timezone)
    if settings.USE_I18N:
        steps.append(lambda: translation.gettext("pytest-retrace"))
    steps.append(_warm_templates)
    for step in steps:
        try:
            with internal:
                step()
        except Exception as exc:  # the site's own error, for its first request to raise as it would
            log.debug("pytest-retrace: Django warm-up step failed: %s", exc)


def _warm_templates() -> None:
    from django.template import TemplateDoesNotExist, engines

    for engine in engines.all():
        try:  # a name no site has: every loader looks once, and caches where it looks
            engine.get_template("pytest-retrace/warm-up/none.html")
        except TemplateDoesNotExist:
            pass


def record_django(application: Callable[..., Any], directory: str | Path | None = None,
                  keep: str | float | None = None, **options: Any) -> RecordingMiddleware:
    """Record the requests of a Django site (in its ``wsgi.py``)::

        application = record_django(get_wsgi_application(), "recordings", keep="errors")

    ``directory``, ``keep`` and the other keyword arguments of :class:`RecordingMiddleware` default to
    ``settings.RETRACE_RECORDINGS`` (a dict of them). Django turns an uncaught exception into a 500 itself; its
    ``got_request_exception`` signal hands it to the recording, whose outcome is then that exception. Replay
    imports the app named by ``settings.WSGI_APPLICATION`` (or ``entry=``) with ``DJANGO_SETTINGS_MODULE`` as
    recorded, which sets Django up before the request is answered again."""
    configured = DjangoSettings.read()
    given = {name: value for name, value in (("directory", directory), ("keep", keep)) if value is not None}
    settings_options = {**configured.options, **given, **options}
    folder = settings_options.pop("directory", None)
    if folder is None:
        raise ValueError("record_django: no folder for the recordings; pass one (record_django(application, "
                         "'recordings')) or set RETRACE_RECORDINGS = {'directory': 'recordings'} in the settings")
    if "entry" not in settings_options:
        settings_options["entry"], root = django_entry(configured.wsgi_application)
    else:
        root = None
    warm_django()
    middleware = RecordingMiddleware(application, folder, settings_options.pop("keep", "all"),
                                     crash=crash_catcher(application), **settings_options)
    if root is not None:
        middleware.root = root
    # Replay answers the request with the site's own handler, not with this middleware (``resolve`` unwraps).
    middleware.__wrapped__ = application  # type: ignore[attr-defined]
    return middleware


def _prepare_django() -> None:
    """Replay of a Django site: set Django up (importing ``wsgi.py`` usually did) and warm it as recording did."""
    if "django" not in sys.modules or not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup(set_prefix=False)
    warm_django()


# -- the replay side -------------------------------------------------------------------------------------


def prepare_replay(header: dict[str, Any], project: Project) -> Callable[..., Any]:
    """Import the recorded WSGI app (the project's own) before the replay starts (importing was no part of the
    recorded request)."""
    app = resolve(header["entry"], project)
    _prepare_django()
    return app


def rerun(app: Callable[..., Any], header: dict[str, Any]) -> Outcome:
    """Answer the recorded request again; how it ended."""
    entry = header["entry"]
    rewarm(entry)
    return request_outcome(app, replay_environ(entry["environ"], entry["body"]), crash_catcher(app),
                           Redaction.from_header(header), close=entry.get("closed", True) is not False,
                           taken=entry.get("taken"))
