// Drift building blocks through the public API: the tests on known values, reference
// statistics round-tripped, and hostile reference files and tables refused clearly.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <map>

#include "ember/drift.hpp"
#include "registry/helpers.hpp"

using ember_test::TempDir;

TEST_CASE("the statistical tests agree with known values") {
  // ks_2samp([1,2,3], [4,5,6]): D = 1, p = 2 / C(6,3) = 0.1 (scipy: 0.1).
  const double a[] = {1, 2, 3}, b[] = {4, 5, 6};
  auto r = ember::ks_2samp(a, b);
  CHECK(r.statistic == 1.0);
  CHECK(r.p_value == Approx(0.1));
  // Identical samples: D = 0, p = 1.
  r = ember::ks_2samp(a, a);
  CHECK(r.statistic == 0.0);
  CHECK(r.p_value == 1.0);
  // scipy.stats.chi2.sf(3.841458820694124, 1) = 0.05; chi2.sf(10, 4) = 0.04042768199451279.
  CHECK(ember::chi_square_sf(3.841458820694124, 1) == Approx(0.05).epsilon(1e-9));
  CHECK(ember::chi_square_sf(10, 4) == Approx(0.04042768199451279).epsilon(1e-9));
  CHECK(ember::chi_square_sf(0.5, 30) == Approx(1.0).epsilon(1e-12));
  // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5.
  const double w1[] = {0, 1, 3}, w2[] = {5, 6, 8};
  CHECK(ember::wasserstein_1(w1, w2) == Approx(5.0));
  // scipy.spatial.distance.jensenshannon([1, 0], [0, 1]) = sqrt(ln 2).
  const double p[] = {1, 0}, q[] = {0, 1};
  CHECK(ember::jensen_shannon(p, q) == Approx(std::sqrt(std::log(2.0))));
  CHECK(ember::jensen_shannon(p, p) == 0.0);
  // scipy.stats.chisquare([10, 20, 30], [20, 20, 20]): statistic 10, p = exp(-5).
  const double obs[] = {10, 20, 30}, exp[] = {20, 20, 20};
  auto c = ember::chi_square(obs, exp);
  CHECK(c.statistic == Approx(10.0));
  CHECK(c.p_value == Approx(std::exp(-5.0)));
}

TEST_CASE("reference statistics survive reference.json") {
  ember::Column num{"x", ember::ColumnKind::kNumerical, {}, {}};
  for (int i = 0; i < 3000; ++i) num.numbers.push_back(std::sin(i) * 10);
  num.numbers.push_back(NAN);
  ember::Column few{"k", ember::ColumnKind::kNumerical, {1, 2, 2, 3, 3, 3}, {}};
  ember::Column cat{"c", ember::ColumnKind::kCategorical, {}, {"a", "b", "a", std::nullopt}};
  ember::Table t{{num, few, cat}, 3001};
  ember::Table outs;
  const auto stats = ember::describe_table(t, outs);
  REQUIRE(stats.features.size() == 3);
  CHECK(stats.features[0].count == 3000);
  CHECK(stats.features[0].missing == 1);
  CHECK(stats.features[0].quantiles.size() == 1001);
  CHECK(stats.features[1].values.size() == 6);
  CHECK(stats.features[1].distinct.size() == 3);
  CHECK(stats.features[2].categories.front() == std::pair<std::string, std::uint64_t>{"a", 2});
  auto back = ember::parse_reference(ember::reference_to_json(stats));
  REQUIRE(back.ok());
  CHECK(ember::reference_to_json(*back) == ember::reference_to_json(stats));
}

TEST_CASE("malformed, truncated, oversized and hostile reference files are refused with the field named") {
  ember::Column few{"k", ember::ColumnKind::kNumerical, {1, 2, 2, 3}, {}};
  const std::string good = ember::reference_to_json(ember::describe_table(ember::Table{{few}, 4}, {}));
  REQUIRE(ember::parse_reference(good).ok());
  const auto refused = [](const std::string& text, const std::string& needle) {
    auto r = ember::parse_reference(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == ember::StatusCode::kInvalidArgument);
    INFO(r.status().message());
    CHECK(r.status().message().find(needle) != std::string::npos);
  };
  refused(good.substr(0, good.size() / 2), "not valid JSON");
  refused("[]", "JSON object");
  refused(R"({"format": "other", "format_version": 1})", "format");
  refused(R"({"format": "ember-reference", "format_version": 2})", "format_version");
  refused(std::string(100000, '['), "nests deeper");
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  refused(edit("\"values\":[1.0,2.0,2.0,3.0]", "\"values\":[3.0,2.0,2.0,1.0]"), "ascending");
  refused(edit("\"count\":4", "\"count\":5"), "values");
  refused(edit("\"count\":4", "\"count\":-4"), "non-negative");
  refused(edit("\"kind\":\"numerical\"", "\"kind\":\"text\""), "kind");
  refused(edit("\"rows\":4", "\"rows\":2"), "more values than rows");
  CHECK(ember::parse_reference(good, 10).status().code() == ember::StatusCode::kInvalidArgument);
  CHECK(ember::load_reference("/no/such/reference.json").status().code() == ember::StatusCode::kNotFound);
}

