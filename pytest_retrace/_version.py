"""The package's version: in every recording's header, and ``pytest_retrace.__version__``."""

__version__ = "0.1.0"
