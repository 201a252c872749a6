// AotiExecutor: an AOTInductor package compiled by ember.aoti answers as the TorchScript
// model does; damaged, foreign and wrong files and inputs are refused with clear errors;
// a chain stage serves it.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ember/model.hpp"
#include "helpers.hpp"

using ember::AotiExecutor;
using ember::ExecutorOptions;
using ember::NativePath;
using ember::StatusCode;
using ember::Tensor;
using ember_test::floats;
using ember_test::model;
using ember_test::to_vector;

namespace {

std::unique_ptr<AotiExecutor> package(const std::string& name, const ExecutorOptions& options = {}) {
  auto loaded = AotiExecutor::load(model("aoti/" + name), options);
  INFO(loaded.status().to_string());
  REQUIRE(loaded.ok());
  return std::move(loaded).value();
}

std::vector<float> rows_of(std::int64_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.5f);
  std::vector<float> v(static_cast<std::size_t>(rows * 70));
  for (auto& x : v) x = d(rng);
  return v;
}

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("ember_aoti_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("an AOTInductor package answers as the TorchScript model does") {
  auto aoti = package("mlp.pt2");
  ExecutorOptions torch_only;
  torch_only.native = NativePath::kOff;
  auto reference = ember_test::load_ok("aoti/mlp.pt", torch_only);
  CHECK(aoti->info().engine == "aoti");
  CHECK(aoti->info().engine_reason.find("torch 2.") != std::string::npos);
  CHECK(aoti->name() == "aoti:cpu");
  REQUIRE(aoti->input_specs().size() == 1);
  CHECK(aoti->input_specs()[0].shape == std::vector<std::int64_t>{-1, 70});
  CHECK(aoti->metadata().count("AOTI_CPU_ISA") == 1);
  unsigned seed = 3;
  for (std::int64_t rows : {1, 2, 7, 64, 1024}) {
    INFO("rows " << rows);
    const Tensor in = floats(rows_of(rows, seed++), {rows, 70});
    auto a = aoti->run(std::vector<Tensor>{in});
    auto b = reference->run(std::vector<Tensor>{in});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    const auto va = to_vector(*a->find("output")), vb = to_vector(*b->find("output"));
    REQUIRE(a->find("output")->shape() == b->find("output")->shape());
    for (std::size_t i = 0; i < va.size(); ++i) CHECK(std::fabs(va[i] - vb[i]) <= 1e-5f);
  }
}

