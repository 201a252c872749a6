#pragma once

// What each file of the extension adds to the module.

#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <pybind11/pybind11.h>

#include "ember/metrics.hpp"
#include "ember/model.hpp"
#include "ember/monitor.hpp"
#include "ember/registry.hpp"

namespace ember_py {

namespace py = pybind11;

/// A Prediction owned by Python; its arrays share its tensors' memory (which a reused
/// Prediction never writes into: a stage writes in place only into a tensor nobody
/// else holds). The Prediction an answer leaves behind when Python lets it go is kept
/// for the next predict of the thread that let it go, which fills it without the GIL:
/// the memory of one answer is then freed and reused outside the GIL, as in a C++ loop
/// that reuses its Prediction, instead of being freed and allocated under it.
struct PyPrediction {
  PyPrediction();
  ~PyPrediction();
  PyPrediction(PyPrediction&&) noexcept = default;
  PyPrediction& operator=(PyPrediction&&) noexcept = default;
  PyPrediction(const PyPrediction&) = delete;
  PyPrediction& operator=(const PyPrediction&) = delete;
  std::shared_ptr<ember::Prediction> p;
};

/// True while the interpreter shuts down: callbacks then leave Python alone.
inline bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

/// A Python object held by a C++ callback: released with the GIL, and leaked rather than
/// touched while the interpreter is finalizing.
struct Held {
  PyObject* object;
  explicit Held(py::object o) : object(o.release().ptr()) {}
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  ~Held() {
    if (object == nullptr || finalizing()) return;
    py::gil_scoped_acquire gil;
    Py_DECREF(object);
  }
};

/// A C++ callback that calls `callable(convert(args...))` with the GIL from whatever
/// thread it runs on; what the callable raises is reported as unraisable (`where`), never
/// thrown into ember. Nothing happens while the interpreter is finalizing.
template <typename... Args, typename Convert>
std::function<void(const Args&...)> python_callback(py::object callable, const char* where, Convert convert) {
  if (callable.is_none()) return {};
  auto held = std::make_shared<Held>(std::move(callable));
  return [held, where, convert](const Args&... args) {
    if (finalizing()) return;
    py::gil_scoped_acquire gil;
    try {
      py::handle(held->object)(convert(args...));
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable(where);
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      py::error_already_set err;
      err.discard_as_unraisable(where);
    }
  };
}

/// `p`, destroyed without the GIL when Python drops the last reference: its destructor
/// may wait for a thread that is waiting for the GIL (a batcher handing an answer to a
/// future, a monitor's window telling an alert).
template <typename T>
std::shared_ptr<T> released_without_gil(std::shared_ptr<T> p) {
  T* raw = p.get();
  return std::shared_ptr<T>(raw, [owner = std::move(p)](T*) mutable {
    if (PyGILState_Check() != 0) {
      py::gil_scoped_release release;
      owner.reset();
    } else {
      owner.reset();
    }
  });
}

/// A rollout as the registry keeps it (plan and status parsed from their JSON).
py::dict rollout_dict(const ember::RolloutRecord& r);

void bind_model(py::module_& m);
void bind_monitoring(py::module_& m);
void bind_rollout(py::module_& m);
void bind_registry(py::module_& m);
void bind_serving(py::module_& m);
/// Observers for a model loaded from Python: `metrics` under the labels model=`name`,
/// version=`version` (watching the model once loaded), and `monitor`.
struct Watchers {
  std::shared_ptr<ember::Metrics> metrics;
  std::shared_ptr<ember::Monitor> monitor;
  void add_to(ember::ModelOptions& options, const std::string& name, const std::string& version) const;
  /// The model, after the metrics were told to watch it.
  std::shared_ptr<ember::Model> watch(std::unique_ptr<ember::Model> model) const;
};

}  // namespace ember_py
