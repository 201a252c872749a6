#include "json_tensors.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace ember::cli {
namespace {

constexpr std::size_t kMaxDims = 32;

const char* json_type(const nlohmann::json& v) { return v.type_name(); }

// Walks nested arrays breadth-first along the first element to find the shape, then
// checks every element against it while copying the leaves in row-major order.
class Reader {
 public:
  Reader(DType dtype, std::vector<std::int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {}

  Status read(const nlohmann::json& v, std::size_t depth, const std::string& path) {
    if (depth == shape_.size()) return leaf(v, path);
    if (!v.is_array()) {
      return invalid_argument(path + ": expected an array of " + std::to_string(shape_[depth]) + " elements, got " +
                              json_type(v));
    }
    if (static_cast<std::int64_t>(v.size()) != shape_[depth]) {
      return invalid_argument(path + ": ragged array: " + std::to_string(v.size()) + " elements where the first row has " +
                              std::to_string(shape_[depth]));
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      EMBER_RETURN_IF_ERROR(read(v[i], depth + 1, path + "/" + std::to_string(i)));
    }
    return {};
  }

  std::vector<unsigned char> bytes;

 private:
  template <typename T>
  void push(T value) {
    const auto* p = reinterpret_cast<const unsigned char*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }

  template <typename T>
  Status push_integer(const nlohmann::json& v, const std::string& path) {
    if (!v.is_number_integer()) {
      return invalid_argument(path + ": expected an integer for " + std::string(dtype_name(dtype_)) + ", got " +
                              (v.is_number() ? "a fractional number" : json_type(v)));
    }
    bool in_range;
    if (v.is_number_unsigned()) {
      in_range = v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    } else {
      const auto x = v.get<std::int64_t>();
      in_range = x >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                 x <= static_cast<std::int64_t>(std::numeric_limits<T>::max());
    }
    if (!in_range) return invalid_argument(path + ": " + v.dump() + " does not fit " + std::string(dtype_name(dtype_)));
    push<T>(static_cast<T>(v.is_number_unsigned() ? static_cast<std::int64_t>(v.get<std::uint64_t>())
                                                  : v.get<std::int64_t>()));
    return {};
  }

  Status leaf(const nlohmann::json& v, const std::string& path) {
    switch (dtype_) {
      case DType::kBool:
        if (!v.is_boolean()) return invalid_argument(path + ": expected true or false, got " + json_type(v));
        push<std::uint8_t>(v.get<bool>() ? 1 : 0);
        return {};
      case DType::kFloat32:
      case DType::kFloat64: {
        if (!v.is_number()) return invalid_argument(path + ": expected a number, got " + std::string(json_type(v)));
        const double x = v.get<double>();
        if (dtype_ == DType::kFloat64) {
          push<double>(x);
        } else {
          if (std::isfinite(x) && std::abs(x) > static_cast<double>(std::numeric_limits<float>::max())) {
            return invalid_argument(path + ": " + v.dump() + " overflows float32");
          }
          push<float>(static_cast<float>(x));
        }
        return {};
      }
      case DType::kInt64: return push_integer<std::int64_t>(v, path);
      case DType::kInt32: return push_integer<std::int32_t>(v, path);
      case DType::kInt8: return push_integer<std::int8_t>(v, path);
      case DType::kUInt8: return push_integer<std::uint8_t>(v, path);
      case DType::kFloat16:
      case DType::kBFloat16: break;
    }
    return invalid_argument(path + ": dtype " + std::string(dtype_name(dtype_)) + " cannot be read from JSON");
  }

  DType dtype_;
  std::vector<std::int64_t> shape_;
};

Result<std::vector<std::int64_t>> infer_shape(const nlohmann::json& v, const std::string& path) {
  std::vector<std::int64_t> shape;
  const nlohmann::json* cur = &v;
  while (cur->is_array()) {
    if (shape.size() == kMaxDims) return invalid_argument(path + ": more than " + std::to_string(kMaxDims) + " dimensions");
    shape.push_back(static_cast<std::int64_t>(cur->size()));
    if (cur->empty()) break;
    cur = &(*cur)[0];
  }
  return shape;
}

bool is_typed_object(const nlohmann::json& v) {
  if (!v.is_object() || !v.contains("data")) return false;
  for (const auto& item : v.items()) {
    if (item.key() != "data" && item.key() != "dtype") return false;
  }
  return true;
}

// The first leaf decides bool vs float32 for untyped arrays.
DType default_dtype(const nlohmann::json& v) {
  const nlohmann::json* cur = &v;
  while (cur->is_array() && !cur->empty()) cur = &(*cur)[0];
  return cur->is_boolean() ? DType::kBool : DType::kFloat32;
}

template <typename F>
void append_float(std::string& out, F x) {
  if (std::isnan(x)) {
    out += "\"NaN\"";
  } else if (std::isinf(x)) {
    out += x > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[64];
    char* end = std::to_chars(buf, buf + sizeof(buf), x).ptr;
    // The shortest form of a large integral value may be all digits: a float written as
    // an integer (beyond 64 bits, past what most JSON readers take). Give it an exponent.
    if (std::abs(static_cast<double>(x)) >= 1e18 && std::none_of(buf, end, [](char c) { return c == '.' || c == 'e'; })) {
      end = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific).ptr;
    }
    out.append(buf, end);
  }
}

void append_element(std::string& out, const Tensor& t, std::int64_t i) {
  const void* base = t.data();
  const auto idx = static_cast<std::size_t>(i);
  switch (t.dtype()) {
    case DType::kFloat32: append_float(out, static_cast<const float*>(base)[idx]); break;
    case DType::kFloat64: append_float(out, static_cast<const double*>(base)[idx]); break;
    case DType::kFloat16:
    case DType::kBFloat16: append_float(out, static_cast<float>(t.at(idx).value_or(NAN))); break;  // exact: a widened float
    case DType::kInt64: out += std::to_string(static_cast<const std::int64_t*>(base)[idx]); break;
    case DType::kInt32: out += std::to_string(static_cast<const std::int32_t*>(base)[idx]); break;
    case DType::kInt8: out += std::to_string(static_cast<const std::int8_t*>(base)[idx]); break;
    case DType::kUInt8: out += std::to_string(static_cast<const std::uint8_t*>(base)[idx]); break;
    case DType::kBool: out += static_cast<const std::uint8_t*>(base)[idx] ? "true" : "false"; break;
  }
}

void append_nested(std::string& out, const Tensor& t, std::size_t depth, std::int64_t& next) {
  if (depth == t.shape().size()) {
    append_element(out, t, next++);
    return;
  }
  out += '[';
  for (std::int64_t i = 0; i < t.shape()[depth]; ++i) {
    if (i) out += ", ";
    append_nested(out, t, depth + 1, next);
  }
  out += ']';
}

}  // namespace

