// From a record to a feature row: features, missing values, categories, policies,
// training-range flags, typed records, batches, and schema compile errors.
#include <cmath>

#include "helpers.hpp"

using ember::FeatureKind;
using ember::StatusCode;
using schema_test::compile_ok;
using schema_test::validate;

namespace {

// Shaped like pydantic's output for a model with an enum, an Optional, a nested model.
const char* kCustomer = R"({
  "$defs": {
    "Plan": {"enum": ["basic", "pro", "enterprise"], "title": "Plan", "type": "string"},
    "Address": {"properties": {"city": {"title": "City", "type": "string"},
                               "zip": {"title": "Zip", "type": "integer", "minimum": 0}},
                "required": ["city", "zip"], "title": "Address", "type": "object"}
  },
  "properties": {
    "age": {"title": "Age", "type": "integer", "minimum": 0, "maximum": 120,
            "x-ember-training-range": {"min": 18, "max": 90}},
    "income": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": null, "title": "Income"},
    "plan": {"$ref": "#/$defs/Plan"},
    "active": {"title": "Active", "type": "boolean"},
    "address": {"$ref": "#/$defs/Address"},
    "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array"}
  },
  "required": ["age", "plan", "active", "address"],
  "title": "Customer",
  "type": "object"
})";

}  // namespace

TEST_CASE("features come from the properties, in schema order", "[schema][features]") {
  auto schema = compile_ok(kCustomer);
  const auto& f = schema.features();
  REQUIRE(f.size() == 6);
  CHECK(f[0].name == "age");
  CHECK(f[0].kind == FeatureKind::kInteger);
  CHECK(f[0].required);
  CHECK(*f[0].training_min == 18);
  CHECK(f[1].name == "income");
  CHECK(f[1].kind == FeatureKind::kNumber);
  CHECK_FALSE(f[1].required);
  CHECK(f[2].name == "plan");
  CHECK(f[2].kind == FeatureKind::kCategory);
  CHECK(f[2].categories == std::vector<std::string>{"basic", "pro", "enterprise"});
  CHECK(f[3].kind == FeatureKind::kBoolean);
  CHECK(f[4].name == "address.city");
  CHECK(f[4].pointer == "/address/city");
  CHECK(f[4].kind == FeatureKind::kText);
  CHECK(f[5].name == "address.zip");
  CHECK(schema.feature_index("address.zip") == 5);
  CHECK(schema.feature_index("tags") == -1);  // arrays are validated, not features
}

TEST_CASE("a valid record fills the row, and missing optionals are NaN", "[schema][features]") {
  auto schema = compile_ok(kCustomer);
  auto o = validate(schema,
                    R"({"age": 40, "plan": "pro", "active": true, "address": {"city": "Oslo", "zip": 150},
                        "tags": ["a"]})");
  INFO(o.status.to_string());
  REQUIRE(o.status.ok());
  const auto& v = o.row.values;
  CHECK(v[0] == 40.0f);
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == 1.0f);  // "pro" is category 1
  CHECK(o.row.text[2] == "pro");
  CHECK(v[3] == 1.0f);
  CHECK(o.row.text[4] == "Oslo");
  CHECK(v[5] == 150.0f);
  CHECK(o.report.flagged().empty());

  auto with_null = validate(schema, R"({"age": 40, "income": null, "plan": "basic", "active": false,
                                        "address": {"city": "", "zip": 1}})");
  REQUIRE(with_null.status.ok());
  CHECK(std::isnan(with_null.row.values[1]));
  CHECK(with_null.row.values[3] == 0.0f);
}

TEST_CASE("invalid records list every error with its path", "[schema][features]") {
  auto schema = compile_ok(kCustomer);
  auto o = validate(schema, R"({"age": 212, "plan": "gold", "active": "yes", "address": {"zip": -1}})");
  CHECK(o.errors() == std::vector<std::string>{
                          "/age: 212 is greater than the maximum 120",
                          R"(/plan: "gold" is not one of "basic", "pro", "enterprise")",
                          R"(/active: expected boolean, got "yes")",
                          "/address/zip: -1 is less than the minimum 0",
                          R"(/address: missing required property "city")",
                      });
}

