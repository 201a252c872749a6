// Schema validation speed: parse alone (the floor), validate + map one ~600-byte record
// of 30 fields from an already-parsed value and from JSON text, and the batch path on
// 1,024 records. Run through bench/run_schema_bench.py, which writes the schema and the
// records (from a pydantic model) and times pydantic on the same records.
//
//   EMBER_BENCH_DATA=DIR bench_schema [google-benchmark flags]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>

#include <thread>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ember/schema.hpp"
#include "ember/threads.hpp"

namespace {

struct Data {
  ember::Schema schema;
  std::vector<std::string> records;
};

const Data& data() {
  static const Data d = [] {
    const char* dir_env = std::getenv("EMBER_BENCH_DATA");
    const std::string dir = dir_env != nullptr ? dir_env : ".";
    auto schema = ember::Schema::load(dir + "/schema.json");
    if (!schema.ok()) {
      std::fprintf(stderr, "bench_schema: %s\n", schema.status().to_string().c_str());
      std::exit(1);
    }
    std::vector<std::string> records;
    std::ifstream in(dir + "/records.jsonl");
    for (std::string line; std::getline(in, line);) records.push_back(line);
    if (records.empty()) {
      std::fprintf(stderr, "bench_schema: no records in %s/records.jsonl\n", dir.c_str());
      std::exit(1);
    }
    return Data{*schema, std::move(records)};
  }();
  return d;
}

void BM_ParseOnly(benchmark::State& state) {
  const auto& d = data();
  ember::JsonParser parser;
  std::size_t i = 0;
  for (auto _ : state) {
    auto v = parser.parse(d.records[i++ % d.records.size()]);
    benchmark::DoNotOptimize(v);
  }
}

void BM_ValidateParsed(benchmark::State& state) {
  const auto& d = data();
  ember::JsonParser parser;
  auto value = parser.parse(d.records[0]);
  ember::FeatureRow row;
  ember::ValidationReport report;
  if (!value.ok() || !d.schema.validate_into(*value, row, report).ok()) {
    state.SkipWithError("record 0 does not validate");
    return;
  }
  for (auto _ : state) {
    auto s = d.schema.validate_into(*value, row, report);
    benchmark::DoNotOptimize(s);
  }
}

void BM_ValidateText(benchmark::State& state) {
  const auto& d = data();
  ember::JsonParser parser;
  ember::FeatureRow row;
  ember::ValidationReport report;
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = d.schema.validate_into(d.records[i++ % d.records.size()], parser, row, report);
    benchmark::DoNotOptimize(s);
  }
}

// The batch path in `parts` parts: the caller's thread takes one, a ThreadPool of
// parts - 1 threads (owned here, as a host would own it) the others. Timed in real
// time: CPU time would count only the calling thread.
void batch(benchmark::State& state, unsigned parts) {
  const auto& d = data();
  std::vector<std::string_view> views(d.records.begin(), d.records.end());
  ember::JsonParser parser;
  ember::FeatureBatch batch;
  ember::BatchReport report;
  ember::BatchOptions options;
  options.threads = parts;
  std::shared_ptr<ember::ThreadPool> pool;
  if (parts > 1) {
    ember::ThreadPoolOptions po;
    po.threads = parts - 1;
    po.max_threads = parts - 1;
    pool = ember::ThreadPool::create(po).value();
    options.executor = pool.get();
  }
  for (auto _ : state) {
    auto s = d.schema.validate_batch(views, parser, batch, report, options);
    benchmark::DoNotOptimize(s);
  }
  if (report.invalid != 0) state.SkipWithError("some benchmark records are invalid");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(views.size()));
  state.counters["threads"] = parts;
}

void BM_Batch1024(benchmark::State& state) { batch(state, 1); }
void BM_Batch1024AllCores(benchmark::State& state) { batch(state, std::max(1U, std::thread::hardware_concurrency())); }

BENCHMARK(BM_ParseOnly);
BENCHMARK(BM_ValidateParsed);
BENCHMARK(BM_ValidateText);
BENCHMARK(BM_Batch1024)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Batch1024AllCores)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
