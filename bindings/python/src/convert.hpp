#pragma once

// Between Python and ember: records (dicts, JSON text, pandas rows and frames, dicts of
// numpy columns) to JSON text, tensors to numpy arrays that share ember's memory, and
// Status codes to ember.errors exceptions.

#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "gil.hpp"

#include "ember/schema.hpp"
#include "ember/status.hpp"
#include "ember/tensor.hpp"

namespace ember_py {

namespace py = pybind11;

/// The ember.errors exception for `status` (with `report`'s validation errors as data),
/// not raised. Call with the GIL held.
py::object exception_of(const ember::Status& status, const ember::ValidationReport* report = nullptr);
/// Raises the ember.errors class of `status` (with `report`'s validation errors as
/// data). Call with the GIL held.
[[noreturn]] void raise(const ember::Status& status, const ember::ValidationReport* report = nullptr);
/// Raises unless OK.
inline void check(const ember::Status& status) {
  if (!status.ok()) raise(status);
}
template <typename T>
T value_or_raise(ember::Result<T>&& r) {
  if (!r.ok()) raise(r.status());
  return std::move(*r);
}

/// Runs `f` without the GIL; returns its value, or raises its error (a Status-returning
/// `f` returns nothing).
template <typename F>
auto unlocked(F&& f) {
  auto r = [&] {
    GilRelease release;
    return f();
  }();
  if constexpr (std::is_same_v<decltype(r), ember::Status>) {
    check(r);
  } else {
    return value_or_raise(std::move(r));
  }
}

/// A str's UTF-8, read in place (valid while the str lives). Call with the GIL held.
std::string_view utf8(py::handle s);

/// pandas.NA, a missing value like None (recognised without importing pandas).
inline bool is_pandas_na(py::handle v) { return std::strcmp(Py_TYPE(v.ptr())->tp_name, "NAType") == 0; }

/// One record as JSON text: a str (used as it is), bytes (UTF-8), a dict (keys are
/// strings; values None, bool, int, float, str, lists, dicts, numpy scalars and arrays;
/// NaN becomes null, infinities are refused), or anything with to_dict() (a pandas row).
/// ember.InvalidArgument for anything else or nesting deeper than 64.
std::string record_json(py::handle record);

/// The same as a view for a call that releases the GIL: a str or bytes argument is read
/// in place (it stays alive and unchanged for the call); anything else is written into
/// a buffer of this thread, valid until its next record_text.
std::string_view record_text(py::handle record);

/// Records as JSON texts: a list or tuple of records, a pandas DataFrame, or a dict of
/// equally long columns (numpy arrays or lists), record by record (for values a column of
/// cells cannot hold: see columns_of).
std::vector<std::string> records_json(py::handle records);

struct ColumnBatch;
/// The records of a batch read column by column, as JSON texts (for a schema that needs
/// JSON): absent cells left out, NaN as null; an infinity is written beyond double's
/// range, so that its record is refused rather than the call.
std::vector<std::string> records_json(const ColumnBatch& batch);

/// A numpy array over the tensor's memory (kept alive by the array), read-only: the
/// answer may be shared (a cache stage's). A tensor that does not own its memory, or
/// whose dtype numpy lacks (bfloat16), is copied.
py::array tensor_array(const ember::Tensor& tensor);

/// The validation errors as a list of dicts.
py::list errors_list(const ember::ValidationReport& report);

}  // namespace ember_py
