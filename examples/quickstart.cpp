// Loads a TorchScript model and scores rows of features read from a text file
// (one row per line, numbers separated by spaces or commas).
//
//   quickstart MODEL.pt ROWS.txt
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: quickstart MODEL.pt ROWS.txt\n");
    return 2;
  }
  // Read the rows: every line must have the same number of features.
  std::vector<float> values;
  std::int64_t rows = 0, width = -1;
  std::ifstream in(argv[2]);
  for (std::string line; std::getline(in, line);) {
    for (char& c : line) c = (c == ',') ? ' ' : c;
    std::istringstream fields(line);
    std::int64_t n = 0;
    for (float v; fields >> v; ++n) values.push_back(v);
    if (n == 0) continue;
    if (width >= 0 && n != width) {
      std::fprintf(stderr, "quickstart: line %lld has %lld features, expected %lld\n", static_cast<long long>(rows + 1),
                   static_cast<long long>(n), static_cast<long long>(width));
      return 1;
    }
    width = n;
    ++rows;
  }
  if (rows == 0) {
    std::fprintf(stderr, "quickstart: no rows in %s\n", argv[2]);
    return 1;
  }

  // --- the ember part -------------------------------------------------------------
  ember::ExecutorOptions options;  // device "auto": CUDA when available, else CPU
  (void)ember::set_torch_threads(1);  // process-wide, set once
  auto model = ember::TorchExecutor::load(argv[1], options);
  if (!model.ok()) {
    std::fprintf(stderr, "quickstart: %s\n", model.status().to_string().c_str());
    return 1;
  }
  auto batch = ember::Tensor::view(std::span<float>(values), {rows, width});  // no copy
  auto outputs = (*model)->run(std::vector<ember::Tensor>{*batch});
  if (!outputs.ok()) {
    std::fprintf(stderr, "quickstart: %s\n", outputs.status().to_string().c_str());
    return 1;
  }
  for (const auto& [name, tensor] : *outputs) {
    std::printf("%s %s:", name.c_str(), tensor.describe().c_str());
    for (float v : tensor.values<float>()) std::printf(" %.4f", v);
    std::printf("\n");
  }
  return 0;
}
