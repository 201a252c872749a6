#pragma once

// Private: how ember's JSON handles map onto simdjson.
#include <simdjson.h>

#include <cstring>

#include "ember/json.hpp"

namespace ember::detail {

inline JsonType json_type_of(simdjson::dom::element e) noexcept {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::ARRAY: return JsonType::kArray;
    case T::OBJECT: return JsonType::kObject;
    case T::INT64: return JsonType::kInt64;
    case T::UINT64: return JsonType::kUint64;
    case T::DOUBLE: return JsonType::kDouble;
    case T::STRING: return JsonType::kString;
    case T::BOOL: return JsonType::kBool;
    case T::NULL_VALUE: return JsonType::kNull;
  }
  return JsonType::kNull;
}

struct JsonAccess {
  static_assert(sizeof(simdjson::dom::element) <= 16, "JsonValue storage too small for simdjson::dom::element");
  static JsonValue wrap(simdjson::dom::element e) noexcept {
    JsonValue v;
    std::memcpy(static_cast<void*>(v.storage_), static_cast<const void*>(&e), sizeof e);
    v.valid_ = true;
    return v;
  }
  static simdjson::dom::element unwrap(const JsonValue& v) noexcept {
    simdjson::dom::element e;
    std::memcpy(static_cast<void*>(&e), static_cast<const void*>(v.storage_), sizeof e);
    return e;
  }
};

}  // namespace ember::detail
