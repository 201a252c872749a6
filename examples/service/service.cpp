// A small service around a registry model: it serves REF (churn@production) from
// REGISTRY_DIR, answers each line of standard input (a JSON record) with the version that
// served it, follows the alias (a new version is loaded, checked, warmed and swapped in
// while requests go on; a broken one is refused and the old one keeps serving), and prints
// its metrics in Prometheus's text format on the line "metrics" and when input ends.
//
//   service REGISTRY_DIR REF [--watch-ms N]
//
// Lines on standard output: "churn/3 0.7154 primary" per record, "error: ..." for a record
// refused, "event: churn/4 ready" as versions change, then the metrics.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::strcmp(argv[3], "--watch-ms") == 0)) {
    std::fprintf(stderr, "usage: service REGISTRY_DIR REF [--watch-ms N]\n");
    return 2;
  }
  const long watch_ms = argc == 5 ? std::strtol(argv[4], nullptr, 10) : 500;
  if (watch_ms <= 0) {
    std::fprintf(stderr, "service: --watch-ms needs a positive number of milliseconds\n");
    return 2;
  }
  auto registry = ember::Registry::open(argv[1]);  // NotFound: not a registry
  if (!registry.ok()) {
    std::fprintf(stderr, "service: %s\n", registry.status().to_string().c_str());
    return 1;
  }
  std::mutex out;  // events come from the reload thread, answers from this one
  auto metrics = ember::Metrics::create();
  ember::DeploymentOptions options;
  options.metrics = metrics;
  options.watch_interval = std::chrono::milliseconds(watch_ms);
  options.actor = "service";
  options.on_event = [&out](const ember::DeploymentEvent& e) {
    std::lock_guard lock(out);
    std::printf("event: %s/%s %s%s%s\n", e.name.c_str(), e.status.version.c_str(),
                std::string(ember::version_state_name(e.status.state)).c_str(), e.status.reason.ok() ? "" : ": ",
                e.status.reason.ok() ? "" : e.status.reason.to_string().c_str());
    std::fflush(stdout);
  };
  auto deployment = ember::Deployment::create(std::shared_ptr<ember::Registry>(std::move(*registry)), argv[2], options);
  if (!deployment.ok()) {  // DataLoss when a file was tampered with, NotFound for an unknown ref
    std::fprintf(stderr, "service: %s\n", deployment.status().to_string().c_str());
    return 1;
  }
  auto& service = **deployment;

  ember::Prediction p;
  for (std::string line; std::getline(std::cin, line);) {
    if (line.empty()) continue;
    if (line == "metrics") {
      std::lock_guard lock(out);
      std::fputs(metrics->text().c_str(), stdout);
      std::fflush(stdout);
      continue;
    }
    const ember::Status s = service.predict(line, p);
    std::lock_guard lock(out);
    if (s.ok()) {
      std::printf("%s/%s %.4f %s\n", p.model_name.c_str(), p.model_version.c_str(), p.value().value_or(NAN),
                  p.served_by.c_str());
    } else {
      std::printf("error: %s\n", s.to_string().c_str());
    }
    std::fflush(stdout);
  }
  std::lock_guard lock(out);
  std::fputs(metrics->text().c_str(), stdout);
  return 0;
}
