// Each keyword of the supported JSON Schema subset, accepted and rejected.
#include "helpers.hpp"

using ember::StatusCode;
using schema_test::accepts;
using schema_test::compile_ok;
using schema_test::validate;
using schema_test::validate_any;
using schema_test::with_property;

TEST_CASE("type: every name, integer vs number, and lists", "[schema][keywords]") {
  CHECK(accepts(R"({"type": "integer"})", "3"));
  CHECK(accepts(R"({"type": "integer"})", "3.0"));  // a number with no fraction is an integer
  CHECK_FALSE(accepts(R"({"type": "integer"})", "3.5"));
  CHECK(accepts(R"({"type": "number"})", "3"));
  CHECK(accepts(R"({"type": "number"})", "-3.5e2"));
  CHECK_FALSE(accepts(R"({"type": "number"})", "\"3\""));
  CHECK(accepts(R"({"type": "string"})", "\"x\""));
  CHECK_FALSE(accepts(R"({"type": "string"})", "1"));
  CHECK(accepts(R"({"type": "boolean"})", "false"));
  CHECK_FALSE(accepts(R"({"type": "boolean"})", "0"));
  CHECK(accepts(R"({"type": "null"})", "null"));
  CHECK(accepts(R"({"type": "array"})", "[]"));
  CHECK(accepts(R"({"type": "object"})", "{}"));
  CHECK_FALSE(accepts(R"({"type": "object"})", "[]"));
  CHECK(accepts(R"({"type": ["string", "null"]})", "null"));
  CHECK_FALSE(accepts(R"({"type": ["string", "null"]})", "2"));
  CHECK(accepts(R"({"type": "integer"})", "18446744073709551615"));
}

TEST_CASE("numeric bounds and multipleOf", "[schema][keywords]") {
  const std::string sub = R"({"type": "number", "minimum": 0, "maximum": 120})";
  CHECK(accepts(sub, "0"));
  CHECK(accepts(sub, "120"));
  CHECK_FALSE(accepts(sub, "-0.5"));
  auto schema = compile_ok(with_property(sub));
  auto o = validate(schema, R"({"v": 212})");
  REQUIRE(o.report.errors().size() == 1);
  CHECK(o.errors()[0] == "/v: 212 is greater than the maximum 120");
  CHECK(o.report.errors()[0].schema_path == "/properties/v/maximum");
  CHECK(o.report.errors()[0].keyword == "maximum");
  CHECK(o.status.code() == StatusCode::kInvalidArgument);
  CHECK(o.status.message() == "/v: 212 is greater than the maximum 120");

  CHECK(accepts(R"({"exclusiveMinimum": 0})", "0.001"));
  CHECK_FALSE(accepts(R"({"exclusiveMinimum": 0})", "0"));
  CHECK(accepts(R"({"exclusiveMaximum": 1})", "0.999"));
  CHECK_FALSE(accepts(R"({"exclusiveMaximum": 1})", "1"));
  CHECK(accepts(R"({"multipleOf": 0.1})", "0.3"));
  CHECK(accepts(R"({"multipleOf": 5})", "-15"));
  CHECK_FALSE(accepts(R"({"multipleOf": 5})", "7"));
  CHECK(accepts(R"({"minimum": 5})", "\"not a number\""));  // bounds apply to numbers only
}

TEST_CASE("strings: lengths in characters, and patterns", "[schema][keywords]") {
  CHECK(accepts(R"({"minLength": 2, "maxLength": 3})", "\"ab\""));
  CHECK_FALSE(accepts(R"({"minLength": 2})", "\"a\""));
  CHECK_FALSE(accepts(R"({"maxLength": 3})", "\"abcd\""));
  CHECK(accepts(R"({"maxLength": 2})", "\"\u00e9\u00e9\""));  // two characters, four bytes
  CHECK(accepts(R"({"pattern": "^[A-Z]{2}[0-9]+$"})", "\"AB12\""));
  CHECK_FALSE(accepts(R"({"pattern": "^[A-Z]{2}[0-9]+$"})", "\"ab12\""));
  CHECK(accepts(R"({"pattern": "b"})", "\"abc\""));  // unanchored, as JSON Schema says
  auto schema = compile_ok(with_property(R"({"type": "string", "pattern": "^x"})"));
  CHECK(validate(schema, R"({"v": "yx"})").errors()[0] == "/v: \"yx\" does not match the pattern \"^x\"");
}

