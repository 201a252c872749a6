// breaking_changes: what a candidate schema refuses or misreads among the records the
// production one accepts.
#include <string>
#include <vector>

#include "helpers.hpp"

using schema_test::compile_ok;

namespace {

const char* kProduction = R"({
  "type": "object",
  "properties": {
    "age": {"type": "integer", "minimum": 0},
    "income": {"type": "number"},
    "plan": {"enum": ["basic", "pro"]},
    "note": {"type": "string"},
    "active": {"type": "boolean"}
  },
  "required": ["age", "plan"]
})";

std::vector<std::string> changes(const char* to, const ember::SchemaOptions& to_options = {},
                                 const ember::SchemaOptions& from_options = {}) {
  return ember::breaking_changes(compile_ok(kProduction, from_options), compile_ok(to, to_options));
}

}  // namespace

TEST_CASE("a schema is compatible with itself and with wider ones") {
  CHECK(changes(kProduction).empty());
  // integer -> number, category -> text, a new optional feature, one no longer required,
  // a category more, a tighter range (ranges are left to golden records).
  CHECK(changes(R"({"type": "object", "properties": {
    "age": {"type": "number", "minimum": 18}, "income": {"type": "number"},
    "plan": {"type": "string"}, "note": {"type": "string"}, "active": {"type": "boolean"},
    "region": {"enum": ["north", "south"]}},
    "required": ["age"]})")
            .empty());
}

TEST_CASE("breaking changes are named one by one") {
  const auto found = changes(R"({"type": "object", "properties": {
    "age": {"type": "integer"}, "income": {"type": "integer"}, "plan": {"enum": ["basic", "gold"]},
    "note": {"enum": ["a", "b"]}, "active": {"type": "number"}, "tier": {"type": "integer"}},
    "required": ["age", "plan", "income", "tier"]})");
  const std::vector<std::string> expected = {
      "feature 'income' is required now",
      "feature 'income' was number and is integer now",
      "feature 'plan' no longer accepts the category 'pro'",
      "feature 'note' was text and is category now",
      "feature 'active' was boolean and is number now",
      "feature 'tier' is new and required",
  };
  CHECK(found == expected);
}

TEST_CASE("a feature that is gone, and a stricter field policy, break compatibility") {
  const char* without_note = R"({"type": "object", "properties": {
    "age": {"type": "integer"}, "income": {"type": "number"}, "plan": {"enum": ["basic", "pro"]},
    "active": {"type": "boolean"}}, "required": ["age", "plan"]})";
  CHECK(changes(without_note) == std::vector<std::string>{"feature 'note' is gone"});

  ember::SchemaOptions coerce;
  coerce.field_policies["income"] = ember::FieldPolicy::kCoerce;
  CHECK(changes(kProduction, {}, coerce) ==
        std::vector<std::string>{"feature 'income''s field policy went from coerce to reject"});
  CHECK(changes(kProduction, coerce, {}).empty());  // more lenient is fine
}
