"""The file format: values (``codec``), the event form (``events``) and the ``*.retrace`` file (``tape``).

The bottom floor of the house: it imports nothing of pytest-retrace but ``errors``, so a recording
can be read, written and listed without the engine that makes or replays it.
"""
