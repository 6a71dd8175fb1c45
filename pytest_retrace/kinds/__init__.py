"""The recording kinds, each with its record side and its replay side.

``process`` records a whole process; ``call`` one call of a function (``record_calls``); ``request``
one WSGI request (the middleware). What a recording starts and ends with is shared: ``header``,
``outcome``; so is the machinery of recordings made inside a running process (``inprocess``,
``entry``). Above the boundaries, which they install; below the runner, which starts them.
"""
