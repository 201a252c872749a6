// A sentence embedder (all-MiniLM-L6-v2: token ids and attention mask in, a normalized
// 384-wide embedding out) through ember's executors and raw LibTorch, one intra-op thread,
// batches of 1 and 32 sentences of EMBER_BENCH_SEQ tokens (32). Run through
// bench/run_minilm_bench.py, which exports the model in each form, checks every form's
// embeddings against sentence-transformers', and prints the table.
//
//   EMBER_BENCH_TS=minilm.pt EMBER_BENCH_PT2=minilm.pt2 EMBER_BENCH_INT8=minilm_int8.pt bench_embedder
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace {

std::int64_t seq() {
  const char* s = std::getenv("EMBER_BENCH_SEQ");
  return s != nullptr ? std::atoll(s) : 32;
}

// Token ids of `batch` sentences (CLS ... SEP, then padding in the last quarter).
struct Tokens {
  std::vector<std::int64_t> ids, mask;
};
Tokens tokens(std::int64_t batch) {
  Tokens t;
  const std::int64_t n = seq();
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t used = n - (b % 4) * n / 16;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool on = i < used;
      t.ids.push_back(!on ? 0 : i == 0 ? 101 : i == used - 1 ? 102 : 1000 + (b * 131 + i * 17) % 20000);
      t.mask.push_back(on ? 1 : 0);
    }
  }
  return t;
}

void run_executor(benchmark::State& state, const ember::Executor& exec) {
  const std::int64_t batch = state.range(0);
  Tokens t = tokens(batch);
  auto ids = ember::Tensor::view(std::span<std::int64_t>(t.ids), {batch, seq()});
  auto mask = ember::Tensor::view(std::span<std::int64_t>(t.mask), {batch, seq()});
  const std::vector<ember::Tensor> inputs{*ids, *mask};
  for (int i = 0; i < 5; ++i) {
    auto warm = exec.run(inputs);
    if (!warm.ok()) {
      state.SkipWithError(warm.status().to_string().c_str());
      return;
    }
  }
  for (auto _ : state) {
    auto out = exec.run(inputs);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

const char* path_of(benchmark::State& state, const char* variable) {
  const char* p = std::getenv(variable);
  if (p == nullptr) state.SkipWithError((std::string(variable) + " is not set").c_str());
  return p;
}

void BM_RawForward(benchmark::State& state) {
  const char* path = path_of(state, "EMBER_BENCH_TS");
  if (path == nullptr) return;
  at::set_num_threads(1);
  torch::jit::Module module = torch::jit::load(path, torch::kCPU);
  module.eval();
  const std::int64_t batch = state.range(0);
  Tokens t = tokens(batch);
  c10::InferenceMode guard;
  auto ids = torch::from_blob(t.ids.data(), {batch, seq()}, torch::kLong);
  auto mask = torch::from_blob(t.mask.data(), {batch, seq()}, torch::kLong);
  for (int i = 0; i < 5; ++i) module.forward({ids, mask});
  for (auto _ : state) {
    auto y = module.forward({ids, mask}).toTensor();
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void torchscript(benchmark::State& state, const char* variable) {
  const char* path = path_of(state, variable);
  if (path == nullptr) return;
  (void)ember::set_torch_threads(1);
  ember::ExecutorOptions options;
  options.device = "cpu";
  auto exec = ember::TorchExecutor::load(path, options);
  if (!exec.ok()) {
    state.SkipWithError(exec.status().to_string().c_str());
    return;
  }
  run_executor(state, **exec);
}

void BM_EmberTorchScript(benchmark::State& state) { torchscript(state, "EMBER_BENCH_TS"); }
void BM_EmberInt8(benchmark::State& state) { torchscript(state, "EMBER_BENCH_INT8"); }

void BM_EmberAoti(benchmark::State& state) {
  const char* path = path_of(state, "EMBER_BENCH_PT2");
  if (path == nullptr) return;
  (void)ember::set_torch_threads(1);
  auto exec = ember::AotiExecutor::load(path);
  if (!exec.ok()) {
    state.SkipWithError(exec.status().to_string().c_str());
    return;
  }
  run_executor(state, **exec);
}

void Batches(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch"});
  for (std::int64_t batch : {1, 32}) b->Args({batch});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_RawForward)->Apply(Batches);
BENCHMARK(BM_EmberTorchScript)->Apply(Batches);
BENCHMARK(BM_EmberAoti)->Apply(Batches);
BENCHMARK(BM_EmberInt8)->Apply(Batches);

}  // namespace

BENCHMARK_MAIN();
