// ember serve-bench: N client threads replay records against a Deployment for S
// seconds (batching on or off), optionally swapping versions every M ms, and report
// throughput, latency percentiles, swaps and batch sizes.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/deployment.hpp"

namespace ember_cli {

namespace {

using nlohmann::json;

struct ServeBenchArgs {
  std::string model;
  std::string registry;
  std::string key_file;
  std::string input;
  int clients = 8;
  double seconds = 5;
  std::string batching = "on";
  std::int64_t max_queue_delay_us = 500;
  std::size_t max_batch_rows = 32;
  std::int64_t swap_every_ms = 0;
  bool json_only = false;
};

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int run_bench(const ServeBenchArgs& a) {
  std::vector<std::string> records;
  {
    std::ifstream f(a.input);
    if (!f) return fail(ember::not_found("input file '" + a.input + "' cannot be read"));
    for (std::string line; std::getline(f, line);) {
      if (line.find_first_not_of(" \t\r") != std::string::npos) records.push_back(line);
      if (records.size() > 1000000) return fail(ember::invalid_argument("more than 1,000,000 records in the input"));
    }
  }
  if (records.empty()) return fail(ember::invalid_argument("the input holds no records"));

  ember::DeploymentOptions options;
  options.batching.enabled = a.batching == "on";
  options.batching.max_queue_delay = std::chrono::microseconds(a.max_queue_delay_us);
  options.batching.max_batch_rows = a.max_batch_rows;
  options.batching.max_queue_rows = std::max<std::size_t>(4096, static_cast<std::size_t>(a.clients) * 4);
  options.warmup_records.assign(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(records.size(), 8)));
  auto pool = ember::ThreadPool::create({});
  if (!pool.ok()) return fail(pool.status());
  options.executor = *pool;

  std::shared_ptr<ember::Registry> registry;
  std::vector<std::string> swap_refs;  // what the swapper alternates between
  ember::Result<std::unique_ptr<ember::Deployment>> deployment = ember::internal_error("not created");
  const bool is_ref = !a.registry.empty() && ember::parse_model_ref(a.model).ok() && !std::filesystem::is_directory(a.model);
  if (is_ref) {
    ember::RegistryOptions ro;
    auto key = read_key_file(a.key_file);
    if (!key.ok()) return fail(key.status());
    ro.encryption_key = *key;
    auto r = ember::Registry::open(a.registry, ro);
    if (!r.ok()) return fail(r.status());
    registry = std::move(*r);
    deployment = ember::Deployment::create(registry, a.model, options);
    if (!deployment.ok()) return fail(deployment.status());
    // Swaps alternate between the version the reference names and the newest other
    // version of the name (the alias itself is not moved).
    const std::string serving = (*deployment)->current()->version();
    const std::string name = (*deployment)->name();
    auto versions = registry->list(name, {}, false);
    if (!versions.ok()) return fail(versions.status());
    std::string other;
    for (const auto& v : *versions) {
      if (v.name == name && std::to_string(v.version) != serving) other = std::to_string(v.version);
    }
    swap_refs = {name + "/" + (other.empty() ? serving : other), name + "/" + serving};
  } else {
    deployment = ember::Deployment::create(a.model, options);
    if (!deployment.ok()) return fail(deployment.status());
  }
  auto& d = **deployment;

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> swaps_failed{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(a.clients));
  std::vector<std::uint64_t> failed(static_cast<std::size_t>(a.clients), 0);
  std::vector<std::map<std::string, std::uint64_t>> by_version(static_cast<std::size_t>(a.clients));
  std::string first_error;
  std::mutex error_mu;
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < a.clients; ++c) {
    threads.emplace_back([&, c] {
      auto& lat = latencies[static_cast<std::size_t>(c)];
      lat.reserve(1 << 16);
      ember::Prediction p;
      const ember::RequestOptions request;
      for (std::size_t i = static_cast<std::size_t>(c); !stop.load(std::memory_order_relaxed); i += static_cast<std::size_t>(a.clients)) {
        const auto t0 = std::chrono::steady_clock::now();
        const ember::Status s = d.predict(records[i % records.size()], p, request);
        const auto t1 = std::chrono::steady_clock::now();
        lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        if (!s.ok() && s.code() != ember::StatusCode::kInvalidArgument) {
          ++failed[static_cast<std::size_t>(c)];
          std::lock_guard<std::mutex> g(error_mu);
          if (first_error.empty()) first_error = s.to_string();
        } else if (s.ok()) {
          ++by_version[static_cast<std::size_t>(c)][p.model_version];
        }
      }
    });
  }
  std::uint64_t swaps_asked = 0;
  const auto end = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(a.seconds));
  while (std::chrono::steady_clock::now() < end) {
    if (a.swap_every_ms <= 0) {
      std::this_thread::sleep_until(end);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(a.swap_every_ms));
    ++swaps_asked;
    const ember::Status s = swap_refs.empty() ? d.reload() : d.switch_to(swap_refs[swaps_asked % swap_refs.size()]);
    if (!s.ok()) {
      ++swaps_failed;
      std::lock_guard<std::mutex> g(error_mu);
      if (first_error.empty()) first_error = "swap: " + s.to_string();
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<double> all;
  std::uint64_t failures = 0;
  std::map<std::string, std::uint64_t> versions;
  for (int c = 0; c < a.clients; ++c) {
    all.insert(all.end(), latencies[static_cast<std::size_t>(c)].begin(), latencies[static_cast<std::size_t>(c)].end());
    failures += failed[static_cast<std::size_t>(c)];
    for (const auto& [v, n] : by_version[static_cast<std::size_t>(c)]) versions[v] += n;
  }
  const auto counters = d.counters();
  const double p50 = percentile(all, 0.50);
  const double p99 = percentile(all, 0.99);
  const json out = {{"requests", all.size()},
                    {"failed", failures},
                    {"rps", static_cast<double>(all.size()) / elapsed},
                    {"p50_us", p50},
                    {"p99_us", p99},
                    {"swaps", d.swaps()},
                    {"swaps_failed", swaps_failed.load()},
                    {"batches", counters.batches},
                    {"mean_batch_rows", counters.batches ? static_cast<double>(counters.batched_rows) / static_cast<double>(counters.batches) : 0.0},
                    {"clients", a.clients},
                    {"seconds", elapsed},
                    {"batching", a.batching},
                    {"max_queue_delay_us", a.max_queue_delay_us},
                    {"answers_by_version", versions},
                    {"first_error", first_error}};
  if (!a.json_only) {
    std::fprintf(stderr, "%zu requests in %.1f s from %d clients: %.0f req/s, p50 %.1f us, p99 %.1f us, %llu failed, "
                 "%llu swaps, %llu batches (%.1f rows each)\n",
                 all.size(), elapsed, a.clients, static_cast<double>(all.size()) / elapsed, p50, p99,
                 static_cast<unsigned long long>(failures), static_cast<unsigned long long>(d.swaps()),
                 static_cast<unsigned long long>(counters.batches), out["mean_batch_rows"].get<double>());
  }
  std::printf("%s\n", out.dump().c_str());
  return failures == 0 && swaps_failed == 0 ? 0 : 1;
}

}  // namespace

