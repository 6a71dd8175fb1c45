// Stand-ins that are invisible to the program: a boundary's replacement of a library
// callable (time.time, open, socket.socket.connect …) wears the original's face.
//
// - It is a C object, so calling it adds no Python frame, and an exception coming out of
//   it leaves with pytest-retrace's own frames cut out of its traceback: the program sees
//   the traceback the plain call would have given.
// - Attribute look-ups fall through to the original: __name__, __qualname__, __module__,
//   __doc__, __text_signature__, __self__, __wrapped__ (when the original has one),
//   __code__/__defaults__ of a Python function, and __class__, so isinstance(),
//   inspect.isbuiltin/isfunction and inspect.signature answer as they would plainly.
// - Stand-in binds as its original does: one for a builtin function never binds (a class
//   attribute `converter = time.localtime` stays a plain callable), one for a Python function
//   or a method descriptor binds like a method (it is a method descriptor to the interpreter,
//   so `obj.meth(x)` calls it with obj first and builds no bound method).
// - It pickles by reference, as the original does, and reprs as the original.
#include <Python.h>
#include <frameobject.h>

#include <cstddef>
#include <vector>

#include "parts.h"

namespace {

struct StandIn {
    PyObject_HEAD
    PyObject *impl;      // what runs
    PyObject *original;  // what it stands for
    vectorcallfunc vectorcall;
    PyObject *weakreflist;
    bool passing;        // pass_through(): the original runs, the replacement no more
};

PyObject *own_prefix = nullptr;  // frames whose file starts with this are ours (str), or None: keep all
PyObject *error_hook = nullptr;  // called as hook(stand_in, exception, args, kwargs) when the replacement raises

bool is_own(PyTracebackObject *tb) {
    PyCodeObject *code = PyFrame_GetCode(tb->tb_frame);
    int own = PyUnicode_Tailmatch(code->co_filename, own_prefix, 0, PY_SSIZE_T_MAX, -1);
    Py_DECREF(code);
    return own == 1;
}

// Drop our frames from a traceback chain; returns the new head (borrowed, may be null).
PyObject *without_own_frames(PyObject *tb) {
    std::vector<PyObject *> all, kept;
    for (PyObject *t = tb; t != nullptr && t != Py_None; t = (PyObject *)((PyTracebackObject *)t)->tb_next) {
        Py_INCREF(t);
        all.push_back(t);
        if (!is_own((PyTracebackObject *)t)) kept.push_back(t);
    }
    PyObject *head = kept.empty() ? nullptr : kept.front();
    if (kept.size() != all.size()) {
        for (size_t i = 0; i < kept.size(); ++i) {
            PyTracebackObject *t = (PyTracebackObject *)kept[i];
            PyTracebackObject *next = i + 1 < kept.size() ? (PyTracebackObject *)kept[i + 1] : nullptr;
            Py_XINCREF(next);
            Py_XSETREF(t->tb_next, next);
        }
    }
    for (PyObject *t : all) Py_DECREF(t);  // the chain holds what is kept; the caller holds the head
    return head;
}

// The exception being raised, with our frames cut from its traceback.
void strip_raised() {
    if (own_prefix == nullptr || own_prefix == Py_None) return;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
    if (exc == nullptr) return;
    PyObject *tb = PyException_GetTraceback(exc);
    if (tb != nullptr) {
        PyObject *head = without_own_frames(tb);
        PyException_SetTraceback(exc, head ? head : Py_None);
        Py_DECREF(tb);
    }
    PyErr_SetRaisedException(exc);
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (tb != nullptr) {
        PyObject *head = without_own_frames(tb);
        Py_XINCREF(head);
        Py_DECREF(tb);
        tb = head;
        if (value != nullptr && PyExceptionInstance_Check(value)) PyException_SetTraceback(value, tb ? tb : Py_None);
    }
    PyErr_Restore(type, value, tb);
#endif
}

// The replacement raised: the error hook decides whether the exception goes on to the program (the call's
// own, or a replay's divergence) or the original answers instead (an error of ours while recording).
PyObject *after_error(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != nullptr && value != nullptr) PyException_SetTraceback(value, tb);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *positional = PyTuple_New(nargs);
    PyObject *named = PyDict_New();
    bool ok = positional != nullptr && named != nullptr;
    for (Py_ssize_t i = 0; ok && i < nargs; ++i) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(positional, i, args[i]);
    }
    for (Py_ssize_t i = 0; ok && kwnames != nullptr && i < PyTuple_GET_SIZE(kwnames); ++i) {
        ok = PyDict_SetItem(named, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) == 0;
    }
    PyObject *result = nullptr;
    if (ok) result = PyObject_CallFunctionObjArgs(error_hook, self, value ? value : Py_None, positional, named, nullptr);
    if (ok && result == value) {  // the hook's way of saying: the exception goes on, as it was (not raised anew)
        Py_DECREF(result);
        result = nullptr;
        ok = false;
    }
    if (ok) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else {
        if (PyErr_Occurred()) PyErr_Clear();  // out of memory building the arguments: the exception goes on
        PyErr_Restore(type, value, tb);
    }
    Py_XDECREF(positional);
    Py_XDECREF(named);
    return result;
}

