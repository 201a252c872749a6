#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "ember/fallback.hpp"
#include "helpers.hpp"

using ember::DType;
using ember::ExecutorOptions;
using ember::StatusCode;
using ember::Tensor;
using ember_test::floats;
using ember_test::load_ok;
using ember_test::model;

namespace {

void check_close(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(std::abs(got[i] - want[i]) <= tol);
  }
}

std::vector<std::byte> read_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

}  // namespace

TEST_CASE("the MLP gives PyTorch's answers, frozen or not", "[executor]") {
  const auto ref = ember_test::mlp_reference();
  for (bool optimize : {true, false}) {
    INFO("optimize=" << optimize);
    ExecutorOptions options;
    options.optimize = optimize;
    auto exec = load_ok("mlp.pt", options);
    CHECK(exec->info().optimized == optimize);
    CHECK(exec->name() == "torchscript:cpu");
    auto out = exec->run(std::vector<Tensor>{floats(ref.input, {16, 32})});
    REQUIRE(out.ok());
    REQUIRE(out->size() == 1);
    CHECK((*out)[0].name == "output");
    CHECK((*out)[0].tensor.shape() == std::vector<std::int64_t>{16, 1});
    check_close(ember_test::to_vector((*out)[0].tensor), ref.output);
  }
}

TEST_CASE("a model loads from bytes in memory", "[executor]") {
  const auto ref = ember_test::mlp_reference();
  const auto bytes = read_bytes(model("mlp.pt"));
  ExecutorOptions options;
  options.device = "cpu";
  auto exec = ember::TorchExecutor::load_from_memory(bytes, options);
  REQUIRE(exec.ok());
  CHECK((*exec)->info().size_bytes == bytes.size());
  auto out = (*exec)->run(std::vector<Tensor>{floats(ref.input, {16, 32})});
  REQUIRE(out.ok());
  check_close(ember_test::to_vector((*out)[0].tensor), ref.output);
}

TEST_CASE("model info lists methods, inputs and parameters", "[executor]") {
  auto exec = load_ok("mlp.pt");
  const auto& info = exec->info();
  REQUIRE_FALSE(info.methods.empty());
  CHECK(info.methods[0].name == "forward");
  CHECK(info.methods[0].schema == "forward(Tensor x) -> Tensor");
  CHECK(info.parameter_count == 32 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
  CHECK(info.parameter_bytes == info.parameter_count * 4);
  CHECK(info.size_bytes == std::filesystem::file_size(model("mlp.pt")));
  CHECK(exec->input_names() == std::vector<std::string>{"x"});

  ExecutorOptions plain;
  plain.optimize = false;
  auto extra = load_ok("extra_method.pt", plain);
  REQUIRE(extra->info().methods.size() == 2);
  CHECK(extra->info().methods[1].schema == "describe(int k) -> str");
}

TEST_CASE("named inputs are matched to forward()'s arguments", "[executor]") {
  auto exec = load_ok("two_inputs.pt");
  CHECK(exec->input_names() == std::vector<std::string>{"features", "scale"});
  ember::NamedTensors in;
  REQUIRE(in.add("scale", floats({2, 3}, {2})).ok());
  REQUIRE(in.add("features", floats({1, 1}, {2})).ok());
  auto out = exec->run_named(in);
  REQUIRE(out.ok());
  CHECK(ember_test::to_vector((*out)[0].tensor) == std::vector<float>{3, 4});

  ember::NamedTensors missing;
  REQUIRE(missing.add("features", floats({1}, {1})).ok());
  auto r = exec->run_named(missing);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("missing input 'scale'"));

  ember::NamedTensors unknown = in;
  REQUIRE(unknown.add("bias", floats({1}, {1})).ok());
  r = exec->run_named(unknown);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("unknown input 'bias'"));
}

TEST_CASE("optional arguments may be left out", "[executor]") {
  auto exec = load_ok("optional_argument.pt");
  auto one = exec->run(std::vector<Tensor>{floats({1, 2}, {2})});
  REQUIRE(one.ok());
  CHECK(ember_test::to_vector((*one)[0].tensor) == std::vector<float>{10, 20});
  auto two = exec->run(std::vector<Tensor>{floats({1, 2}, {2}), floats({1, 1}, {2})});
  REQUIRE(two.ok());
  CHECK(ember_test::to_vector((*two)[0].tensor) == std::vector<float>{11, 21});
  ember::NamedTensors named;
  REQUIRE(named.add("x", floats({3}, {1})).ok());
  auto by_name = exec->run_named(named);
  REQUIRE(by_name.ok());
  CHECK(ember_test::to_vector((*by_name)[0].tensor) == std::vector<float>{30});
}

