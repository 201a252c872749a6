#pragma once

// Instances as the validator walks them: a parsed JSON value (SimdValue) or one scalar
// of a Record or a column (ScalarValue), behind one interface, and what is said about them in
// messages. Included by validate.cpp only.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_internal.hpp"
#include "schema_internal.hpp"

namespace ember::detail {
namespace {  // one translation unit uses these

struct SimdValue {
  explicit SimdValue(simdjson::dom::element element) noexcept : e(element), t(json_type_of(element)) {}
  simdjson::dom::element e;
  JsonType t;

  // By value: iterating a temporary simdjson_result would dangle.
  simdjson::dom::array arr() const noexcept {
    simdjson::dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) return {};
    return a;
  }
  simdjson::dom::object obj() const noexcept {
    simdjson::dom::object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) return {};
    return o;
  }

  JsonType type() const noexcept { return t; }
  bool as_bool() const noexcept { return e.get_bool().value_unsafe(); }
  double as_double() const noexcept {
    switch (t) {
      case JsonType::kInt64: return static_cast<double>(e.get_int64().value_unsafe());
      case JsonType::kUint64: return static_cast<double>(e.get_uint64().value_unsafe());
      default: return e.get_double().value_unsafe();
    }
  }
  // The exact integer, or kNotInteger.
  std::int64_t as_exact_integer() const noexcept {
    switch (t) {
      case JsonType::kInt64: return e.get_int64().value_unsafe();
      case JsonType::kUint64: {
        const std::uint64_t u = e.get_uint64().value_unsafe();
        return u <= static_cast<std::uint64_t>(INT64_MAX) ? static_cast<std::int64_t>(u) : kNotInteger;
      }
      default: return exact_integer(e.get_double().value_unsafe());
    }
  }
  std::string_view as_string() const noexcept { return e.get_string().value_unsafe(); }
  template <typename F>
  bool for_items(F&& f) const {
    std::size_t i = 0;
    for (simdjson::dom::element x : arr()) {
      if (!f(i++, SimdValue(x))) return false;
    }
    return true;
  }
  std::size_t array_size() const noexcept {
    std::size_t n = 0;
    for ([[maybe_unused]] simdjson::dom::element x : arr()) ++n;
    return n;
  }
  template <typename F>
  bool for_fields(F&& f) const {
    for (auto field : obj()) {
      if (!f(field.key, SimdValue(field.value))) return false;
    }
    return true;
  }
  std::size_t object_size() const noexcept {
    std::size_t n = 0;
    for ([[maybe_unused]] auto field : obj()) ++n;
    return n;
  }
  void canonical(std::string& out) const {
    switch (type()) {
      case JsonType::kObject: {
        std::vector<std::pair<std::string_view, simdjson::dom::element>> fields;
        for (auto field : obj()) fields.emplace_back(field.key, field.value);
        std::sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        out += '{';
        for (std::size_t i = 0; i < fields.size(); ++i) {
          if (i) out += ',';
          out += nlohmann::json(std::string(fields[i].first)).dump();
          out += ':';
          SimdValue(fields[i].second).canonical(out);
        }
        out += '}';
        return;
      }
      case JsonType::kArray: {
        out += '[';
        bool first = true;
        for (simdjson::dom::element x : arr()) {
          if (!first) out += ',';
          first = false;
          SimdValue(x).canonical(out);
        }
        out += ']';
        return;
      }
      case JsonType::kInt64: out += std::to_string(e.get_int64().value_unsafe()); return;
      case JsonType::kUint64: out += std::to_string(e.get_uint64().value_unsafe()); return;
      case JsonType::kDouble: append_canonical_number(out, as_double()); return;
      case JsonType::kString: out += nlohmann::json(std::string(as_string())).dump(); return;
      case JsonType::kBool: out += as_bool() ? "true" : "false"; return;
      case JsonType::kNull: out += "null"; return;
    }
  }
};

// One scalar: a Record's value, a Cell of a column, or a coerced value. Never an array
// or object. A view: a string stays where it was.
struct ScalarValue {
  explicit ScalarValue(const Record::Value& v) noexcept {
    switch (v.index()) {
      case 1: t = JsonType::kBool; b = std::get<bool>(v); break;
      case 2: t = JsonType::kInt64; i = std::get<std::int64_t>(v); break;
      case 3: t = JsonType::kDouble; d = std::get<double>(v); break;
      case 4: t = JsonType::kString; s = std::get<std::string>(v); break;
      default: break;
    }
  }
  explicit ScalarValue(const Cell& c) noexcept {
    switch (c.type) {
      case Cell::Type::kBool: t = JsonType::kBool; b = c.integer != 0; break;
      case Cell::Type::kInteger: t = JsonType::kInt64; i = c.integer; break;
      case Cell::Type::kUnsigned: t = JsonType::kUint64; u = c.unsigned_integer; break;
      case Cell::Type::kNumber: t = JsonType::kDouble; d = c.number; break;
      case Cell::Type::kString: t = JsonType::kString; s = c.text; break;
      default: break;  // null (an absent cell never gets here)
    }
  }
  JsonType t = JsonType::kNull;
  bool b = false;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
  std::string_view s;

