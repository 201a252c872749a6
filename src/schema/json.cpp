#include "ember/json.hpp"

#include <cctype>
#include <charconv>
#include <optional>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "json_internal.hpp"

namespace ember {

std::string_view json_type_name(JsonType type) noexcept {
  switch (type) {
    case JsonType::kNull: return "null";
    case JsonType::kBool: return "boolean";
    case JsonType::kInt64:
    case JsonType::kUint64: return "integer";
    case JsonType::kDouble: return "number";
    case JsonType::kString: return "string";
    case JsonType::kArray: return "array";
    case JsonType::kObject: return "object";
  }
  return "unknown";
}

JsonType JsonValue::type() const noexcept {
  return valid_ ? detail::json_type_of(detail::JsonAccess::unwrap(*this)) : JsonType::kNull;
}

namespace detail {
namespace {

struct Located {
  std::size_t offset = 0;
  std::string message;
};

// A slow, careful scan that finds where and why a document is not acceptable JSON.
// It runs only after the fast parser has failed, to give the caller a byte offset.
// Iterative: hostile nesting cannot overflow the stack.
class Locator {
 public:
  Locator(std::string_view text, std::size_t max_depth) : s_(text), max_depth_(max_depth) {}

  std::optional<Located> run() {
    skip_ws();
    if (!value()) return error_;
    while (true) {
      skip_ws();
      if (stack_.empty()) {
        if (p_ != s_.size()) return fail("unexpected content after the document");
        return std::nullopt;
      }
      const char top = stack_.back();
      if (p_ >= s_.size()) return fail(top == '[' ? "unterminated array" : "unterminated object");
      const char c = s_[p_];
      if (c == ',') {
        ++p_;
        skip_ws();
        if (top == '{' && !key()) return error_;
        if (!value()) return error_;
      } else if ((top == '[' && c == ']') || (top == '{' && c == '}')) {
        ++p_;
        stack_.pop_back();
      } else {
        return fail(top == '[' ? "expected ',' or ']' in array" : "expected ',' or '}' in object");
      }
    }
  }

 private:
  std::optional<Located> fail(std::string message) {
    error_ = Located{p_, std::move(message)};
    return error_;
  }
  bool failed(std::string message) {
    fail(std::move(message));
    return false;
  }
  void skip_ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
  }

  // Parses one value; containers are opened and left on the stack.
  bool value() {
    skip_ws();
    if (p_ >= s_.size()) return failed("unexpected end of input, expected a value");
    const char c = s_[p_];
    if (c == '{' || c == '[') {
      if (stack_.size() + 1 > max_depth_) return failed("nesting deeper than the limit of " + std::to_string(max_depth_));
      stack_.push_back(c);
      ++p_;
      skip_ws();
      if (p_ < s_.size() && s_[p_] == (c == '{' ? '}' : ']')) {
        ++p_;
        stack_.pop_back();
        return true;
      }
      if (c == '{') return key() && value();
      return value();
    }
    if (c == '"') return string();
    if (s_.substr(p_, 3) == "NaN" || s_.substr(p_, 8) == "Infinity" || s_.substr(p_, 9) == "-Infinity") {
      return failed("NaN and Infinity are not valid JSON");
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    if (literal("true") || literal("false") || literal("null")) return true;
    return failed("invalid character, expected a value");
  }

  bool literal(std::string_view word) {
    if (s_.substr(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  bool key() {
    skip_ws();
    if (p_ >= s_.size() || s_[p_] != '"') return failed("expected a string key");
    if (!string()) return false;
    skip_ws();
    if (p_ >= s_.size() || s_[p_] != ':') return failed("expected ':' after key");
    ++p_;
    return true;
  }

  bool string() {
    ++p_;  // opening quote
    while (p_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[p_]);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return failed("control character in string");
      if (c == '\\') {
        if (p_ + 1 >= s_.size()) break;
        const char e = s_[p_ + 1];
        if (e == 'u') {
          for (std::size_t i = 2; i < 6; ++i) {
            if (p_ + i >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[p_ + i]))) {
              return failed("bad \\u escape in string");
            }
          }
          p_ += 6;
        } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
          p_ += 2;
        } else {
          return failed("bad escape in string");
        }
        continue;
      }
      if (c < 0x80) {
        ++p_;
        continue;
      }
      if (!utf8()) return false;
    }
    return failed("unterminated string");
  }

