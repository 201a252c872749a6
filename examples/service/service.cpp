// Serves a model by name from a registry: the reference (churn@production, churn/3) is
// resolved, every file checked against its SHA-256, and the model loaded; each line of
// standard input (or of FILE) is a JSON record, and each answer says which version served.
//
//   serve_from_registry REGISTRY_DIR REF [FILE]
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: serve_from_registry REGISTRY_DIR REF [FILE]\n");
    return 2;
  }
  auto registry = ember::Registry::open(argv[1]);  // NotFound: not a registry
  if (!registry.ok()) {
    std::fprintf(stderr, "serve_from_registry: %s\n", registry.status().to_string().c_str());
    return 1;
  }
  // Lineage travels with the version: what it was trained on and how it scored.
  auto info = (*registry)->show(argv[2]);
  auto model = (*registry)->load_model(argv[2]);  // DataLoss when a file was tampered with
  if (!info.ok() || !model.ok()) {
    const ember::Status& s = info.ok() ? model.status() : info.status();
    std::fprintf(stderr, "serve_from_registry: %s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("serving %s/%lld (published by %s, %zu approval(s))\n", info->name.c_str(),
              static_cast<long long>(info->version), info->publisher.c_str(), info->approvals.size());
  std::ifstream file;
  if (argc == 4) file.open(argv[3]);
  std::istream& in = argc == 4 ? static_cast<std::istream&>(file) : std::cin;
  ember::Prediction p;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (auto s = (*model)->predict(line, p); !s.ok()) {
      std::printf("error: %s\n", s.to_string().c_str());
      continue;
    }
    std::printf("%.4f from %s of %s/%s\n", p.value().value_or(NAN), p.served_by.c_str(), p.model_name.c_str(),
                p.model_version.c_str());
  }
  return 0;
}
