// Serves a model directory (schema.json, pipeline.json, model.pt, chain.json) from C++:
// each line of standard input (or of FILE) is a JSON record; each answer says which
// stage of the fallback chain served it and why earlier stages did not. At the end,
// the counters a monitoring system would read.
//
//   predict MODEL_DIR [FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: predict MODEL_DIR [FILE]\n");
    return 2;
  }
  auto model = ember::Model::load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "predict: %s\n", model.status().to_string().c_str());
    return 1;
  }
  std::ifstream file;
  if (argc == 3) file.open(argv[2]);
  std::istream& in = argc == 3 ? static_cast<std::istream&>(file) : std::cin;

  ember::Prediction p;  // reused: no allocation per request once warm
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++n;
    const ember::Status s = (*model)->predict(line, p);
    if (!s.ok()) {
      std::printf("%2d  refused: %s\n", n, s.to_string().c_str());
      continue;
    }
    const double score = p.value().value_or(NAN);  // checked: "output", element 0
    std::printf("%2d  %.4f  by %-8s %6.1f us", n, score, p.served_by.c_str(),
                std::chrono::duration<double, std::micro>(p.latency).count());
    for (const auto& skipped : p.skipped) {
      std::printf("  [%s skipped: %s]", skipped.stage.c_str(),
                  std::string(ember::status_code_name(skipped.status.code())).c_str());
    }
    for (const auto& feature : p.flagged_features) std::printf("  [%s outside its training range]", feature.c_str());
    if (p.needs_review_flag()) std::printf("  [needs review]");
    std::printf("\n");
  }
  const ember::ModelCounters c = (*model)->counters();
  std::printf("counters: %llu requests, %llu invalid, %llu flagged, %llu need review\n",
              static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.invalid),
              static_cast<unsigned long long>(c.flagged), static_cast<unsigned long long>(c.needs_review));
  for (const auto& stage : c.stages) {
    std::printf("  %-8s %-12s served %llu, failures %llu, timeouts %llu, refused by breaker %llu%s%s\n",
                stage.name.c_str(), stage.type.c_str(), static_cast<unsigned long long>(stage.served),
                static_cast<unsigned long long>(stage.failures), static_cast<unsigned long long>(stage.timeouts),
                static_cast<unsigned long long>(stage.not_permitted), stage.breaker ? ", breaker " : "",
                stage.breaker ? std::string(ember::breaker_state_name(stage.breaker->state)).c_str() : "");
  }
  return 0;
}
