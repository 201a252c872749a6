#include "columns.hpp"

#include <cstring>
#include <string_view>
#include <unordered_map>

#include <pybind11/numpy.h>

#include "convert.hpp"

namespace ember_py {

namespace {

using ember::Cell;
using ember::ColumnView;

// Raised inside to give up on columns (the records then go as JSON text).
struct NotCells {};

std::string name_of(py::handle name) {
  if (!PyUnicode_Check(name.ptr())) raise(ember::invalid_argument("a column name is not a string"));
  return std::string(utf8(name));
}

// One Python value as a cell. A string is viewed in place and held in `keep`.
Cell cell_of(PyObject* o, std::vector<py::object>& keep) {
  Cell c;
  if (PyFloat_CheckExact(o)) {  // the usual types first, exactly
    c.type = Cell::Type::kNumber;
    c.number = PyFloat_AS_DOUBLE(o);
  } else if (PyUnicode_Check(o)) {  // numpy's str_ too
    c.type = Cell::Type::kString;
    c.text = utf8(o);
    keep.push_back(py::reinterpret_borrow<py::object>(o));
  } else if (o == Py_None) {
    c.type = Cell::Type::kNull;
  } else if (PyBool_Check(o)) {
    c.type = Cell::Type::kBool;
    c.integer = o == Py_True ? 1 : 0;
  } else if (PyFloat_Check(o)) {  // numpy's float64 too
    c.type = Cell::Type::kNumber;
    c.number = PyFloat_AS_DOUBLE(o);
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) {
      c.type = Cell::Type::kInteger;
      c.integer = x;
    } else {
      const unsigned long long u = PyLong_AsUnsignedLongLong(o);
      if (PyErr_Occurred() != nullptr) {
        PyErr_Clear();
        throw NotCells{};  // beyond 64 bits: JSON text carries its digits
      }
      c.type = Cell::Type::kUnsigned;
      c.unsigned_integer = u;
    }
  } else if (is_pandas_na(o)) {
    c.type = Cell::Type::kNull;
  } else {
    const py::handle h(o);
    if (!py::hasattr(h, "dtype") || !py::hasattr(h, "item") || py::isinstance<py::array>(h)) throw NotCells{};
    py::object item = h.attr("item")();  // a numpy scalar
    if (py::hasattr(item, "dtype")) throw NotCells{};
    c = cell_of(item.ptr(), keep);
    keep.push_back(std::move(item));
  }
  return c;
}

// A numpy dtype read in place, or nullopt (its values go as cells).
std::optional<ColumnView::Type> native_type(const py::array& a) {
  const py::dtype dt = a.dtype();
  if (!py::cast<bool>(dt.attr("isnative"))) return std::nullopt;
  const auto size = dt.itemsize();
  switch (dt.kind()) {
    case 'f':
      if (size == 8) return ColumnView::Type::kFloat64;
      if (size == 4) return ColumnView::Type::kFloat32;
      return std::nullopt;
    case 'i':
      if (size == 8) return ColumnView::Type::kInt64;
      if (size == 4) return ColumnView::Type::kInt32;
      if (size == 2) return ColumnView::Type::kInt16;
      return ColumnView::Type::kInt8;
    case 'u':
      if (size == 8) return ColumnView::Type::kUInt64;
      if (size == 4) return ColumnView::Type::kUInt32;
      if (size == 2) return ColumnView::Type::kUInt16;
      return ColumnView::Type::kUInt8;
    case 'b': return ColumnView::Type::kBool;
    default: return std::nullopt;
  }
}

ColumnBatch from_columns(const std::vector<std::pair<std::string, py::object>>& named) {
  const py::module_ np = py::module_::import("numpy");
  ColumnBatch out;
  out.names.reserve(named.size());
  out.cells.reserve(named.size());
  const auto check_rows = [&](std::size_t k, const std::string& name, std::size_t n) {
    if (k == 0) {
      out.rows = n;
    } else if (n != out.rows) {
      raise(ember::invalid_argument("column '" + name + "' has " + std::to_string(n) + " values where '" +
                                    named[0].first + "' has " + std::to_string(out.rows)));
    }
  };
  for (std::size_t k = 0; k < named.size(); ++k) {
    const std::string& name = named[k].first;
    if (PyList_Check(named[k].second.ptr()) || PyTuple_Check(named[k].second.ptr())) {
      // A list is its values (numpy would make lists of lists a second dimension).
      const py::object fast = py::reinterpret_steal<py::object>(PySequence_Fast(named[k].second.ptr(), "column"));
      const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(fast.ptr()));
      check_rows(k, name, n);
      std::vector<Cell>& cells = out.cells.emplace_back(n);
      for (std::size_t i = 0; i < n; ++i) cells[i] = cell_of(PySequence_Fast_GET_ITEM(fast.ptr(), i), out.keep);
      out.keep.push_back(fast);
      out.names.push_back(name);
      out.views.push_back({{}, ColumnView::Type::kCells, cells.data(), 0});
      continue;
    }
    py::array a = py::reinterpret_steal<py::array>(np.attr("asarray")(named[k].second).release());
    if (a.ndim() != 1) raise(ember::invalid_argument("column '" + name + "' is not one-dimensional"));
    const auto n = static_cast<std::size_t>(a.shape(0));
    check_rows(k, name, n);
    out.names.push_back(name);
    ColumnView view;
    if (const auto type = native_type(a)) {
      view.type = *type;
      view.data = a.data();
      view.stride = a.strides(0);
      out.keep.push_back(std::move(a));
    } else {  // objects, strings, float16, ...: each value once, as a cell
      std::vector<Cell>& cells = out.cells.emplace_back(n);
      out.keep.reserve(out.keep.size() + n);
      if (a.dtype().kind() == 'O') {  // its elements in place (each string viewed is held)
        const auto* base = static_cast<const char*>(a.data());
        for (std::size_t i = 0; i < n; ++i) {
          PyObject* o = nullptr;
          std::memcpy(&o, base + static_cast<std::ptrdiff_t>(i) * a.strides(0), sizeof o);
          cells[i] = cell_of(o != nullptr ? o : Py_None, out.keep);
        }
      } else {
        const py::list values = a.attr("tolist")();
        for (std::size_t i = 0; i < n; ++i) {
          cells[i] = cell_of(PyList_GET_ITEM(values.ptr(), static_cast<Py_ssize_t>(i)), out.keep);
        }
      }
      view.type = ColumnView::Type::kCells;
      view.data = cells.data();
    }
    out.views.push_back(view);
  }
  for (std::size_t k = 0; k < out.views.size(); ++k) out.views[k].name = out.names[k];
  return out;
}

