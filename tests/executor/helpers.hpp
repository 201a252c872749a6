#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/executor.hpp"
#include "ember/tensor.hpp"
#include "fixtures.hpp"

namespace ember_test {

inline std::filesystem::path model(const std::string& name) { return models_dir() / name; }

inline std::unique_ptr<ember::TorchExecutor> load_ok(const std::string& name, ember::ExecutorOptions options = {}) {
  if (options.device == "auto") options.device = "cpu";
  auto loaded = ember::TorchExecutor::load(model(name), options);
  INFO(loaded.status().to_string());
  REQUIRE(loaded.ok());
  return std::move(loaded).value();
}

inline ember::Tensor floats(const std::vector<float>& values, std::vector<std::int64_t> shape) {
  auto t = ember::Tensor::from_values(values, std::move(shape));
  REQUIRE(t.ok());
  return *t;
}

// The MLP's reference input and output, computed by PyTorch when the model was made.
struct Reference {
  std::vector<float> input;   // 16 x 32
  std::vector<float> output;  // 16 x 1
};

inline Reference mlp_reference() {
  std::ifstream f(model("mlp_io.json"));
  REQUIRE(f.good());
  const auto doc = nlohmann::json::parse(f);
  Reference ref;
  for (const auto& row : doc.at("input")) {
    for (const auto& v : row) ref.input.push_back(v.get<float>());
  }
  for (const auto& row : doc.at("output")) {
    for (const auto& v : row) ref.output.push_back(v.get<float>());
  }
  return ref;
}

inline std::vector<float> to_vector(const ember::Tensor& t) {
  auto v = t.values<float>();
  return {v.begin(), v.end()};
}

}  // namespace ember_test
