// The registry: publish, set an alias, resolve an alias to a verified bundle directory
// (cached in the process, and first in a process: every file hashed), and SHA-256 of a
// 100 MB file. MLflow's registry is timed beside it by run_registry_bench.py.
//
//   EMBER_BENCH_BUNDLE=DIR   the bundle to publish (default: one made here, ~20 KB)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "ember/ember.hpp"

namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = [] {
    std::random_device rd;
    fs::path p = fs::temp_directory_path() / ("ember-bench-registry-" + std::to_string(rd()));
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

// A bundle like a small real model: schema, pipeline-sized JSON, a 16 KB "model".
fs::path bundle() {
  if (const char* b = std::getenv("EMBER_BENCH_BUNDLE")) return b;
  static const fs::path dir = [] {
    const fs::path model = scratch() / "model";
    fs::create_directories(model);
    std::ofstream(model / "schema.json") << R"({"type": "object", "properties": {"a": {"type": "number"},
        "b": {"type": "number"}}, "required": ["a", "b"]})";
    std::ofstream(model / "linear.json") << R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[1,2]],"intercept":[0.5]})";
    std::ofstream(model / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json"}]})";
    std::ofstream weights(model / "weights.bin", std::ios::binary);
    std::mt19937 rng(1);
    for (int i = 0; i < 4096; ++i) {
      const auto v = rng();
      weights.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
    weights.close();
    ember::BundleCreateOptions o;
    o.name = "bench";
    if (!ember::create_bundle(model, scratch() / "bundle", o).ok()) std::abort();
    return scratch() / "bundle";
  }();
  return dir;
}

std::unique_ptr<ember::Registry> registry(const std::string& name) {
  const fs::path dir = scratch() / name;
  auto r = fs::exists(dir) ? ember::Registry::open(dir) : ember::Registry::init(dir);
  if (!r.ok()) std::abort();
  return std::move(*r);
}

void BM_Publish(benchmark::State& state) {
  auto r = registry("publish");
  const fs::path b = bundle();
  for (auto _ : state) {
    auto v = r->publish(b, "bench", "");
    if (!v.ok()) state.SkipWithError(v.status().to_string().c_str());
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_Publish)->Unit(benchmark::kMicrosecond);

void BM_SetAlias(benchmark::State& state) {
  auto r = registry("alias");
  if (!r->publish(bundle(), "bench", "").ok() || !r->publish(bundle(), "bench", "").ok()) std::abort();
  std::int64_t v = 1;
  for (auto _ : state) {
    auto e = r->set_alias("bench", "production", v, ember::Registry::kAnyVersion, "bench", "");
    if (!e.ok()) state.SkipWithError(e.status().to_string().c_str());
    v = 3 - v;
  }
}
BENCHMARK(BM_SetAlias)->Unit(benchmark::kMicrosecond);

std::unique_ptr<ember::Registry> resolving() {
  auto r = registry("resolve");
  if (!r->resolve("bench@production").ok()) {
    if (!r->publish(bundle(), "bench", "").ok()) std::abort();
    if (!r->set_alias("bench", "production", 1, ember::Registry::kAnyVersion, "bench", "").ok()) std::abort();
  }
  return r;
}

// The alias looked up in SQLite, the files' stamps checked, no hashing.
void BM_ResolveCached(benchmark::State& state) {
  auto r = resolving();
  if (!r->resolve("bench@production").ok()) std::abort();
  for (auto _ : state) {
    auto b = r->resolve("bench@production");
    if (!b.ok() || b->hashed) state.SkipWithError("resolve failed or hashed again");
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_ResolveCached)->Unit(benchmark::kMicrosecond);

// As a new process does it: open the registry, resolve, hash every file.
void BM_ResolveFirst(benchmark::State& state) {
  { auto r = resolving(); }
  for (auto _ : state) {
    auto r = ember::Registry::open(scratch() / "resolve");
    auto b = (*r)->resolve("bench@production");
    if (!b.ok() || !b->hashed) state.SkipWithError("resolve failed or did not hash");
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_ResolveFirst)->Unit(benchmark::kMicrosecond);

// A registry open in the process that hashes every file on every resolve.
void BM_ResolveHashing(benchmark::State& state) {
  { auto r = resolving(); }
  ember::RegistryOptions o;
  o.rehash_every_resolve = true;
  auto r = ember::Registry::open(scratch() / "resolve", o);
  for (auto _ : state) {
    auto b = (*r)->resolve("bench@production");
    if (!b.ok() || !b->hashed) state.SkipWithError("resolve failed or did not hash");
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_ResolveHashing)->Unit(benchmark::kMicrosecond);

// Opening alone: the SQLite connection and its settings.
void BM_Open(benchmark::State& state) {
  { auto r = resolving(); }
  for (auto _ : state) {
    auto r = ember::Registry::open(scratch() / "resolve");
    if (!r.ok()) state.SkipWithError(r.status().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Open)->Unit(benchmark::kMicrosecond);

void BM_Sha256_100MB(benchmark::State& state) {
  const fs::path file = scratch() / "100mb.bin";
  if (!fs::exists(file)) {
    std::ofstream f(file, std::ios::binary);
    std::mt19937_64 rng(2);
    std::vector<std::uint64_t> block(1 << 17);
    for (int i = 0; i < 100; ++i) {
      for (auto& v : block) v = rng();
      f.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
  }
  const auto size = fs::file_size(file);
  for (auto _ : state) {
    auto h = ember::sha256_file(file);
    if (!h.ok()) state.SkipWithError(h.status().to_string().c_str());
    benchmark::DoNotOptimize(h);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
  state.SetLabel(ember::sha256_implementation());
}
BENCHMARK(BM_Sha256_100MB)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(scratch(), ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fs::permissions(it->path(), fs::perms::owner_write, fs::perm_options::add, ec);
  }
  fs::remove_all(scratch(), ec);
  return 0;
}