TEST_CASE("values outside the training range are accepted and flagged", "[schema][features]") {
  auto schema = compile_ok(kCustomer);
  const std::string base = R"(, "plan": "pro", "active": true, "address": {"city": "x", "zip": 1}})";
  auto inside = validate(schema, R"({"age": 50)" + base);
  REQUIRE(inside.status.ok());
  CHECK(inside.report.flagged().empty());
  auto young = validate(schema, R"({"age": 5)" + base);
  REQUIRE(young.status.ok());
  CHECK(young.row.values[0] == 5.0f);
  CHECK(young.report.flagged() == std::vector<std::uint32_t>{0});
  validate(schema, R"({"age": 100)" + base);
  CHECK(schema.flag_counts()[0] == 2);
}

TEST_CASE("field policies: coerce and flag", "[schema][features]") {
  const std::string doc = R"({"type": "object", "properties": {
      "n": {"type": "number", "maximum": 10}, "i": {"type": "integer"}, "b": {"type": "boolean"},
      "s": {"type": "string"}}})";
  ember::SchemaOptions coerce;
  coerce.default_policy = ember::FieldPolicy::kCoerce;
  auto c = compile_ok(doc, coerce);
  auto ok = validate(c, R"({"n": "3.5", "i": "7", "b": 1, "s": 42})");
  INFO(ok.status.to_string());
  REQUIRE(ok.status.ok());
  CHECK(ok.row.values[0] == 3.5f);
  CHECK(ok.row.values[1] == 7.0f);
  CHECK(ok.row.values[2] == 1.0f);
  CHECK(ok.row.text[3] == "42");
  CHECK(validate(c, R"({"n": "12"})").errors()[0] == "/n: 12 is greater than the maximum 10");
  CHECK(validate(c, R"({"i": "7.5"})").errors()[0] == "/i: expected integer, got \"7.5\"");
  CHECK_FALSE(validate(c, R"({"b": 2})").status.ok());

  ember::SchemaOptions flag;
  flag.field_policies.emplace("n", ember::FieldPolicy::kFlag);
  auto f = compile_ok(doc, flag);
  auto flagged = validate(f, R"({"n": "oops", "i": 1})");
  REQUIRE(flagged.status.ok());
  CHECK(std::isnan(flagged.row.values[0]));
  CHECK(flagged.report.flagged() == std::vector<std::uint32_t>{0});
  CHECK_FALSE(validate(f, R"({"i": "1"})").status.ok());  // other fields still reject

  ember::SchemaOptions unknown;
  unknown.field_policies.emplace("nope", ember::FieldPolicy::kFlag);
  CHECK(ember::Schema::compile(doc, unknown).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("typed records validate without JSON", "[schema][features]") {
  auto schema = compile_ok(kCustomer);
  ember::Record r;
  r.set("age", 33).set("plan", "enterprise").set("active", true).set("address.city", "Rome").set("address.zip", 5);
  r.set("income", 1234.5).set("unknown", 1.0);  // unknown names are ignored (extra properties allowed)
  ember::FeatureRow row;
  ember::ValidationReport report;
  REQUIRE(schema.validate_into(r, row, report).ok());
  CHECK(row.values[0] == 33.0f);
  CHECK(row.values[1] == 1234.5f);
  CHECK(row.values[2] == 2.0f);
  CHECK(row.text[4] == "Rome");

  ember::Record bad;
  bad.set("age", 500).set("plan", "x").set_null("active");
  auto s = schema.validate_into(bad, row, report);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  std::vector<std::string> got;
  for (const auto& e : report.errors()) got.push_back(e.to_string());
  CHECK(got == std::vector<std::string>{
                   "/age: 500 is greater than the maximum 120",
                   R"(/plan: "x" is not one of "basic", "pro", "enterprise")",
                   "/active: expected boolean, got null",
                   R"(/: missing required property "address.city")",
                   R"(/: missing required property "address.zip")",
               });
  ember::Record invalid_utf8;
  invalid_utf8.set("address.city", std::string_view("\xff\xfe", 2));
  CHECK_FALSE(schema.validate_into(invalid_utf8, row, report).ok());
}

TEST_CASE("batches validate every record into one matrix", "[schema][features]") {
  auto schema = compile_ok(R"({"type": "object", "properties": {"a": {"type": "number"}, "b": {"enum": ["x", "y"]}},
                               "required": ["a"]})");
  std::vector<std::string_view> records{R"({"a": 1, "b": "y"})", R"({"a": "bad"})", R"({"a": 3})", "{not json",
                                        R"({"b": "x"})"};
  ember::JsonParser parser;
  ember::FeatureBatch batch;
  ember::BatchReport report;
  REQUIRE(schema.validate_batch(records, parser, batch, report).ok());
  CHECK(batch.rows == 2);
  CHECK(batch.cols == 2);
  CHECK(batch.values[0] == 1.0f);
  CHECK(batch.values[1] == 1.0f);
  CHECK(batch.values[2] == 3.0f);
  CHECK(std::isnan(batch.values[3]));
  CHECK(batch.source_index == std::vector<std::size_t>{0, 2});
  CHECK(report.valid == 2);
  CHECK(report.invalid == 3);
  REQUIRE(report.records.size() == 3);
  CHECK(report.records[0].first == 1);
  CHECK(report.records[1].second.errors()[0].keyword == "json");
  CHECK_THAT(report.records[1].second.errors()[0].message, Catch::Contains("byte 1"));

  auto s = schema.validate_batch(records, parser, batch, report, ember::BatchPolicy::kFailBatch);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::StartsWith("3 of 5 records are invalid; record 1: /a: expected number"));
  CHECK(report.invalid == 3);
}

