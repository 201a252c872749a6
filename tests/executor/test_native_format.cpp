// net.json and NativeExecutor without LibTorch: a hand-written network computes what it
// says, runs as a chain stage, and malformed, truncated, oversized and hostile networks
// and inputs are refused with a clear error.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ember/model.hpp"
#include "ember/native.hpp"

using ember::NativeExecutor;
using ember::StatusCode;
using ember::Tensor;

namespace {

// 2 -> 3 (relu) -> 1 (sigmoid), squeezed; and a residual add and layer norm on the way.
const char* kNet = R"({"format": "ember-net", "version": 1, "inputs": 2, "squeeze": true, "layers": [
  {"op": "linear", "in": 2, "out": 3, "weight": [[1, 0], [0, 1], [1, -1]], "bias": [0, 0.5, 0]},
  {"op": "relu"},
  {"op": "save", "slot": 0},
  {"op": "affine", "weight": [2, 2, 2], "bias": [0, 0, 0]},
  {"op": "add_saved", "slot": 0},
  {"op": "linear", "in": 3, "out": 1, "weight": [[0.5, -0.25, 1]]},
  {"op": "sigmoid"}]})";

double reference(double x, double y) {
  double h[3] = {std::max(0.0, x), std::max(0.0, y + 0.5), std::max(0.0, x - y)};
  for (double& v : h) v = 3 * v;  // relu(.) + 2 relu(.)
  const double z = 0.5 * h[0] - 0.25 * h[1] + h[2];
  return 1 / (1 + std::exp(-z));
}

std::string with(const std::string& from, const std::string& to) {
  std::string s = kNet;
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a network from net.json computes what it says, for any batch") {
  auto net = NativeExecutor::parse(kNet);
  INFO(net.status().to_string());
  REQUIRE(net.ok());
  CHECK((*net)->describe() == "linear 2->3, relu, save, affine, add_saved, linear 3->1, sigmoid, squeeze");
  CHECK((*net)->inputs() == 2);
  CHECK((*net)->outputs() == 1);
  CHECK((*net)->parameter_count() == 6 + 3 + 6 + 3);
  for (std::int64_t rows : {1, 4, 5, 37}) {
    std::vector<float> x;
    for (std::int64_t r = 0; r < rows; ++r) {
      x.push_back(static_cast<float>(r) * 0.3f - 2.0f);
      x.push_back(1.5f - static_cast<float>(r) * 0.2f);
    }
    auto out = (*net)->run(std::vector<Tensor>{Tensor::from_values(x, {rows, 2}).value()});
    REQUIRE(out.ok());
    const Tensor& y = *out->find("output");
    REQUIRE(y.shape() == std::vector<std::int64_t>{rows});
    for (std::int64_t r = 0; r < rows; ++r) {
      CHECK(y.values<float>()[static_cast<std::size_t>(r)] ==
            Approx(reference(x[static_cast<std::size_t>(2 * r)], x[static_cast<std::size_t>(2 * r + 1)])).epsilon(1e-6));
    }
  }
  // to_json() reads back to the same network.
  auto again = NativeExecutor::parse((*net)->to_json());
  REQUIRE(again.ok());
  CHECK((*again)->to_json() == (*net)->to_json());
}