TEST_CASE("enum and const", "[schema][keywords]") {
  const std::string colors = R"({"enum": ["red", "green", "blue"]})";
  CHECK(accepts(colors, "\"green\""));
  CHECK_FALSE(accepts(colors, "\"purple\""));
  auto schema = compile_ok(with_property(colors));
  CHECK(validate(schema, R"({"v": "purple"})").errors()[0] ==
        R"(/v: "purple" is not one of "red", "green", "blue")");
  CHECK(accepts(R"({"enum": [1, "a", null, [1, 2], {"k": 1}]})", "1.0"));
  CHECK(accepts(R"({"enum": [1, "a", null, [1, 2], {"k": 1}]})", "[1, 2]"));
  CHECK(accepts(R"({"enum": [1, "a", null, [1, 2], {"k": 1}]})", "{\"k\": 1.0}"));
  CHECK_FALSE(accepts(R"({"enum": [1, "a", null, [1, 2]]})", "[2, 1]"));
  CHECK(accepts(R"({"const": "a"})", "\"a\""));
  CHECK_FALSE(accepts(R"({"const": "a"})", "\"b\""));
  CHECK_FALSE(accepts(R"({"const": false})", "0"));
}

TEST_CASE("arrays: items, prefixItems, sizes, uniqueness", "[schema][keywords]") {
  CHECK(accepts(R"({"items": {"type": "integer"}})", "[1, 2, 3]"));
  CHECK_FALSE(accepts(R"({"items": {"type": "integer"}})", "[1, \"2\"]"));
  const std::string tuple = R"({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": false})";
  CHECK(accepts(tuple, "[\"a\", 1]"));
  CHECK_FALSE(accepts(tuple, "[\"a\", 1, 2]"));
  CHECK_FALSE(accepts(tuple, "[1, 1]"));
  CHECK(accepts(R"({"minItems": 1, "maxItems": 2})", "[0]"));
  CHECK_FALSE(accepts(R"({"minItems": 1})", "[]"));
  CHECK_FALSE(accepts(R"({"maxItems": 2})", "[1, 2, 3]"));
  CHECK(accepts(R"({"uniqueItems": true})", "[1, \"1\", [1], {\"a\": 1}]"));
  CHECK_FALSE(accepts(R"({"uniqueItems": true})", "[1, 2, 1.0]"));
  CHECK_FALSE(accepts(R"({"uniqueItems": true})", "[{\"a\": 1, \"b\": 2}, {\"b\": 2, \"a\": 1}]"));
  auto schema = compile_ok(with_property(R"({"items": {"type": "integer", "maximum": 10}})"));
  CHECK(validate(schema, R"({"v": [1, 50, 2]})").errors()[0] == "/v/1: 50 is greater than the maximum 10");
}

TEST_CASE("objects: required, additionalProperties, nested paths", "[schema][keywords]") {
  const std::string doc = R"({
    "type": "object",
    "properties": {
      "age": {"type": "integer"},
      "address": {"type": "object", "properties": {"zip": {"type": "string"}}, "required": ["zip"],
                  "additionalProperties": false}
    },
    "required": ["age", "address"],
    "additionalProperties": {"type": "number"}
  })";
  auto schema = compile_ok(doc);
  CHECK(validate(schema, R"({"age": 3, "address": {"zip": "1"}, "extra": 2})").status.ok());
  auto o = validate(schema, R"({"address": {"zip": 5, "street": "x"}, "extra": "y"})");
  CHECK(o.errors() == std::vector<std::string>{
                          "/address/zip: expected string, got 5",
                          "/address/street: property \"street\" is not allowed",
                          "/extra: expected number, got \"y\"",
                          "/: missing required property \"age\"",
                      });
  CHECK(o.status.message().rfind("4 errors: ", 0) == 0);
}

