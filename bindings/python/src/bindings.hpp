#pragma once

// What each file of the extension adds to the module.

#include <memory>
#include <string>

#include <pybind11/pybind11.h>

#include "ember/model.hpp"

namespace ember_py {

namespace py = pybind11;

/// A Prediction owned by Python; its arrays share its tensors' memory.
struct PyPrediction {
  std::shared_ptr<ember::Prediction> p = std::make_shared<ember::Prediction>();
};

void bind_model(py::module_& m);
void bind_registry(py::module_& m);
void bind_serving(py::module_& m);
/// Model.load of a directory or bundle (GIL released while it loads).
py::object load_model(const std::string& path, const std::string& device, bool verify);

}  // namespace ember_py