TEST_CASE("batches on several threads give exactly what one thread gives", "[schema][features]") {
  auto schema = compile_ok(R"({"type": "object", "properties": {
      "a": {"type": "number", "x-ember-training-range": {"min": 0, "max": 900}},
      "b": {"enum": ["x", "y"]}, "c": {"type": "string"}}, "required": ["a"]})");
  // 1,000 records: invalid ones (bad type, bad JSON) and flagged ones at every part's edges.
  std::vector<std::string> text;
  for (int i = 0; i < 1000; ++i) {
    if (i % 97 == 0) {
      text.push_back(R"({"a": "bad"})");
    } else if (i % 131 == 0) {
      text.push_back("{not json");
    } else {
      text.push_back("{\"a\": " + std::to_string(i) + ", \"b\": \"" + (i % 2 ? "x" : "y") + "\", \"c\": \"row " +
                     std::to_string(i) + "\"}");
    }
  }
  std::vector<std::string_view> records(text.begin(), text.end());
  ember::JsonParser parser;
  ember::FeatureBatch one, many;
  ember::BatchReport one_report, many_report;
  REQUIRE(schema.validate_batch(records, parser, one, one_report).ok());
  CHECK(one_report.flagged == 97);  // a in 901..999, minus the invalid 917 and 970
  for (unsigned threads : {2U, 3U, 7U, 0U}) {
    INFO("threads " << threads);
    ember::BatchOptions options;
    options.threads = threads;
    REQUIRE(schema.validate_batch(records, parser, many, many_report, options).ok());
    CHECK(many.rows == one.rows);
    CHECK(many.cols == one.cols);
    CHECK(many.source_index == one.source_index);
    CHECK(std::equal(many.values.begin(), many.values.end(), one.values.begin(), one.values.end(),
                     [](float x, float y) { return x == y || (std::isnan(x) && std::isnan(y)); }));
    CHECK(many.text == one.text);
    CHECK(many_report.valid == one_report.valid);
    CHECK(many_report.invalid == one_report.invalid);
    CHECK(many_report.flagged == one_report.flagged);
    REQUIRE(many_report.records.size() == one_report.records.size());
    for (std::size_t k = 0; k < one_report.records.size(); ++k) {
      CHECK(many_report.records[k].first == one_report.records[k].first);
      CHECK(many_report.records[k].second.status() == one_report.records[k].second.status());
    }
  }
  ember::BatchOptions fail;
  fail.threads = 4;
  fail.policy = ember::BatchPolicy::kFailBatch;
  auto s = schema.validate_batch(records, parser, many, many_report, fail);
  CHECK_THAT(s.message(), Catch::StartsWith("18 of 1000 records are invalid; record 0: /a: expected number"));
  // A batch too small to split runs on the caller's thread alone, with the same result.
  std::vector<std::string_view> few(records.begin() + 1, records.begin() + 50);
  ember::BatchOptions two;
  two.threads = 2;
  REQUIRE(schema.validate_batch(few, parser, many, many_report, two).ok());
  CHECK(many.rows == 49);
}

