// The ceiling for dynamic batching: the raw TorchScript forward of a model at batch 1
// and 32, one thread, no ember code. run_serving_bench.py puts the Deployment beside it.
//
//   EMBER_BENCH_MODEL=model.pt EMBER_BENCH_WIDTH=70 bench_serving
#include <benchmark/benchmark.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace {

void BM_RawForward(benchmark::State& state) {
  const char* path = std::getenv("EMBER_BENCH_MODEL");
  const char* width_text = std::getenv("EMBER_BENCH_WIDTH");
  if (path == nullptr || width_text == nullptr) {
    state.SkipWithError("set EMBER_BENCH_MODEL and EMBER_BENCH_WIDTH");
    return;
  }
  const std::int64_t batch = state.range(0);
  const std::int64_t width = std::atoll(width_text);
  at::set_num_threads(1);
  torch::jit::Module module = torch::jit::load(path, torch::kCPU);
  module.eval();
  std::vector<float> rows(static_cast<std::size_t>(batch * width), 0.5f);
  c10::InferenceMode guard;
  torch::Tensor x = torch::from_blob(rows.data(), {batch, width}, torch::kFloat);
  for (int i = 0; i < 50; ++i) module.forward({x});
  for (auto _ : state) {
    torch::Tensor y = module.forward({x}).toTensor();
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_RawForward)->Arg(1)->Arg(32)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
