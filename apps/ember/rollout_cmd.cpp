// ember rollout replay: recorded traffic through a canary plan on simulated time, the
// control and the candidate answering as they would in production.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember_cli {

namespace {

using ember::Result;
using ember::Status;

struct ReplayArgs {
  std::string plan;
  std::string control;
  std::string candidate;
  std::string registry;
  std::string registry_key_file;
  std::string traffic;
  std::vector<std::string> candidate_inject;
  std::uint64_t seed = 0;
  bool json = false;
};

// A model directory or bundle, or a reference into the registry.
Result<std::unique_ptr<ember::Model>> load(const std::string& what, const ReplayArgs& args,
                                           std::shared_ptr<ember::Registry>& registry, const ember::ModelOptions& options) {
  if (std::filesystem::is_directory(what)) return ember::Model::load(what, options);
  if (args.registry.empty()) {
    return ember::not_found("'" + what + "' is not a directory (give --registry to load it as a reference)");
  }
  if (!registry) {
    ember::RegistryOptions ro;
    auto key = read_key_file(args.registry_key_file);
    if (!key.ok()) return key.status();
    ro.encryption_key = *key;
    auto r = ember::Registry::open(args.registry, ro);
    if (!r.ok()) return r.status();
    registry = std::move(*r);
  }
  return registry->load_model(what, options);
}

std::optional<double> first_output(const ember::Prediction& p) {
  if (p.outputs.empty()) return std::nullopt;
  auto v = p.outputs[0].tensor.at(0);
  return v.ok() ? std::optional<double>(*v) : std::nullopt;
}

int cmd_replay(const ReplayArgs& args) {
  std::ifstream plan_file(args.plan, std::ios::binary);
  if (!plan_file) return fail(ember::not_found("cannot read the plan '" + args.plan + "'"));
  const std::string plan_text((std::istreambuf_iterator<char>(plan_file)), std::istreambuf_iterator<char>());
  auto plan = ember::parse_rollout_plan(plan_text);
  if (!plan.ok()) return fail(plan.status());
  std::shared_ptr<ember::Registry> registry;
  const ember::ModelOptions control_options;  // (a braced temporary trips GCC 12's maybe-uninitialized)
  auto control = load(args.control, args, registry, control_options);
  if (!control.ok()) return fail(control.status().with_context("--control"));
  ember::ModelOptions candidate_options;
  candidate_options.fault_seed = args.seed;
  for (const auto& spec : args.candidate_inject) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(ember::invalid_argument("--candidate-inject '" + spec + "': expected STAGE=FAULT"));
    }
    auto rule = ember::parse_fault_rule(std::string_view(spec).substr(eq + 1));
    if (!rule.ok()) return fail(rule.status().with_context("--candidate-inject"));
    candidate_options.inject[spec.substr(0, eq)].push_back(*rule);
  }
  auto candidate = load(args.candidate, args, registry, candidate_options);
  if (!candidate.ok()) return fail(candidate.status().with_context("--candidate"));
  std::ifstream traffic(args.traffic, std::ios::binary);
  if (!traffic) return fail(ember::not_found("cannot read the traffic '" + args.traffic + "'"));

  ember::CanaryAnalysis analysis(*plan, std::chrono::nanoseconds(0));
  std::int64_t t_ms = 0;
  std::size_t line_no = 0, lines = 0;
  ember::Prediction p, shadow;
  for (std::string line; std::getline(traffic, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line.size() > (std::size_t{1} << 20)) {
      return fail(ember::invalid_argument(args.traffic + ":" + std::to_string(line_no) + ": line longer than 1 MiB"));
    }
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("record") || !j["record"].is_object()) {
      return fail(ember::invalid_argument(args.traffic + ":" + std::to_string(line_no) +
                                          ": expected {\"record\": {...}, \"key\": ..., \"outcome\": ..., \"t_ms\": ...}"));
    }
    ++lines;
    std::string key = std::to_string(line_no);
    if (auto k = j.find("key"); k != j.end() && !k->is_null()) key = k->is_string() ? k->get<std::string>() : k->dump();
    if (auto t = j.find("t_ms"); t != j.end() && t->is_number()) {
      const double v = t->get<double>();
      if (!std::isfinite(v) || v < static_cast<double>(t_ms)) {
        return fail(ember::invalid_argument(args.traffic + ":" + std::to_string(line_no) + ": t_ms goes backwards or is not finite"));
      }
      t_ms = static_cast<std::int64_t>(v);
    } else {
      t_ms += 1;  // no times recorded: one request per simulated millisecond
    }
    std::optional<double> outcome;
    if (auto o = j.find("outcome"); o != j.end() && o->is_number()) outcome = o->get<double>();
    const auto& status = analysis.status();
    // The candidate owns the top `weight` percent of the buckets (raising the weight moves
    // keys only from the control to the candidate).
    const bool to_candidate =
        status.state == ember::RolloutState::kPromoted ||
        (status.state == ember::RolloutState::kRunning &&
         ember::rollout_bucket(key) >= static_cast<std::uint32_t>(std::llround((100.0 - status.weight) * 100)));
    const std::string record = j["record"].dump();
    const ember::Model& arm = to_candidate ? **candidate : **control;
    const Status st = arm.predict(record, p);
    ember::RolloutObservation o;
    o.candidate = to_candidate;
    o.invalid = st.code() == ember::StatusCode::kInvalidArgument && !p.validation.ok();
    o.failed = !st.ok() && !o.invalid;
    o.fallback = st.ok() && !p.skipped.empty();
    o.latency = p.latency;
    if (st.ok()) o.output = first_output(p);
    o.outcome = outcome;
    if (to_candidate && st.ok() && (*control)->predict(record, shadow).ok()) o.control_output = first_output(shadow);
    analysis.observe(o, std::chrono::milliseconds(t_ms));
    if (analysis.status().state != ember::RolloutState::kRunning) break;
  }
  if (traffic.bad()) return fail(ember::data_loss("error reading '" + args.traffic + "'"));
  auto status = analysis.status();
  if (status.state == ember::RolloutState::kRunning) {
    analysis.pause("the traffic ended at step " + std::to_string(status.step + 1) + " before a decision");
    status = analysis.status();
  }
  auto out = nlohmann::ordered_json::parse(ember::rollout_status_to_json(status));
  nlohmann::ordered_json result;
  result["decision"] = out["state"];
  result["step_reached"] = status.step + 1;
  result["weight"] = status.weight;
  result["reason"] = status.reason;
  result["arms"] = out["arms"];
  result["checks"] = out["checks"];
  result["traffic_lines"] = lines;
  result["simulated_ms"] = t_ms;
  if (!args.json) {
    std::printf("decision: %s at step %zu of %zu (%s)\n", std::string(ember::rollout_state_name(status.state)).c_str(),
                status.step + 1, plan->steps.size(), status.reason.c_str());
    std::printf("control: %llu requests; candidate: %llu requests\n",
                static_cast<unsigned long long>(status.control.requests),
                static_cast<unsigned long long>(status.candidate.requests));
  }
  std::cout << result.dump() << "\n";
  return std::cout ? 0 : 1;
}

}  // namespace