TEST_CASE("schemas outside the subset are refused at compile time, with the path", "[schema][compile]") {
  const auto refused = [](const std::string& doc) {
    auto s = ember::Schema::compile(doc);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kInvalidArgument);
    return s.status().message();
  };
  CHECK(refused(R"({"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}}})") ==
        "schema: /properties/when: unsupported keyword 'format'");
  CHECK(refused(R"({"type": "object", "properties": {"a": {"type": "integr"}}})") ==
        "schema: /properties/a: unknown type 'integr'");
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})"),
             Catch::Contains("does not resolve"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"$ref": "http://example.com/s.json"}}})"),
             Catch::Contains("not supported"));
  CHECK_THAT(refused(R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
                         "type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}})"),
             Catch::Contains("circular $ref"));
  CHECK_THAT(refused(R"j({"type": "object", "properties": {"a": {"pattern": "(?=x)"}}})j"), Catch::Contains("pattern"));
  CHECK_THAT(refused(R"j({"type": "object", "properties": {"a": {"pattern": "(a)\\1"}}})j"),
             Catch::Contains("pattern"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"minimum": "3"}}})"),
             Catch::Contains("minimum must be a number"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"minLength": -1}}})"),
             Catch::Contains("non-negative integer"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"multipleOf": 0}}})"),
             Catch::Contains("greater than 0"));
  CHECK_THAT(refused(R"({"type": "array", "items": {"type": "number"}})"), Catch::Contains("top level"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"type": "array"}}})"),
             Catch::Contains("no property is a scalar feature"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": 5}})"), Catch::Contains("object or a boolean"));
  CHECK_THAT(refused(R"({"type": "object", "properties": {"a": {"enum": []}}})"), Catch::Contains("non-empty"));
  CHECK_THAT(refused(R"({"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {}}})"),
             Catch::Contains("2020-12"));
  CHECK_THAT(refused("{\"type\": \"object\", "), Catch::Contains("not valid JSON"));
  CHECK_THAT(refused(""), Catch::Contains("not valid JSON"));
}

TEST_CASE("schema files load from disk", "[schema][compile]") {
  CHECK(ember::Schema::load("/nonexistent/schema.json").status().code() == StatusCode::kNotFound);
}

TEST_CASE("deeply nested schema documents are refused, not recursed into", "[schema][compile]") {
  std::string deep = R"({"type": "object", "properties": {"a": )";
  for (int i = 0; i < 5000; ++i) deep += R"({"items": )";
  deep += "{}";
  for (int i = 0; i < 5000; ++i) deep += "}";
  deep += "}}";
  auto s = ember::Schema::compile(deep);
  CHECK(s.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.status().message(), Catch::Contains("nested deeper than 128"));
  std::string deep_const = R"({"type": "object", "properties": {"a": {"const": )" + std::string(100000, '[') +
                           std::string(100000, ']') + "}}}";
  CHECK(ember::Schema::compile(deep_const).status().code() == StatusCode::kInvalidArgument);
}
