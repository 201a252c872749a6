// What watching one request costs the request thread: Monitor::on_request for an
// answered record of 30 features (20 numbers, 10 categories) and one output, appending
// to its thread's window buffer; windows of 10,000 rows are evaluated on a pool, off the
// request thread. On 1 and 2 threads (no lock is shared). The anchor: the metrics
// observer, which every deployment with metrics already pays.
#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "ember/ember.hpp"

namespace {

constexpr int kNumbers = 20, kCategories = 10;

std::string schema_json() {
  std::string s = R"({"type": "object", "properties": {)";
  for (int i = 0; i < kNumbers; ++i) s += "\"n" + std::to_string(i) + "\": {\"type\": \"number\"},";
  for (int i = 0; i < kCategories; ++i) s += "\"c" + std::to_string(i) + "\": {\"type\": \"string\", \"enum\": [\"a\", \"b\", \"c\", \"d\"]},";
  s.pop_back();
  return s + "}}";
}

struct Fixture {
  Fixture() {
    schema = *ember::Schema::compile(schema_json());
    // Reference statistics of 20,000 rows.
    std::mt19937_64 rng(1);
    std::normal_distribution<double> n01;
    ember::Table t;
    t.rows = 20000;
    for (const auto& f : schema.features()) {
      ember::Column c{f.name, *ember::column_kind(f.kind), {}, {}};
      for (std::size_t r = 0; r < t.rows; ++r) {
        if (c.kind == ember::ColumnKind::kNumerical) c.numbers.push_back(n01(rng));
        else c.labels.emplace_back(std::string(1, static_cast<char>('a' + rng() % 4)));
      }
      t.columns.push_back(std::move(c));
    }
    reference = ember::describe_table(t, {});
    row.values.resize(schema.features().size());
    for (std::size_t i = 0; i < row.values.size(); ++i) row.values[i] = i < kNumbers ? n01(rng) : static_cast<double>(rng() % 4);
    row.text.resize(row.values.size());
    output = ember::Tensor::zeros(ember::DType::kFloat32, {1, 1}).value();
    (void)result.outputs.add("output", output);
    result.served_by = "primary";
    pool = *ember::ThreadPool::create({});
  }
  ember::Schema schema = *ember::Schema::compile(R"({"type": "object", "properties": {"x": {"type": "number"}}})");
  ember::ReferenceStats reference;
  ember::FeatureRow row;
  ember::Tensor output;
  ember::ChainResult result;
  std::shared_ptr<ember::ThreadPool> pool;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void watch(benchmark::State& state, ember::Observer& observer) {
  auto& f = fixture();
  ember::RequestEvent e;
  e.features = &f.row;
  e.result = &f.result;
  e.latency = std::chrono::microseconds(12);
  std::uint64_t id = 0;
  for (auto _ : state) {
    e.request_id = ++id;
    observer.on_request(e);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MonitorRecord(benchmark::State& state) {
  static std::shared_ptr<ember::Monitor> monitor = [] {
    ember::MonitorOptions o;
    o.reference = fixture().reference;
    o.window_rows = 10000;
    o.executor = fixture().pool;
    return *ember::Monitor::create(fixture().schema, o);
  }();
  watch(state, *monitor);
}
BENCHMARK(BM_MonitorRecord)->Threads(1)->Threads(2)->UseRealTime();

void BM_MetricsRecordAnchor(benchmark::State& state) {
  static auto metrics = ember::Metrics::create();
  static auto observer = metrics->observer("m", "1");
  watch(state, *observer);
}
BENCHMARK(BM_MetricsRecordAnchor)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
