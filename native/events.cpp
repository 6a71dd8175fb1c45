// The recorded events as replay reads them, without an object per event (format/events.py has the flat form
// and the pure-Python twin of everything here).
//
// scan_events(payload, names, first): checks an EVENTS frame's bytes (msgpack [3, [code, result, …]]) event by
// event and counts them, without decoding a value: the launcher needs only the count, and a reader learns of a
// malformed event stream before anything of it is decoded. Plain values are checked as msgpack's reader would
// take them (lengths, UTF-8, nesting, map keys); ext values, which only the codec knows, are handed back by
// offset for it to check (format/codec.py: check_exts).
//
// EventList(frames, names, first, Event, DeferredEvent): the events of decoded flat streams, made into Event
// objects only when asked for (by index, slice or iteration). Its cursor (iter()) is what the replay's fast paths
// (transparent.cpp) read: cursor_match() compares the next event with a call and hands back its result straight
// from the flat stream.
#include <Python.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "parts.h"

namespace {

constexpr int kFormPlain = 0, kFormArgs = 1, kFormThread = 2;
constexpr Py_ssize_t kMaxThreadId = 200;  // format/events.py: MAX_THREAD_ID

// ---- scanning msgpack bytes -----------------------------------------------------------------------------

struct Reader {
    const uint8_t *p;
    const uint8_t *end;

    bool take(size_t n, const uint8_t **at) {
        if ((size_t)(end - p) < n) return false;
        *at = p;
        p += n;
        return true;
    }
    bool big_endian(int bytes, uint64_t *out) {
        const uint8_t *at;
        if (!take(bytes, &at)) return false;
        uint64_t v = 0;
        for (int i = 0; i < bytes; ++i) v = v << 8 | at[i];
        *out = v;
        return true;
    }
};

bool skip_header(Reader &r, uint64_t *inner);

// Whether bytes are UTF-8 as Python's strict decoder takes it (no overlong forms, no surrogates, ≤ U+10FFFF).
bool utf8(const uint8_t *p, size_t n) {
    const uint8_t *end = p + n;
    while (p < end) {
        const uint8_t b = *p;
        if (b < 0x80) { ++p; continue; }
        int more;
        uint32_t low, high, cp;
        if (b >= 0xc2 && b <= 0xdf) more = 1, low = 0x80, high = 0x7ff, cp = b & 0x1f;
        else if (b >= 0xe0 && b <= 0xef) more = 2, low = 0x800, high = 0xffff, cp = b & 0x0f;
        else if (b >= 0xf0 && b <= 0xf4) more = 3, low = 0x10000, high = 0x10ffff, cp = b & 0x07;
        else return false;
        if (end - p <= more) return false;
        for (int k = 1; k <= more; ++k) {
            if ((p[k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[k] & 0x3f);
        }
        if (cp < low || cp > high || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        p += more + 1;
    }
    return true;
}

constexpr uint64_t kMaxDepth = 200;  // format/codec.py: MAX_DEPTH (containers inside containers)

// What walking values found: the ext values in them (decoded by the codec, which alone knows them), as
// [start, end, used as a map key (0/1)] triples of offsets into the payload.
struct Level {
    uint64_t left;
    bool map;
    uint64_t taken;
};

struct Walk {
    const uint8_t *base;
    std::vector<uint64_t> exts;
    const char *problem = nullptr;
    std::vector<Level> levels;  // the containers open while walking a value (kept: one allocation per scan)
};

// Walk one whole value: containers counted, not recursed into; strings checked as UTF-8; ext values noted.
// `depth`: how deep the value sits (a container in it is one deeper).
bool walk_value(Reader &r, Walk &w, uint64_t depth) {
    std::vector<Level> &levels = w.levels;
    levels.clear();
    levels.push_back(Level{1, false, 0});
    while (!levels.empty()) {
        Level &level = levels.back();
        if (level.left == 0) {
            levels.pop_back();
            continue;
        }
        const bool key = level.map && level.taken % 2 == 0;
        --level.left;
        ++level.taken;
        const uint8_t *start = r.p;
        const uint8_t *at;
        if (r.p >= r.end) return false;
        const uint8_t b = *r.p;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3 || b == 0xcb) {  // the most common
            r.p += b == 0xcb ? 9 : 1;
            if (r.p > r.end) return false;
            continue;
        }
        uint64_t n = 0;
        bool container = false, map = false;
        if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
            map = container = true;
            r.p += 1;
            if (b == 0xde || b == 0xdf) { if (!r.big_endian(b == 0xde ? 2 : 4, &n)) return false; }
            else n = b & 0x0f;
            n *= 2;
        } else if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
            container = true;
            r.p += 1;
            if (b == 0xdc || b == 0xdd) { if (!r.big_endian(b == 0xdc ? 2 : 4, &n)) return false; }
            else n = b & 0x0f;
        } else if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb) {
            r.p += 1;
            if ((b & 0xe0) == 0xa0) n = b & 0x1f;
            else if (!r.big_endian(1 << (b - 0xd9), &n)) return false;
            if (!r.take(n, &at)) return false;
            if (!utf8(at, n)) return w.problem = "a string that is not UTF-8", false;
        } else if (b == 0xc7 || b == 0xc8 || b == 0xc9 || (b >= 0xd4 && b <= 0xd8)) {
            r.p += 1;
            if (b >= 0xd4) n = 1u << (b - 0xd4);
            else if (!r.big_endian(1 << (b - 0xc7), &n)) return false;
            if (!r.take(n + 1, &at)) return false;
            w.exts.insert(w.exts.end(), {(uint64_t)(start - w.base), (uint64_t)(r.p - w.base), key ? 1u : 0u});
        } else {
            uint64_t inner;
            if (!skip_header(r, &inner)) return false;  // a scalar
        }
        if (container) {
            if (key) return w.problem = "a map key that is a list or a map", false;
            if (depth + levels.size() > kMaxDepth) return w.problem = "values nested more than 200 levels deep", false;
            if (n > (uint64_t)(r.end - r.p)) return false;  // each value takes a byte at least
            levels.push_back(Level{n, map, 0});
        }
    }
    return true;
}

