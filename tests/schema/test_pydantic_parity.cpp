// ember and pydantic v2 agree on every document of the generated parity cases
// (tests/schema/make_pydantic_cases.py: pydantic's own schemas and verdicts).
#include <nlohmann/json.hpp>

#include "fixtures.hpp"
#include "helpers.hpp"

TEST_CASE("pydantic's schemas compile and validate like pydantic", "[schema][pydantic]") {
  const auto suites = ember_test::read_json(ember_test::models_dir() / "pydantic_cases.json");
  REQUIRE(suites.size() >= 3);
  std::size_t checked = 0;
  for (const auto& suite : suites) {
    const std::string name = suite.at("name");
    INFO("model " << name);
    auto schema = ember::Schema::compile(suite.at("schema").dump());
    INFO(schema.status().to_string());
    REQUIRE(schema.ok());
    ember::JsonParser parser;
    ember::FeatureRow row;
    ember::ValidationReport report;
    for (const auto& c : suite.at("cases")) {
      const std::string doc = c.at("doc");
      const bool pydantic_valid = c.at("valid");
      const auto status = schema->validate_into(doc, parser, row, report);
      INFO(doc << "\n  pydantic: " << (pydantic_valid ? "valid" : "invalid") << "\n  ember: " << status.to_string());
      CHECK(status.ok() == pydantic_valid);
      ++checked;
    }
  }
  CHECK(checked >= 60);
}
