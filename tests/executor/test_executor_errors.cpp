// Every bad input the executor can meet gets a clear Status, never a crash.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "ember/threads.hpp"
#include "helpers.hpp"

using ember::DType;
using ember::ExecutorOptions;
using ember::StatusCode;
using ember::Tensor;
using ember::TorchExecutor;
using ember_test::floats;
using ember_test::load_ok;
using ember_test::model;

namespace {

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "ember-executor-tests";
  std::filesystem::create_directories(dir);
  return dir / name;
}

std::filesystem::path write_file(const std::string& name, const std::string& bytes) {
  auto path = scratch(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

ember::Status load_status(const std::filesystem::path& path) {
  ExecutorOptions options;
  options.device = "cpu";
  return TorchExecutor::load(path, options).status();
}

ember::Status load_memory_status(const std::string& bytes) {
  ExecutorOptions options;
  options.device = "cpu";
  return TorchExecutor::load_from_memory(std::as_bytes(std::span(bytes.data(), bytes.size())), options).status();
}

ExecutorOptions cpu_with_specs() {
  ExecutorOptions options;
  options.device = "cpu";
  options.input_specs = {{DType::kFloat32, {-1, 32}}};
  return options;
}

}  // namespace

TEST_CASE("a missing file is NotFound", "[executor][errors]") {
  auto s = load_status(scratch("does-not-exist.pt"));
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK_THAT(s.message(), Catch::Contains("does-not-exist.pt"));
}

TEST_CASE("a directory is not a model", "[executor][errors]") {
  CHECK(load_status(ember_test::models_dir()).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("an empty file or buffer is InvalidArgument", "[executor][errors]") {
  auto s = load_status(write_file("empty.pt", ""));
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("is empty"));
  CHECK(load_memory_status("").code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a file that is not an archive is InvalidArgument", "[executor][errors]") {
  for (const std::string& bytes : {std::string("hello, I am text\n"), std::string("PK"), std::string(4096, '\xff'),
                                   std::string("\x80\x02}q\x00.", 6)}) {
    auto s = load_status(write_file("not-archive.pt", bytes));
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("not a TorchScript archive"));
    CHECK(load_memory_status(bytes).code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a truncated archive is DataLoss", "[executor][errors]") {
  const std::string whole = read_all(model("mlp.pt"));
  REQUIRE(whole.size() > 1000);
  for (std::size_t keep : {std::size_t{4}, std::size_t{100}, whole.size() / 3, whole.size() / 2, whole.size() - 100,
                           whole.size() - 23, whole.size() - 1}) {
    INFO("kept " << keep << " of " << whole.size() << " bytes");
    const std::string cut = whole.substr(0, keep);
    auto s = load_status(write_file("truncated.pt", cut));
    CHECK(s.code() == StatusCode::kDataLoss);
    CHECK_THAT(s.message(), Catch::Contains("truncated or corrupt"));
    CHECK(load_memory_status(cut).code() == StatusCode::kDataLoss);
  }
}

TEST_CASE("a damaged central directory is DataLoss, not a crash", "[executor][errors]") {
  std::string bytes = read_all(model("mlp.pt"));
  // Overwrite the middle of the central directory, keeping the end record intact.
  const std::size_t eocd = bytes.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  for (std::size_t i = eocd - 200; i < eocd - 20; ++i) bytes[i] = '\x5a';
  auto s = load_status(write_file("damaged.pt", bytes));
  CHECK((s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kInvalidArgument));
  CHECK_FALSE(s.ok());
}

TEST_CASE("a zip that is not a TorchScript module is InvalidArgument", "[executor][errors]") {
  for (const char* name : {"random.zip", "state_dict.pt"}) {
    INFO(name);
    auto s = load_status(model(name));
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("not a loadable TorchScript module"));
    CHECK(s.message().find('\n') == std::string::npos);
  }
}

TEST_CASE("bad options are InvalidArgument", "[executor][errors]") {
  ExecutorOptions options;
  options.device = "cpu";
  options.warmup_runs = 2;
  CHECK(TorchExecutor::load(model("mlp.pt"), options).status().code() == StatusCode::kInvalidArgument);
  options.warmup_runs = -1;
  CHECK(TorchExecutor::load(model("mlp.pt"), options).status().code() == StatusCode::kInvalidArgument);
  options.warmup_runs = 0;
  CHECK(ember::set_torch_threads(0).code() == StatusCode::kInvalidArgument);
  CHECK(ember::set_torch_threads(-4).code() == StatusCode::kInvalidArgument);
  options.input_specs = {{DType::kFloat32, {1}}, {DType::kFloat32, {1}}};
  CHECK(TorchExecutor::load(model("mlp.pt"), options).status().code() == StatusCode::kInvalidArgument);
  options.input_specs.clear();
  options.device = "tpu";
  auto s = TorchExecutor::load(model("mlp.pt"), options).status();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("bad device 'tpu'"));
}

TEST_CASE("example inputs that do not fit the model fail the load", "[executor][errors]") {
  ExecutorOptions options;
  options.device = "cpu";
  options.warmup_runs = 1;
  options.example_inputs = {floats({1, 2, 3}, {1, 3})};
  auto s = TorchExecutor::load(model("mlp.pt"), options).status();
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_THAT(s.message(), Catch::Contains("warm-up run 1"));
}

TEST_CASE("CUDA where there is none is FailedPrecondition", "[executor][errors][cuda]") {
  if (ember::cuda_available()) {
    SUCCEED("CUDA is available here; the GPU path is exercised instead");
    ExecutorOptions options;
    options.device = "cuda:" + std::to_string(ember::cuda_device_count());
    CHECK(TorchExecutor::load(model("mlp.pt"), options).status().code() == StatusCode::kFailedPrecondition);
    return;
  }
  for (const char* device : {"cuda", "cuda:0", "cuda:3"}) {
    ExecutorOptions options;
    options.device = device;
    auto s = TorchExecutor::load(model("mlp.pt"), options).status();
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("CUDA is not available"));
  }
  // "auto" falls back to the CPU.
  ExecutorOptions automatic;
  auto exec = TorchExecutor::load(model("mlp.pt"), automatic);
  REQUIRE(exec.ok());
  CHECK((*exec)->info().device == "cpu");
}

TEST_CASE("the wrong number of inputs is InvalidArgument", "[executor][errors]") {
  auto exec = load_ok("two_inputs.pt");
  auto s = exec->run(std::vector<Tensor>{floats({1}, {1})}).status();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "forward() takes 2 input(s) (features, scale), got 1");
  CHECK(exec->run(std::vector<Tensor>{}).status().code() == StatusCode::kInvalidArgument);
  const auto three = std::vector<Tensor>{floats({1}, {1}), floats({1}, {1}), floats({1}, {1})};
  CHECK(exec->run(three).status().code() == StatusCode::kInvalidArgument);
  CHECK(exec->run(std::vector<Tensor>{Tensor(), floats({1}, {1})}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a dtype that does not match the spec is InvalidArgument", "[executor][errors]") {
  auto exec = load_ok("mlp.pt", cpu_with_specs());
  auto doubles = Tensor::zeros(DType::kFloat64, {1, 32});
  auto s = exec->run(std::vector<Tensor>{*doubles}).status();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "input 0 ('x'): expected float32, got float64");
}

TEST_CASE("a rank or shape that does not match the spec is InvalidArgument", "[executor][errors]") {
  auto exec = load_ok("mlp.pt", cpu_with_specs());
  auto rank1 = Tensor::zeros(DType::kFloat32, {32});
  auto s = exec->run(std::vector<Tensor>{*rank1}).status();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "input 0 ('x'): expected shape [-1, 32], got [32]");
  auto narrow = Tensor::zeros(DType::kFloat32, {4, 31});
  CHECK(exec->run(std::vector<Tensor>{*narrow}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("without specs, a shape the model rejects is Internal with a one-line reason", "[executor][errors]") {
  auto exec = load_ok("mlp.pt");
  auto wrong = Tensor::zeros(DType::kFloat32, {2, 5});
  auto s = exec->run(std::vector<Tensor>{*wrong}).status();
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_THAT(s.message(), Catch::Contains("forward() failed"));
  CHECK(s.message().find('\n') == std::string::npos);
  auto int_input = Tensor::zeros(DType::kInt64, {2, 32});
  auto s2 = exec->run(std::vector<Tensor>{*int_input}).status();
  CHECK(s2.code() == StatusCode::kInternal);
  CHECK(s2.message().find('\n') == std::string::npos);
}

TEST_CASE("NaN and Inf inputs pass through or are rejected, as configured", "[executor][errors]") {
  std::vector<float> row(32, 0.5f);
  row[7] = std::numeric_limits<float>::quiet_NaN();
  const Tensor with_nan = floats(row, {1, 32});
  row[7] = std::numeric_limits<float>::infinity();
  const Tensor with_inf = floats(row, {1, 32});

  auto passing = load_ok("mlp.pt");
  auto out = passing->run(std::vector<Tensor>{with_nan});
  REQUIRE(out.ok());
  CHECK(std::isnan(ember_test::to_vector((*out)[0].tensor)[0]));

  ExecutorOptions reject;
  reject.non_finite_inputs = ember::NonFinitePolicy::kReject;
  auto strict = load_ok("mlp.pt", reject);
  for (const Tensor& bad : {with_nan, with_inf}) {
    auto s = strict->run(std::vector<Tensor>{bad}).status();
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message() == "input 0 ('x') contains NaN or Inf");
  }
  CHECK(strict->run(std::vector<Tensor>{floats(std::vector<float>(32, 1.0f), {1, 32})}).ok());
}

TEST_CASE("a model whose forward raises is Internal with the model's message", "[executor][errors]") {
  auto exec = load_ok("raises.pt");
  CHECK(exec->run(std::vector<Tensor>{floats({1, 2}, {2})}).ok());
  auto s = exec->run(std::vector<Tensor>{floats({-1, -2}, {2})}).status();
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_THAT(s.message(), Catch::Contains("negative total is not allowed"));
  CHECK(s.message().find('\n') == std::string::npos);
}

TEST_CASE("a forward() with non-tensor arguments is Unimplemented", "[executor][errors]") {
  auto exec = load_ok("int_argument.pt");
  auto s = exec->run(std::vector<Tensor>{floats({1}, {1, 1}), floats({2}, {1})}).status();
  CHECK(s.code() == StatusCode::kUnimplemented);
  CHECK_THAT(s.message(), Catch::Contains("'repeats'"));
}

TEST_CASE("an output that is not tensors is Internal", "[executor][errors]") {
  auto s = load_ok("string_output.pt")->run(std::vector<Tensor>{floats({1}, {1})}).status();
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_THAT(s.message(), Catch::Contains("unsupported type String"));
}