void add_rollout_commands(CLI::App& app, std::function<int()>& run) {
  CLI::App* rollout = app.add_subcommand("rollout", "Canary rollouts: replay recorded traffic through a plan.");
  rollout->require_subcommand(1);
  auto a = std::make_shared<ReplayArgs>();
  CLI::App* replay = rollout->add_subcommand("replay", "Run recorded traffic through a canary plan on simulated time.");
  replay->footer(
      "Each line of --traffic is {\"record\": {...}, \"key\": \"...\", \"outcome\": x, \"t_ms\": t} (key, outcome\n"
      "and t_ms optional; without t_ms a line is 1 ms after the one before). Keys are routed as a\n"
      "Deployment routes them (rollout_bucket: FNV-1a 64 + splitmix64, 10,000 buckets); the\n"
      "candidate's records are also answered by the control, for disagreement. The last line is a\n"
      "JSON object: decision (promoted, aborted, paused), step_reached, weight, reason, arms.<arm>.requests,\n"
      "checks. Exit status 0 whatever the decision; 1 when an input cannot be read; 2 for bad usage.\n"
      "  ember rollout replay --plan plan.json --control models/v1 --candidate models/v2 --traffic t.jsonl --json");
  replay->add_option("--plan", a->plan, "The rollout plan (JSON)")->required();
  replay->add_option("--control", a->control, "The serving version: a model directory or bundle, or REF with --registry")->required();
  replay->add_option("--candidate", a->candidate, "The new version: a directory or REF")->required();
  replay->add_option("--registry", a->registry, "Registry for REF arguments")->envname("EMBER_REGISTRY");
  replay->add_option("--registry-key-file", a->registry_key_file, "Key file of an encrypted registry")
      ->envname("EMBER_REGISTRY_KEY_FILE");
  replay->add_option("--traffic", a->traffic, "Recorded requests, JSON lines")->required();
  replay->add_option("--candidate-inject", a->candidate_inject, "Faults for the candidate's stages (STAGE=FAULT, as ember predict --inject)");
  replay->add_option("--seed", a->seed, "Seed of the injected faults' draws");
  replay->add_flag("--json", a->json, "Print only the JSON result line");
  replay->callback([&run, a] { run = [a] { return cmd_replay(*a); }; });
}

}  // namespace ember_cli
