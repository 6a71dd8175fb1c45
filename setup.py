"""Builds the native module (the demultiplexer and the boundaries' stand-ins); everything else is declared in
pyproject.toml."""

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

setup(
    ext_modules=[
        Pybind11Extension(
            "pytest_retrace._native",
            ["native/demux.cpp", "native/transparent.cpp", "native/mainframe.cpp", "native/events.cpp"],
            cxx_std=17,
        )
    ],
    cmdclass={"build_ext": build_ext},
)
