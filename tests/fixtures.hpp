#pragma once

// Where the tests find the fixtures ctest generated for them, and reading them.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace ember_test {

// The folder of generated models and cases (EMBER_TEST_MODELS, set by ctest).
inline std::filesystem::path models_dir() {
  const char* dir = std::getenv("EMBER_TEST_MODELS");
  REQUIRE(dir != nullptr);
  return dir;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

}  // namespace ember_test
