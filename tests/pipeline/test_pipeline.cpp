// The pipeline reproduces scikit-learn's transform() (cases made by
// make_pipeline_cases.py at test time), and refuses bad pipelines and bad rows clearly.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "ember/pipeline.hpp"
#include "fixtures.hpp"

using ember::FeatureRow;
using ember::Pipeline;
using ember::StatusCode;

namespace {

using ember_test::models_dir;

FeatureRow make_row(const nlohmann::json& cells, const std::vector<bool>& is_text) {
  FeatureRow row;
  row.values.assign(cells.size(), std::numeric_limits<double>::quiet_NaN());
  row.text.assign(cells.size(), "");
  row.integers.assign(cells.size(), ember::kNotInteger);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const auto& v = cells[i];
    if (v.is_null()) continue;
    if (is_text[i]) {
      row.text[i] = v.get<std::string>();
      row.values[i] = 0.0;
    } else {
      row.values[i] = v.get<double>();
      // As validation does: an integer keeps its exact int64 beside the double.
      row.integers[i] = v.is_number_integer() ? v.get<std::int64_t>() : ember::exact_integer(v.get<double>());
    }
  }
  return row;
}

// Both sides compute in float64 from the same unrounded values: only the order of
// floating-point operations may differ.
bool close(double got, double want) { return std::abs(got - want) <= 1e-12 * std::abs(want) + 1e-12; }

Pipeline parse_ok(const std::string& text) {
  auto p = Pipeline::parse(text);
  INFO(p.status().to_string());
  REQUIRE(p.ok());
  return *p;
}

const char* kSmall = R"({"format": "ember-pipeline", "version": 1,
  "inputs": [{"name": "x", "kind": "number"}, {"name": "c", "kind": "string"}],
  "transformers": [
    {"name": "num", "columns": ["x"], "steps": [{"type": "standard_scaler", "mean": [1.0], "scale": [2.0]}]},
    {"name": "cat", "columns": ["c"], "steps": [{"type": "one_hot_encoder", "categories": [["a", "b"]],
                                                  "handle_unknown": "error", "drop_idx": [null]}]}],
  "remainder": "drop", "output_names": ["num__x", "cat__c_a", "cat__c_b"]})";

}  // namespace

TEST_CASE("pipelines equal scikit-learn's transform on real and synthetic data", "[pipeline][sklearn]") {
  std::ifstream f(models_dir() / "pipeline_cases.json");
  REQUIRE(f.good());
  const auto cases = nlohmann::json::parse(f);
  REQUIRE(cases.size() == 4);
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    INFO("case " << name);
    auto loaded = Pipeline::load(c.at("pipeline").get<std::string>());
    INFO(loaded.status().to_string());
    REQUIRE(loaded.ok());
    const Pipeline& p = *loaded;
    CHECK(p.output_names() == c.at("output_names").get<std::vector<std::string>>());
    std::ifstream pf(c.at("pipeline").get<std::string>());
    const auto doc = nlohmann::json::parse(pf);
    std::vector<bool> is_text;
    for (const auto& in : doc.at("inputs")) is_text.push_back(in.at("kind") == "string");
    std::vector<double> out(p.output_width());
    std::size_t compared = 0;
    for (std::size_t r = 0; r < c.at("rows").size(); ++r) {
      const FeatureRow row = make_row(c.at("rows")[r], is_text);
      const auto s = p.transform(row, out);
      INFO("row " << r << ": " << s.to_string());
      REQUIRE(s.ok());
      const auto& want = c.at("expected")[r];
      for (std::size_t j = 0; j < out.size(); ++j) {
        INFO("column " << p.output_names()[j] << ": ember " << out[j] << ", scikit-learn " << want[j].get<double>());
        CHECK(close(out[j], want[j].get<double>()));
        ++compared;
      }
    }
    CHECK(compared > 100);
  }
}