// One value's header: how many values follow inside it (array items, map keys and values) in *inner, and its
// payload skipped. False when the bytes are no msgpack value.
bool skip_header(Reader &r, uint64_t *inner) {
    const uint8_t *at;
    if (!r.take(1, &at)) return false;
    const uint8_t b = *at;
    *inner = 0;
    uint64_t n = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return true;  // fixints, nil, bools
    if ((b & 0xf0) == 0x80) return *inner = 2 * (b & 0x0f), true;                    // fixmap
    if ((b & 0xf0) == 0x90) return *inner = b & 0x0f, true;                          // fixarray
    if ((b & 0xe0) == 0xa0) return r.take(b & 0x1f, &at);                            // fixstr
    switch (b) {
        case 0xc4: case 0xd9: return r.big_endian(1, &n) && r.take(n, &at);  // bin8, str8
        case 0xc5: case 0xda: return r.big_endian(2, &n) && r.take(n, &at);  // bin16, str16
        case 0xc6: case 0xdb: return r.big_endian(4, &n) && r.take(n, &at);  // bin32, str32
        case 0xc7: return r.big_endian(1, &n) && r.take(n + 1, &at);         // ext8 (length, type, data)
        case 0xc8: return r.big_endian(2, &n) && r.take(n + 1, &at);
        case 0xc9: return r.big_endian(4, &n) && r.take(n + 1, &at);
        case 0xca: case 0xce: case 0xd2: return r.take(4, &at);             // float32, uint32, int32
        case 0xcb: case 0xcf: case 0xd3: return r.take(8, &at);             // float64, uint64, int64
        case 0xcc: case 0xd0: return r.take(1, &at);
        case 0xcd: case 0xd1: return r.take(2, &at);
        case 0xd4: return r.take(2, &at);                                    // fixext 1 (type + data)
        case 0xd5: return r.take(3, &at);
        case 0xd6: return r.take(5, &at);
        case 0xd7: return r.take(9, &at);
        case 0xd8: return r.take(17, &at);
        case 0xdc: return r.big_endian(2, inner);                           // array16
        case 0xdd: return r.big_endian(4, inner);                           // array32
        case 0xde: return r.big_endian(2, &n) && (*inner = 2 * n, true);   // map16
        case 0xdf: return r.big_endian(4, &n) && (*inner = 2 * n, true);   // map32
        default: return false;                                              // 0xc1: never used
    }
}

