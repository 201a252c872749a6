// Model and fallback chain speed. Run through bench/run_predict_bench.py, which builds
// the model directory (pydantic schema, scikit-learn ColumnTransformer, TorchScript MLP,
// LogisticRegression fallback) and times the same work in Python.
//
//   EMBER_BENCH_DATA=DIR bench_predict [google-benchmark flags]
//
// BM_ExecutorDirect     the primary TorchExecutor called directly on a preprocessed row
// BM_ChainHealthy       the same row through the full chain (primary, linear, cache, default)
// BM_ChainPrimaryOnly   the same row through a chain of the primary alone
// BM_LinearDirect       the linear fallback called directly
// BM_FailoverToLinear   a primary that throws, then the linear model (no breaker)
// BM_Paired*           the two sides of a goal called alternately, call by call, with the
//                       medians of each side and of their differences as counters
// BM_HangBudget5ms      a primary that hangs, with a 5 ms budget: p50/p99 as counters
// BM_PredictEndToEnd    Model::predict on JSON text: validate, pipeline, chain
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace {

template <typename T>
T check(ember::Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "bench_predict: %s: %s\n", what, r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

struct Data {
  std::string dir;
  std::unique_ptr<ember::Model> model;
  std::vector<std::string> records;
  std::vector<double> row;  // the first record, preprocessed: the chain's input
  std::vector<float> row32;  // the same, cast as the model takes it
  std::unique_ptr<ember::Model> no_torch;  // the same schema and pipeline, the linear model as primary
  std::unique_ptr<ember::Model> observed;  // no_torch again, with one observer that does nothing
  std::shared_ptr<ember::TorchExecutor> executor;
  std::shared_ptr<ember::Stage> primary;
  std::shared_ptr<ember::Stage> linear;
};

struct NullObserver final : ember::Observer {
  void on_request(const ember::RequestEvent& e) override { benchmark::DoNotOptimize(e.request_id); }
};

Data& data() {
  static Data d = [] {
    Data out;
    const char* dir_env = std::getenv("EMBER_BENCH_DATA");
    out.dir = dir_env != nullptr ? dir_env : ".";
    ember::ModelOptions options;
    options.device = "cpu";
    (void)ember::set_torch_threads(1);  // process-wide: one thread, as Python's
    out.model = check(ember::Model::load(out.dir, options), "model");
    std::ifstream f(out.dir + "/records.jsonl");
    for (std::string line; std::getline(f, line);) out.records.push_back(line);
    // The first record's model input, as the Model computes it.
    ember::JsonParser parser;
    ember::FeatureRow row;
    ember::ValidationReport report;
    if (!out.model->schema().validate_into(out.records.at(0), parser, row, report).ok()) std::exit(1);
    out.row.resize(out.model->pipeline()->output_width());
    if (!out.model->pipeline()->transform(row, out.row).ok()) std::exit(1);
    out.row32.assign(out.row.begin(), out.row.end());
    // The primary, loaded as Model::load loads it.
    ember::ExecutorOptions eo;
    eo.device = "cpu";
    const auto width = static_cast<std::int64_t>(out.row.size());
    eo.input_specs = {{ember::DType::kFloat32, {-1, width}}};
    out.executor = check(ember::TorchExecutor::load(out.dir + "/model.pt", eo), "executor");
    out.primary = ember::make_executor_stage(out.executor);
    out.linear = check(ember::make_linear_stage(check(ember::LinearModel::load(out.dir + "/linear.json"), "linear"),
                                                ember::LinearOutput::kPositiveProba),
                       "linear stage");
    const auto no_torch = [&](const ember::ModelOptions& mo) {
      ember::ChainOptions co;
      co.input_width = out.row.size();
      co.stages.push_back({"linear", out.linear, std::nullopt});
      co.stages.push_back({"cache", check(ember::make_cache_stage({}), "cache"), std::nullopt});
      co.stages.push_back({"default", check(ember::make_default_stage({{"output", {0.5F}}}), "default"), std::nullopt});
      return check(ember::Model::assemble(out.model->schema(), *out.model->pipeline(),
                                          check(ember::FallbackChain::create(std::move(co)), "chain"), mo),
                   "no-torch model");
    };
    const ember::ModelOptions plain;
    out.no_torch = no_torch(plain);
    ember::ModelOptions watched;
    watched.observers.push_back(std::make_shared<NullObserver>());
    out.observed = no_torch(watched);
    return out;
  }();
  return d;
}

ember::Tensor row32_tensor() {
  return check(ember::Tensor::view(data().row32, {1, static_cast<std::int64_t>(data().row32.size())}), "row");
}

ember::Tensor row_tensor() {
  return check(ember::Tensor::view(data().row, {1, static_cast<std::int64_t>(data().row.size())}), "row");
}

std::unique_ptr<ember::FallbackChain> chain(std::vector<ember::ChainStage> stages, std::chrono::nanoseconds budget = {},
                                            std::size_t max_abandoned = 4) {
  ember::ChainOptions o;
  o.input_width = data().row.size();
  o.stages = std::move(stages);
  o.budget = budget;
  o.max_abandoned = max_abandoned;
  return check(ember::FallbackChain::create(std::move(o)), "chain");
}

std::shared_ptr<ember::Stage> injected(const char* fault) {
  return check(ember::FaultInjector::wrap(data().primary, {check(ember::parse_fault_rule(fault), "fault")}), "injector");
}

void BM_ExecutorDirect(benchmark::State& state) {
  // Each thread its own copy: LibTorch reads the input, a copy per thread keeps the
  // threads off one another's cache lines.
  std::vector<float> own = data().row32;
  const auto x = check(ember::Tensor::view(own, {1, static_cast<std::int64_t>(own.size())}), "row");
  for (auto _ : state) {
    auto out = data().executor->run({&x, 1});
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

void run_chain(benchmark::State& state, const ember::FallbackChain& c, const char* expect) {
  const auto x = row_tensor();
  ember::ChainResult r;
  for (auto _ : state) {
    if (!c.run(x, r).ok() || r.served_by != expect) {
      state.SkipWithError("the chain did not answer as expected");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
}

void BM_ChainHealthy(benchmark::State& state) {
  auto c = chain({{"primary", data().primary},
                  {"linear", data().linear, std::nullopt},
                  {"cache", check(ember::make_cache_stage({}), "cache"), std::nullopt},
                  {"default", check(ember::make_default_stage({{"output", {0.5F}}}), "default"), std::nullopt}});
  run_chain(state, *c, "primary");
}

void BM_ChainPrimaryOnly(benchmark::State& state) {
  auto c = chain({{"primary", data().primary}});
  run_chain(state, *c, "primary");
}

void BM_LinearDirect(benchmark::State& state) {
  const auto x = row_tensor();
  for (auto _ : state) {
    auto out = data().linear->run(x);
    benchmark::DoNotOptimize(out);
  }
}

void BM_FailoverToLinear(benchmark::State& state) {
  auto c = chain({{"primary", injected("throw"), std::nullopt}, {"linear", data().linear, std::nullopt}});
  run_chain(state, *c, "linear");
}

// Alternates `a` and `b` call by call and reports the medians of each and of their
// paired differences: drift of a noisy machine hits both alike.
template <typename A, typename B>
void paired(benchmark::State& state, A&& a, B&& b) {
  std::vector<double> ta, tb, diff;
  bool a_first = true;  // alternated: the second call of a pair finds the caches warmer
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (a_first) a(); else b();
    const auto t1 = std::chrono::steady_clock::now();
    if (a_first) b(); else a();
    const auto t2 = std::chrono::steady_clock::now();
    const double first = std::chrono::duration<double, std::micro>(t1 - t0).count();
    const double second = std::chrono::duration<double, std::micro>(t2 - t1).count();
    ta.push_back(a_first ? first : second);
    tb.push_back(a_first ? second : first);
    diff.push_back(tb.back() - ta.back());
    a_first = !a_first;
  }
  const auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  if (ta.empty()) return;
  state.counters["a_us"] = median(ta);
  state.counters["b_us"] = median(tb);
  state.counters["b_minus_a_us"] = median(diff);
}

// The healthy full chain against the primary executor called directly.
void BM_PairedChainHealthy(benchmark::State& state) {
  auto c = chain({{"primary", data().primary},
                  {"linear", data().linear, std::nullopt},
                  {"cache", check(ember::make_cache_stage({}), "cache"), std::nullopt},
                  {"default", check(ember::make_default_stage({{"output", {0.5F}}}), "default"), std::nullopt}});
  const auto x = row_tensor();
  const auto x32 = row32_tensor();  // the executor takes what the stage would cast to
  ember::ChainResult r;
  paired(
      state, [&] { benchmark::DoNotOptimize(data().executor->run({&x32, 1})); },
      [&] {
        if (!c->run(x, r).ok()) state.SkipWithError("chain failed");
      });
}

// A primary that throws, then the linear model, against the linear model called directly.
void BM_PairedFailover(benchmark::State& state) {
  auto c = chain({{"primary", injected("throw"), std::nullopt}, {"linear", data().linear, std::nullopt}});
  const auto x = row_tensor();
  ember::ChainResult r;
  paired(
      state, [&] { benchmark::DoNotOptimize(data().linear->run(x)); },
      [&] {
        if (!c->run(x, r).ok()) state.SkipWithError("chain failed");
      });
}

void BM_HangBudget5ms(benchmark::State& state) {
  // Each hung call ends 2 ms after its deadline, so the bulkhead never fills and every
  // request waits out its budget.
  auto c = chain({{"primary", injected("hang:7ms"), std::nullopt}, {"linear", data().linear, std::nullopt}},
                 std::chrono::milliseconds(5), 16);
  const auto x = row_tensor();
  ember::ChainResult r;
  std::vector<double> ms;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (!c->run(x, r).ok() || r.served_by != std::string_view("linear")) {
      state.SkipWithError("the chain did not answer with the linear model");
      break;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    state.counters["p50_ms"] = ms[ms.size() / 2];
    state.counters["p99_ms"] = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    state.counters["max_ms"] = ms.back();
  }
}

void predict_loop(benchmark::State& state, const ember::Model& model) {
  const auto& records = data().records;
  ember::Prediction p;
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
  for (auto _ : state) {
    if (!model.predict(records[i % records.size()], p).ok()) {
      state.SkipWithError(p.validation.status().to_string().c_str());
      break;
    }
    ++i;
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PredictEndToEnd(benchmark::State& state) { predict_loop(state, *data().model); }
// ember's own request path alone (validation, preprocessing, chain, cache), with a model
// that does not call LibTorch: how it scales with threads shows ember's locks, not the model's.
void BM_PredictNoTorch(benchmark::State& state) { predict_loop(state, *data().no_torch); }

// The cost of observers: the model without LibTorch (whose requests vary least), with one
// observer that does nothing, paired request by request with the same model with none.
// What a model with no observer pays is less than this difference (it skips even the
// call: one branch).
void BM_PairedObserver(benchmark::State& state) {
  const auto& records = data().records;
  ember::Prediction p, q;
  std::size_t i = 0;
  paired(
      state, [&] { (void)data().no_torch->predict(records[(i / 2) % records.size()], p); ++i; },
      [&] { (void)data().observed->predict(records[(i / 2) % records.size()], q); ++i; });
}

// A batch of 1,000 JSON records through predict_batch on the caller's thread: the C++
// anchor of the Python package's predict_batch (bench/run_python_bench.py).
void BM_PredictBatch1000(benchmark::State& state) {
  const auto& records = data().records;
  std::vector<std::string_view> batch;
  for (std::size_t i = 0; i < 1000; ++i) batch.push_back(records[i % records.size()]);
  ember::BatchPrediction p;
  for (auto _ : state) {
    if (!data().model->predict_batch(batch, p).ok()) {
      state.SkipWithError("predict_batch failed");
      break;
    }
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

// The same 1,000 records given column by column, as a frame gives them: numbers as
// float64 columns (NaN where missing), categories as cells viewing their strings.
void BM_PredictBatch1000Columns(benchmark::State& state) {
  const auto& records = data().records;
  const auto& features = data().model->schema().features();
  std::vector<std::vector<double>> numbers(features.size());
  std::vector<std::vector<std::string>> texts(features.size());
  std::vector<std::vector<ember::Cell>> cells(features.size());
  ember::JsonParser parser;
  ember::FeatureRow row;
  ember::ValidationReport report;
  for (std::size_t i = 0; i < 1000; ++i) {
    if (!data().model->schema().validate_into(records[i % records.size()], parser, row, report).ok()) {
      state.SkipWithError("a record is invalid");
      return;
    }
    for (std::size_t f = 0; f < features.size(); ++f) {
      const bool text = features[f].kind == ember::FeatureKind::kCategory || features[f].kind == ember::FeatureKind::kText;
      if (text) texts[f].push_back(row.text[f]);
      else numbers[f].push_back(row.values[f]);
    }
  }
  std::vector<ember::ColumnView> views;
  for (std::size_t f = 0; f < features.size(); ++f) {
    if (texts[f].empty()) {
      views.push_back({features[f].name, ember::ColumnView::Type::kFloat64, numbers[f].data(), 0});
      continue;
    }
    for (const auto& t : texts[f]) {
      ember::Cell c;
      c.type = ember::Cell::Type::kString;
      c.text = t;
      cells[f].push_back(c);
    }
    views.push_back({features[f].name, ember::ColumnView::Type::kCells, cells[f].data(), 0});
  }
  ember::BatchPrediction p;
  for (auto _ : state) {
    if (!data().model->predict_batch(ember::Columns{views, 1000}, p).ok()) {
      state.SkipWithError("predict_batch failed");
      break;
    }
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

// The ceiling of batch scoring: the model alone on rows already validated and
// preprocessed, 10,000 at a time in blocks of 256 (ember score's defaults), per thread
// (bench/run_score_bench.py; run with OMP_NUM_THREADS=1, as ember score runs LibTorch).
void BM_ExecuteCeiling(benchmark::State& state) {
  static const ember::PreparedBatch prepared = [] {
    std::vector<std::string_view> batch;
    for (std::size_t i = 0; i < 10000; ++i) batch.push_back(data().records[i % data().records.size()]);
    ember::PreparedBatch out;
    if (!data().model->prepare(batch, out).ok()) std::exit(1);
    return out;
  }();
  const auto input = check(prepared.input_tensor(), "input_tensor");
  ember::PredictOptions options;
  options.block_rows = 256;
  ember::BatchPrediction p;
  for (auto _ : state) {
    if (!data().model->execute(input, p, options).ok()) {
      state.SkipWithError("execute failed");
      break;
    }
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}

}  // namespace

BENCHMARK(BM_ExecutorDirect)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ChainHealthy);
BENCHMARK(BM_ChainPrimaryOnly);
BENCHMARK(BM_LinearDirect);
BENCHMARK(BM_FailoverToLinear);
BENCHMARK(BM_PairedChainHealthy)->Iterations(20000);
BENCHMARK(BM_PairedFailover)->Iterations(50000);
BENCHMARK(BM_HangBudget5ms)->Iterations(400)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictEndToEnd)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PredictNoTorch)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PairedObserver)->Iterations(100000);
BENCHMARK(BM_PredictBatch1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictBatch1000Columns)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExecuteCeiling)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