TEST_CASE("a batch transforms like its rows", "[pipeline]") {
  auto p = parse_ok(kSmall);
  ember::FeatureBatch batch;
  batch.rows = 2;
  batch.cols = 2;
  batch.values = {3.0f, 0.0f, -1.0f, 1.0f};
  batch.text = {"", "b", "", "a"};
  std::vector<double> out(6);
  REQUIRE(p.transform_batch(batch, out).ok());
  CHECK(out == std::vector<double>{1.0, 0.0, 1.0, -1.0, 1.0, 0.0});
  std::vector<double> small(5);
  CHECK(p.transform_batch(batch, small).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("bad rows are refused, naming the column and the value", "[pipeline][errors]") {
  auto p = parse_ok(kSmall);
  std::vector<double> out(3);
  FeatureRow row{{1.0f, 0.0f}, {"", "zebra"}};
  auto s = p.transform(row, out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "column 'c': unknown category 'zebra'");
  FeatureRow missing{{std::numeric_limits<float>::quiet_NaN(), 0.0f}, {"", "a"}};
  CHECK(p.transform(missing, out).message() == "column 'x': missing value, and no imputer covers it");
  FeatureRow missing_cat{{1.0f, std::numeric_limits<float>::quiet_NaN()}, {"", ""}};
  CHECK(p.transform(missing_cat, out).message() == "column 'c': missing value, and no imputer covers it");
  FeatureRow narrow{{1.0f}, {""}};
  CHECK(p.transform(narrow, out).message() == "row has 1 columns, the pipeline takes 2");
  std::vector<double> wrong(2);
  CHECK(p.transform(FeatureRow{{1.0f, 0.0f}, {"", "a"}}, wrong).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("the schema's features must be the pipeline's inputs", "[pipeline][errors]") {
  auto p = parse_ok(kSmall);
  auto good = ember::Schema::compile(R"({"type": "object", "properties": {"x": {"type": "number"},
                                         "c": {"enum": ["a", "b"]}}})");
  REQUIRE(good.ok());
  CHECK(p.check_inputs(*good).ok());
  auto swapped = ember::Schema::compile(R"({"type": "object", "properties": {"c": {"enum": ["a"]},
                                            "x": {"type": "number"}}})");
  CHECK(p.check_inputs(*swapped).message() == "pipeline input 0 is 'x' but schema feature 0 is 'c'");
  auto string_for_number = ember::Schema::compile(R"({"type": "object", "properties": {"x": {"type": "string"},
                                                      "c": {"enum": ["a"]}}})");
  CHECK_THAT(p.check_inputs(*string_for_number).message(), Catch::Contains("'x' is a number"));
}

TEST_CASE("malformed pipelines are refused, naming the transformer, step and field", "[pipeline][errors]") {
  const auto refused = [](const std::string& text) {
    auto p = Pipeline::parse(text);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == StatusCode::kInvalidArgument);
    return p.status().message();
  };
  const std::string head = R"({"format": "ember-pipeline", "version": 1, "inputs": [{"name": "x", "kind": "number"},
                                {"name": "c", "kind": "string"}], "remainder": "drop", )";
  const auto with = [&](const std::string& transformers, const std::string& names) {
    return head + R"("transformers": )" + transformers + R"(, "output_names": )" + names + "}";
  };
  CHECK(refused("not json") == "pipeline is not valid JSON");
  CHECK(refused(std::string(kSmall).substr(0, 200)) == "pipeline is not valid JSON");
  CHECK_THAT(refused(R"({"format": "other", "version": 1})"), Catch::Contains("not an ember pipeline"));
  CHECK_THAT(refused(R"({"format": 0, "version": 1})"), Catch::Contains("malformed"));  // found by fuzz_config
  CHECK_THAT(refused(R"({"format": "ember-pipeline", "version": 1, "remainder": 3, "inputs": [{"name": "x"}]})"),
             Catch::StartsWith("pipeline"));
  CHECK_THAT(refused(R"({"format": "ember-pipeline", "version": 2})"), Catch::Contains("unsupported format version"));
  CHECK(refused(with(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "kbins"}]}])", R"(["a"])")) ==
        "pipeline: transformer 't', step 0 (kbins): unknown step type 'kbins'");
  CHECK(refused(with(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "standard_scaler", "mean": [1]}]}])",
                     R"(["a"])")) == "pipeline: transformer 't', step 0 (standard_scaler): missing field 'scale'");
  CHECK(refused(with(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "standard_scaler", "mean": [1, 2],
                          "scale": [1]}]}])", R"(["a"])")) ==
        "pipeline: transformer 't', step 0 (standard_scaler): field 'mean' must be an array of 1 numbers");
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "max_abs_scaler", "scale": [0]}]}])",
                          R"(["a"])")), Catch::Contains("scale of 'x' must be positive"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["c"], "steps": [{"type": "one_hot_encoder",
                              "categories": [["a", 1]], "handle_unknown": "error", "drop_idx": [null]}]}])",
                          R"(["a", "b"])")), Catch::Contains("mix strings and numbers"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "one_hot_encoder",
                              "categories": [["a"]], "handle_unknown": "error", "drop_idx": [null]}]}])",
                          R"(["a"])")), Catch::Contains("is a number column but its categories are strings"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["c"], "steps": [{"type": "one_hot_encoder",
                              "categories": [["a", "a"]], "handle_unknown": "error", "drop_idx": [null]}]}])",
                          R"(["a", "b"])")), Catch::Contains("listed twice"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["c"], "steps": [{"type": "one_hot_encoder",
                              "categories": [["a", "b"]], "handle_unknown": "sometimes", "drop_idx": [null]}]}])",
                          R"(["a", "b"])")), Catch::Contains("unsupported value 'sometimes'"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["c"], "steps": [{"type": "one_hot_encoder",
                              "categories": [["a", "b"]], "handle_unknown": "error", "drop_idx": [null]},
                              {"type": "standard_scaler", "mean": [0], "scale": [1]}]}])", R"(["a", "b"])")),
             Catch::Contains("no step may follow an encoder"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["c"], "steps": []}])", R"(["a"])")),
             Catch::Contains("string column 'c' must end in an encoder"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["y"], "steps": []}])", R"(["a"])")),
             Catch::Contains("unknown column \"y\""));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["x"], "steps": []}])", R"(["a", "b"])")),
             Catch::Contains("produce 1 columns but 'output_names' lists 2"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["c"], "steps": [{"type": "standard_scaler", "mean": [0],
                              "scale": [1]}]}])", R"(["a"])")), Catch::Contains("holds strings; a scaler needs numbers"));
  CHECK_THAT(refused(with(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "simple_imputer",
                              "strategy": "mean", "fill": ["zero"]}]}])", R"(["a"])")),
             Catch::Contains("fill value of column 'x' must be a number"));
  CHECK(Pipeline::load("/nonexistent/pipeline.json").status().code() == StatusCode::kNotFound);
}

