// The native path: TorchScript networks lowered to ember's kernels answer as LibTorch
// does (within 1e-6 relative) on real and random inputs at batch 1 to 1,024; the path
// taken and the reason are visible; net.json round-trips; bad networks are refused.
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ember/native.hpp"
#include "helpers.hpp"

using ember::ExecutorOptions;
using ember::NativeExecutor;
using ember::NativePath;
using ember::StatusCode;
using ember::Tensor;
using ember_test::floats;
using ember_test::load_ok;
using ember_test::model;
using ember_test::to_vector;

namespace {

std::unique_ptr<ember::TorchExecutor> load_path(const std::string& name, NativePath path) {
  ExecutorOptions options;
  options.native = path;
  return load_ok("native/" + name + ".pt", options);
}

std::vector<float> random_rows(std::int64_t rows, std::int64_t cols, unsigned seed, float scale = 2.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (auto& x : v) x = d(rng);
  return v;
}

// |native - libtorch| <= 1e-6 * max(1, |libtorch|), element by element; returns the largest
// relative difference seen.
double compare(const ember::TorchExecutor& native, const ember::TorchExecutor& torch, const std::vector<float>& x,
               std::int64_t rows, std::int64_t cols) {
  const Tensor in = floats(x, {rows, cols});
  auto a = native.run(std::vector<Tensor>{in});
  auto b = torch.run(std::vector<Tensor>{in});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  const Tensor& ta = *a->find("output");
  const Tensor& tb = *b->find("output");
  REQUIRE(ta.shape() == tb.shape());
  const auto va = to_vector(ta), vb = to_vector(tb);
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double err = std::fabs(static_cast<double>(va[i]) - vb[i]) / std::max(1.0, std::fabs(static_cast<double>(vb[i])));
    worst = std::max(worst, err);
    if (err > 1e-6) {
      INFO("row " << i << ": native " << va[i] << ", LibTorch " << vb[i]);
      CHECK(err <= 1e-6);
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("lowered networks answer as LibTorch does, on random inputs from batch 1 to 1024") {
  for (const char* name : {"cancer", "wine", "residual", "vector", "wide"}) {
    INFO(name);
    auto native = load_path(name, NativePath::kRequire);
    auto torch = load_path(name, NativePath::kOff);
    CHECK(native->info().engine == "native");
    CHECK(torch->info().engine == "libtorch");
    CHECK(torch->info().engine_reason == "the native path is off");
    auto net = NativeExecutor::parse(*native->native_json());
    REQUIRE(net.ok());
    const std::int64_t cols = (*net)->inputs();
    double worst = 0;
    unsigned seed = 1;
    for (std::int64_t rows : {1, 2, 3, 4, 5, 7, 16, 64, 255, 1024}) {
      INFO("batch " << rows);
      worst = std::max(worst, compare(*native, *torch, random_rows(rows, cols, seed++), rows, cols));
    }
    WARN(name << ": largest relative difference to LibTorch " << worst);
  }
}

TEST_CASE("lowered networks answer as LibTorch does on the data they were trained on") {
  for (const char* name : {"cancer", "wine"}) {
    INFO(name);
    const auto doc = ember_test::read_json(model(std::string("native/") + name + ".inputs.json"));
    const auto rows = doc.at("rows").get<std::int64_t>(), cols = doc.at("cols").get<std::int64_t>();
    const auto values = doc.at("values").get<std::vector<float>>();
    auto native = load_path(name, NativePath::kRequire);
    auto torch = load_path(name, NativePath::kOff);
    compare(*native, *torch, values, rows, cols);
    // One row at a time gives each row the same answer as in the whole batch.
    auto whole = native->run(std::vector<Tensor>{floats(values, {rows, cols})});
    REQUIRE(whole.ok());
    const auto all = to_vector(*whole->find("output"));
    const std::int64_t width = static_cast<std::int64_t>(all.size()) / rows;
    for (std::int64_t r = 0; r < rows; r += 37) {
      std::vector<float> one(values.begin() + r * cols, values.begin() + (r + 1) * cols);
      auto single = native->run(std::vector<Tensor>{floats(one, {1, cols})});
      REQUIRE(single.ok());
      const auto got = to_vector(*single->find("output"));
      for (std::int64_t c = 0; c < width; ++c) CHECK(got[static_cast<std::size_t>(c)] == all[static_cast<std::size_t>(r * width + c)]);
    }
  }
}

TEST_CASE("the path taken and why are visible; require fails on what does not lower") {
  auto native = load_path("wide", NativePath::kAuto);
  CHECK(native->info().engine == "native");
  CHECK(native->info().engine_reason == "linear 70->64, relu, linear 64->64, relu, linear 64->1, sigmoid");
  CHECK(load_path("vector", NativePath::kAuto)->info().engine_reason == "linear 70->1, sigmoid, squeeze");
  CHECK(load_path("cancer", NativePath::kAuto)->info().engine_reason ==
        "linear 30->64, layer_norm, gelu, linear 64->32, tanh, linear 32->1, sigmoid, squeeze");
  CHECK(load_path("residual", NativePath::kAuto)->info().engine_reason ==
        "linear 10->24, relu, save, linear 24->24, relu, linear 24->24, add_saved, relu, save, linear 24->24, relu, "
        "linear 24->24, add_saved, linear 24->2");

  auto gated = load_path("gated", NativePath::kAuto);
  CHECK(gated->info().engine == "libtorch");
  CHECK(gated->info().engine_reason.find("aten::mul") != std::string::npos);
  CHECK(gated->native_json().status().code() == StatusCode::kFailedPrecondition);
  ExecutorOptions require;
  require.native = NativePath::kRequire;
  require.device = "cpu";
  auto refused = ember::TorchExecutor::load(model("native/gated.pt"), require);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK(refused.status().message().find("native path was required") != std::string::npos);
  // Inputs the network does not take go to LibTorch, which answers or refuses as before.
  auto other = native->run(std::vector<Tensor>{floats(std::vector<float>(3 * 70, 0.5f), {3, 70, 1})});
  CHECK_FALSE(other.ok());
}

TEST_CASE("the native path is safe from many threads at once") {
  auto native = load_path("wine", NativePath::kRequire);
  const auto x = random_rows(33, 13, 9);
  auto expected = native->run(std::vector<Tensor>{floats(x, {33, 13})});
  REQUIRE(expected.ok());
  const auto want = to_vector(*expected->find("output"));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::int64_t rows = i % 2 == 0 ? 33 : 1 + (i + t) % 5;  // scratch grows and shrinks between calls
        std::vector<float> in(x.begin(), x.begin() + rows * 13);
        auto got = native->run(std::vector<Tensor>{Tensor::from_values(in, {rows, 13}).value()});
        if (!got.ok() || to_vector(*got->find("output")) != std::vector<float>(want.begin(), want.begin() + rows * 3)) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
}

TEST_CASE("NaN and infinity go through the native path as through LibTorch") {
  for (const char* name : {"wide", "cancer", "wine", "residual"}) {
    INFO(name);
    auto native = load_path(name, NativePath::kRequire);
    auto torch = load_path(name, NativePath::kOff);
    const std::int64_t cols = NativeExecutor::parse(*native->native_json()).value()->inputs();
    for (float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
      auto x = random_rows(3, cols, 4);
      x[1] = special;
      const Tensor in = floats(x, {3, cols});
      const auto a = to_vector(*native->run(std::vector<Tensor>{in})->find("output"));
      const auto b = to_vector(*torch->run(std::vector<Tensor>{in})->find("output"));
      REQUIRE(a.size() == b.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("element " << i << ": native " << a[i] << ", LibTorch " << b[i]);
        CHECK(std::isnan(a[i]) == std::isnan(b[i]));
        if (!std::isnan(b[i])) CHECK(std::fabs(a[i] - b[i]) <= 1e-6 * std::max(1.0f, std::fabs(b[i])));
      }
    }
  }
}
