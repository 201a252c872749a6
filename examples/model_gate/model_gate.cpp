// A CI gate for model changes. `record` writes golden records from the production model
// (each record with the outputs it gave, or the error it answered); `check` fails (exit 1)
// when a candidate model
//   - answers a golden record differently beyond --tolerance (or refuses one production
//     answered, or answers one production refused),
//   - has a schema that refuses or misreads records production accepts
//     (ember::breaking_changes), or
//   - predicts slower than production by more than --latency-budget (the ratio of their
//     median latencies, measured in alternating rounds in the same run).
//
//   model_gate record --model DIR|REF [--registry DIR] --records RECORDS.jsonl --out GOLDEN.jsonl
//   model_gate check --candidate DIR --production DIR|REF [--registry DIR] --golden GOLDEN.jsonl
//                    [--tolerance 1e-4] [--latency-budget 1.5] [--rounds 7] [--json REPORT.json]
//
// Exit status: 0 passed, 1 the gate failed, 2 bad usage or input.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include <ember/ember.hpp>

namespace {

using json = nlohmann::json;

[[noreturn]] void fail_usage(const std::string& message) {
  std::fprintf(stderr, "model_gate: %s\n", message.c_str());
  std::exit(2);
}

// --flag value pairs after the command.
std::map<std::string, std::string> parse_flags(int argc, char** argv, const std::vector<std::string>& known) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (std::find(known.begin(), known.end(), flag) == known.end()) fail_usage("unknown option " + flag);
    if (i + 1 >= argc) fail_usage(flag + " needs a value");
    flags[flag] = argv[i + 1];
  }
  return flags;
}

std::string need(const std::map<std::string, std::string>& flags, const std::string& flag) {
  auto it = flags.find(flag);
  if (it == flags.end()) fail_usage("missing " + flag);
  return it->second;
}

double number(const std::map<std::string, std::string>& flags, const std::string& flag, double fallback) {
  auto it = flags.find(flag);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || !(v > 0) || !std::isfinite(v)) {
    fail_usage(flag + " needs a positive number, not '" + it->second + "'");
  }
  return v;
}

// A model directory, or with --registry a reference such as churn@production.
std::unique_ptr<ember::Model> load(const std::string& what, const std::map<std::string, std::string>& flags) {
  ember::Result<std::unique_ptr<ember::Model>> model = ember::Status(ember::StatusCode::kUnknown, "not loaded");
  if (auto reg = flags.find("--registry"); reg != flags.end() && !std::filesystem::is_directory(what)) {
    auto registry = ember::Registry::open(reg->second);
    if (!registry.ok()) fail_usage(registry.status().to_string());
    model = (*registry)->load_model(what);
  } else {
    model = ember::Model::load(what);
  }
  if (!model.ok()) fail_usage(what + ": " + model.status().to_string());
  return std::move(*model);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_usage("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  if (lines.empty()) fail_usage(path + " holds no records");
  return lines;
}

// Every output of an answer, element by element.
json outputs_of(const ember::Prediction& p) {
  json out = json::object();
  for (const auto& entry : p.outputs) {
    json values = json::array();
    for (std::int64_t i = 0; i < entry.tensor.numel(); ++i) {
      auto v = p.value(entry.name, static_cast<std::size_t>(i));
      values.push_back(v.ok() ? *v : NAN);
    }
    out[entry.name] = std::move(values);
  }
  return out;
}

int record(int argc, char** argv) {
  const auto flags = parse_flags(argc, argv, {"--model", "--registry", "--records", "--out"});
  auto model = load(need(flags, "--model"), flags);
  const auto lines = read_lines(need(flags, "--records"));
  const std::string out_path = need(flags, "--out");
  std::ofstream out(out_path);
  if (!out) fail_usage("cannot write " + out_path);
  ember::Prediction p;
  std::size_t answered = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    json golden;
    try {
      golden["record"] = json::parse(lines[i]);
    } catch (const json::exception& e) {
      fail_usage(need(flags, "--records") + " line " + std::to_string(i + 1) + ": " + e.what());
    }
    if (auto s = model->predict(lines[i], p); s.ok()) {
      golden["outputs"] = outputs_of(p);
      golden["served_by"] = p.served_by;
      ++answered;
    } else {
      golden["error"] = s.to_string();
    }
    out << golden.dump() << '\n';
  }
  out.close();
  if (!out) fail_usage("cannot write " + out_path);
  std::printf("model_gate: %zu golden records (%zu answered, %zu refused) in %s\n", lines.size(), answered,
              lines.size() - answered, out_path.c_str());
  return 0;
}

struct Golden {
  std::string record;  // as JSON text
  json outputs;        // null when production refused it
};

// Median over rounds of the mean time per record; the two models take turns each round.
std::pair<double, double> latencies(const ember::Model& a, const ember::Model& b, const std::vector<Golden>& golden,
                                    int rounds) {
  std::vector<double> ta, tb;
  ember::Prediction p;
  const auto time = [&](const ember::Model& m) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& g : golden) (void)m.predict(g.record, p);
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
           static_cast<double>(golden.size());
  };
  (void)time(a);  // warm-up
  (void)time(b);
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      ta.push_back(time(a));
      tb.push_back(time(b));
    } else {
      tb.push_back(time(b));
      ta.push_back(time(a));
    }
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(ta), median(tb)};
}

