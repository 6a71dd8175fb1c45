// The parts of the native module besides the demultiplexer, each added to it at import.
#pragma once
#include <Python.h>

// transparent.cpp: StandIn, MethodStandIn, set_own_prefix, set_error_hook, pass_through.
int add_transparent(PyObject *module);

// mainframe.cpp: exec_as_main.
int add_mainframe(PyObject *module);

// events.cpp: scan_events, EventList and its cursor.
int add_events(PyObject *module);

// The next event of an EventList's cursor, compared with a call: 1 with its result in *result (a new reference)
// when it is the main thread's, has `name` and arguments equal to `args`, and holds a value read as it is; 0 with
// the event made in *event (a new reference; null when none was left) otherwise; -1 on error; -2 when `cursor`
// is no EventList cursor (nothing taken).
int cursor_match(PyObject *cursor, PyObject *name, PyObject *args, PyObject **event, PyObject **result);

// The event an EventList's cursor handed over last, made (a new reference), for the slow path.
PyObject *cursor_taken(PyObject *cursor);
