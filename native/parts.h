// The parts of the native module besides the demultiplexer, each added to it at import.
#pragma once
#include <Python.h>

// transparent.cpp: StandIn, MethodStandIn, set_own_prefix, set_error_hook, pass_through.
int add_transparent(PyObject *module);

// mainframe.cpp: exec_as_main.
int add_mainframe(PyObject *module);