// A list of dicts: one column of cells per key any of them has (absent where a record
// lacks it). Records usually share their keys' order: each key is first compared with
// the key the record before had at that position.
ColumnBatch from_dicts(py::handle list) {
  ColumnBatch out;
  const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(list.ptr()));
  PyObject** items = PySequence_Fast_ITEMS(list.ptr());
  out.rows = n;
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::size_t> order;  // the previous record's columns, by key position
  for (std::size_t i = 0; i < n; ++i) {
    PyObject* d = items[i];
    if (!PyDict_Check(d)) throw NotCells{};
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t pos = 0;
    std::size_t j = 0;
    while (PyDict_Next(d, &pos, &key, &value)) {
      if (!PyUnicode_Check(key)) throw NotCells{};  // JSON text says which key
      const std::string_view name = utf8(key);
      std::size_t col;
      if (j < order.size() && out.names[order[j]] == name) {
        col = order[j];
      } else {
        const auto it = index.find(std::string(name));
        if (it != index.end()) {
          col = it->second;
        } else {
          col = out.names.size();
          index.emplace(std::string(name), col);
          out.names.emplace_back(name);
          out.cells.emplace_back(n);  // absent until set
        }
        if (j < order.size()) order[j] = col;
        else order.push_back(col);
      }
      out.cells[col][i] = cell_of(value, out.keep);
      ++j;
    }
    if (i == 0) out.keep.reserve(out.keep.size() * n + 1);  // records alike hold as many strings
  }
  for (std::size_t k = 0; k < out.names.size(); ++k) {
    out.views.push_back({out.names[k], ColumnView::Type::kCells, out.cells[k].data(), 0});
  }
  return out;
}

}  // namespace

std::optional<ColumnBatch> columns_of(py::handle records) {
  try {
    if (PyList_Check(records.ptr()) || PyTuple_Check(records.ptr())) {
      const py::object fast = py::reinterpret_steal<py::object>(PySequence_Fast(records.ptr(), "records"));
      if (!fast) throw py::error_already_set();
      ColumnBatch out = from_dicts(fast);
      out.keep.push_back(fast);  // holds the dicts, and so every key the names came from
      return out;
    }
    std::vector<std::pair<std::string, py::object>> named;
    if (PyDict_Check(records.ptr())) {
      for (auto item : py::reinterpret_borrow<py::dict>(records)) {
        named.emplace_back(name_of(item.first), py::reinterpret_borrow<py::object>(item.second));
      }
      return from_columns(named);
    }
    if (py::hasattr(records, "columns") && py::hasattr(records, "items")) {  // a pandas DataFrame
      for (auto item : records.attr("items")()) {
        const auto pair = py::reinterpret_borrow<py::tuple>(item);
        named.emplace_back(name_of(pair[0]), pair[1].attr("to_numpy")());
      }
      return from_columns(named);
    }
  } catch (const NotCells&) {
  }
  return std::nullopt;
}

}  // namespace ember_py
