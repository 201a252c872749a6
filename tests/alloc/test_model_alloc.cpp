// Model::predict once warm allocates nothing for a record, and an allocation that fails
// anywhere on the request path becomes a Status: every operator new is counted, and any
// one of them can be made to fail.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "counting_new.hpp"
#include "ember/ember.hpp"

namespace {

// A model of ember's own stages (no LibTorch: its forward allocates its outputs):
// schema, pipeline, a logistic regression as the primary, a cache and a default.
std::unique_ptr<ember::Model> small_model() {
  auto schema = ember::Schema::compile(R"({"type": "object", "properties": {"x": {"type": "number"},
      "n": {"type": "integer"}, "c": {"enum": ["a", "b"]}}, "required": ["x", "n", "c"]})");
  REQUIRE(schema.ok());
  auto pipeline = ember::Pipeline::parse(R"({"format": "ember-pipeline", "version": 1,
      "inputs": [{"name": "x", "kind": "number"}, {"name": "n", "kind": "number"}, {"name": "c", "kind": "string"}],
      "transformers": [
        {"name": "num", "columns": ["x", "n"], "steps": [{"type": "standard_scaler", "mean": [1, 2], "scale": [2, 4]}]},
        {"name": "cat", "columns": ["c"], "steps": [{"type": "one_hot_encoder", "categories": [["a", "b"]],
                                                      "handle_unknown": "error", "drop_idx": [null]}]}],
      "remainder": "drop", "output_names": ["x", "n", "c_a", "c_b"]})");
  REQUIRE(pipeline.ok());
  auto linear = ember::LinearModel::parse(R"({"format": "ember-linear", "version": 1,
      "estimator": "LogisticRegression", "coef": [[0.5, -0.25, 1, -1]], "intercept": [0.1], "classes": [0, 1]})");
  REQUIRE(linear.ok());
  ember::ChainOptions chain;
  chain.input_width = 4;
  chain.stages.push_back({"linear", *ember::make_linear_stage(*linear, ember::LinearOutput::kPositiveProba)});
  chain.stages.push_back({"cache", *ember::make_cache_stage({}), std::nullopt});
  chain.stages.push_back({"default", *ember::make_default_stage({{"output", {0.5F}}}), std::nullopt});
  auto c = ember::FallbackChain::create(std::move(chain));
  REQUIRE(c.ok());
  const ember::ModelOptions options;
  auto m = ember::Model::assemble(std::move(schema).value(), std::move(pipeline).value(), std::move(c).value(), options);
  REQUIRE(m.ok());
  return std::move(m).value();
}

const std::vector<std::string> kRecords{R"({"x": 1.5, "n": 3, "c": "a"})", R"({"x": -2, "n": 7, "c": "b"})",
                                        R"({"x": 1e15, "n": 9007199254740993, "c": "a"})"};

}  // namespace

TEST_CASE("predict allocates nothing once warm, when ember's own stages answer", "[model][alloc]") {
  auto model = small_model();
  ember::Prediction p;
  for (int i = 0; i < 6; ++i) REQUIRE(model->predict(kRecords[static_cast<std::size_t>(i) % kRecords.size()], p).ok());
  const std::size_t before = ember_test::allocations();
  double sum = 0;
  for (int i = 0; i < 3000; ++i) {
    if (!model->predict(kRecords[static_cast<std::size_t>(i) % kRecords.size()], p).ok()) FAIL("predict failed");
    sum += p.value().value_or(0);
  }
  CHECK(ember_test::allocations() - before == 0);
  CHECK(p.served_by == "linear");
  CHECK(sum > 0);

  // The same with a Record built once.
  ember::Record record;
  record.set("x", 0.25).set("n", 4).set("c", "b");
  REQUIRE(model->predict(record, p).ok());
  const std::size_t again = ember_test::allocations();
  for (int i = 0; i < 1000; ++i) {
    if (!model->predict(record, p).ok()) FAIL("predict failed");
  }
  CHECK(ember_test::allocations() - again == 0);
}