PyObject *standin_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    StandIn *standin = (StandIn *)self;
    if (standin->passing) return PyObject_Vectorcall(standin->original, args, nargsf, kwnames);
    PyObject *result = PyObject_Vectorcall(standin->impl, args, nargsf, kwnames);
    if (result == nullptr && error_hook != nullptr && error_hook != Py_None) {
        result = after_error(self, args, nargsf, kwnames);
    }
    if (result == nullptr) strip_raised();
    return result;
}

int standin_traverse(StandIn *self, visitproc visit, void *arg) {
    Py_VISIT(self->impl);
    Py_VISIT(self->original);
    return 0;
}

int standin_clear(StandIn *self) {
    Py_CLEAR(self->impl);
    Py_CLEAR(self->original);
    return 0;
}

void standin_dealloc(StandIn *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != nullptr) PyObject_ClearWeakRefs((PyObject *)self);
    standin_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyObject *standin_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *impl, *original;
    static const char *names[] = {"impl", "original", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO", (char **)names, &impl, &original)) return nullptr;
    if (!PyCallable_Check(impl)) {
        PyErr_SetString(PyExc_TypeError, "StandIn: impl must be callable");
        return nullptr;
    }
    StandIn *self = (StandIn *)type->tp_alloc(type, 0);
    if (self == nullptr) return nullptr;
    Py_INCREF(impl);
    Py_INCREF(original);
    self->impl = impl;
    self->original = original;
    self->vectorcall = standin_vectorcall;
    self->passing = false;
    return (PyObject *)self;
}

// Our own attributes are the type's (__call__, __get__, __reduce__, __retrace_impl__ …), except the
// ones every object has, which must answer as the original's; everything else is the original's.
PyObject *standin_getattro(PyObject *self, PyObject *name) {
    if (PyUnicode_Check(name)) {
        PyObject *found = _PyType_Lookup(Py_TYPE(self), name);
        bool ours = found != nullptr;
        for (const char *everyones : {"__class__", "__doc__", "__module__", "__dir__", "__sizeof__"}) {
            if (ours && PyUnicode_CompareWithASCIIString(name, everyones) == 0) ours = false;
        }
        if (ours) return PyObject_GenericGetAttr(self, name);
    }
    return PyObject_GetAttr(((StandIn *)self)->original, name);
}

int standin_setattro(PyObject *self, PyObject *name, PyObject *value) {
    return PyObject_SetAttr(((StandIn *)self)->original, name, value);
}

PyObject *standin_repr(StandIn *self) { return PyObject_Repr(self->original); }

// By reference, like a function: pickle finds the stand-in again under the original's module and name.
PyObject *standin_reduce(StandIn *self, PyObject *) { return PyObject_GetAttrString(self->original, "__qualname__"); }

PyObject *standin_impl(StandIn *self, void *) {
    Py_INCREF(self->impl);
    return self->impl;
}

PyObject *standin_original(StandIn *self, void *) {
    Py_INCREF(self->original);
    return self->original;
}

