"""Library-level adapters: clearer events and matching than the socket layer beneath them.

Each is a plugin of our own hooks (``pytest_retrace.hooks.specs``), loaded like an installed package's, and
patches its library only when the program imports it.
"""