// A non-negative integer value (the event code); false when the next value is anything else.
bool read_code(Reader &r, uint64_t *code) {
    const uint8_t *at;
    if (r.p >= r.end) return false;
    const uint8_t b = *r.p;
    if (b <= 0x7f) return r.take(1, &at), *code = b, true;
    if (b < 0xcc || b > 0xcf) return false;
    r.p += 1;
    return r.big_endian(1 << (b - 0xcc), code);
}

// The length of a str value (the thread id); false when the next value is not a str.
bool read_str(Reader &r, uint64_t *length) {
    const uint8_t *at;
    if (r.p >= r.end) return false;
    const uint8_t b = *r.p;
    r.p += 1;
    if ((b & 0xe0) == 0xa0) *length = b & 0x1f;
    else if (b == 0xd9 || b == 0xda || b == 0xdb) {
        if (!r.big_endian(1 << (b - 0xd9), length)) return false;
    } else return false;
    return r.take(*length, &at) && utf8(at, *length);
}

bool read_array(Reader &r, uint64_t *count) {
    const uint8_t *at;
    if (r.p >= r.end) return false;
    const uint8_t b = *r.p;
    if ((b & 0xf0) == 0x90) return r.take(1, &at), *count = b & 0x0f, true;
    r.p += 1;
    if (b == 0xdc) return r.big_endian(2, count);
    if (b == 0xdd) return r.big_endian(4, count);
    return false;
}

PyObject *malformed(const char *what, uint64_t value, uint64_t index) {
    PyErr_Format(PyExc_ValueError, "malformed %s at value %llu (event %llu)", what, (unsigned long long)value,
                 (unsigned long long)index);
    return nullptr;
}

PyObject *bad_value(const Walk &w, uint64_t value, uint64_t index) {
    if (w.problem == nullptr) return malformed("event stream", value, index);
    PyErr_Format(PyExc_ValueError, "%s at value %llu (event %llu)", w.problem, (unsigned long long)value,
                 (unsigned long long)index);
    return nullptr;
}

PyObject *scan_events(PyObject *, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_events(payload: bytes, names: int, first: int)");
        return nullptr;
    }
    const uint64_t names = PyLong_AsUnsignedLongLong(args[1]);
    const uint64_t first = PyLong_AsUnsignedLongLong(args[2]);
    if (PyErr_Occurred()) return nullptr;
    Reader r{(const uint8_t *)PyBytes_AS_STRING(args[0]),
             (const uint8_t *)PyBytes_AS_STRING(args[0]) + PyBytes_GET_SIZE(args[0])};
    uint64_t two, kind, values;
    if (!read_array(r, &two) || two != 2 || !read_code(r, &kind) || !read_array(r, &values)) {
        PyErr_SetString(PyExc_ValueError, "an EVENTS frame that is not a list of events");
        return nullptr;
    }
    Walk w{(const uint8_t *)PyBytes_AS_STRING(args[0])};
    uint64_t i = 0, index = first;
    while (i < values) {
        uint64_t code;
        if (!read_code(r, &code) || (code >> 2) >= names || (code & 3) > kFormThread || i + 2 + (code & 3) > values)
            return malformed("event stream", i, index);
        if (!walk_value(r, w, 2)) return bad_value(w, i + 1, index);  // the result, inside [3, [...]]
        if ((code & 3) >= kFormArgs && !walk_value(r, w, 2)) return bad_value(w, i + 2, index);
        if ((code & 3) == kFormThread) {
            uint64_t length;
            if (!read_str(r, &length) || length == 0 || length > kMaxThreadId)
                return malformed("thread id", i + 3, index);
        }
        i += 2 + (code & 3);
        ++index;
    }
    if (r.p != r.end) {
        PyErr_SetString(PyExc_ValueError, "extra data after the events of an EVENTS frame");
        return nullptr;
    }
    PyObject *exts = PyList_New((Py_ssize_t)w.exts.size());
    for (size_t k = 0; exts != nullptr && k < w.exts.size(); ++k) {
        PyObject *offset = PyLong_FromUnsignedLongLong(w.exts[k]);
        if (offset == nullptr) Py_CLEAR(exts);
        else PyList_SET_ITEM(exts, (Py_ssize_t)k, offset);
    }
    return exts ? Py_BuildValue("(KN)", (unsigned long long)(index - first), exts) : nullptr;
}