PyObject *method_get(PyObject *self, PyObject *obj, PyObject *) {
    if (obj == nullptr || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

PyMethodDef standin_methods[] = {
    {"__reduce__", (PyCFunction)standin_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef standin_getset[] = {
    {"__retrace_impl__", (getter)standin_impl, nullptr, "the replacement that runs", nullptr},
    {"__retrace_original__", (getter)standin_original, nullptr, "what it stands for", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject StandInType = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyTypeObject MethodStandInType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// Fast paths: the hot calls of recording and replay do their common case in C and hand everything else to
// the engine's Python code (`slow`). Each is a stand-in with the few objects that case needs.
PyObject *str_fast = nullptr, *str_in_order = nullptr, *str_name = nullptr, *str_args = nullptr,
         *str_result = nullptr, *str_gate = nullptr, *str_single_thread = nullptr, *str_sink = nullptr,
         *str_extra_values = nullptr;

constexpr int kFields = 7;

struct FastPath {
    StandIn base;
    PyObject *field[kFields];  // named by the enums below, per kind of fast path
};

// Recording an argument-less source (a clock): value = source(); while only the main thread runs outside any
// gate (STATE.fast), the event (code, value) goes straight onto the sink; otherwise slow(value) decides.
enum { REC_CODE, REC_SINK, REC_STATE, REC_SLOW, REC_FIELDS };

// Replaying one: while the replay is single-threaded and in order, the next event answers when it is this
// source's, argument-less, and holds a plain value; anything else (another event, an exception to raise, a
// live value, no event left, another thread) goes to slow(event or None), or slow() when none was taken.
enum { NOARG_REPLAYER, NOARG_CURSOR, NOARG_NAME, NOARG_STATE, NOARG_SLOW, NOARG_RAISED, NOARG_LIVE, NOARG_FIELDS };

// Replaying any call, engine.call(name, args, fn, *a, **kw): the same common case, for calls with arguments;
// slow(event or None, name, args, fn, *a, **kw) when the event was taken, slow(UNTAKEN, …) when not.
enum { CALL_REPLAYER, CALL_CURSOR, CALL_STATE, CALL_SLOW, CALL_RAISED, CALL_LIVE, CALL_UNTAKEN, CALL_FIELDS };

// Recording any call, engine.call(name, args, fn, *a, **kw): while only the main thread runs outside any gate
// (STATE.fast) and the name has its id, the call runs inside the gate and its event goes onto the sink; an
// exception it raises goes to raised(exception, name id, args) and on; any other case to slow(name, args, fn, …).
enum { CREC_RECORDER, CREC_STATE, CREC_TLS, CREC_IDS, CREC_SLOW, CREC_RAISED, CREC_FIELDS };

static_assert(REC_FIELDS <= kFields && NOARG_FIELDS <= kFields && CALL_FIELDS <= kFields && CREC_FIELDS <= kFields,
              "FastPath::field");

// Whether `attr` of `obj` is True now (-1: an error is set).
int is_true(PyObject *obj, PyObject *attr) {
    PyObject *value = PyObject_GetAttr(obj, attr);
    if (value == nullptr) return -1;
    Py_DECREF(value);
    return value == Py_True;
}

// The next event of `cursor` when it has `name` and arguments equal to `args`: 1 and its result in *result
// (a new reference), with the event in *event or null (made by event_of when needed); 0 with the event in *event
// (a new reference, or null when none was left); -1 on error.
int next_matching(PyObject *cursor, PyObject *name, PyObject *args, PyObject **event, PyObject **result) {
    int matched = cursor_match(cursor, name, args, event, result);  // events read lazily (events.cpp)
    if (matched != -2) return matched;
    *event = PyIter_Next(cursor);
    *result = nullptr;
    if (*event == nullptr) return PyErr_Occurred() ? -1 : 0;
    PyObject *recorded_name = PyObject_GetAttr(*event, str_name);
    PyObject *recorded_args = recorded_name ? PyObject_GetAttr(*event, str_args) : nullptr;
    int same = -1;
    if (recorded_args != nullptr) {
        same = recorded_name == name || PyUnicode_Compare(recorded_name, name) == 0;
        if (PyErr_Occurred()) same = -1;
        else if (same == 1) same = recorded_args == args || PyObject_RichCompareBool(recorded_args, args, Py_EQ);
    }
    Py_XDECREF(recorded_name);
    Py_XDECREF(recorded_args);
    if (same == 1) {
        *result = PyObject_GetAttr(*event, str_result);
        if (*result == nullptr) same = -1;
    }
    return same;
}

// The event next_matching took (a new reference): made now when it matched without one.
PyObject *event_of(PyObject *cursor, PyObject *event) {
    if (event != nullptr) return event;
    return cursor_taken(cursor);
}

PyObject *noarg_record(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    FastPath *r = (FastPath *)self;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) || r->base.passing) {
        return PyObject_Vectorcall(r->base.original, args, nargsf, kwnames);  // the real source says what is wrong
    }
    PyObject *value = PyObject_CallNoArgs(r->base.impl);
    int fast = value ? is_true(r->field[REC_STATE], str_fast) : -1;
    int done = -1;
    if (fast == 1) {
        done = PyList_Append(r->field[REC_SINK], r->field[REC_CODE]) < 0 || PyList_Append(r->field[REC_SINK], value) < 0
                   ? -1 : 0;
    } else if (fast == 0) {
        PyObject *slow = PyObject_CallOneArg(r->field[REC_SLOW], value);
        done = slow ? 0 : -1;
        Py_XDECREF(slow);
    }
    if (done < 0) {
        Py_XDECREF(value);
        strip_raised();
        return nullptr;
    }
    return value;
}

PyObject *noarg_replay(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    FastPath *r = (FastPath *)self;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) || r->base.passing) {
        return PyObject_Vectorcall(r->base.original, args, nargsf, kwnames);
    }
    PyObject *result = nullptr, *event = nullptr;
    int fast = is_true(r->field[NOARG_STATE], str_fast);
    if (fast == 1) fast = is_true(r->field[NOARG_REPLAYER], str_in_order);
    if (fast == 1) {
        int same = next_matching(r->field[NOARG_CURSOR], r->field[NOARG_NAME], Py_None, &event, &result);
        if (same == 1 && Py_TYPE(result) != (PyTypeObject *)r->field[NOARG_RAISED] && result != r->field[NOARG_LIVE]) {
            Py_XDECREF(event);
            return result;
        }
        Py_CLEAR(result);
        if (same == 1 && (event = event_of(r->field[NOARG_CURSOR], event)) == nullptr) same = -1;
        if (same >= 0) result = PyObject_CallOneArg(r->field[NOARG_SLOW], event ? event : Py_None);
        Py_XDECREF(event);
    } else if (fast == 0) {
        result = PyObject_CallNoArgs(r->field[NOARG_SLOW]);  // slow() takes the event its own way
    }
    if (result == nullptr) strip_raised();
    return result;
}

PyObject *call_slow(FastPath *r, PyObject *event, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **stack = total + 1 <= 8 ? small : (PyObject **)PyMem_Malloc((total + 1) * sizeof(PyObject *));
    if (stack == nullptr) return PyErr_NoMemory();
    stack[0] = event;
    for (Py_ssize_t i = 0; i < total; ++i) stack[i + 1] = args[i];
    PyObject *result = PyObject_Vectorcall(r->field[CALL_SLOW], stack, nargs + 1, kwnames);
    if (stack != small) PyMem_Free(stack);
    return result;
}

PyObject *call_replay(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    FastPath *r = (FastPath *)self;
    if (PyVectorcall_NARGS(nargsf) < 3) return call_slow(r, r->field[CALL_UNTAKEN], args, nargsf, kwnames);
    int fast = is_true(r->field[CALL_STATE], str_fast);
    if (fast == 1) fast = is_true(r->field[CALL_REPLAYER], str_in_order);
    if (fast < 0) return nullptr;
    if (fast == 0) return call_slow(r, r->field[CALL_UNTAKEN], args, nargsf, kwnames);
    PyObject *event, *result;
    int same = next_matching(r->field[CALL_CURSOR], args[0], args[1], &event, &result);
    if (same == 1 && Py_TYPE(result) != (PyTypeObject *)r->field[CALL_RAISED] && result != r->field[CALL_LIVE]) {
        Py_XDECREF(event);
        return result;
    }
    Py_XDECREF(result);
    if (same == 1 && (event = event_of(r->field[CALL_CURSOR], event)) == nullptr) same = -1;
    result = same < 0 ? nullptr : call_slow(r, event ? event : Py_None, args, nargsf, kwnames);
    Py_XDECREF(event);
    return result;
}

// Inside an external call that call_record runs (the main thread's: the fast path runs on no other). A signal
// handler that runs meanwhile runs inside the call (boundaries/signals.py asks, as it looks for Recorder.call's
// frame on the Python path).
int native_calls = 0;

PyObject *call_record(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    FastPath *r = (FastPath *)self;
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *nid = nullptr;
    int fast = nargs < 3 ? 0 : is_true(r->field[CREC_STATE], str_fast);
    if (fast < 0) return nullptr;
    if (fast == 1 && PyUnicode_CheckExact(args[0])) {
        nid = PyDict_GetItemWithError(r->field[CREC_IDS], args[0]);  // borrowed
        if (nid == nullptr && PyErr_Occurred()) return nullptr;
    }
    if (nid == nullptr || !PyLong_CheckExact(nid)) return PyObject_Vectorcall(r->field[CREC_SLOW], args, nargsf, kwnames);
    PyObject *state = r->field[CREC_STATE], *tls = r->field[CREC_TLS], *call_args = args[1];
    static PyObject *one = PyLong_FromLong(1), *zero = PyLong_FromLong(0);
    if (PyObject_SetAttr(state, str_fast, Py_False) < 0 || PyObject_SetAttr(tls, str_gate, one) < 0) return nullptr;
    ++native_calls;
    PyObject *result = PyObject_Vectorcall(args[2], args + 3, nargs - 3, kwnames);
    --native_calls;
    if (result == nullptr) {  // the call's own exception: recorded (in Python), then raised on
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != nullptr && value != nullptr) PyException_SetTraceback(value, traceback);
        PyObject *stack[] = {value ? value : Py_None, nid, call_args};
        PyObject *done = PyObject_Vectorcall(r->field[CREC_RAISED], stack, 3, nullptr);
        if (done == nullptr) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
            return nullptr;
        }
        Py_DECREF(done);
        PyErr_Restore(type, value, traceback);
        return nullptr;
    }
    // Out of the gate: tls.gate = 0; STATE.fast = STATE.single_thread (state.leave(True)).
    PyObject *single = PyObject_GetAttr(state, str_single_thread);
    if (single == nullptr || PyObject_SetAttr(tls, str_gate, zero) < 0 || PyObject_SetAttr(state, str_fast, single) < 0) {
        Py_XDECREF(single);
        Py_DECREF(result);
        return nullptr;
    }
    Py_DECREF(single);
    // Everything the event holds is made first: the appends then follow each other with nothing in between that
    // could run Python code (a collection's callbacks) and let the writer thread take half an event.
    const long code = PyLong_AsLong(nid) << 2 | (call_args == Py_None ? 0 : 1);
    PyObject *sink = PyObject_GetAttr(r->field[CREC_RECORDER], str_sink);
    PyObject *counter = sink ? PyObject_GetAttr(r->field[CREC_RECORDER], str_extra_values) : nullptr;
    PyObject *code_obj = counter ? PyLong_FromLong(code) : nullptr;
    PyObject *kept = nullptr, *listed = nullptr;
    if (code_obj != nullptr) {
        if (PyList_CheckExact(result)) kept = PyList_GetSlice(result, 0, PyList_GET_SIZE(result));
        else if (PyDict_CheckExact(result)) kept = PyDict_Copy(result);
        else if (PyByteArray_CheckExact(result)) kept = PyByteArray_FromObject(result);
        else kept = (Py_INCREF(result), result);
        if (kept != nullptr && call_args != Py_None) listed = PySequence_List(call_args);
    }
    bool ok = kept != nullptr && (call_args == Py_None || listed != nullptr) && PyList_CheckExact(sink);
    if (ok) {
        ok = PyList_Append(sink, code_obj) == 0 && PyList_Append(sink, kept) == 0 &&
             (listed == nullptr || PyList_Append(sink, listed) == 0);
        if (ok && listed != nullptr) {  // one tick per value beyond (code, result): see Recorder.events_in
            PyObject *tick = PyIter_Next(counter);
            ok = tick != nullptr;
            Py_XDECREF(tick);
        }
    }
    Py_XDECREF(sink);
    Py_XDECREF(counter);
    Py_XDECREF(code_obj);
    Py_XDECREF(kept);
    Py_XDECREF(listed);
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "call_recorder: the recorder's sink is not a list");
        Py_DECREF(result);
        return nullptr;
    }
    return result;
}