TEST_CASE("missing, empty, truncated, foreign and wrong packages are refused with a clear error") {
  const auto dir = scratch("files");
  const auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    return dir / name;
  };
  std::ifstream good(model("aoti/mlp.pt2"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(good)), std::istreambuf_iterator<char>());
  struct Case {
    std::filesystem::path path;
    StatusCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {dir / "missing.pt2", StatusCode::kNotFound, "does not exist"},
      {dir, StatusCode::kInvalidArgument, "is a directory"},
      {write("empty.pt2", ""), StatusCode::kInvalidArgument, "is empty"},
      {write("text.pt2", "not a package at all"), StatusCode::kInvalidArgument, "not a AOTInductor package (no zip header)"},
      {write("half.pt2", bytes.substr(0, bytes.size() / 2)), StatusCode::kDataLoss, "truncated or corrupt"},
      {model("mlp.pt"), StatusCode::kInvalidArgument, "not an AOTInductor package"},
      {model("aoti/foreign_torch.pt2"), StatusCode::kFailedPrecondition, "compiled with torch 1.0.0"},
      {model("aoti/foreign_cpu.pt2"), StatusCode::kFailedPrecondition, "QUANTUM_FPU"},
      {model("aoti/no_inputs.pt2"), StatusCode::kInvalidArgument, "does not say its inputs"},
  };
  for (const auto& c : cases) {
    INFO(c.path.string());
    auto loaded = AotiExecutor::load(c.path);
    REQUIRE_FALSE(loaded.ok());
    INFO(loaded.status().to_string());
    CHECK(loaded.status().code() == c.code);
    CHECK(loaded.status().message().find(c.says) != std::string::npos);
  }
  ExecutorOptions cuda;
  cuda.device = "cuda";
  CHECK(AotiExecutor::load(model("aoti/mlp.pt2"), cuda).status().code() == StatusCode::kFailedPrecondition);
  // A package without ember's metadata runs when the host says its inputs.
  ExecutorOptions specs;
  specs.input_specs = {ember::InputSpec{ember::DType::kFloat32, {-1, 70}}};
  auto told = package("no_inputs.pt2", specs);
  CHECK(told->run(std::vector<Tensor>{floats(rows_of(3, 1), {3, 70})}).ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("inputs a package does not take are refused before it runs") {
  auto aoti = package("mlp.pt2");
  const auto run = [&](std::vector<Tensor> in) { return aoti->run(in).status(); };
  const Tensor ok = floats(rows_of(2, 5), {2, 70});
  CHECK(run({}).message().find("takes 1 input(s), got 0") != std::string::npos);
  CHECK(run({ok, ok}).code() == StatusCode::kInvalidArgument);
  CHECK(run({Tensor()}).message().find("undefined") != std::string::npos);
  CHECK(run({Tensor::from_values(std::vector<double>(140, 0.5), {2, 70}).value()}).message().find("expected float32") !=
        std::string::npos);
  CHECK(run({floats(std::vector<float>(138, 0.5f), {2, 69})}).message().find("expected shape [-1, 70]") !=
        std::string::npos);
  CHECK(run({floats(std::vector<float>(70, 0.5f), {70})}).code() == StatusCode::kInvalidArgument);
  CHECK(run({floats(std::vector<float>(1025 * 70, 0.5f), {1025, 70})}).message().find("compiled for 1 to 1024") !=
        std::string::npos);
  CHECK(run({floats({}, {0, 70})}).code() == StatusCode::kInvalidArgument);
  ExecutorOptions strict;
  strict.non_finite_inputs = ember::NonFinitePolicy::kReject;
  auto guarded = package("mlp.pt2", strict);
  auto nan = rows_of(1, 2);
  nan[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK(guarded->run(std::vector<Tensor>{floats(nan, {1, 70})}).status().message().find("NaN") != std::string::npos);
}

TEST_CASE("an AOTInductor package runs from many threads at once") {
  auto aoti = package("mlp.pt2");
  const auto x = rows_of(16, 11);
  const auto want = to_vector(*aoti->run(std::vector<Tensor>{floats(x, {16, 70})}).value().find("output"));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto got = aoti->run(std::vector<Tensor>{Tensor::from_values(x, {16, 70}).value()});
        if (!got.ok() || to_vector(*got->find("output")) != want) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}

TEST_CASE("a chain's aoti stage serves the package, with a fallback behind it") {
  const auto dir = scratch("stage");
  std::string props, required;
  for (int i = 0; i < 70; ++i) {
    props += std::string(i ? ", " : "") + "\"f" + std::to_string(i) + "\": {\"type\": \"number\"}";
    required += std::string(i ? ", " : "") + "\"f" + std::to_string(i) + "\"";
  }
  std::ofstream(dir / "schema.json") << "{\"type\": \"object\", \"properties\": {" << props << "}, \"required\": ["
                                     << required << "]}";
  std::filesystem::copy_file(model("aoti/mlp.pt2"), dir / "model.pt2");
  std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
    {"name": "compiled", "type": "aoti"}, {"name": "default", "type": "default", "outputs": {"output": 0.5}}]})";
  auto m = ember::Model::load(dir);
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  std::string record = "{";
  std::vector<float> x(70);
  for (int i = 0; i < 70; ++i) {
    x[static_cast<std::size_t>(i)] = 0.05f * static_cast<float>(i % 9) - 0.2f;
    record += std::string(i ? ", " : "") + "\"f" + std::to_string(i) + "\": " + std::to_string(x[static_cast<std::size_t>(i)]);
  }
  record += "}";
  auto p = (*m)->predict(record);
  REQUIRE(p.ok());
  CHECK(p->served_by == "compiled");
  ExecutorOptions torch_only;
  torch_only.native = NativePath::kOff;
  auto reference = ember_test::load_ok("aoti/mlp.pt", torch_only);
  auto want = reference->run(std::vector<Tensor>{floats(x, {1, 70})});
  REQUIRE(want.ok());
  CHECK(std::fabs(p->value().value() - to_vector(*want->find("output"))[0]) <= 1e-5);
  std::filesystem::remove_all(dir);
}
