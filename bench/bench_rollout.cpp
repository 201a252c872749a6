// What routing costs a request: the sticky bucket of a caller's key and the arm it
// falls in, and the canary analysis recording the request (anchor:
// std::hash<std::string_view> of the same key, the cheapest hash a host would use);
// and what a shadow costs the primary: TrafficSplit::predict with a shadow minus
// without one, on a model without LibTorch (anchor: the split without a shadow).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "ember/ember.hpp"

namespace {

const std::string kKey = "user-8675309";

void BM_StdHashAnchor(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(std::hash<std::string_view>{}(kKey));
}
BENCHMARK(BM_StdHashAnchor);

void BM_RolloutBucket(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ember::rollout_bucket(kKey));
}
BENCHMARK(BM_RolloutBucket);

void BM_RouterArm(benchmark::State& state) {
  const double weights[] = {75, 20, 5};
  const auto router = *ember::WeightedRouter::create(weights);
  for (auto _ : state) benchmark::DoNotOptimize(router.arm(kKey));
}
BENCHMARK(BM_RouterArm);

void BM_CanaryObserve(benchmark::State& state) {
  auto plan = *ember::parse_rollout_plan(R"({"steps": [{"weight": 50, "min_requests": 1000000000}],
      "checks": [{"metric": "error_rate", "max": 0.5}, {"metric": "p99_latency_ms", "max": 100}],
      "evaluate_every": 1000000000})");
  ember::CanaryAnalysis analysis(plan, std::chrono::nanoseconds(0));
  ember::RolloutObservation o;
  o.candidate = true;
  o.output = 0.5;
  o.latency = std::chrono::microseconds(10);
  std::int64_t t = 0;
  for (auto _ : state) analysis.observe(o, std::chrono::nanoseconds(++t));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CanaryObserve);

// A linear model directory (output = a + 2b + 0.5) in a temporary folder.
std::filesystem::path linear_model(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("ember-bench-rollout-" + name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "schema.json") << R"({"type": "object", "properties": {"a": {"type": "number"},
      "b": {"type": "number"}}, "required": ["a", "b"], "additionalProperties": false})";
  std::ofstream(dir / "linear.json")
      << R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[1,2]],"intercept":[0.5]})";
  std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
      {"name": "linear", "type": "linear", "path": "linear.json"}]})";
  return dir;
}

std::shared_ptr<const ember::Deployment> deployment(const std::string& name) {
  return std::shared_ptr<const ember::Deployment>(ember::Deployment::create(linear_model(name)).value());
}

void run_split(benchmark::State& state, const ember::TrafficSplit& split) {
  ember::Prediction p;
  const std::string json = R"({"a": 1.5, "b": -2.25})";
  for (auto _ : state) {
    if (!split.predict(json, kKey, p).ok()) state.SkipWithError("predict failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_SplitPredict(benchmark::State& state) {
  static auto split = ember::TrafficSplit::create({{"control", deployment("control"), 100}}, {}).value();
  run_split(state, *split);
}
BENCHMARK(BM_SplitPredict);

void BM_SplitPredictWithShadow(benchmark::State& state) {
  static auto split = [] {
    ember::TrafficSplitOptions o;
    o.shadow.deployment = deployment("shadow");
    return ember::TrafficSplit::create({{"control", deployment("control2"), 100}}, o).value();
  }();
  run_split(state, *split);
  state.counters["dropped_share"] =
      static_cast<double>(split->shadow_stats().dropped) / static_cast<double>(std::max<std::uint64_t>(split->shadow_stats().copied + split->shadow_stats().dropped, 1));
}
BENCHMARK(BM_SplitPredictWithShadow);

}  // namespace

BENCHMARK_MAIN();