  bool utf8() {
    const auto b = [this](std::size_t i) { return static_cast<unsigned char>(s_[p_ + i]); };
    const unsigned char c = b(0);
    std::size_t n;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07;
    } else {
      return failed("invalid UTF-8 in string");
    }
    if (p_ + n > s_.size()) return failed("invalid UTF-8 in string (truncated sequence)");
    for (std::size_t i = 1; i < n; ++i) {
      if ((b(i) & 0xC0) != 0x80) return failed("invalid UTF-8 in string");
      cp = (cp << 6) | (b(i) & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return failed("invalid UTF-8 in string");
    }
    p_ += n;
    return true;
  }

  bool number() {
    const std::size_t start = p_;
    if (s_[p_] == '-') ++p_;
    if (p_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p_]))) return failed("invalid number");
    if (s_[p_] == '0' && p_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_ + 1]))) {
      return failed("invalid number (leading zero)");
    }
    while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    bool integer = true;
    if (p_ < s_.size() && s_[p_] == '.') {
      integer = false;
      ++p_;
      if (p_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p_]))) return failed("invalid number");
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      integer = false;
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      if (p_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p_]))) return failed("invalid number");
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    }
    const std::string token(s_.substr(start, p_ - start));
    if (integer) {
      if (token[0] == '-') {
        std::int64_t v;
        if (std::from_chars(token.data(), token.data() + token.size(), v).ec != std::errc()) {
          p_ = start;
          return failed("integer " + token + " does not fit in 64 bits");
        }
      } else {
        std::uint64_t v;
        if (std::from_chars(token.data(), token.data() + token.size(), v).ec != std::errc()) {
          p_ = start;
          return failed("integer " + token + " does not fit in 64 bits");
        }
      }
    } else {
      errno = 0;
      const double d = std::strtod(token.c_str(), nullptr);
      if (errno == ERANGE && std::isinf(d)) {
        p_ = start;
        return failed("number " + token.substr(0, 40) + " is beyond the range of double");
      }
    }
    return true;
  }

  std::string_view s_;
  std::size_t max_depth_;
  std::size_t p_ = 0;
  std::vector<char> stack_;
  Located error_;
};

}  // namespace

class JsonParserImpl {
 public:
  explicit JsonParserImpl(JsonLimits l) : limits(l), parser(l.max_document_bytes) {}
  JsonLimits limits;
  simdjson::dom::parser parser;
  bool allocated = false;
};

}  // namespace detail

JsonParser::JsonParser(JsonLimits limits) : impl_(std::make_unique<detail::JsonParserImpl>(limits)) {}
JsonParser::~JsonParser() = default;
JsonParser::JsonParser(JsonParser&&) noexcept = default;
JsonParser& JsonParser::operator=(JsonParser&&) noexcept = default;
const JsonLimits& JsonParser::limits() const noexcept { return impl_->limits; }

Result<JsonValue> JsonParser::parse(std::string_view text) {
  auto& impl = *impl_;
  if (text.size() > impl.limits.max_document_bytes) {
    return invalid_argument("JSON document of " + std::to_string(text.size()) + " bytes is over the limit of " +
                            std::to_string(impl.limits.max_document_bytes));
  }
  if (!impl.allocated) {
    // max_depth is fixed at allocation; capacity grows with the documents seen.
    if (impl.parser.allocate(std::max<std::size_t>(text.size(), 4096), impl.limits.max_depth) != simdjson::SUCCESS) {
      return resource_exhausted("cannot allocate the JSON parser's buffers");
    }
    impl.allocated = true;
  }
  simdjson::dom::element root;
  const auto error = impl.parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root);
  if (error == simdjson::SUCCESS) return detail::JsonAccess::wrap(root);
  if (error == simdjson::MEMALLOC) return resource_exhausted("out of memory while parsing JSON");
  if (auto located = detail::Locator(text, impl.limits.max_depth).run()) {
    return invalid_argument("invalid JSON at byte " + std::to_string(located->offset) + ": " + located->message);
  }
  return invalid_argument(std::string("invalid JSON: ") + simdjson::error_message(error));
}

}  // namespace ember
