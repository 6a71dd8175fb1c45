"""Per-request recordings of a WSGI app (the public face of ``pytest_retrace.kinds.request``)::

    pytest_retrace.wsgi.record_flask(app, "recordings", keep="errors")
    app = pytest_retrace.wsgi.RecordingMiddleware(app, "recordings", keep=0.05, entry="myservice:app")
    application = pytest_retrace.wsgi.record_django(get_wsgi_application(), "recordings", keep="errors")  # wsgi.py
"""

from __future__ import annotations

from .kinds.request import RecordingMiddleware, record_django, record_flask

__all__ = ["RecordingMiddleware", "record_django", "record_flask"]