TEST_CASE("dict, tuple and nested outputs become named tensors", "[executor]") {
  SECTION("dict") {
    auto out = load_ok("dict_output.pt")->run(std::vector<Tensor>{floats({1, 2, 3, 4}, {1, 4})});
    REQUIRE(out.ok());
    REQUIRE(out->size() == 2);
    CHECK((*out)[0].name == "logits");
    CHECK((*out)[1].name == "probs");
    const auto probs = ember_test::to_vector(*out->find("probs"));
    CHECK(std::abs(probs[0] + probs[1] + probs[2] - 1.0f) < 1e-5f);
  }
  SECTION("tuple") {
    auto out = load_ok("tuple_output.pt")->run(std::vector<Tensor>{floats({1, 2, 3, 4}, {2, 2})});
    REQUIRE(out.ok());
    REQUIRE(out->size() == 2);
    CHECK(ember_test::to_vector(*out->find("0")) == std::vector<float>{3, 7});
    CHECK(ember_test::to_vector(*out->find("1")) == std::vector<float>{2, 4, 6, 8});
  }
  SECTION("nested, with scalars") {
    auto out = load_ok("nested_output.pt")->run(std::vector<Tensor>{floats({1, 2}, {2})});
    REQUIRE(out.ok());
    std::vector<std::string> names;
    for (const auto& e : *out) names.push_back(e.name);
    CHECK(names == std::vector<std::string>{"0", "1.parts.0", "1.parts.1", "2", "3", "4"});
    CHECK(ember_test::to_vector(*out->find("1.parts.1")) == std::vector<float>{3, 6});
    CHECK(out->find("2")->values<std::int64_t>()[0] == 7);
    CHECK(out->find("2")->dim() == 0);
    CHECK(out->find("3")->values<double>()[0] == 0.5);
    CHECK(out->find("4")->values<bool>()[0]);
  }
}

TEST_CASE("an output that is the input itself is copied", "[executor]") {
  std::vector<float> buffer{1, 2, 3};
  auto in = Tensor::view(std::span<float>(buffer), {3});
  REQUIRE(in.ok());
  auto out = load_ok("identity.pt")->run(std::vector<Tensor>{*in});
  REQUIRE(out.ok());
  CHECK((*out)[0].tensor.data() != buffer.data());
  buffer.assign(3, -1.0f);
  CHECK(ember_test::to_vector((*out)[0].tensor) == std::vector<float>{1, 2, 3});
}

TEST_CASE("warm-up runs the example inputs and defines the input specs", "[executor]") {
  const auto ref = ember_test::mlp_reference();
  std::vector<std::string> logs;
  std::mutex mu;
  ExecutorOptions options;
  options.warmup_runs = 3;
  options.example_inputs = {floats(std::vector<float>(ref.input.begin(), ref.input.begin() + 32), {1, 32})};
  options.log = {ember::LogLevel::kInfo, [&](ember::LogLevel, std::string_view m) {
                   std::lock_guard lock(mu);
                   logs.emplace_back(m);
                 }};
  auto exec = load_ok("mlp.pt", options);
  REQUIRE(exec->input_specs().size() == 1);
  CHECK(exec->input_specs()[0].shape == std::vector<std::int64_t>{-1, 32});
  CHECK(exec->input_specs()[0].dtype == DType::kFloat32);
  REQUIRE_FALSE(logs.empty());
  CHECK_THAT(logs.back(), Catch::Contains("loaded") && Catch::Contains("on cpu"));
  // Any batch size passes the inferred spec.
  CHECK(exec->run(std::vector<Tensor>{floats(ref.input, {16, 32})}).ok());
}

TEST_CASE("one model serves many threads at once", "[executor][threads]") {
  const auto ref = ember_test::mlp_reference();
  auto exec = load_ok("mlp.pt");
  // Each thread uses its own row; every answer must equal the single-threaded one.
  std::vector<Tensor> rows;
  std::vector<std::vector<float>> expected;
  for (int r = 0; r < 8; ++r) {
    rows.push_back(floats(std::vector<float>(ref.input.begin() + r * 32, ref.input.begin() + (r + 1) * 32), {1, 32}));
    auto single = exec->run(std::vector<Tensor>{rows.back()});
    REQUIRE(single.ok());
    expected.push_back(ember_test::to_vector((*single)[0].tensor));
  }
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        const int r = (t + i) % 8;
        auto out = exec->run(std::vector<Tensor>{rows[static_cast<std::size_t>(r)]});
        if (!out.ok()) {
          ++failures;
          continue;
        }
        if (ember_test::to_vector((*out)[0].tensor) != expected[static_cast<std::size_t>(r)]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  CHECK(mismatches.load() == 0);
}

TEST_CASE("a model that writes into its input changes nothing the chain's caller or cache sees", "[executor][chain]") {
  // forward(x): x.clamp_(0, 1); x.add_(1); return x.sum(1)
  ember::ExecutorOptions options;
  options.device = "cpu";
  std::shared_ptr<const ember::Executor> executor = load_ok("in_place.pt", options);
  ember::ChainOptions o;
  o.input_width = 3;
  o.stages.push_back({"model", ember::make_executor_stage(executor), std::nullopt});
  o.stages.push_back({"cache", *ember::make_cache_stage({}), std::nullopt});
  auto chain = ember::FallbackChain::create(std::move(o));
  REQUIRE(chain.ok());
  std::vector<double> row{-5.0, 0.25, 7.0};
  const std::vector<double> before = row;
  auto x = *ember::Tensor::view(row, {1, 3});
  ember::ChainResult r;
  for (int i = 0; i < 3; ++i) {
    REQUIRE((*chain)->run(x, r).ok());
    CHECK((*r.outputs.values<float>("output"))[0] == Approx(1.0F + 1.25F + 2.0F));  // the same each time
  }
  CHECK(row == before);  // the caller's row
  // The cache stored the row as it was: the model, now failing, is answered from it.
  ember::ChainOptions o2;
  o2.input_width = 3;
  auto cache = *ember::make_cache_stage({});
  o2.stages.push_back({"model", ember::make_executor_stage(executor), std::nullopt});
  o2.stages.push_back({"cache", cache, std::nullopt});
  auto second = ember::FallbackChain::create(std::move(o2));
  REQUIRE(second.ok());
  REQUIRE((*second)->run(x, r).ok());
  CHECK(cache->run(x).ok());  // found under the unchanged row
}

