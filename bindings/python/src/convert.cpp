#include "convert.hpp"

#include "columns.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <optional>

namespace ember_py {

namespace {

constexpr int kMaxDepth = 64;

[[noreturn]] void invalid(const std::string& message) { raise(ember::invalid_argument(message)); }

std::string type_name(py::handle v) { return Py_TYPE(v.ptr())->tp_name; }

void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Where a value sits, for error messages only: built when an error is raised or a
// container is entered, never for each scalar.
struct Where {
  const Where* parent = nullptr;
  std::string_view key;
  [[nodiscard]] std::string path() const {
    return parent == nullptr ? std::string(key) : parent->path() + "/" + std::string(key);
  }
};

void append_double(std::string& out, double v, const Where& where) {
  if (std::isnan(v)) {
    out += "null";  // pandas' missing value
    return;
  }
  if (!std::isfinite(v)) invalid(where.path() + ": infinity has no JSON form");
  char buf[32];
  char* end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  // Integral doubles print as "3": JSON reads that as an integer, which a "number"
  // feature accepts; an "integer" feature accepts 3.0 too. But the shortest form of a
  // large one may be all digits ("4645810780180239613952"), an integer beyond 64 bits
  // that no parser takes: those are written with an exponent.
  if (std::abs(v) >= 1e18 && std::none_of(buf, end, [](char c) { return c == '.' || c == 'e'; })) {
    end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific).ptr;
  }
  out.append(buf, end);
}

void append_int(std::string& out, long long v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}


void append_value(std::string& out, py::handle v, int depth, const Where& where);

void append_dict(std::string& out, py::handle d, int depth, const Where& where) {
  out += '{';
  bool first = true;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  Py_ssize_t pos = 0;
  while (PyDict_Next(d.ptr(), &pos, &key, &value)) {
    if (!PyUnicode_Check(key)) {
      invalid(where.path() + ": a key is not a string (" +
              type_name(key) + ")");
    }
    if (!first) out += ',';
    first = false;
    const std::string_view k = utf8(key);
    append_string(out, k);
    out += ':';
    append_value(out, value, depth + 1, Where{&where, k});
  }
  out += '}';
}

void append_value(std::string& out, py::handle v, int depth, const Where& where) {
  if (depth > kMaxDepth) invalid(where.path() + ": nested deeper than 64 levels");
  PyObject* o = v.ptr();
  if (o == Py_None) {
    out += "null";
  } else if (PyBool_Check(o)) {
    out += o == Py_True ? "true" : "false";
  } else if (PyFloat_Check(o)) {
    append_double(out, PyFloat_AS_DOUBLE(o), where);
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0) {
      out += std::string(py::str(v));  // a big integer: its digits
    } else {
      append_int(out, x);
    }
  } else if (PyUnicode_Check(o)) {
    append_string(out, utf8(v));
  } else if (PyDict_Check(o)) {
    append_dict(out, v, depth, where);
  } else if (PyList_Check(o) || PyTuple_Check(o)) {
    out += '[';
    const py::sequence seq = py::reinterpret_borrow<py::sequence>(v);
    for (std::size_t i = 0; i < seq.size(); ++i) {
      if (i > 0) out += ',';
      const std::string index = std::to_string(i);
      append_value(out, seq[i], depth + 1, Where{&where, index});
    }
    out += ']';
  } else if (is_pandas_na(v)) {
    out += "null";
  } else if (py::isinstance<py::array>(v)) {
    append_value(out, v.attr("tolist")(), depth, where);
  } else if (py::hasattr(v, "item") && py::hasattr(v, "dtype")) {
    append_value(out, v.attr("item")(), depth, where);  // a numpy scalar
  } else if (py::hasattr(v, "to_dict")) {
    append_value(out, v.attr("to_dict")(), depth, where);
  } else {
    invalid(where.path() + ": a " + type_name(v) + " has no JSON form");
  }
}

}  // namespace

