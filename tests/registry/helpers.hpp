#pragma once

// A model directory that needs no LibTorch (a linear model and a default), and a
// scratch directory removed at the end of a test.

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace ember_test {

inline std::filesystem::path write_linear_model(const std::filesystem::path& dir, double weight = 1.0) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "schema.json") << R"({"type": "object", "properties": {
      "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"], "additionalProperties": false})";
  std::ofstream(dir / "linear.json") << R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[)"
                                     << weight << R"(,2]],"intercept":[0.5]})";
  std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
      {"name": "linear", "type": "linear", "path": "linear.json"},
      {"name": "default", "type": "default", "outputs": {"output": 0}}]})";
  return dir;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("ember-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    // Blobs are read-only; make them writable so they can be removed.
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_write, std::filesystem::perm_options::add, ec);
    }
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_all(const std::filesystem::path& p, const std::string& text) {
  std::error_code ec;
  std::filesystem::permissions(p, std::filesystem::perms::owner_write, std::filesystem::perm_options::add, ec);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace ember_test
