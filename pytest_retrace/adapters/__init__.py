"""Library-level adapters (DESIGN §1): clearer events and matching than the socket layer beneath them.

Each is a plugin of our own hooks (``hookspecs.py``), loaded like an installed package's, and
patches its library only when the program imports it.
"""
