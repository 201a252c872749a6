#pragma once

// What each file of the extension adds to the module.

#include <memory>
#include <string>

#include <pybind11/pybind11.h>

#include "ember/model.hpp"

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

void bind_model(py::module_& m);
void bind_registry(py::module_& m);
void bind_serving(py::module_& m);
/// Model.load of a directory or bundle (GIL released while it loads).
py::object load_model(const std::string& path, const std::string& device, bool verify);

}  // namespace ember_py
