"""What the front ends (the pytest plugin in ``plugin.py``, the ``retrace`` command in ``cli.py``) are made of.

``items`` (recordings as pytest items), ``selfcheck`` (``--retrace-self-check``), ``summary`` (the
retrace summary and JSON report), ``report`` (divergence reports as text), ``pinning`` (``retrace
pin``), ``incidents`` (``retrace triage`` and the incident state file). The top floor: it imports the
runner and what lies below.
"""
