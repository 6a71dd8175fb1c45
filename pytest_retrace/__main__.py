"""``python -m pytest_retrace``: the ``retrace`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # importing this module must run nothing (a recording may name any module)
    sys.exit(main())