// ---- the events of a decoded flat stream ----------------------------------------------------------------

PyObject *str_main = nullptr;  // "0": the main thread's logical id

struct EventList {
    PyObject_HEAD
    PyObject *flat;      // tuple: the flat stream (a copy: nothing can change it under the offsets)
    PyObject *names;     // tuple of str: boundary names by id
    PyObject *event;     // the Event class
    PyObject *deferred;  // the DeferredEvent class
    Py_ssize_t first;    // the first event's index
    std::vector<Py_ssize_t> *offsets;  // where each event starts in flat
    std::vector<bool> *special;        // events the fast paths leave to Python: deferred, or replaced
    std::vector<bool> *defers;         // events made as DeferredEvent (marked by defer())
    PyObject *replaced;                // dict: index -> what stands in for the event there (set by item assignment)
};

struct EventCursor {
    PyObject_HEAD
    EventList *list;
    Py_ssize_t position;
};

PyTypeObject EventListType = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyTypeObject EventCursorType = {PyVarObject_HEAD_INIT(nullptr, 0)};

inline Py_ssize_t count_of(EventList *list) { return (Py_ssize_t)list->offsets->size(); }

// Event i's parts, borrowed (args may be a list: made a tuple when an Event is made).
struct Parts {
    PyObject *name, *result, *args, *tid;
};

inline Parts parts_of(EventList *list, Py_ssize_t i) {
    PyObject **values = &PyTuple_GET_ITEM(list->flat, 0);
    const Py_ssize_t at = (*list->offsets)[i];
    const long code = PyLong_AsLong(values[at]);  // checked when the list was made
    const int form = code & 3;
    return Parts{PyTuple_GET_ITEM(list->names, code >> 2), values[at + 1], form == kFormPlain ? Py_None : values[at + 2],
                 form == kFormThread ? values[at + 3] : str_main};
}

PyObject *make_event(EventList *list, Py_ssize_t i) {
    if ((*list->special)[i] && list->replaced != nullptr) {
        PyObject *key = PyLong_FromSsize_t(i);
        PyObject *stands = key ? PyDict_GetItemWithError(list->replaced, key) : nullptr;
        Py_XDECREF(key);
        if (stands != nullptr) return Py_INCREF(stands), stands;
        if (PyErr_Occurred()) return nullptr;
    }
    Parts parts = parts_of(list, i);
    PyObject *args = PyList_CheckExact(parts.args) ? PyList_AsTuple(parts.args) : (Py_INCREF(parts.args), parts.args);
    if (args == nullptr) return nullptr;
    PyObject *index = PyLong_FromSsize_t(list->first + i);
    if (index == nullptr) {
        Py_DECREF(args);
        return nullptr;
    }
    PyObject *stack[] = {index, parts.name, args, parts.result, parts.tid};
    PyObject *cls = (*list->defers)[i] ? list->deferred : list->event;
    PyObject *made = PyObject_Vectorcall(cls, stack, 5, nullptr);
    Py_DECREF(index);
    Py_DECREF(args);
    return made;
}