TEST_CASE("allOf, anyOf, oneOf, not", "[schema][keywords]") {
  CHECK(accepts(R"({"allOf": [{"minimum": 1}, {"maximum": 3}]})", "2"));
  CHECK_FALSE(accepts(R"({"allOf": [{"minimum": 1}, {"maximum": 3}]})", "4"));
  CHECK(accepts(R"({"anyOf": [{"type": "string"}, {"minimum": 10}]})", "11"));
  CHECK_FALSE(accepts(R"({"anyOf": [{"type": "string"}, {"minimum": 10}]})", "9"));
  CHECK(accepts(R"({"oneOf": [{"multipleOf": 3}, {"multipleOf": 5}]})", "9"));
  CHECK_FALSE(accepts(R"({"oneOf": [{"multipleOf": 3}, {"multipleOf": 5}]})", "15"));
  CHECK(accepts(R"({"not": {"type": "string"}})", "1"));
  CHECK_FALSE(accepts(R"({"not": {"type": "string"}})", "\"s\""));
  CHECK_FALSE(accepts("false", "1"));
  CHECK(accepts("true", "1"));
  // Optional[int] as pydantic writes it: the error is the integer branch's.
  auto schema = compile_ok(with_property(R"({"anyOf": [{"type": "integer", "maximum": 5}, {"type": "null"}]})"));
  CHECK(validate(schema, R"({"v": 9})").errors()[0] == "/v: 9 is greater than the maximum 5");
  CHECK(validate(schema, R"({"v": null})").status.ok());
}

TEST_CASE("$ref to $defs, including recursive schemas", "[schema][keywords]") {
  const std::string doc = R"({
    "$defs": {
      "node": {"type": "object", "properties": {"value": {"type": "integer"},
                                                 "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}}
    },
    "type": "object",
    "properties": {"head": {"$ref": "#/$defs/node"}, "n": {"type": "number"}}
  })";
  auto schema = compile_ok(doc);
  CHECK(validate(schema, R"({"head": {"value": 1, "next": {"value": 2, "next": null}}})").status.ok());
  auto o = validate(schema, R"({"head": {"value": 1, "next": {"value": "two"}}})");
  CHECK(o.errors() == std::vector<std::string>{"/head/next/value: expected integer, got \"two\""});
}

TEST_CASE("validate() takes any JSON value", "[schema][keywords]") {
  auto schema = compile_ok(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})");
  CHECK(validate_any(schema, R"({"a": 1})").status.ok());
  CHECK(validate_any(schema, "[1]").report.errors()[0].to_string() == "/: expected object, got an array");
  auto s2 = compile_ok(R"({"properties": {"a": {"type": "integer"}}})");
  CHECK(validate_any(s2, "[1]").status.ok());  // no type: anything but a bad object is fine
  CHECK(validate(s2, "[1]").errors()[0] == "/: a record must be a JSON object, got an array");
}

TEST_CASE("errors are collected up to the cap", "[schema][keywords]") {
  std::string props, doc;
  for (int i = 0; i < 40; ++i) {
    props += (i ? "," : "") + std::string("\"f") + std::to_string(i) + "\": {\"type\": \"integer\"}";
    doc += (i ? "," : "") + std::string("\"f") + std::to_string(i) + "\": \"bad\"";
  }
  ember::SchemaOptions options;
  options.max_errors = 5;
  auto schema = compile_ok("{\"type\": \"object\", \"properties\": {" + props + "}}", options);
  auto o = validate(schema, "{" + doc + "}");
  CHECK(o.report.errors().size() == 5);
  CHECK(o.report.truncated());
  CHECK(o.status.message().rfind("5+ errors: ", 0) == 0);
  auto all = compile_ok("{\"type\": \"object\", \"properties\": {" + props + "}}");
  CHECK(validate(all, "{" + doc + "}").report.errors().size() == 16);  // the default cap
}