void add_serve_commands(CLI::App& app, std::function<int()>& run) {
  auto a = std::make_shared<ServeBenchArgs>();
  CLI::App* cmd = app.add_subcommand("serve-bench", "Drive a Deployment with client threads: throughput, latency, swaps, batches.");
  cmd->footer(
      "N client threads replay the records (one JSON record per line, round robin) through\n"
      "Deployment::predict for S seconds. With --swap-every-ms, the deployment is swapped that\n"
      "often: a directory is reloaded; a registry reference alternates between the version it\n"
      "names and the newest other version of the name (the alias is not moved). The last line\n"
      "is one JSON object: requests, failed, rps, p50_us, p99_us, swaps, batches,\n"
      "mean_batch_rows, and more. Exit status 1 when a request or a swap failed.");
  cmd->add_option("--model", a->model, "Model or bundle directory, or with --registry a reference")->required();
  cmd->add_option("--registry", a->registry, "Registry directory")->envname("EMBER_REGISTRY");
  cmd->add_option("--key-file", a->key_file, "Key of an encrypted registry")->envname("EMBER_REGISTRY_KEY_FILE");
  cmd->add_option("--input", a->input, "JSON lines of records")->required();
  cmd->add_option("--clients", a->clients, "Client threads")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--seconds", a->seconds, "How long")->check(CLI::Range(0.1, 86400.0))->capture_default_str();
  cmd->add_option("--batching", a->batching, "Dynamic batching")->check(CLI::IsMember({"on", "off"}))->capture_default_str();
  cmd->add_option("--max-queue-delay-us", a->max_queue_delay_us, "How long a batch waits for rows")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--max-batch-rows", a->max_batch_rows, "Rows per forward pass at most")
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}))
      ->capture_default_str();
  cmd->add_option("--swap-every-ms", a->swap_every_ms, "Swap versions this often (0: never)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600000}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json_only, "Print only the JSON line");
  cmd->callback([&run, a] { run = [a] { return run_bench(*a); }; });
}

}  // namespace ember_cli