std::string_view utf8(py::handle s) {
  PyObject* o = s.ptr();
  if (PyUnicode_IS_COMPACT_ASCII(o)) {  // the common case: its bytes are its UTF-8
    return {static_cast<const char*>(PyUnicode_DATA(o)), static_cast<std::size_t>(PyUnicode_GET_LENGTH(o))};
  }
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(o, &n);
  if (p == nullptr) throw py::error_already_set();
  return {p, static_cast<std::size_t>(n)};
}

py::object exception_of(const ember::Status& status, const ember::ValidationReport* report) {
  const py::module_ errors = py::module_::import("ember.errors");
  const std::string code(ember::status_code_name(status.code()));
  py::object cls = py::hasattr(errors, code.c_str()) ? errors.attr(code.c_str()) : errors.attr("Unknown");
  return cls(status.message(), report != nullptr ? errors_list(*report) : py::list());
}

[[noreturn]] void raise(const ember::Status& status, const ember::ValidationReport* report) {
  py::object exc = exception_of(status, report);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

py::list errors_list(const ember::ValidationReport& report) {
  py::list out;
  for (const auto& e : report.errors()) {
    py::dict d;
    d["instance_path"] = e.instance_path;
    d["schema_path"] = e.schema_path;
    d["keyword"] = e.keyword;
    d["message"] = e.message;
    out.append(std::move(d));
  }
  return out;
}

namespace {

// A record that is not text, written as JSON into `out` (cleared first).
void write_record(std::string& out, py::handle record) {
  out.clear();
  if (PyDict_Check(record.ptr())) {
    append_dict(out, record, 0, Where{});
    return;
  }
  if (py::hasattr(record, "to_dict")) {
    py::object d = record.attr("to_dict")();
    if (PyDict_Check(d.ptr())) {
      append_dict(out, d, 0, Where{});
      return;
    }
  }
  invalid("a record is a dict, a JSON string or a pandas row, not a " +
          type_name(record));
}

std::optional<std::string_view> text_of(py::handle record) {
  if (PyUnicode_Check(record.ptr())) return utf8(record);
  if (PyBytes_Check(record.ptr())) {
    char* data = nullptr;
    Py_ssize_t n = 0;
    if (PyBytes_AsStringAndSize(record.ptr(), &data, &n) != 0) throw py::error_already_set();
    return std::string_view(data, static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

}  // namespace

std::string record_json(py::handle record) {
  if (auto text = text_of(record)) return std::string(*text);
  std::string out;
  write_record(out, record);
  return out;
}

std::string_view record_text(py::handle record) {
  if (auto text = text_of(record)) return *text;
  thread_local std::string buffer;  // keeps its capacity: a warm call allocates nothing
  write_record(buffer, record);
  return buffer;
}

std::vector<std::string> records_json(py::handle records) {
  std::vector<std::string> out;
  if (PyList_Check(records.ptr()) || PyTuple_Check(records.ptr())) {
    const py::sequence seq = py::reinterpret_borrow<py::sequence>(records);
    out.reserve(seq.size());
    for (std::size_t i = 0; i < seq.size(); ++i) out.push_back(record_json(seq[i]));
    return out;
  }
  // Columns whose values a Cell cannot hold (lists, dicts, big integers): record by record.
  std::vector<std::pair<std::string, py::list>> columns;
  const py::module_ np = py::module_::import("numpy");
  const auto add = [&](py::handle name, py::handle values) {
    if (!PyUnicode_Check(name.ptr())) invalid("a column name is not a string");
    const bool list = PyList_Check(values.ptr()) || PyTuple_Check(values.ptr());
    py::object listed = list ? py::reinterpret_steal<py::object>(PySequence_List(values.ptr()))
                             : py::object(np.attr("asarray")(values).attr("tolist")());
    if (!listed) throw py::error_already_set();
    columns.emplace_back(std::string(utf8(name)), py::reinterpret_borrow<py::list>(listed));
  };
  if (PyDict_Check(records.ptr())) {
    for (auto item : py::reinterpret_borrow<py::dict>(records)) add(item.first, item.second);
  } else if (py::hasattr(records, "columns") && py::hasattr(records, "items")) {  // a pandas DataFrame
    for (auto item : records.attr("items")()) {
      const auto pair = py::reinterpret_borrow<py::tuple>(item);
      add(pair[0], pair[1].attr("to_numpy")());
    }
  } else {
    invalid("records are a list of records, a pandas DataFrame or a dict of columns, not a " +
            type_name(records));
  }
  const std::size_t rows = columns.empty() ? 0 : columns[0].second.size();
  for (const auto& [name, values] : columns) {
    if (values.size() != rows) invalid("column '" + name + "' has " + std::to_string(values.size()) + " values");
  }
  out.reserve(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    py::dict row;
    for (const auto& [name, values] : columns) row[py::str(name)] = values[r];
    out.push_back(record_json(row));
  }
  return out;
}

std::vector<std::string> records_json(const ColumnBatch& batch) {
  using ember::Cell;
  using ember::ColumnView;
  std::vector<std::string> names;  // each as a JSON string and a colon
  for (const auto& v : batch.views) {
    std::string key;
    append_string(key, v.name);
    names.push_back(key + ":");
  }
  std::vector<std::string> out(batch.rows);
  for (std::size_t r = 0; r < batch.rows; ++r) {
    std::string& s = out[r];
    s += '{';
    bool first = true;
    for (std::size_t k = 0; k < batch.views.size(); ++k) {
      const ColumnView& v = batch.views[k];
      const Cell c = ember::cell_at(v, r);
      if (c.type == Cell::Type::kAbsent) continue;
      if (!first) s += ',';
      first = false;
      s += names[k];
      switch (c.type) {
        case Cell::Type::kBool: s += c.integer != 0 ? "true" : "false"; break;
        case Cell::Type::kInteger: append_int(s, c.integer); break;
        case Cell::Type::kUnsigned: s += std::to_string(c.unsigned_integer); break;
        case Cell::Type::kString: append_string(s, c.text); break;
        case Cell::Type::kNumber:
          // An infinity as a number beyond double's range: its record is refused, not the call.
          if (std::isinf(c.number)) s += c.number > 0 ? "1e999" : "-1e999";
          else append_double(s, c.number, Where{});
          break;
        default: s += "null"; break;
      }
    }
    s += '}';
  }
  return out;
}

py::array tensor_array(const ember::Tensor& tensor) {
  using ember::DType;
  py::dtype dtype;
  switch (tensor.dtype()) {
    case DType::kFloat32: dtype = py::dtype::of<float>(); break;
    case DType::kFloat64: dtype = py::dtype::of<double>(); break;
    case DType::kFloat16: dtype = py::dtype("float16"); break;
    case DType::kInt64: dtype = py::dtype::of<std::int64_t>(); break;
    case DType::kInt32: dtype = py::dtype::of<std::int32_t>(); break;
    case DType::kInt8: dtype = py::dtype::of<std::int8_t>(); break;
    case DType::kUInt8: dtype = py::dtype::of<std::uint8_t>(); break;
    case DType::kBool: dtype = py::dtype::of<bool>(); break;
    case DType::kBFloat16: {  // numpy has no bfloat16: float32 values
      std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
      for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(tensor.at(i).value_or(NAN));
      py::array_t<float> a(std::vector<py::ssize_t>(tensor.shape().begin(), tensor.shape().end()));
      std::memcpy(a.mutable_data(), values.data(), values.size() * sizeof(float));
      return std::move(a);
    }
  }
  std::vector<py::ssize_t> shape(tensor.shape().begin(), tensor.shape().end());
  if (!tensor.device().is_cpu()) raise(ember::failed_precondition("an output is in a device's memory"));
  if (!tensor.owns_data()) {  // memory ember does not own: a copy the array owns
    py::array a(dtype, shape);
    std::memcpy(a.mutable_data(), tensor.data(), tensor.nbytes());
    return a;
  }
  auto* keep = new ember::Tensor(tensor);  // shares the buffer; released with the array
  py::capsule owner(keep, [](void* p) { delete static_cast<ember::Tensor*>(p); });
  py::array a(dtype, shape, {}, keep->data(), owner);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

}  // namespace ember_py
