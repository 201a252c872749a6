#pragma once

/// Fast, hardened JSON parsing for the request path (simdjson underneath; its headers
/// stay private). A JsonParser is reused across requests so that parsing allocates
/// nothing once its buffers have grown to the largest document seen.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

/// Limits that keep hostile documents from exhausting memory or time.
struct JsonLimits {
  std::size_t max_document_bytes = std::size_t{1} << 20;  ///< one document: 1 MiB
  std::size_t max_depth = 64;                             ///< nesting of arrays and objects
  std::size_t max_string_bytes = std::size_t{1} << 16;    ///< one string or key: 64 KiB
};

enum class JsonType : std::uint8_t { kNull, kBool, kInt64, kUint64, kDouble, kString, kArray, kObject };

/// "null", "boolean", "integer", "integer", "number", "string", "array", "object".
EMBER_API std::string_view json_type_name(JsonType type) noexcept;

namespace detail {
class JsonParserImpl;
struct JsonAccess;
}  // namespace detail

/// A parsed JSON value: a small handle into the document held by the JsonParser that
/// produced it. Valid until that parser parses again or is destroyed. Cheap to copy.
class EMBER_API JsonValue {
 public:
  JsonValue() noexcept = default;
  [[nodiscard]] JsonType type() const noexcept;
  [[nodiscard]] bool is_valid() const noexcept { return valid_; }

 private:
  friend struct detail::JsonAccess;
  alignas(8) unsigned char storage_[16] = {};
  bool valid_ = false;
};

/// Parses JSON text. Not thread-safe: use one parser per thread.
///
/// Rejected, with InvalidArgument and the byte offset of the problem: malformed JSON,
/// invalid UTF-8, NaN and Infinity tokens, integers beyond 64 bits, numbers beyond the
/// range of double, documents larger than max_document_bytes or nested deeper than
/// max_depth. (Duplicate keys and long strings are found by the schema validator.)
class EMBER_API JsonParser {
 public:
  explicit JsonParser(JsonLimits limits = {});
  ~JsonParser();
  JsonParser(JsonParser&&) noexcept;
  JsonParser& operator=(JsonParser&&) noexcept;
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  /// The root value; it stays valid until the next parse() on this parser.
  [[nodiscard]] Result<JsonValue> parse(std::string_view text);

  [[nodiscard]] const JsonLimits& limits() const noexcept;

 private:
  std::unique_ptr<detail::JsonParserImpl> impl_;
};

}  // namespace ember