  JsonType type() const noexcept { return t; }
  bool as_bool() const noexcept { return b; }
  double as_double() const noexcept {
    return t == JsonType::kInt64 ? static_cast<double>(i) : t == JsonType::kUint64 ? static_cast<double>(u) : d;
  }
  std::int64_t as_exact_integer() const noexcept {
    switch (t) {
      case JsonType::kInt64: return i;
      case JsonType::kUint64: return u <= static_cast<std::uint64_t>(INT64_MAX) ? static_cast<std::int64_t>(u) : kNotInteger;
      default: return exact_integer(d);
    }
  }
  std::string_view as_string() const noexcept { return s; }
  template <typename F>
  bool for_items(F&&) const { return true; }
  std::size_t array_size() const noexcept { return 0; }
  template <typename F>
  bool for_fields(F&&) const { return true; }
  std::size_t object_size() const noexcept { return 0; }
  void canonical(std::string& out) const {
    switch (t) {
      case JsonType::kInt64: out += std::to_string(i); return;
      case JsonType::kUint64: out += std::to_string(u); return;
      case JsonType::kDouble: append_canonical_number(out, d); return;
      case JsonType::kString: out += nlohmann::json(std::string(s)).dump(); return;
      case JsonType::kBool: out += b ? "true" : "false"; return;
      default: out += "null"; return;
    }
  }
};

template <typename V>
bool is_number(const V& v) {
  const JsonType t = v.type();
  return t == JsonType::kInt64 || t == JsonType::kUint64 || t == JsonType::kDouble;
}

template <typename V>
bool is_integral(const V& v) {
  const JsonType t = v.type();
  if (t == JsonType::kInt64 || t == JsonType::kUint64) return true;
  if (t != JsonType::kDouble) return false;
  const double d = v.as_double();
  return std::isfinite(d) && d == std::floor(d);
}

template <typename V>
std::uint8_t type_bit(const V& v) {
  switch (v.type()) {
    case JsonType::kNull: return kNullBit;
    case JsonType::kBool: return kBoolBit;
    case JsonType::kInt64:
    case JsonType::kUint64: return kIntegerBit;
    case JsonType::kDouble: return is_integral(v) ? kIntegerBit : kNumberBit;
    case JsonType::kString: return kStringBit;
    case JsonType::kArray: return kArrayBit;
    case JsonType::kObject: return kObjectBit;
  }
  return 0;
}

std::string type_names(std::uint8_t bits) {
  std::string out;
  const auto add = [&](const char* s) {
    if (!out.empty()) out += " or ";
    out += s;
  };
  if (bits & kObjectBit) add("object");
  if (bits & kArrayBit) add("array");
  if (bits & kStringBit) add("string");
  if (bits & kNumberBit) add("number");
  else if (bits & kIntegerBit) add("integer");
  if (bits & kBoolBit) add("boolean");
  if (bits & kNullBit) add("null");
  return out;
}

std::string number_text(double x) {
  std::string out;
  append_canonical_number(out, x);
  return out;
}

std::string quote_text(std::string_view s) {
  constexpr std::size_t kMax = 60;
  std::string out = nlohmann::json(std::string(s.substr(0, kMax))).dump(-1, ' ', false,
                                                                         nlohmann::json::error_handler_t::replace);
  if (s.size() > kMax) out.insert(out.size() - 1, "...");
  return out;
}

template <typename V>
std::string describe(const V& v) {
  switch (v.type()) {
    case JsonType::kString: return quote_text(v.as_string());
    case JsonType::kInt64:
    case JsonType::kUint64:
    case JsonType::kDouble: return number_text(v.as_double());
    case JsonType::kBool: return v.as_bool() ? "true" : "false";
    case JsonType::kNull: return "null";
    case JsonType::kArray: return "an array";
    case JsonType::kObject: return "an object";
  }
  return "a value";
}

// Is `key` (a key of a parsed document) the name of property `p`? Compares the first
// eight bytes as one word. Reading eight bytes of a shorter key is safe because
// simdjson pads its string buffer (SIMDJSON_PADDING); keys only come from there.
inline bool same_key(const Property& p, std::string_view key) noexcept {
  if (p.name.size() != key.size()) return false;
  std::uint64_t head;
  std::memcpy(&head, key.data(), sizeof head);
  if (key.size() < 8) head &= (std::uint64_t{1} << (8 * key.size())) - 1;
  if (head != p.head) return false;
  return key.size() <= 8 || std::memcmp(p.name.data() + 8, key.data() + 8, key.size() - 8) == 0;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

[[maybe_unused]] bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : (c & (0x7F >> n));
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

template <typename V>
bool equals_constant(const V& v, const Constant& c) {
  const auto& j = c.value;
  switch (v.type()) {
    case JsonType::kString: return j.is_string() && j.get_ref<const std::string&>() == v.as_string();
    case JsonType::kBool: return j.is_boolean() && j.get<bool>() == v.as_bool();
    case JsonType::kNull: return j.is_null();
    case JsonType::kInt64:
    case JsonType::kUint64:
    case JsonType::kDouble: return j.is_number() && j.get<double>() == v.as_double();
    default: {
      if (!j.is_array() && !j.is_object()) return false;
      std::string text;
      v.canonical(text);
      return text == c.canonical;
    }
  }
}

}  // namespace
}  // namespace ember::detail
