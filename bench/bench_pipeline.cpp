// Preprocessing speed: one row of 30 features (25 numeric with imputation + scaling,
// 5 string categoricals one-hot encoded) and batches of 1,024 rows. Run through
// bench/run_pipeline_bench.py, which fits the same ColumnTransformer in scikit-learn,
// exports it, and times scikit-learn on the same rows.
//
//   EMBER_BENCH_DATA=DIR bench_pipeline [google-benchmark flags]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/pipeline.hpp"

namespace {

struct Data {
  ember::Pipeline pipeline;
  std::vector<ember::FeatureRow> rows;
  ember::FeatureBatch batch;
};

const Data& data() {
  static const Data d = [] {
    const char* dir_env = std::getenv("EMBER_BENCH_DATA");
    const std::string dir = dir_env != nullptr ? dir_env : ".";
    auto pipeline = ember::Pipeline::load(dir + "/pipeline.json");
    if (!pipeline.ok()) {
      std::fprintf(stderr, "bench_pipeline: %s\n", pipeline.status().to_string().c_str());
      std::exit(1);
    }
    std::ifstream f(dir + "/rows.json");
    const auto rows = nlohmann::json::parse(f);
    Data out{*pipeline, {}, {}};
    const std::size_t cols = pipeline->input_names().size();
    out.batch.cols = cols;
    for (const auto& cells : rows) {
      ember::FeatureRow row;
      row.values.assign(cols, std::numeric_limits<float>::quiet_NaN());
      row.text.assign(cols, "");
      for (std::size_t i = 0; i < cols; ++i) {
        if (cells[i].is_null()) continue;
        if (pipeline->input_is_string(i)) {
          row.text[i] = cells[i].get<std::string>();
          row.values[i] = 0.0f;
        } else {
          row.values[i] = cells[i].get<float>();
        }
      }
      out.batch.values.insert(out.batch.values.end(), row.values.begin(), row.values.end());
      out.batch.text.insert(out.batch.text.end(), row.text.begin(), row.text.end());
      ++out.batch.rows;
      out.rows.push_back(std::move(row));
    }
    return out;
  }();
  return d;
}

void BM_TransformRow(benchmark::State& state) {
  const auto& d = data();
  std::vector<double> out(d.pipeline.output_width());
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = d.pipeline.transform(d.rows[i++ % d.rows.size()], out);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_TransformBatch1024(benchmark::State& state) {
  const auto& d = data();
  std::vector<double> out(d.batch.rows * d.pipeline.output_width());
  for (auto _ : state) {
    auto s = d.pipeline.transform_batch(d.batch, out);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(d.batch.rows));
}

BENCHMARK(BM_TransformRow);
BENCHMARK(BM_TransformBatch1024)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
