// exec_as_main(code, globals): run a program's main module as `python script.py` would, at the bottom of
// the thread's stack. Plainly the module's frame has no caller; started by pytest-retrace it would have
// ours (the child's -c, the recording kind, runpy) beneath it, and every stack walk would show them:
// traceback.print_stack(), logging's stack_info and "Call stack", inspect.stack(), sys._getframe(n).
// While the code runs, the thread's current frame is set aside, so the module's frame has no f_back;
// it is put back when the code returns or raises.
//
// die_with_parent(pid): the child the launcher starts dies with the launcher (a killed `retrace record`
// must not leave the program it records running on, unseen).
#include <Python.h>

#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#endif

#include "parts.h"

namespace {

#if PY_VERSION_HEX >= 0x030D0000
struct SetAside {
    PyThreadState *tstate = PyThreadState_Get();
    struct _PyInterpreterFrame *saved = tstate->current_frame;
    SetAside() { tstate->current_frame = nullptr; }
    ~SetAside() { tstate->current_frame = saved; }
};
#elif PY_VERSION_HEX >= 0x030B0000
struct SetAside {
    PyThreadState *tstate = PyThreadState_Get();
    struct _PyInterpreterFrame *saved = tstate->cframe->current_frame;
    SetAside() { tstate->cframe->current_frame = nullptr; }
    ~SetAside() { tstate->cframe->current_frame = saved; }
};
#else
struct SetAside {
    PyThreadState *tstate = PyThreadState_Get();
    PyFrameObject *saved = tstate->frame;
    SetAside() { tstate->frame = nullptr; }
    ~SetAside() { tstate->frame = saved; }
};
#endif

PyObject *exec_as_main(PyObject *, PyObject *args) {
    PyObject *code, *globals, *locals = nullptr;
    if (!PyArg_ParseTuple(args, "O!O!|O:exec_as_main", &PyCode_Type, &code, &PyDict_Type, &globals, &locals)) {
        return nullptr;
    }
    if (locals == nullptr || locals == Py_None) locals = globals;
    if (PyDict_GetItemString(globals, "__builtins__") == nullptr &&
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0) {
        return nullptr;
    }
    SetAside aside;
    return PyEval_EvalCode(code, globals, locals);
}

PyObject *die_with_parent(PyObject *, PyObject *arg) {
    long parent = PyLong_AsLong(arg);
    if (parent == -1 && PyErr_Occurred()) return nullptr;
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    // The parent may have died before the line above: then no signal will come.
    if (getppid() != parent) Py_RETURN_FALSE;
#endif
    Py_RETURN_TRUE;
}

PyMethodDef functions[] = {
    {"die_with_parent", die_with_parent, METH_O,
     "die_with_parent(pid): SIGKILL this process when its parent dies; False if the parent ``pid`` is gone."},
    {"exec_as_main", exec_as_main, METH_VARARGS,
     "exec(code, globals[, locals]) at the bottom of the thread's stack: the code's frame has no caller."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int add_mainframe(PyObject *module) { return PyModule_AddFunctions(module, functions); }
