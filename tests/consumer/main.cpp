// Built against the installed ember package only: no LibTorch headers or flags are on
// this program's include path, so this also proves the public headers stay clean.
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL.pt\n");
    return 2;
  }
  if (ember::version() != std::to_string(ember::kVersionMajor) + "." + std::to_string(ember::kVersionMinor) + "." +
                              std::to_string(ember::kVersionPatch)) {
    std::fprintf(stderr, "consumer: header/library version mismatch\n");
    return 1;
  }
  ember::ExecutorOptions options;
  options.device = "cpu";
  auto model = ember::TorchExecutor::load(argv[1], options);
  if (!model.ok()) {
    std::fprintf(stderr, "consumer: %s\n", model.status().to_string().c_str());
    return 1;
  }
  std::vector<float> features(16 * 32, 0.25f);
  auto input = ember::Tensor::view(std::span<float>(features), {16, 32});
  if (!input.ok()) return 1;
  auto outputs = (*model)->run(std::vector<ember::Tensor>{*input});
  if (!outputs.ok()) {
    std::fprintf(stderr, "consumer: %s\n", outputs.status().to_string().c_str());
    return 1;
  }
  const ember::Tensor* scores = outputs->find("output");
  if (scores == nullptr) return 1;
  std::size_t in_range = 0;
  for (float s : scores->values<float>()) in_range += (s > 0.0f && s < 1.0f) ? 1 : 0;
  std::printf("consumer: ember %s ran mlp: %zu scores in (0, 1)\n", std::string(ember::version()).c_str(), in_range);
  return in_range == 16 ? 0 : 1;
}
