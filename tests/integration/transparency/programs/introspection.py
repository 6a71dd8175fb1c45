"""Code that inspects, pickles, wraps and prints builtins of time and os."""
import functools
import inspect
import os
import pickle
import time

try:
    print("signature", inspect.signature(time.time))
except ValueError as exc:
    print("no signature:", exc)
print("builtin:", inspect.isbuiltin(time.time), type(time.time).__name__)
clock = pickle.loads(pickle.dumps(time.time))
print("pickled clock is time.time:", clock is time.time, "reads", clock() > 0)


@functools.wraps(os.getpid)
def traced_getpid():
    return os.getpid()


print("wrapped", traced_getpid.__name__, traced_getpid.__module__, traced_getpid.__doc__)
print("pid", traced_getpid())
print(repr(time.sleep), repr(os.urandom), time.time.__qualname__)
print("at", time.time())
