"""The engine core: what every boundary goes through, in recording and in replay.

Below it: the file format. Above it: boundaries and adapters, which call it. Its rooms, bottom up:
``state`` (threads, gates and the hot-path flags), ``base`` (the :class:`~.base.Engine` interface
boundaries see), ``recorder``, ``router`` (in-process recordings), ``stack`` (the program's own
frames), ``divergence`` (typed records of where a replay stopped following), ``keyed`` (answering
a crash recording by call key), ``watchdog`` (stuck replays), ``demux`` (the native/pure switch),
``replayer``; and ``patch``/``importhook``, how boundaries are put in place and taken out.
"""
