// What routing costs a request: the sticky bucket of a caller's key and the arm it
// falls in, and the canary analysis recording the request. The anchor:
// std::hash<std::string_view> of the same key, the cheapest hash a host would use.
#include <benchmark/benchmark.h>

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

}  // namespace

BENCHMARK_MAIN();
