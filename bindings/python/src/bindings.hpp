#pragma once

// What each file of the extension adds to the module.

#include <string>

#include <pybind11/pybind11.h>

namespace ember_py {

namespace py = pybind11;

void bind_model(py::module_& m);
void bind_registry(py::module_& m);
/// Model.load of a directory or bundle (GIL released while it loads).
py::object load_model(const std::string& path, const std::string& device, bool verify);

}  // namespace ember_py
