// Stand-ins for library callables (see transparent.cpp), added to the native module at import.
#pragma once
#include <Python.h>

// Adds StandIn, MethodStandIn and set_own_prefix to `module`; -1 with an exception set on failure.
int add_transparent(PyObject *module);
