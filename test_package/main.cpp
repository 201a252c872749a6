// Loads the tiny model (p = sigmoid(0.8 x - 0.5 y + 0.1)) and predicts one record; the
// TorchScript stage answers when the package was built with LibTorch (and the model has
// one), the logistic regression when not. A bad record must be refused with the field's
// path.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: test_package MODEL_DIR\n");
    return 2;
  }
  auto model = ember::Model::load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "test_package: %s\n", model.status().to_string().c_str());
    return 1;
  }
  ember::Prediction p;
  if (auto s = (*model)->predict(R"({"x": 1.5, "y": 2.0})", p); !s.ok()) {
    std::fprintf(stderr, "test_package: %s\n", s.to_string().c_str());
    return 1;
  }
  const double expected = 1.0 / (1.0 + std::exp(-(0.8 * 1.5 - 0.5 * 2.0 + 0.1)));
  const bool scripted = std::filesystem::exists(std::filesystem::path(argv[1]) / "model.pt");
  const std::string want_stage = ember::built_with_torch() && scripted ? "primary" : "linear";
  const double got = p.value().value_or(NAN);
  if (std::fabs(got - expected) > 1e-5 || p.served_by != want_stage) {
    std::fprintf(stderr, "test_package: %.6f from %s, expected %.6f from %s\n", got, p.served_by.c_str(), expected,
                 want_stage.c_str());
    return 1;
  }
  ember::Prediction bad;
  const ember::Status refused = (*model)->predict(R"({"x": "far", "y": 2.0})", bad);
  if (refused.ok() || refused.message().find("/x") == std::string::npos) {
    std::fprintf(stderr, "test_package: a string for x was not refused: %s\n", refused.to_string().c_str());
    return 1;
  }
  // Without the registry, opening one says so (and creates nothing).
  if (!ember::built_with_registry()) {
    auto registry = ember::Registry::init("test_package_registry");
    if (registry.ok() || registry.status().code() != ember::StatusCode::kFailedPrecondition) return 1;
  }
  std::printf("test_package: ember %s (LibTorch: %s, registry: %s) predicted %.6f from stage %s\n",
              std::string(ember::version()).c_str(), ember::built_with_torch() ? "yes" : "no",
              ember::built_with_registry() ? "yes" : "no", got, p.served_by.c_str());
  return 0;
}
