#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ember/schema.hpp"

namespace schema_test {

inline ember::Schema compile_ok(const std::string& text, const ember::SchemaOptions& options = {}) {
  auto s = ember::Schema::compile(text, options);
  INFO(s.status().to_string());
  REQUIRE(s.ok());
  return *s;
}

// Validates `doc` against a schema whose single feature property "v" has `sub` as its
// schema, so single keywords can be tested in isolation.
struct Outcome {
  ember::Status status;
  ember::ValidationReport report;
  ember::FeatureRow row;
  std::vector<std::string> errors() const {
    std::vector<std::string> out;
    for (const auto& e : report.errors()) out.push_back(e.to_string());
    return out;
  }
};

inline Outcome validate(const ember::Schema& schema, const std::string& doc) {
  Outcome o;
  ember::JsonParser parser;
  o.status = schema.validate_into(doc, parser, o.row, o.report);
  return o;
}

inline Outcome validate_any(const ember::Schema& schema, const std::string& doc) {
  Outcome o;
  ember::JsonParser parser;
  auto v = parser.parse(doc);
  if (!v.ok()) {
    o.status = v.status();
    return o;
  }
  o.status = schema.validate(*v, o.report);
  return o;
}

inline std::string with_property(const std::string& sub) {
  return R"({"type": "object", "properties": {"v": )" + sub + R"(, "x": {"type": "number"}}})";
}

inline bool accepts(const std::string& sub, const std::string& value) {
  auto schema = compile_ok(with_property(sub));
  return validate(schema, R"({"v": )" + value + "}").status.ok();
}

}  // namespace schema_test
