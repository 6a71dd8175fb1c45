"""Per-request recordings (DESIGN §3): a WSGI middleware writing one recording per request.

    app.wsgi_app = pytest_retrace.wsgi.RecordingMiddleware(app.wsgi_app, "recordings", keep="errors",
                                                           entry="myservice:app")
    # or, for Flask: pytest_retrace.wsgi.record_flask(app, "recordings", keep="errors")

Each recorded request holds the request (the WSGI environ's plain values and the body), every
external call the app makes while answering it on the request's thread (and threads it starts),
and as outcome the response (status, headers and body, compared by digest) or the uncaught
exception. ``pytest --retrace-recordings`` replays one by calling ``entry`` (the WSGI app, as
``module:attribute``) with the recorded request in a clean process (``forkserver.py``). The
recording machinery is that of per-call recordings (``calls.py``): boundaries installed once,
events in memory, only kept recordings written.

``keep``: ``"all"``, ``"errors"`` (an uncaught exception or a 5xx status), or a share of requests
(a float). ``max_files``/``max_bytes`` rotate. Requests served at the same time on several threads
are recorded each into its own recording. Recording failures are logged on the ``pytest_retrace``
logger and never break the request.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import calls

# What of the environ a request recording keeps: the CGI-style keys and the HTTP headers (server
# objects such as wsgi.input, wsgi.errors and file wrappers are rebuilt on replay).
_SERVER_OBJECTS = frozenset({"wsgi.input", "wsgi.errors", "wsgi.file_wrapper"})
_SERVER_PREFIXES = ("werkzeug.", "gunicorn.", "uwsgi.")


def _plain_environ(environ: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in environ.items()
            if k not in _SERVER_OBJECTS and not k.startswith(_SERVER_PREFIXES)
            and isinstance(v, (str, int, float, bool, tuple, type(None)))}


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body: CONTENT_LENGTH bytes, or, for a chunked request the server has
    de-chunked (``wsgi.input_terminated``), all there is."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > 0:
        return environ["wsgi.input"].read(length)  # type: ignore[no-any-return]
    if environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"].read()  # type: ignore[no-any-return]
    return b""


def run_app(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> dict[str, Any]:
    """Call a WSGI app and collect its whole response: status, headers, body."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started["status"], started["headers"] = status, [list(h) for h in headers]
        return chunks.append

    chunks: list[bytes] = []
    body = app(environ, start_response)
    try:
        chunks.extend(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return {"status": started.get("status"), "headers": started.get("headers"), "body": b"".join(chunks)}


def replay_environ(recorded: dict[str, Any], body: bytes) -> dict[str, Any]:
    environ = dict(recorded)
    environ.update({"wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
                    "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False})
    return environ


def request_outcome(app: Callable[..., Any], environ: dict[str, Any], crash: Callable[[], BaseException | None],
                    summarize: bool = True) -> tuple[dict[str, Any] | None, Exception | None, dict[str, Any]]:
    """Answer the request: the response (None when the app raised), the exception the app raised, and the
    outcome a recording holds — the response by digest (unless not ``summarize``: see :func:`responded`),
    and the uncaught exception, raised by the app or reported by ``crash()`` for frameworks that turn it
    into a 500 response themselves (Flask)."""
    from .session import describe_exception

    try:
        response = run_app(app, environ)
    except Exception as exc:
        return None, exc, {"status": 1, "exception": describe_exception(exc), "returned": None}
    crashed = crash()
    summary = calls.returned_summary(responded(response)) if summarize else None
    return response, None, {"status": 1 if crashed else 0, "returned": summary,
                            "exception": describe_exception(crashed) if crashed else None}


def responded(response: dict[str, Any]) -> list[Any]:
    """What of a response the outcome compares: status, headers, body."""
    return [response["status"], response["headers"], response["body"]]


def crash_catcher(app: Any) -> Callable[[], BaseException | None]:
    """For a Flask app, what its last request raised before Flask answered 500; for other apps nothing."""
    flask = sys.modules.get("flask")
    owner = getattr(app, "__self__", app)
    if flask is None or not isinstance(owner, flask.Flask):
        return lambda: None
    seen: list[BaseException] = []

    def remember(sender: Any, exception: BaseException, **extra: Any) -> None:
        seen.append(exception)

    flask.got_request_exception.connect(remember, owner, weak=False)
    return lambda: seen.pop() if seen else None


class RecordingMiddleware:
    """WSGI middleware: one recording per request into ``directory`` (see the module's documentation)."""

    def __init__(self, app: Callable[..., Any], directory: str | Path, keep: str | float = "all",
                 entry: str | None = None, max_files: int | None = None, max_bytes: int | None = None,
                 crash: Callable[[], BaseException | None] | None = None, redact: str | None = None) -> None:
        self.app = app
        self.folder = Path(directory)
        self.keep = calls.check_keep(keep, "RecordingMiddleware")
        self.entry, self.root = (entry, None) if entry else _find_entry(app)
        module = self.entry.partition(":")[0]
        if entry and module in sys.modules:
            self.root = calls.module_root(module)
        self.max_files, self.max_bytes, self.redact = max_files, max_bytes, redact
        self.crash = crash or crash_catcher(app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not calls.begin(self.keep):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        try:
            body = _read_body(environ)
            # The environ as it came: the app may add to it. Filtered only if the recording is kept.
            received = dict(environ)

            def entry() -> dict[str, Any]:
                return {"app": self.entry, "root": self.root, "environ": _plain_environ(received), "body": body}

            stem = f"{environ.get('REQUEST_METHOD', 'GET')}{environ.get('PATH_INFO', '/').replace('/', '_')}"[:60]
            recording = calls.InProcessRecording("wsgi", entry, stem, self.folder, self.redact)
        except Exception as exc:
            calls.log.warning("pytest-retrace: not recording this request: %s", exc)
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        response, error, outcome = None, None, {"status": 1, "exception": None, "returned": None}
        try:
            response, error, outcome = request_outcome(self.app, environ, self.crash, summarize=False)
        finally:
            failed = response is None or outcome["exception"] is not None or str(response["status"]).startswith("5")
            recording.finish(outcome, self.keep != "errors" or failed, self.max_files, self.max_bytes,
                             returned=calls.NOT_RETURNED if response is None else responded(response))
        if error is not None:
            raise error
        assert response is not None
        start_response(response["status"], [tuple(h) for h in response["headers"]])
        return [response["body"]]


def _find_entry(app: Any) -> tuple[str, str | None]:
    """``module:attribute`` of a WSGI app, found where it is defined (a Flask app knows its module), and
    the sys.path root to import it from."""
    owner = getattr(app, "__self__", app)  # a bound wsgi_app method: its Flask app
    module_name = getattr(owner, "import_name", None) or getattr(owner, "__module__", None)
    module = sys.modules.get(module_name or "")
    for name, value in vars(module).items() if module is not None else ():
        if value is owner:
            # A Flask app is the WSGI app (its wsgi_app is what we wrap); a script is imported by its file name.
            return f"{calls.importable_name(str(module_name))}:{name}", calls.module_root(str(module_name))
    raise ValueError("RecordingMiddleware: cannot tell where this WSGI app lives; pass entry='module:attribute'")


def record_flask(flask_app: Any, directory: str | Path, keep: str | float = "all", **options: Any) -> None:
    """Record the requests of a Flask app (Flask turns an uncaught exception into a 500 response itself;
    the middleware catches it on its way, through ``got_request_exception``, so the recording holds it)."""
    flask_app.wsgi_app = RecordingMiddleware(flask_app.wsgi_app, directory, keep, crash=crash_catcher(flask_app),
                                             **options)
