// Resident memory across 100 load/unload cycles of a TorchScript model: back within 5 %
// of its baseline (Triton users report about 1 GB leaked per 50 TorchScript reloads,
// triton#5841).
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "ember/ember.hpp"
#include "fixtures.hpp"

namespace {

double resident_mib() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::size_t unloaded(const ember::Deployment& d) {
  std::size_t n = 0;
  for (const auto& v : d.versions()) n += v.state == ember::VersionState::kUnloaded;
  return n;
}

}  // namespace

TEST_CASE("deployment: 100 reloads of a TorchScript model leave resident memory within 5 % of its baseline") {
  const auto dir = ember_test::models_dir() / "churn";
  ember::DeploymentOptions o;
  o.warmup_records = {R"({"tenure": 3, "monthly_charges": 50.0, "autopay": true, "plan": "basic", "region": "north"})"};
  auto d = ember::Deployment::create(dir, o);
  REQUIRE(d.ok());
  const auto cycle = [&](int n) {
    for (int i = 0; i < n; ++i) REQUIRE((*d)->reload().ok());
    const std::size_t want = static_cast<std::size_t>((*d)->swaps());
    for (int i = 0; i < 2000 && unloaded(**d) < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(unloaded(**d) == want);
  };
  cycle(10);  // warm: allocator arenas, LibTorch's caches
  const double baseline = resident_mib();
  cycle(100);
  const double after = resident_mib();
  WARN("resident memory: " << baseline << " MiB after 10 reloads, " << after << " MiB after 110 ("
                           << (after - baseline) / baseline * 100.0 << " %)");
  CHECK(after <= baseline * 1.05);
  ember::Prediction p;
  REQUIRE((*d)->predict(o.warmup_records[0], p).ok());
  CHECK(p.model_version == "111");
}