Result<Tensor> tensor_from_json(const nlohmann::json& value, const std::string& path) {
  DType dtype;
  const nlohmann::json* data = &value;
  if (value.is_object()) {
    if (!is_typed_object(value)) {
      return invalid_argument(path + ": expected an array or {\"dtype\": ..., \"data\": [...]}");
    }
    data = &value["data"];
    if (value.contains("dtype")) {
      if (!value["dtype"].is_string()) return invalid_argument(path + "/dtype: expected a string");
      auto parsed = parse_dtype(value["dtype"].get<std::string>());
      if (!parsed.ok()) return parsed.status().with_context(path + "/dtype");
      dtype = *parsed;
    } else {
      dtype = default_dtype(*data);
    }
  } else if (value.is_array()) {
    dtype = default_dtype(value);
  } else if (value.is_number() || value.is_boolean()) {
    dtype = value.is_boolean() ? DType::kBool : DType::kFloat32;
  } else {
    return invalid_argument(path + ": expected an array of numbers, got " + std::string(value.type_name()));
  }
  auto shape = infer_shape(*data, path);
  if (!shape.ok()) return shape.status();
  Reader reader(dtype, *shape);
  EMBER_RETURN_IF_ERROR(reader.read(*data, 0, path.empty() ? "" : path));
  auto t = Tensor::zeros(dtype, *shape);
  if (!t.ok()) return t.status();
  if (!reader.bytes.empty()) std::memcpy(t->data(), reader.bytes.data(), reader.bytes.size());
  return t;
}

Result<NamedTensors> inputs_from_json(const nlohmann::json& doc, bool& positional) {
  NamedTensors inputs;
  positional = doc.is_array() || is_typed_object(doc);
  if (positional) {
    auto t = tensor_from_json(doc, "");
    if (!t.ok()) return t.status();
    EMBER_RETURN_IF_ERROR(inputs.add("0", std::move(t).value()));
    return inputs;
  }
  if (!doc.is_object()) {
    return invalid_argument("the input must be an array (one input) or an object of named inputs, got " +
                            std::string(doc.type_name()));
  }
  if (doc.empty()) return invalid_argument("the input object names no inputs");
  for (const auto& item : doc.items()) {
    auto t = tensor_from_json(item.value(), "/" + item.key());
    if (!t.ok()) return t.status();
    EMBER_RETURN_IF_ERROR(inputs.add(item.key(), std::move(t).value()));
  }
  return inputs;
}

std::string tensor_to_json_text(const Tensor& tensor) {
  std::string out;
  std::int64_t next = 0;
  append_nested(out, tensor, 0, next);
  return out;
}

nlohmann::ordered_json error_json(const ValidationError& e) {
  return {{"instance_path", e.instance_path}, {"schema_path", e.schema_path}, {"keyword", e.keyword},
          {"message", e.message}};
}

}  // namespace ember::cli