TEST_CASE("an allocation that fails anywhere on the request path is a Status, never a crash", "[model][alloc]") {
  auto model = small_model();
  ember::Prediction warm;
  REQUIRE(model->predict(kRecords[0], warm).ok());
  const double expected = *warm.value();
  std::size_t failures = 0, answered = 0, refused = 0;
  for (std::size_t n = 0; n < 400; ++n) {
    ember::Prediction p;  // fresh, so that the request allocates
    const std::string record = R"({"x": )" + std::to_string(n) + R"(.5, "n": 3, "c": "a"})";  // new to the cache
    ember_test::fail_allocation_in(n);
    const ember::Status s = model->predict(record, p);
    const bool failed = ember_test::allocation_failed();
    ember_test::fail_allocation_in(SIZE_MAX);
    if (!failed) break;  // n is past the last allocation of a request
    ++failures;
    INFO("allocation " << n << ": " << s.to_string());
    CHECK((s.ok() || s.code() == ember::StatusCode::kResourceExhausted));
    (s.ok() ? answered : refused) += 1;
  }
  CHECK(failures > 0);  // a fresh Prediction and a row new to the cache allocate: outputs, cache entry
  CHECK(answered > 0);  // a failure inside a stage is answered by the next one
  // The model is unharmed.
  ember::Prediction after;
  REQUIRE(model->predict(kRecords[0], after).ok());
  CHECK(*after.value() == expected);

  // Batches too.
  std::vector<std::string_view> records(kRecords.begin(), kRecords.end());
  for (std::size_t n = 0; n < 400; ++n) {
    ember::BatchPrediction b;
    ember_test::fail_allocation_in(n);
    const ember::Status s = model->predict_batch(records, b);
    const bool failed = ember_test::allocation_failed();
    ember_test::fail_allocation_in(SIZE_MAX);
    if (!failed) break;
    INFO("batch, allocation " << n << ": " << s.to_string());
    CHECK((s.ok() || s.code() == ember::StatusCode::kResourceExhausted || s.code() == ember::StatusCode::kInvalidArgument));
  }
}

TEST_CASE("a cache whose growth fails stays as it was", "[cache][alloc]") {
  auto cache = *ember::make_cache_stage({10000, std::chrono::minutes(10)});
  const auto row_of = [](double v) { return std::vector<double>{v, v + 0.5, -v}; };
  const auto answer_of = [](double v) {
    ember::NamedTensors out;
    REQUIRE(out.add("output", *ember::Tensor::from_values(std::vector<float>{static_cast<float>(v * 2)}, {1})).ok());
    return out;
  };
  const auto store = [&](double v) {
    auto row = row_of(v);
    cache->observe(*ember::Tensor::view(row, {1, 3}), answer_of(v));
  };
  const auto served = [&](double v) {
    auto row = row_of(v);
    auto out = cache->run(*ember::Tensor::view(row, {1, 3}));
    return out.ok() && (*out->values<float>("output"))[0] == static_cast<float>(v * 2);
  };
  for (int i = 0; i < 64; ++i) store(i);  // the first arena holds 64 rows: the next one grows it
  std::size_t failures = 0;
  auto row = row_of(64);
  const auto features = *ember::Tensor::view(row, {1, 3});
  const auto answer = answer_of(64);
  for (std::size_t n = 0; n < 50; ++n) {
    ember_test::fail_allocation_in(n);  // armed after the test's own allocations
    try {
      cache->observe(features, answer);
    } catch (const std::bad_alloc&) {  // the chain catches it; here the test does
      ++failures;
    }
    const bool failed = ember_test::allocation_failed();
    ember_test::fail_allocation_in(SIZE_MAX);
    if (!failed) break;
    for (int i = 0; i < 64; ++i) {
      INFO("allocation " << n << " failed; row " << i);
      REQUIRE(served(i));
    }
  }
  CHECK(failures > 0);
  store(65);
  for (int i = 0; i < 66; ++i) CHECK(served(i));
}