TEST_CASE("tables: bad CSV and JSON lines are refused with the line named") {
  TempDir tmp;
  auto schema = ember::Schema::compile(R"({"type": "object", "properties": {
      "n": {"type": "number"}, "c": {"type": "string", "enum": ["a", "b"]}, "f": {"type": "boolean"}}})");
  REQUIRE(schema.ok());
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp.path() / name) << text;
    return tmp.path() / name;
  };
  auto ok = ember::read_table(write("ok.csv", "n,c,f\n1.5,a,true\n,b,0\nx,\"a\",\n"), *schema);
  REQUIRE(ok.ok());
  CHECK(ok->rows == 3);
  CHECK(ok->columns[0].numbers[0] == 1.5);
  CHECK(std::isnan(ok->columns[0].numbers[1]));
  CHECK(std::isnan(ok->columns[0].numbers[2]));  // "x" is not a number: missing
  CHECK(ok->columns[2].labels[1] == std::optional<std::string>("false"));
  CHECK_FALSE(ok->columns[2].labels[2].has_value());
  auto jl = ember::read_table(write("ok.jsonl", "{\"n\": 2, \"c\": \"b\", \"f\": false}\n\n{\"n\": null}\n"), *schema);
  REQUIRE(jl.ok());
  CHECK(jl->rows == 2);
  const auto refused = [&](const std::string& name, const std::string& text, const std::string& needle) {
    auto r = ember::read_table(write(name, text), *schema);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().message());
    CHECK(r.status().message().find(needle) != std::string::npos);
  };
  refused("h.csv", "n,c\n1,a\n", "no column 'f'");
  refused("q.csv", "n,c,f\n\"1,a,true\n", ":2: unterminated quote");
  refused("a.jsonl", "{\"n\": 1}\n[1, 2]\n", ":2: not a JSON object");
  refused("b.jsonl", "{\"n\": 1\n", ":1: not valid JSON");
  refused("d.jsonl", std::string(5000, '[') + "\n", "nests deeper");
  ember::TableLimits small;
  small.max_line_bytes = 16;
  auto long_line = ember::read_table(write("l.jsonl", "{\"n\": 1, \"c\": \"aaaaaaaaaaaaaaaa\"}\n"), *schema, small);
  CHECK(long_line.status().message().find("longer than 16 bytes") != std::string::npos);
  small = {};
  small.max_rows = 1;
  CHECK_FALSE(ember::read_table(write("r.jsonl", "{}\n{}\n"), *schema, small).ok());
  CHECK(ember::read_table(tmp.path() / "missing.csv", *schema).status().code() == ember::StatusCode::kNotFound);
}

TEST_CASE("infer_schema reads columns and their kinds from the data") {
  TempDir tmp;
  std::ofstream(tmp.path() / "a.csv") << "n,mixed,c,empty\n1,1,x,\n2.5,2,y,\n3,two,x,\n";
  std::ofstream(tmp.path() / "b.jsonl") << R"({"n": 4, "flag": true, "nested": {"x": 1}, "c": "z"})" "\n";
  const std::filesystem::path files[] = {tmp.path() / "a.csv", tmp.path() / "b.jsonl"};
  auto schema = ember::infer_schema(files);
  REQUIRE(schema.ok());
  std::map<std::string, ember::FeatureKind> kinds;
  for (const auto& f : schema->features()) kinds[f.name] = f.kind;
  CHECK(kinds == std::map<std::string, ember::FeatureKind>{{"n", ember::FeatureKind::kNumber},
                                                          {"mixed", ember::FeatureKind::kCategory},
                                                          {"c", ember::FeatureKind::kCategory},
                                                          {"flag", ember::FeatureKind::kBoolean}});
  // "mixed" turned out not to be numbers after two rows: its labels include them.
  const auto& mixed = schema->features()[static_cast<std::size_t>(schema->feature_index("mixed"))];
  CHECK(mixed.categories == std::vector<std::string>{"1", "2", "two"});
  std::ofstream(tmp.path() / "none.csv") << "a,b\n,\n";
  const std::filesystem::path none[] = {tmp.path() / "none.csv"};
  CHECK(ember::infer_schema(none).status().code() == ember::StatusCode::kInvalidArgument);
}