namespace {

// Structural equality of two JSON documents, numbers within 1e-9 relative, integers
// (categories such as IDs past 2^53) exactly.
void check_same(const nlohmann::json& got, const nlohmann::json& want, const std::string& path) {
  INFO("at " << path << ": ember " << got.dump().substr(0, 200) << " vs scikit-learn " << want.dump().substr(0, 200));
  if (want.is_number_integer() && got.is_number_integer()) {
    CHECK(got.dump() == want.dump());
    return;
  }
  if (want.is_number() && got.is_number()) {
    const double a = got.get<double>(), b = want.get<double>();
    CHECK(std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)));
    return;
  }
  REQUIRE(got.type() == want.type());
  if (want.is_array()) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) check_same(got[i], want[i], path + "/" + std::to_string(i));
  } else if (want.is_object()) {
    for (const auto& item : want.items()) {
      REQUIRE(got.contains(item.key()));
      check_same(got.at(item.key()), item.value(), path + "/" + item.key());
    }
    CHECK(got.size() == want.size());
  } else {
    CHECK(got == want);
  }
}

}  // namespace

TEST_CASE("fitting in C++ gives scikit-learn's fitted parameters", "[pipeline][sklearn][fit]") {
  std::ifstream f(models_dir() / "pipeline_cases.json");
  REQUIRE(f.good());
  const auto cases = nlohmann::json::parse(f);
  for (const auto& c : cases) {
    INFO("case " << c.at("name").get<std::string>());
    const auto& spec = c.at("spec");
    std::vector<bool> is_text;
    for (const auto& in : spec.at("inputs")) is_text.push_back(in.at("kind") == "string");
    ember::FeatureBatch batch;
    batch.cols = is_text.size();
    for (const auto& cells : c.at("train_rows")) {
      FeatureRow row = make_row(cells, is_text);
      batch.values.insert(batch.values.end(), row.values.begin(), row.values.end());
      batch.integers.insert(batch.integers.end(), row.integers.begin(), row.integers.end());
      batch.text.insert(batch.text.end(), row.text.begin(), row.text.end());
      ++batch.rows;
    }
    auto fitted = Pipeline::fit(spec.dump(), batch);
    INFO(fitted.status().to_string());
    REQUIRE(fitted.ok());
    std::ifstream pf(c.at("pipeline").get<std::string>());
    check_same(nlohmann::json::parse(fitted->to_json()), nlohmann::json::parse(pf), "");
  }
}

TEST_CASE("fit refuses specs and data it cannot fit", "[pipeline][fit][errors]") {
  const std::string head = R"({"format": "ember-pipeline", "version": 1, "fit": true,
      "inputs": [{"name": "x", "kind": "number"}, {"name": "c", "kind": "string"}], "remainder": "drop", )";
  ember::FeatureBatch batch;
  batch.rows = 3;
  batch.cols = 2;
  batch.values = {NAN, 0.0f, NAN, 0.0f, NAN, NAN};
  batch.text = {"", "a", "", "b", "", ""};
  const auto refused = [&](const std::string& transformers) {
    auto p = Pipeline::fit(head + R"("transformers": )" + transformers + "}", batch);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == StatusCode::kInvalidArgument);
    return p.status().message();
  };
  CHECK_THAT(refused(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "simple_imputer", "strategy": "mean"}]}])"),
             Catch::Contains("column 'x' has no values to fit on"));
  CHECK_THAT(refused(R"([{"name": "t", "columns": ["c"], "steps": [{"type": "simple_imputer", "strategy": "mean"}]}])"),
             Catch::Contains("needs numbers; column 'c' holds strings"));
  CHECK_THAT(refused(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "simple_imputer", "strategy": "constant",
                         "fill_value": 1}, {"type": "kbins_discretizer", "n_bins": 3, "strategy": "uniform",
                         "encode": "ordinal"}]}])"), Catch::Contains("column 'x' is constant"));
  CHECK_THAT(refused(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "kbins_discretizer", "n_bins": 3,
                         "strategy": "kmeans", "encode": "ordinal"}]}])"), Catch::Contains("cannot be fitted"));
  CHECK_THAT(refused(R"([{"name": "t", "columns": ["x"], "steps": [{"type": "spline"}]}])"),
             Catch::Contains("unknown step type 'spline'"));
  CHECK(Pipeline::fit("{", batch).status().code() == StatusCode::kInvalidArgument);
  ember::FeatureBatch empty;
  empty.cols = 2;
  CHECK_THAT(Pipeline::fit(head + R"("transformers": []})", empty).status().message(), Catch::Contains("no rows"));
}
