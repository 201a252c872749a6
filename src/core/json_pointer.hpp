#pragma once

// JSON Pointers (RFC 6901) over nlohmann documents, for code that reads records
// outside the validator: drift tables and traffic segments.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::detail {

/// The unescaped tokens of a pointer ("/a~1b/c" -> {"a/b", "c"}); "" -> {}.
inline std::vector<std::string> json_pointer_tokens(std::string_view pointer) {
  std::vector<std::string> out;
  for (std::size_t at = 1; at <= pointer.size() && !pointer.empty();) {
    const std::size_t next = std::min(pointer.find('/', at), pointer.size());
    std::string token;
    for (std::size_t k = at; k < next; ++k) {
      if (pointer[k] == '~' && k + 1 < next) {
        token += pointer[++k] == '1' ? '/' : '~';
      } else {
        token += pointer[k];
      }
    }
    out.push_back(std::move(token));
    at = next + 1;
  }
  return out;
}

/// The value at `tokens` in `doc`, or null when a step is missing or not an object.
inline const nlohmann::json* json_at(const nlohmann::json& doc, const std::vector<std::string>& tokens) {
  const nlohmann::json* v = &doc;
  for (const auto& t : tokens) {
    if (!v->is_object()) return nullptr;
    const auto it = v->find(t);
    if (it == v->end()) return nullptr;
    v = &*it;
  }
  return v;
}

}  // namespace ember::detail