PyObject *eventlist_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *frames, *names, *event, *deferred;
    Py_ssize_t first;
    static const char *keywords[] = {"frames", "names", "first", "event", "deferred", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!nOO:EventList", (char **)keywords, &PyList_Type, &frames,
                                     &PyList_Type, &names, &first, &event, &deferred))
        return nullptr;
    // One tuple of all the frames' values: a copy nothing can change under the offsets.
    Py_ssize_t total = 0;
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(frames); ++f) {
        if (!PyList_CheckExact(PyList_GET_ITEM(frames, f))) {
            PyErr_SetString(PyExc_TypeError, "EventList: frames must be lists");
            return nullptr;
        }
        total += PyList_GET_SIZE(PyList_GET_ITEM(frames, f));
    }
    PyObject *flat = PyTuple_New(total);
    if (flat == nullptr) return nullptr;
    for (Py_ssize_t f = 0, at = 0; f < PyList_GET_SIZE(frames); ++f) {
        PyObject *frame = PyList_GET_ITEM(frames, f);
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(frame); ++k, ++at) {
            PyObject *value = PyList_GET_ITEM(frame, k);
            Py_INCREF(value);
            PyTuple_SET_ITEM(flat, at, value);
        }
    }
    auto offsets = new std::vector<Py_ssize_t>();
    const Py_ssize_t n = total, count = PyList_GET_SIZE(names);
    // Checked again, value by value, as format/events.py: _offsets does: the offsets below index the tuple unchecked,
    // so the list must hold what they say whoever made it.
    for (Py_ssize_t i = 0; i < n;) {
        PyObject *code = PyTuple_GET_ITEM(flat, i);
        long c = PyLong_CheckExact(code) ? PyLong_AsLong(code) : -1;
        if (c == -1 && PyErr_Occurred()) PyErr_Clear();
        const int width = 2 + (int)(c & 3);
        if (c < 0 || (c >> 2) >= count || (c & 3) > kFormThread || i + width > n) {
            const Py_ssize_t index = first + offsets->size();
            delete offsets;
            Py_DECREF(flat);
            return malformed("event stream", i, index);
        }
        if ((c & 3) == kFormThread) {
            PyObject *tid = PyTuple_GET_ITEM(flat, i + 3);
            if (!PyUnicode_Check(tid) || PyUnicode_GET_LENGTH(tid) == 0 || PyUnicode_GET_LENGTH(tid) > kMaxThreadId) {
                Py_ssize_t index = first + offsets->size();
                delete offsets;
                Py_DECREF(flat);
                return malformed("thread id", i + 3, index);
            }
        }
        offsets->push_back(i);
        i += width;
    }
    for (Py_ssize_t i = 0; i < count; ++i) {
        if (!PyUnicode_Check(PyList_GET_ITEM(names, i))) {
            delete offsets;
            Py_DECREF(flat);
            PyErr_SetString(PyExc_TypeError, "EventList: names must be str");
            return nullptr;
        }
    }
    EventList *self = (EventList *)type->tp_alloc(type, 0);
    names = self ? PyList_AsTuple(names) : nullptr;  // the same: a copy nothing changes (a few hundred names)
    if (names == nullptr) {
        Py_XDECREF(self);
        Py_DECREF(flat);
        delete offsets;
        return nullptr;
    }
    Py_INCREF(event);
    Py_INCREF(deferred);
    self->flat = flat;  // both new references
    self->names = names;
    self->event = event;
    self->deferred = deferred;
    self->first = first;
    self->offsets = offsets;
    self->defers = new std::vector<bool>(offsets->size(), false);
    self->special = new std::vector<bool>(offsets->size(), false);
    self->replaced = nullptr;
    return (PyObject *)self;
}

int eventlist_traverse(EventList *self, visitproc visit, void *arg) {
    Py_VISIT(self->flat);
    Py_VISIT(self->names);
    Py_VISIT(self->event);
    Py_VISIT(self->deferred);
    Py_VISIT(self->replaced);
    return 0;
}

int eventlist_clear(EventList *self) {
    Py_CLEAR(self->flat);
    Py_CLEAR(self->names);
    Py_CLEAR(self->event);
    Py_CLEAR(self->deferred);
    Py_CLEAR(self->replaced);
    return 0;
}

