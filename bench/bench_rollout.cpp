// What routing costs a request: the sticky bucket of a caller's key and the arm it
// falls in, and the canary analysis recording the request (anchor:
// std::hash<std::string_view> of the same key, the cheapest hash a host would use);
// and what a shadow costs the primary: TrafficSplit::predict with a shadow minus
// without one, on a model without LibTorch (anchor: the split without a shadow); and
// what a live rollout's controller adds to a request (anchor: the same split).
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

// A live rollout: a RolloutController on a registry with a running rollout at 50 %,
// routing, answering and telling the analysis (no copies to the control: what the
// controller adds to a request; the anchor is BM_SplitPredict).
std::unique_ptr<ember::RolloutController> live_rollout(std::size_t compare_queue) {
  const auto root = std::filesystem::temp_directory_path() /
                    ("ember-bench-rollout-registry-" + std::to_string(compare_queue));
  std::filesystem::remove_all(root);
  std::shared_ptr<ember::Registry> registry = ember::Registry::init(root / "reg").value();
  for (const char* v : {"v1", "v2"}) {
    ember::BundleCreateOptions bo;
    bo.name = "bench";
    (void)ember::create_bundle(linear_model(v), root / v, bo).value();
    (void)registry->publish(root / v, "bench", "").value();
  }
  (void)registry->set_alias("bench", "production", 1, ember::Registry::kUnset, "bench", "").value();
  (void)registry
      ->start_rollout("bench", "production", 2,
                      R"({"steps": [{"weight": 50, "min_requests": 1000000000}],
                          "checks": [{"metric": "error_rate", "max": 0.5}, {"metric": "p99_latency_ms", "max": 100},
                                     {"metric": "disagreement", "max": 0.5}],
                          "evaluate_every": 1000000000})",
                      "bench", "")
      .value();
  ember::RolloutControllerOptions o;
  o.compare_queue = compare_queue;
  return ember::RolloutController::create(registry, "bench@production", o).value();
}

void run_controller(benchmark::State& state, const ember::RolloutController& c) {
  ember::Prediction p;
  const std::string json = R"({"a": 1.5, "b": -2.25})";
  // Keys on both arms, so both arms' paths are measured.
  const std::string keys[] = {"user-1", "user-2", "user-3", "user-4", "user-5", "user-6", "user-7", "user-8"};
  std::size_t i = 0;
  for (auto _ : state) {
    if (!c.predict(json, keys[i++ & 7], p).ok()) state.SkipWithError("predict failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ControllerPredict(benchmark::State& state) {
  static auto c = live_rollout(0);
  run_controller(state, *c);
}
BENCHMARK(BM_ControllerPredict);

void BM_ControllerPredictComparing(benchmark::State& state) {
  static auto c = live_rollout(1024);
  run_controller(state, *c);
}
BENCHMARK(BM_ControllerPredictComparing);

}  // namespace

BENCHMARK_MAIN();