int check(int argc, char** argv) {
  const auto flags = parse_flags(argc, argv, {"--candidate", "--production", "--registry", "--golden",
                                              "--tolerance", "--latency-budget", "--rounds", "--json"});
  const double tolerance = number(flags, "--tolerance", 1e-4);
  const double budget = number(flags, "--latency-budget", 1.5);
  const int rounds = static_cast<int>(number(flags, "--rounds", 7));
  auto production = load(need(flags, "--production"), flags);
  auto candidate = load(need(flags, "--candidate"), {});
  std::vector<Golden> golden;
  for (const auto& line : read_lines(need(flags, "--golden"))) {
    try {
      const json g = json::parse(line);
      golden.push_back({g.at("record").dump(), g.contains("outputs") ? g.at("outputs") : json()});
    } catch (const json::exception& e) {
      fail_usage(need(flags, "--golden") + ": not a golden record (" + e.what() + "): " + line.substr(0, 80));
    }
  }

  json report = {{"golden", {{"records", golden.size()}, {"tolerance", tolerance}}}};
  std::vector<std::string> failures;

  // 1. Golden records.
  ember::Prediction p;
  double worst = 0;
  json mismatches = json::array();
  std::vector<Golden> both;  // answered by production and by the candidate: what latency is timed on
  for (std::size_t i = 0; i < golden.size(); ++i) {
    const ember::Status s = candidate->predict(golden[i].record, p);
    std::string problem;
    if (golden[i].outputs.is_null()) {
      if (s.ok()) problem = "production refused it, the candidate answers";
    } else if (!s.ok()) {
      problem = "the candidate refuses it: " + s.to_string();
    } else {
      both.push_back(golden[i]);
      const json got = outputs_of(p);
      for (const auto& [name, want] : golden[i].outputs.items()) {
        if (!got.contains(name) || got[name].size() != want.size()) {
          problem = "output '" + name + "' is missing or has another size";
          break;
        }
        for (std::size_t k = 0; k < want.size(); ++k) {
          const double d = std::fabs(got[name][k].get<double>() - want[k].get<double>());
          worst = std::max(worst, std::isnan(d) ? INFINITY : d);
          if (!(d <= tolerance)) {
            problem = "output '" + name + "'[" + std::to_string(k) + "] is " + got[name][k].dump() + ", expected " +
                      want[k].dump();
            break;
          }
        }
        if (!problem.empty()) break;
      }
    }
    if (!problem.empty()) mismatches.push_back({{"record", i + 1}, {"problem", problem}});
  }
  report["golden"]["max_abs_difference"] = worst;
  report["golden"]["mismatches"] = mismatches;
  if (!mismatches.empty()) {
    failures.push_back(std::to_string(mismatches.size()) + " of " + std::to_string(golden.size()) +
                       " golden records differ (first: record " + mismatches[0]["record"].dump() + ", " +
                       mismatches[0]["problem"].get<std::string>() + ")");
  }

  // 2. Schema compatibility with production.
  const auto breaking = ember::breaking_changes(production->schema(), candidate->schema());
  report["schema"] = {{"breaking_changes", breaking}};
  for (const auto& b : breaking) failures.push_back("schema: " + b);

  // 3. Latency against production, in the same run, on the records both answer.
  double prod_us = NAN, cand_us = NAN, ratio = NAN;
  if (both.empty()) {
    report["latency"] = {{"measured", false}, {"budget", budget}};
  } else {
    std::tie(prod_us, cand_us) = latencies(*production, *candidate, both, rounds);
    ratio = cand_us / prod_us;
    report["latency"] = {{"measured", true}, {"records", both.size()}, {"production_median_us", prod_us},
                         {"candidate_median_us", cand_us}, {"ratio", ratio}, {"budget", budget}, {"rounds", rounds}};
  }
  if (ratio > budget) {
    char line[160];
    std::snprintf(line, sizeof line, "latency: %.1f us per record against production's %.1f us (%.2fx, budget %.2fx)",
                  cand_us, prod_us, ratio, budget);
    failures.push_back(line);
  }

  report["passed"] = failures.empty();
  report["failures"] = failures;
  if (auto it = flags.find("--json"); it != flags.end()) {
    std::ofstream(it->second) << report.dump(1) << '\n';
  }
  std::printf("model_gate: %zu golden records, max difference %.3g (tolerance %.3g); %zu breaking schema change(s);",
              golden.size(), worst, tolerance, breaking.size());
  if (both.empty()) {
    std::printf(" latency not measured (no record answered by both)\n");
  } else {
    std::printf(" latency %.1f us vs production %.1f us (%.2fx, budget %.2fx)\n", cand_us, prod_us, ratio, budget);
  }
  for (const auto& f : failures) std::printf("FAIL %s\n", f.c_str());
  std::printf("model_gate: %s\n", failures.empty() ? "passed" : "failed");
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "record") return record(argc, argv);
  if (command == "check") return check(argc, argv);
  std::fprintf(stderr,
               "usage: model_gate record --model DIR|REF [--registry DIR] --records RECORDS.jsonl --out GOLDEN.jsonl\n"
               "       model_gate check --candidate DIR --production DIR|REF [--registry DIR] --golden GOLDEN.jsonl\n"
               "                        [--tolerance 1e-4] [--latency-budget 1.5] [--rounds 7] [--json REPORT.json]\n");
  return 2;
}
