// What recording one request costs the request thread: the metrics observer's
// on_request for an answered record (counters, served_by, the latency histogram), on 1
// and 2 threads (no lock is shared: 2 threads should cost the same per call).
#include <benchmark/benchmark.h>

#include "ember/ember.hpp"

namespace {

// Records answered requests into `metrics` for as long as the benchmark runs.
void record(benchmark::State& state, ember::Metrics& metrics) {
  auto observer = metrics.observer("churn", "3");
  ember::ChainResult result;
  result.served_by = "primary";
  ember::RequestEvent e;
  e.result = &result;
  e.latency = std::chrono::microseconds(12);
  for (auto _ : state) {
    observer->on_request(e);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// Every thread into one series.
void BM_MetricsRecord(benchmark::State& state) {
  static auto metrics = ember::Metrics::create();
  record(state, *metrics);
}
BENCHMARK(BM_MetricsRecord)->Threads(1)->Threads(2)->UseRealTime();

// Each thread into a Metrics of its own: the anchor for what 2 threads can do.
void BM_MetricsRecordUnshared(benchmark::State& state) {
  auto metrics = ember::Metrics::create();
  record(state, *metrics);
}
BENCHMARK(BM_MetricsRecordUnshared)->Threads(1)->Threads(2)->UseRealTime();

void BM_MetricsText(benchmark::State& state) {
  auto metrics = ember::Metrics::create();
  for (int v = 0; v < 4; ++v) {
    auto o = metrics->observer("churn", std::to_string(v));
    ember::ChainResult result;
    result.served_by = "primary";
    ember::RequestEvent e;
    e.result = &result;
    o->on_request(e);
  }
  for (auto _ : state) benchmark::DoNotOptimize(metrics->text());
}
BENCHMARK(BM_MetricsText)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
