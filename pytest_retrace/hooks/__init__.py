"""Our own pluggy hooks: how library adapters and installed packages add boundaries and value codecs.

Above the engine (hooks receive it) and below the boundaries (whose installation runs them):
``specs`` declares the hooks and the options they are given, ``manager`` loads the plugins.
"""
