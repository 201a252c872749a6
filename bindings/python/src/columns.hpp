#pragma once

// Records column by column, without JSON text: a pandas DataFrame or a dict of columns
// (numeric numpy columns read in place, others as cells), or a list of dicts (cells).

#include <optional>
#include <vector>

#include <pybind11/pybind11.h>

#include "ember/schema.hpp"

namespace ember_py {

namespace py = pybind11;

/// What Model::predict_batch(Columns) reads, and everything its views point into: the
/// arrays, the lists of values and every string a cell views, held until this is
/// destroyed (with the GIL), so that nothing it reads can be freed while the GIL is
/// released, whatever other threads do to the caller's objects.
struct ColumnBatch {
  std::vector<ember::ColumnView> views;
  std::size_t rows = 0;
  std::vector<std::string> names;
  std::vector<std::vector<ember::Cell>> cells;  // by column, for columns of cells
  std::vector<py::object> keep;
  [[nodiscard]] ember::Columns columns() const { return {views, rows}; }
};

/// `records` column by column, or nullopt when they are not a frame, a dict of columns
/// or a list of dicts, or hold a value a cell cannot (a nested list or dict, an integer
/// beyond 64 bits, an object that is not a JSON scalar): those go as JSON text, which
/// says what is wrong with them. InvalidArgument for columns of different lengths, a
/// column that is not one-dimensional, or a name that is not a string.
std::optional<ColumnBatch> columns_of(py::handle records);

}  // namespace ember_py
