// ember's TorchExecutor::run against the anchor, raw torch::jit::Module::forward, on
// the same TorchScript MLP (32 -> 64 -> 64 -> 1 or 70 -> 64 -> 64 -> 1, ReLU, sigmoid),
// one intra-op thread: on LibTorch (BM_EmberRun) and on ember's native kernels
// (BM_EmberNative). Run through bench/run_executor_bench.py, which makes the models and
// prints ratios.
//
//   EMBER_BENCH_MODEL=mlp.pt EMBER_BENCH_WIDTH=32 bench_executor [google-benchmark flags]
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace {

std::string model_path() {
  const char* path = std::getenv("EMBER_BENCH_MODEL");
  return path != nullptr ? path : "mlp.pt";
}

std::int64_t width() {
  const char* w = std::getenv("EMBER_BENCH_WIDTH");
  return w != nullptr ? std::atoll(w) : 32;
}

std::vector<float> make_rows(std::int64_t batch) {
  std::vector<float> rows(static_cast<std::size_t>(batch * width()));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  return rows;
}

// state.range(0): batch size; state.range(1): 1 = frozen + optimize_for_inference.
void BM_RawForward(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const bool frozen = state.range(1) != 0;
  at::set_num_threads(1);
  torch::jit::Module module = torch::jit::load(model_path(), torch::kCPU);
  module.eval();
  if (frozen) {
    torch::jit::Module f = torch::jit::freeze(module);
    module = torch::jit::optimize_for_inference(f);
  }
  std::vector<float> rows = make_rows(batch);
  c10::InferenceMode guard;
  torch::Tensor x = torch::from_blob(rows.data(), {batch, width()}, torch::kFloat);
  for (int i = 0; i < 50; ++i) module.forward({x});
  for (auto _ : state) {
    torch::Tensor y = module.forward({x}).toTensor();
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void ember_run(benchmark::State& state, ember::NativePath path) {
  const std::int64_t batch = state.range(0);
  ember::ExecutorOptions options;
  options.device = "cpu";
  options.optimize = state.range(1) != 0;
  options.native = path;
  (void)ember::set_torch_threads(1);  // process-wide, set once
  std::vector<float> rows = make_rows(batch);
  auto input = ember::Tensor::view(std::span<float>(rows), {batch, width()});
  options.example_inputs = {*input};
  options.warmup_runs = 50;
  auto exec = ember::TorchExecutor::load(model_path(), options);
  if (!exec.ok()) {
    state.SkipWithError(exec.status().to_string().c_str());
    return;
  }
  const std::vector<ember::Tensor> inputs{*input};
  for (auto _ : state) {
    auto out = (*exec)->run(inputs);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// Another executor on the same rows: an AOTInductor package (EMBER_BENCH_PACKAGE) or a
// dynamically quantized TorchScript model (EMBER_BENCH_INT8), skipped when not given.
void other_run(benchmark::State& state, const char* variable) {
  const char* path = std::getenv(variable);
  if (path == nullptr) {
    state.SkipWithError((std::string(variable) + " is not set").c_str());
    return;
  }
  const std::int64_t batch = state.range(0);
  (void)ember::set_torch_threads(1);
  ember::ExecutorOptions options;
  options.device = "cpu";
  std::unique_ptr<ember::Executor> exec;
  if (std::string(variable) == "EMBER_BENCH_PACKAGE") {
    auto loaded = ember::AotiExecutor::load(path, options);
    if (loaded.ok()) exec = std::move(loaded).value();
  } else {
    auto loaded = ember::TorchExecutor::load(path, options);
    if (loaded.ok()) exec = std::move(loaded).value();
  }
  if (exec == nullptr) {
    state.SkipWithError("cannot load the model");
    return;
  }
  std::vector<float> rows = make_rows(batch);
  auto input = ember::Tensor::view(std::span<float>(rows), {batch, width()});
  const std::vector<ember::Tensor> inputs{*input};
  for (int i = 0; i < 50; ++i) (void)exec->run(inputs);
  for (auto _ : state) {
    auto out = exec->run(inputs);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_EmberRun(benchmark::State& state) { ember_run(state, ember::NativePath::kOff); }
void BM_AotiRun(benchmark::State& state) { other_run(state, "EMBER_BENCH_PACKAGE"); }
void BM_Int8Run(benchmark::State& state) { other_run(state, "EMBER_BENCH_INT8"); }
void BM_EmberNative(benchmark::State& state) { ember_run(state, ember::NativePath::kRequire); }

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "frozen"});
  for (std::int64_t batch : {1, 64}) {
    for (std::int64_t frozen : {1, 0}) b->Args({batch, frozen});
  }
  b->Args({32, 1});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_RawForward)->Apply(Args);
BENCHMARK(BM_EmberRun)->Apply(Args);
void Batches(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "frozen"});
  for (std::int64_t batch : {1, 32, 64}) b->Args({batch, 1});
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_EmberNative)->Apply(Batches);
BENCHMARK(BM_AotiRun)->Apply(Batches);
BENCHMARK(BM_Int8Run)->Apply(Batches);

}  // namespace

BENCHMARK_MAIN();