TEST_CASE("malformed, truncated, oversized and hostile networks are refused naming the problem") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {std::string(kNet).substr(0, 120), "not valid JSON"},
      {"[]", "\"format\" must be \"ember-net\""},
      {with("\"version\": 1", "\"version\": 2"), "unsupported format version"},
      {with("\"inputs\": 2", "\"inputs\": 0"), "'inputs' must be 1 to"},
      {with("\"inputs\": 2", "\"inputs\": 99999999999"), "'inputs' must be 1 to"},
      {with("\"op\": \"relu\"", "\"op\": \"conv2d\""), "unknown op 'conv2d'"},
      {with("\"in\": 2, \"out\": 3", "\"in\": 3, \"out\": 3"), "'in' is 3 but the activation is 2 wide"},
      {with("[[1, 0], [0, 1], [1, -1]]", "[[1, 0], [0, 1]]"), "'weight' must hold 'out' rows"},
      {with("[[1, 0], [0, 1], [1, -1]]", "[[1, 0], [0, 1], [1, \"x\"]]"), "is not a number"},
      {with("[[1, 0], [0, 1], [1, -1]]", "[[1, 0], [0, 1], [1, 1e39]]"), "is not a finite float32"},
      {with("\"bias\": [0, 0.5, 0]", "\"bias\": [0, 0.5]"), "'bias' must hold 3 numbers"},
      {with("{\"op\": \"add_saved\", \"slot\": 0}", "{\"op\": \"add_saved\", \"slot\": 1}"), "slot 1 holds no activation"},
      {with("\"slot\": 0}", "\"slot\": -1}"), "'slot' must be an integer from 0 to 63"},
      {with("\"squeeze\": true", "\"squeeze\": 1"), "'squeeze' must be true or false"},
      {with("{\"op\": \"sigmoid\"}", "{\"op\": \"sigmoid\"}, {\"op\": \"linear\", \"in\": 1, \"out\": 2, \"weight\": [[1], [1]]}"),
       "'squeeze' needs an output of width 1"},
      {with("\"layers\": [", "\"layers\": {"), "not valid JSON"},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text.substr(0, 200));
    auto net = NativeExecutor::parse(text);
    REQUIRE_FALSE(net.ok());
    CHECK(net.status().code() == StatusCode::kInvalidArgument);
    INFO(net.status().to_string());
    CHECK(net.status().message().find(expected) != std::string::npos);
  }
  CHECK(NativeExecutor::load("/nonexistent/net.json").status().code() == StatusCode::kNotFound);
}

TEST_CASE("the native executor refuses inputs it does not take") {
  auto net = NativeExecutor::parse(kNet);
  REQUIRE(net.ok());
  const auto run = [&](std::vector<Tensor> in) { return (*net)->run(in).status(); };
  CHECK(run({}).code() == StatusCode::kInvalidArgument);
  CHECK(run({Tensor::from_values(std::vector<float>{1, 2, 3}, {1, 3}).value()}).code() == StatusCode::kInvalidArgument);
  CHECK(run({Tensor::from_values(std::vector<double>{1, 2}, {1, 2}).value()}).code() == StatusCode::kInvalidArgument);
  CHECK(run({Tensor::from_values(std::vector<float>{1, 2}, {2}).value()}).code() == StatusCode::kInvalidArgument);
  CHECK(run({Tensor()}).code() == StatusCode::kInvalidArgument);
  auto empty = (*net)->run(std::vector<Tensor>{Tensor::from_values(std::vector<float>{}, {0, 2}).value()});
  REQUIRE(empty.ok());
  CHECK(empty->find("output")->shape() == std::vector<std::int64_t>{0});
}

TEST_CASE("a chain's native stage runs a network without LibTorch") {
  const auto dir = std::filesystem::temp_directory_path() / "ember_native_stage";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "schema.json") << R"({"type": "object", "required": ["x", "y"], "additionalProperties": false,
    "properties": {"x": {"type": "number"}, "y": {"type": "number"}}})";
  std::ofstream(dir / "net.json") << kNet;
  std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
    {"name": "mlp", "type": "native"}, {"name": "default", "type": "default", "outputs": {"output": 0.5}}]})";
  auto model = ember::Model::load(dir);
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  auto p = (*model)->predict(R"({"x": 1.25, "y": -0.5})");
  REQUIRE(p.ok());
  CHECK(p->served_by == "mlp");
  CHECK(p->value().value() == Approx(reference(1.25, -0.5)).epsilon(1e-6));
  // A network for other columns than the model's is refused at load.
  std::ofstream(dir / "net.json") << R"({"format": "ember-net", "version": 1, "inputs": 3, "layers": [
    {"op": "linear", "in": 3, "out": 1, "weight": [[1, 2, 3]]}]})";
  auto wrong = ember::Model::load(dir);
  REQUIRE_FALSE(wrong.ok());
  INFO(wrong.status().to_string());
  CHECK(wrong.status().message().find("the network takes 3 columns") != std::string::npos);
  std::filesystem::remove_all(dir);
}
