// libFuzzer target for JSON parsing and schema validation (and schema compilation).
// The first byte picks what the rest of the input is: a record for one of the
// built-in schemas, or a schema document to compile and exercise.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ember/schema.hpp"

namespace {

const char* const kSchemas[] = {
    // pydantic-shaped: enums, Optional, nested model, list, training range, pattern
    R"({"$defs": {"Plan": {"enum": ["basic", "pro"], "type": "string"},
                 "Address": {"properties": {"city": {"type": "string", "maxLength": 20},
                                            "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                             "required": ["city"], "type": "object"}},
       "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 120,
                              "x-ember-training-range": {"min": 18, "max": 90}},
                      "income": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": null},
                      "plan": {"$ref": "#/$defs/Plan"}, "active": {"type": "boolean"},
                      "address": {"$ref": "#/$defs/Address"},
                      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4, "uniqueItems": true}},
       "required": ["age", "plan"], "type": "object"})",
    // combinators, recursion, tuples, additionalProperties schema
    R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "number", "multipleOf": 0.5},
                                                            "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}}},
       "type": "object",
       "properties": {"head": {"$ref": "#/$defs/node"}, "n": {"type": "number"},
                      "pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false},
                      "pick": {"oneOf": [{"multipleOf": 3}, {"multipleOf": 5}]},
                      "neg": {"not": {"type": "string"}}, "c": {"const": {"k": [1, 2]}},
                      "all": {"allOf": [{"minimum": 1}, {"maximum": 9}]}},
       "additionalProperties": {"type": ["string", "number", "null"]}})",
    // forbidding extras, coercion target types
    R"({"type": "object", "additionalProperties": false,
       "properties": {"x": {"type": "number", "exclusiveMinimum": 0}, "i": {"type": "integer"},
                      "b": {"type": "boolean"}, "s": {"type": "string", "minLength": 1},
                      "e": {"enum": [1, "a", null, [1], {"k": 1}]}}})",
};

// Any broken invariant is a bug: crash so the fuzzer keeps the input.
void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz_schema: invariant broken: %s\n", what);
    std::abort();
  }
}

void exercise(const ember::Schema& schema, std::string_view text, ember::JsonParser& parser) {
  ember::FeatureRow row;
  ember::ValidationReport report;
  const ember::Status s = schema.validate_into(text, parser, row, report);
  require(s.ok() == report.ok(), "status agrees with report");
  require(row.values.size() == schema.features().size(), "row has one slot per feature");
  require(row.text.size() == schema.features().size(), "row has one text slot per feature");
  require(report.errors().size() <= schema.options().max_errors, "error cap");
  for (const auto& e : report.errors()) require(!e.message.empty(), "every error has a message");
  for (auto f : report.flagged()) require(f < schema.features().size(), "flags name features");
  auto value = parser.parse(text);
  if (value.ok()) {
    (void)schema.validate(*value, report);
    require(report.errors().size() <= schema.options().max_errors, "error cap (any value)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<ember::Schema> schemas = [] {
    std::vector<ember::Schema> out;
    for (const char* text : kSchemas) {
      ember::SchemaOptions options;
      options.limits.max_string_bytes = 256;
      if (out.size() == 2) options.default_policy = ember::FieldPolicy::kCoerce;
      auto s = ember::Schema::compile(text, options);
      require(s.ok(), "built-in schemas compile");
      out.push_back(*s);
    }
    return out;
  }();
  static ember::JsonParser parser(ember::JsonLimits{4096, 32, 256});
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t mode = data[0] % (std::size(kSchemas) + 1);
  if (mode < std::size(kSchemas)) {
    exercise(schemas[mode], text, parser);
    return 0;
  }
  auto compiled = ember::Schema::compile(text);
  if (compiled.ok()) {
    require(!compiled->features().empty(), "a compiled schema has features");
    for (const char* doc : {"{}", "{\"a\": 1}", "[1]", "null", "{\"a\": {\"b\": [true, \"x\", null]}}"}) {
      exercise(*compiled, doc, parser);
    }
  }
  return 0;
}