int fast_traverse(FastPath *self, visitproc visit, void *arg) {
    for (PyObject *field : self->field) Py_VISIT(field);
    return standin_traverse(&self->base, visit, arg);
}

int fast_clear(FastPath *self) {
    for (PyObject *&field : self->field) Py_CLEAR(field);
    return standin_clear(&self->base);
}

void fast_dealloc(FastPath *self) {
    PyObject_GC_UnTrack(self);
    if (self->base.weakreflist != nullptr) PyObject_ClearWeakRefs((PyObject *)self);
    fast_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject FastPathType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// A fast path standing in for `source` (None for the replayer's call, which stands for no library callable),
// holding `fields` in order.
PyObject *new_fast_path(PyObject *source, vectorcallfunc call, PyObject *fields, int count) {
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != count) {
        PyErr_Format(PyExc_TypeError, "a fast path takes %d objects", count);
        return nullptr;
    }
    FastPath *r = (FastPath *)FastPathType.tp_alloc(&FastPathType, 0);
    if (r == nullptr) return nullptr;
    Py_INCREF(source);
    Py_INCREF(source);
    r->base.impl = source;
    r->base.original = source;
    r->base.vectorcall = call;
    r->base.passing = false;
    for (int i = 0; i < count; ++i) {
        r->field[i] = PyTuple_GET_ITEM(fields, i);
        Py_INCREF(r->field[i]);
    }
    return (PyObject *)r;
}

