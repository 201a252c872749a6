// Hostile input: every case answers with a clear error, never a crash or a hang.
#include <chrono>

#include "helpers.hpp"

using ember::StatusCode;
using schema_test::compile_ok;
using schema_test::validate;

namespace {

const char* kSimple = R"({"type": "object", "properties": {"a": {"type": "number"}, "s": {"type": "string"},
                          "p": {"type": "string", "pattern": "^(a+)+$"}}})";

std::string parse_error(const std::string& text, ember::JsonLimits limits = {}) {
  ember::JsonParser parser(limits);
  auto v = parser.parse(text);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == StatusCode::kInvalidArgument);
  return v.status().message();
}

}  // namespace

TEST_CASE("malformed JSON is reported with its byte offset", "[schema][hostile]") {
  CHECK(parse_error(R"({"a": 1,})") == "invalid JSON at byte 8: expected a string key");
  CHECK(parse_error(R"({"a" 1})") == "invalid JSON at byte 5: expected ':' after key");
  CHECK(parse_error("[1, 2") == "invalid JSON at byte 5: unterminated array");
  CHECK(parse_error(R"({"a": "x)") == "invalid JSON at byte 8: unterminated string");
  CHECK(parse_error("[01]") == "invalid JSON at byte 1: invalid number (leading zero)");
  CHECK(parse_error("{} {}") == "invalid JSON at byte 3: unexpected content after the document");
  CHECK(parse_error("") == "invalid JSON at byte 0: unexpected end of input, expected a value");
  CHECK(parse_error("[\"a\tb\"]") == "invalid JSON at byte 3: control character in string");
}

TEST_CASE("NaN and Infinity tokens are refused", "[schema][hostile]") {
  CHECK(parse_error(R"({"a": NaN})") == "invalid JSON at byte 6: NaN and Infinity are not valid JSON");
  CHECK(parse_error(R"({"a": -Infinity})") == "invalid JSON at byte 6: NaN and Infinity are not valid JSON");
  CHECK(parse_error(R"([Infinity])") == "invalid JSON at byte 1: NaN and Infinity are not valid JSON");
}

TEST_CASE("numbers beyond int64 and double are refused", "[schema][hostile]") {
  CHECK(parse_error("[18446744073709551616]") ==
        "invalid JSON at byte 1: integer 18446744073709551616 does not fit in 64 bits");
  CHECK(parse_error("[-9223372036854775809]") ==
        "invalid JSON at byte 1: integer -9223372036854775809 does not fit in 64 bits");
  CHECK(parse_error("[1e400]") == "invalid JSON at byte 1: number 1e400 is beyond the range of double");
  ember::JsonParser parser;
  CHECK(parser.parse("[9223372036854775807, -9223372036854775808, 18446744073709551615, 1e308]").ok());
}

TEST_CASE("invalid UTF-8 is refused", "[schema][hostile]") {
  CHECK(parse_error("[\"a\xff\"]") == "invalid JSON at byte 3: invalid UTF-8 in string");
  CHECK(parse_error("[\"\xc0\xaf\"]") == "invalid JSON at byte 2: invalid UTF-8 in string");        // overlong
  CHECK(parse_error("[\"\xed\xa0\x80\"]") == "invalid JSON at byte 2: invalid UTF-8 in string");    // surrogate
  CHECK(parse_error("[\"\xe2\x82\"]") == "invalid JSON at byte 2: invalid UTF-8 in string");        // truncated
}

TEST_CASE("duplicate keys are errors", "[schema][hostile]") {
  auto schema = compile_ok(kSimple);
  auto known = validate(schema, R"({"a": 1, "a": 2})");
  CHECK(known.errors() == std::vector<std::string>{"/a: duplicate key \"a\""});
  auto unknown = validate(schema, R"({"z": 1, "y": 2, "z": 3})");
  CHECK(unknown.errors() == std::vector<std::string>{"/z: duplicate key \"z\""});
  auto nested = compile_ok(R"({"type": "object", "properties": {"a": {"type": "number"}, "o": {"type": "object"}}})");
  CHECK_FALSE(validate(nested, R"({"o": {"k": 1, "k": 1}})").status.ok());
}

TEST_CASE("deep nesting is refused without recursion", "[schema][hostile]") {
  for (std::size_t depth : {65u, 1000u, 100000u}) {
    const std::string doc = std::string(depth, '[') + std::string(depth, ']');
    CHECK_THAT(parse_error(doc), Catch::Contains("nesting deeper than the limit of 64"));
  }
  ember::JsonParser parser;
  CHECK(parser.parse(std::string(64, '[') + std::string(64, ']')).ok());
  auto schema = compile_ok(kSimple);
  const std::string deep_object = "{\"x\":" + std::string(50, '[') + std::string(50, ']') + "}";
  CHECK(validate(schema, deep_object).status.ok());
}

TEST_CASE("oversized documents, strings and keys are refused", "[schema][hostile]") {
  ember::JsonLimits limits;
  limits.max_document_bytes = 1000;
  CHECK(parse_error("[\"" + std::string(2000, 'x') + "\"]", limits) ==
        "JSON document of 2004 bytes is over the limit of 1000");
  ember::SchemaOptions options;
  options.limits.max_string_bytes = 100;
  auto schema = compile_ok(kSimple, options);
  auto long_value = validate(schema, "{\"s\": \"" + std::string(101, 'x') + "\"}");
  CHECK(long_value.errors() == std::vector<std::string>{"/s: string of 101 bytes is over the limit of 100 bytes"});
  auto long_key = validate(schema, "{\"" + std::string(200, 'k') + "\": 1}");
  CHECK_FALSE(long_key.status.ok());
  CHECK_THAT(long_key.errors()[0], Catch::Contains("key of 200 bytes is over the limit"));
}

TEST_CASE("pathological patterns run in linear time", "[schema][hostile]") {
  auto schema = compile_ok(kSimple);
  // "^(a+)+$" against "aaaa...a!" takes exponential time in a backtracking engine.
  const std::string evil = std::string(50000, 'a') + "!";
  // A backtracking engine would not finish at all (ctest's timeout would end it); RE2
  // answers at once.
  auto o = validate(schema, "{\"p\": \"" + evil + "\"}");
  CHECK_FALSE(o.status.ok());
  CHECK(o.report.errors()[0].keyword == "pattern");
  CHECK(validate(schema, "{\"p\": \"" + std::string(50000, 'a') + "\"}").status.ok());
}

TEST_CASE("every truncation of a record is a clean error", "[schema][hostile]") {
  auto schema = compile_ok(kSimple);
  const std::string whole = R"({"a": -1.5e3, "s": "h\u00e9llo \"q\"", "p": "aaa", "x": [1, {"y": null}], "t": true})";
  REQUIRE(validate(schema, whole).status.ok());
  for (std::size_t n = 0; n < whole.size(); ++n) {
    INFO("first " << n << " bytes");
    auto o = validate(schema, whole.substr(0, n));
    CHECK(o.status.code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("random bytes never crash the parser or the validator", "[schema][hostile]") {
  auto schema = compile_ok(kSimple);
  std::uint64_t state = 12345;
  const auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string alphabet = "{}[]\",:0123456789.-+eEtrufalsn \\u\xc3\xa9\xff";
  std::size_t parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string doc;
    const std::size_t len = next() % 40;
    for (std::size_t k = 0; k < len; ++k) doc += alphabet[next() % alphabet.size()];
    auto o = validate(schema, doc);
    parsed += o.status.ok();
    CHECK((o.status.ok() || o.status.code() == StatusCode::kInvalidArgument));
  }
  CHECK(parsed < 20000);
}
