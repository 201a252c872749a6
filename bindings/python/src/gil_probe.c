/* Whether the GIL is held now, read from CPython's runtime state: 3.11 keeps it in
 * _PyRuntime.ceval.gil (internal headers). Used only to spin briefly, instead of sleeping,
 * while another thread holds the GIL for a moment (see gil.hpp). */
#define Py_BUILD_CORE 1
#include <Python.h>
#include "internal/pycore_runtime.h"

int ember_gil_locked(void) { return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked); }