PyObject *noarg_recorder(PyObject *, PyObject *args) {
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    PyObject *made = rest ? new_fast_path(PyTuple_GET_ITEM(args, 0), noarg_record, rest, REC_FIELDS) : nullptr;
    Py_XDECREF(rest);
    return made;
}

PyObject *noarg_replayer(PyObject *, PyObject *args) {
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    PyObject *made = rest ? new_fast_path(PyTuple_GET_ITEM(args, 0), noarg_replay, rest, NOARG_FIELDS) : nullptr;
    Py_XDECREF(rest);
    return made;
}

PyObject *call_replayer(PyObject *, PyObject *args) { return new_fast_path(Py_None, call_replay, args, CALL_FIELDS); }

PyObject *call_recorder(PyObject *, PyObject *args) { return new_fast_path(Py_None, call_record, args, CREC_FIELDS); }

PyObject *in_native_call(PyObject *, PyObject *) { return PyBool_FromLong(native_calls > 0); }

PyObject *set_own_prefix(PyObject *, PyObject *prefix) {
    if (prefix != Py_None && !PyUnicode_Check(prefix)) {
        PyErr_SetString(PyExc_TypeError, "set_own_prefix: a str or None");
        return nullptr;
    }
    Py_INCREF(prefix);
    Py_XSETREF(own_prefix, prefix);
    Py_RETURN_NONE;
}