void eventlist_dealloc(EventList *self) {
    PyObject_GC_UnTrack(self);
    eventlist_clear(self);
    delete self->offsets;
    delete self->defers;
    delete self->special;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

// The names, flat stream and classes stay as they are for the list's life: a list that changes under the
// offsets would make them point anywhere. (flat is the reader's own list, handed over.)
Py_ssize_t eventlist_len(EventList *self) { return count_of(self); }

PyObject *eventlist_item(EventList *self, Py_ssize_t i) {
    if (i < 0 || i >= count_of(self)) {
        PyErr_SetString(PyExc_IndexError, "event index out of range");
        return nullptr;
    }
    return make_event(self, i);
}

PyObject *eventlist_subscript(EventList *self, PyObject *key) {
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) return nullptr;
        if (i < 0) i += count_of(self);
        return eventlist_item(self, i);
    }
    if (!PySlice_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "events are indexed by int or slice");
        return nullptr;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0) return nullptr;
    Py_ssize_t length = PySlice_AdjustIndices(count_of(self), &start, &stop, step);
    PyObject *out = PyList_New(length);
    for (Py_ssize_t k = 0; out != nullptr && k < length; ++k) {
        PyObject *made = make_event(self, start + k * step);
        if (made == nullptr) Py_CLEAR(out);
        else PyList_SET_ITEM(out, k, made);
    }
    return out;
}

PyObject *eventlist_iter(EventList *self) {
    EventCursor *cursor = PyObject_GC_New(EventCursor, &EventCursorType);
    if (cursor == nullptr) return nullptr;
    Py_INCREF(self);
    cursor->list = self;
    cursor->position = 0;
    PyObject_GC_Track(cursor);
    return (PyObject *)cursor;
}

PyObject *eventlist_tids(EventList *self, PyObject *) {
    const Py_ssize_t n = count_of(self);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out != nullptr && i < n; ++i) {
        PyObject *tid = parts_of(self, i).tid;
        Py_INCREF(tid);
        PyList_SET_ITEM(out, i, tid);
    }
    return out;
}

PyObject *eventlist_single_thread(EventList *self, PyObject *) {
    for (Py_ssize_t i = 0, n = count_of(self); i < n; ++i) {
        PyObject *tid = parts_of(self, i).tid;
        if (tid != str_main) {
            int same = PyUnicode_Compare(tid, str_main);
            if (same == -1 && PyErr_Occurred()) return nullptr;
            if (same != 0) Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

PyObject *eventlist_defer(EventList *self, PyObject *indices) {
    PyObject *fast = PySequence_Fast(indices, "defer(indices): a sequence of event indices");
    if (fast == nullptr) return nullptr;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(fast); ++k) {
        Py_ssize_t i = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(fast, k), PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) break;
        if (i < 0 || i >= count_of(self)) {
            PyErr_SetString(PyExc_IndexError, "event index out of range");
            break;
        }
        (*self->defers)[i] = (*self->special)[i] = true;
    }
    Py_DECREF(fast);
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
}

// events[i] = stand_in: what the replay reads at i from now on (boundaries/signals.py puts a watch there).
int eventlist_ass_subscript(EventList *self, PyObject *key, PyObject *value) {
    Py_ssize_t i = PyIndex_Check(key) ? PyNumber_AsSsize_t(key, PyExc_IndexError) : -1;
    if (i == -1 && PyErr_Occurred()) return -1;
    if (i < 0) i += count_of(self);
    if (value == nullptr || i < 0 || i >= count_of(self)) {
        PyErr_SetString(value == nullptr ? PyExc_TypeError : PyExc_IndexError,
                        value == nullptr ? "events cannot be deleted" : "event index out of range");
        return -1;
    }
    if (self->replaced == nullptr && (self->replaced = PyDict_New()) == nullptr) return -1;
    PyObject *index = PyLong_FromSsize_t(i);
    int done = index ? PyDict_SetItem(self->replaced, index, value) : -1;
    Py_XDECREF(index);
    if (done == 0) (*self->special)[i] = true;
    return done;
}

// The indices of the events that call `name`.
PyObject *eventlist_indices_of(EventList *self, PyObject *name) {
    Py_ssize_t id = -1;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(self->names) && id < 0; ++k) {
        int same = PyUnicode_Compare(PyTuple_GET_ITEM(self->names, k), name);
        if (same == -1 && PyErr_Occurred()) return nullptr;
        if (same == 0) id = k;
    }
    PyObject *out = PyList_New(0);
    PyObject **values = &PyTuple_GET_ITEM(self->flat, 0);
    for (Py_ssize_t i = 0, n = count_of(self); out != nullptr && id >= 0 && i < n; ++i) {
        if ((PyLong_AsLong(values[(*self->offsets)[i]]) >> 2) != id) continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == nullptr || PyList_Append(out, index) < 0) Py_CLEAR(out);
        Py_XDECREF(index);
    }
    return out;
}

PyMethodDef eventlist_methods[] = {
    {"indices_of", (PyCFunction)eventlist_indices_of, METH_O, "The indices of the events that call this name."},
    {"tids", (PyCFunction)eventlist_tids, METH_NOARGS, "Each event's logical thread id, in order."},
    {"single_thread", (PyCFunction)eventlist_single_thread, METH_NOARGS, "Whether every event is the main thread's."},
    {"defer", (PyCFunction)eventlist_defer, METH_O,
     "The events at these indices (from 0) hold values resolved when read: they are made as DeferredEvent."},
    {nullptr, nullptr, 0, nullptr},
};

PySequenceMethods eventlist_sequence = {(lenfunc)eventlist_len, nullptr, nullptr, (ssizeargfunc)eventlist_item};
PyMappingMethods eventlist_mapping = {(lenfunc)eventlist_len, (binaryfunc)eventlist_subscript,
                                     (objobjargproc)eventlist_ass_subscript};

// -- the cursor

int cursor_traverse(EventCursor *self, visitproc visit, void *arg) {
    Py_VISIT(self->list);
    return 0;
}

int cursor_clear(EventCursor *self) {
    Py_CLEAR(self->list);
    return 0;
}

void cursor_dealloc(EventCursor *self) {
    PyObject_GC_UnTrack(self);
    cursor_clear(self);
    PyObject_GC_Del(self);
}

PyObject *cursor_next(EventCursor *self) {
    if (self->list == nullptr || self->position >= count_of(self->list)) return nullptr;  // StopIteration
    return make_event(self->list, self->position++);
}

PyObject *cursor_length_hint(EventCursor *self, PyObject *) {
    return PyLong_FromSsize_t(self->list == nullptr ? 0 : count_of(self->list) - self->position);
}

PyObject *cursor_setstate(EventCursor *self, PyObject *position) {
    Py_ssize_t at = PyNumber_AsSsize_t(position, PyExc_OverflowError);
    if (at == -1 && PyErr_Occurred()) return nullptr;
    self->position = at < 0 ? 0 : at;
    Py_RETURN_NONE;
}

PyObject *cursor_follow(EventCursor *self, PyObject *list) {
    if (!PyObject_TypeCheck(list, &EventListType)) {
        PyErr_SetString(PyExc_TypeError, "follow(events): an EventList");
        return nullptr;
    }
    Py_INCREF(list);
    Py_XSETREF(self->list, (EventList *)list);
    self->position = 0;
    Py_RETURN_NONE;
}

PyMethodDef cursor_methods[] = {
    {"__length_hint__", (PyCFunction)cursor_length_hint, METH_NOARGS, "How many events are left."},
    {"__setstate__", (PyCFunction)cursor_setstate, METH_O, "Go to the event at this position."},
    {"follow", (PyCFunction)cursor_follow, METH_O, "Follow these events (an EventList) from their first."},
    {nullptr, nullptr, 0, nullptr},
};

// Whether recorded arguments (a list from the file, or None) equal a call's (a tuple, or None): 1, 0, -1 error.
int same_args(PyObject *recorded, PyObject *args) {
    if (recorded == args) return 1;
    if (PyList_CheckExact(recorded) && PyTuple_CheckExact(args)) {
        const Py_ssize_t n = PyList_GET_SIZE(recorded);
        if (n != PyTuple_GET_SIZE(args)) return 0;
        for (Py_ssize_t i = 0; i < n; ++i) {
            int same = PyObject_RichCompareBool(PyList_GET_ITEM(recorded, i), PyTuple_GET_ITEM(args, i), Py_EQ);
            if (same != 1) return same;
        }
        return 1;
    }
    if (PyList_CheckExact(recorded)) {  // what an Event holds is a tuple: compare as that
        PyObject *as_tuple = PyList_AsTuple(recorded);
        if (as_tuple == nullptr) return -1;
        int same = PyObject_RichCompareBool(as_tuple, args, Py_EQ);
        Py_DECREF(as_tuple);
        return same;
    }
    return PyObject_RichCompareBool(recorded, args, Py_EQ);
}

}  // namespace