PyObject *set_error_hook(PyObject *, PyObject *hook) {
    Py_INCREF(hook);
    Py_XSETREF(error_hook, hook);
    Py_RETURN_NONE;
}

PyObject *pass_through(PyObject *, PyObject *standin) {
    if (!PyObject_TypeCheck(standin, &StandInType)) {
        PyErr_SetString(PyExc_TypeError, "pass_through: a StandIn");
        return nullptr;
    }
    ((StandIn *)standin)->passing = true;
    Py_RETURN_NONE;
}

PyMethodDef module_functions[] = {
    {"call_replayer", (PyCFunction)call_replayer, METH_VARARGS,
     "call_replayer(replayer, cursor, state, slow, Raised, LIVE, UNTAKEN): the replayer's call(), common case in C."},
    {"in_native_call", (PyCFunction)in_native_call, METH_NOARGS,
     "Whether an external call that the recorder's native call() runs is under way (on the main thread)."},
    {"call_recorder", (PyCFunction)call_recorder, METH_VARARGS,
     "call_recorder(recorder, state, tls, ids, slow, raised): the recorder's call(), common case in C."},
    {"noarg_recorder", (PyCFunction)noarg_recorder, METH_VARARGS,
     "noarg_recorder(source, code, sink, state, slow): the recording stand-in of an argument-less source."},
    {"noarg_replayer", (PyCFunction)noarg_replayer, METH_VARARGS,
     "noarg_replayer(source, replayer, cursor, name, state, slow, Raised, LIVE): its replaying stand-in."},
    {"set_error_hook", (PyCFunction)set_error_hook, METH_O,
     "hook(stand_in, exception, args, kwargs) runs when a replacement raises: it returns the exception itself for\n"
     "it to go on as it was, or what the call returns instead (None as the hook: every exception goes on)."},
    {"pass_through", (PyCFunction)pass_through, METH_O,
     "From now on the stand-in calls its original: the replacement is out of the way."},
    {"set_own_prefix", (PyCFunction)set_own_prefix, METH_O,
     "Frames of files under this prefix are cut from tracebacks leaving a stand-in (None: cut nothing)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int add_transparent(PyObject *module) {
    // Named as the types they mostly stand for, so that even type(time.time).__name__ reads as plainly;
    // the module exports them as StandIn and MethodStandIn.
    StandInType.tp_name = "builtin_function_or_method";
    StandInType.tp_doc = "A library callable's replacement that looks and behaves like it (never binds).";
    StandInType.tp_basicsize = sizeof(StandIn);
    const unsigned long flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
    StandInType.tp_flags = flags;
    StandInType.tp_new = standin_new;
    StandInType.tp_dealloc = (destructor)standin_dealloc;
    StandInType.tp_traverse = (traverseproc)standin_traverse;
    StandInType.tp_clear = (inquiry)standin_clear;
    StandInType.tp_call = PyVectorcall_Call;
    StandInType.tp_vectorcall_offset = offsetof(StandIn, vectorcall);
    StandInType.tp_weaklistoffset = offsetof(StandIn, weakreflist);
    StandInType.tp_getattro = standin_getattro;
    StandInType.tp_setattro = standin_setattro;
    StandInType.tp_repr = (reprfunc)standin_repr;
    StandInType.tp_methods = standin_methods;
    StandInType.tp_getset = standin_getset;
    if (PyType_Ready(&StandInType) < 0) return -1;

    MethodStandInType.tp_name = "function";
    MethodStandInType.tp_doc = "A library method's replacement that looks and behaves like it (binds as a method).";
    MethodStandInType.tp_basicsize = sizeof(StandIn);
    MethodStandInType.tp_flags = flags | Py_TPFLAGS_METHOD_DESCRIPTOR;  // not StandIn's: those say READY
    MethodStandInType.tp_base = &StandInType;
    MethodStandInType.tp_descr_get = method_get;
    MethodStandInType.tp_traverse = StandInType.tp_traverse;
    MethodStandInType.tp_clear = StandInType.tp_clear;
    MethodStandInType.tp_call = PyVectorcall_Call;
    MethodStandInType.tp_vectorcall_offset = offsetof(StandIn, vectorcall);
    if (PyType_Ready(&MethodStandInType) < 0) return -1;

    FastPathType.tp_name = "builtin_function_or_method";
    FastPathType.tp_flags = flags;
    FastPathType.tp_base = &StandInType;
    FastPathType.tp_basicsize = sizeof(FastPath);
    FastPathType.tp_call = PyVectorcall_Call;
    FastPathType.tp_vectorcall_offset = offsetof(StandIn, vectorcall);
    FastPathType.tp_traverse = (traverseproc)fast_traverse;
    FastPathType.tp_clear = (inquiry)fast_clear;
    FastPathType.tp_dealloc = (destructor)fast_dealloc;
    if (PyType_Ready(&FastPathType) < 0) return -1;
    struct Name {
        PyObject **slot;
        const char *text;
    };
    for (Name name : {Name{&str_fast, "fast"}, Name{&str_in_order, "in_order"}, Name{&str_name, "name"},
                      Name{&str_args, "args"}, Name{&str_result, "result"}, Name{&str_gate, "gate"},
                      Name{&str_single_thread, "single_thread"}, Name{&str_sink, "sink"},
                      Name{&str_extra_values, "_extra_values"}}) {
        *name.slot = PyUnicode_InternFromString(name.text);
        if (*name.slot == nullptr) return -1;
    }

    if (PyModule_AddObjectRef(module, "StandIn", (PyObject *)&StandInType) < 0) return -1;
    if (PyModule_AddObjectRef(module, "MethodStandIn", (PyObject *)&MethodStandInType) < 0) return -1;
    return PyModule_AddFunctions(module, module_functions);
}