int cursor_match(PyObject *cursor, PyObject *name, PyObject *args, PyObject **event, PyObject **result) {
    if (Py_TYPE(cursor) != &EventCursorType) return -2;
    EventCursor *c = (EventCursor *)cursor;
    *event = *result = nullptr;
    if (c->list == nullptr || c->position >= count_of(c->list)) return 0;
    EventList *list = c->list;
    const Py_ssize_t i = c->position++;
    Parts parts = parts_of(list, i);
    int same = parts.tid == str_main && !(*list->special)[i];
    if (same == 1 && parts.name != name) {
        same = PyUnicode_Compare(parts.name, name) == 0;
        if (PyErr_Occurred()) return -1;
    }
    if (same == 1) same = same_args(parts.args, args);
    if (same < 0) return -1;
    if (same == 1) {
        Py_INCREF(parts.result);
        *result = parts.result;
        return 1;
    }
    *event = make_event(list, i);
    return *event == nullptr ? -1 : 0;
}

PyObject *cursor_taken(PyObject *cursor) {
    EventCursor *c = (EventCursor *)cursor;
    return make_event(c->list, c->position - 1);
}

namespace {
PyMethodDef module_functions[] = {
    {"scan_events", (PyCFunction)(void (*)(void))scan_events, METH_FASTCALL,
     "scan_events(payload, names, first): (how many events an EVENTS frame's bytes hold, [start, end, is_key] of\n"
     "each ext value in them), checked without decoding (ValueError when they are malformed)."},
    {nullptr, nullptr, 0, nullptr},
};
}  // namespace

int add_events(PyObject *module) {
    str_main = PyUnicode_InternFromString("0");
    if (str_main == nullptr) return -1;
    EventListType.tp_name = "pytest_retrace._native.EventList";
    EventListType.tp_doc = "The events of a flat stream, made into Event objects when asked for.";
    EventListType.tp_basicsize = sizeof(EventList);
    EventListType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
    EventListType.tp_new = eventlist_new;
    EventListType.tp_dealloc = (destructor)eventlist_dealloc;
    EventListType.tp_traverse = (traverseproc)eventlist_traverse;
    EventListType.tp_clear = (inquiry)eventlist_clear;
    EventListType.tp_as_sequence = &eventlist_sequence;
    EventListType.tp_as_mapping = &eventlist_mapping;
    EventListType.tp_iter = (getiterfunc)eventlist_iter;
    EventListType.tp_methods = eventlist_methods;
    if (PyType_Ready(&EventListType) < 0) return -1;

    EventCursorType.tp_name = "pytest_retrace._native.EventCursor";
    EventCursorType.tp_doc = "A position in an EventList: iterating makes the events; the replay's fast paths read it.";
    EventCursorType.tp_basicsize = sizeof(EventCursor);
    EventCursorType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
    EventCursorType.tp_dealloc = (destructor)cursor_dealloc;
    EventCursorType.tp_traverse = (traverseproc)cursor_traverse;
    EventCursorType.tp_clear = (inquiry)cursor_clear;
    EventCursorType.tp_iter = PyObject_SelfIter;
    EventCursorType.tp_iternext = (iternextfunc)cursor_next;
    EventCursorType.tp_methods = cursor_methods;
    if (PyType_Ready(&EventCursorType) < 0) return -1;

    if (PyModule_AddObjectRef(module, "EventList", (PyObject *)&EventListType) < 0) return -1;
    if (PyModule_AddObjectRef(module, "EventCursor", (PyObject *)&EventCursorType) < 0) return -1;
    return PyModule_AddFunctions(module, module_functions);
}
