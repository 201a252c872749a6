// ember rollout replay: recorded traffic through a canary plan on simulated time, the
// control and the candidate answering as they would in production.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"
#include "registry_cmd.hpp"
#include "traffic_lines.hpp"

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
  auto control = load_model_or_ref(args.control, args.registry, args.registry_key_file, registry, control_options);
  if (!control.ok()) return fail(control.status().with_context("--control"));
  ember::ModelOptions candidate_options;
  candidate_options.fault_seed = args.seed;
  if (auto st = add_fault_rules(args.candidate_inject, "--candidate-inject", candidate_options); !st.ok()) return fail(st);
  auto candidate = load_model_or_ref(args.candidate, args.registry, args.registry_key_file, registry, candidate_options);
  if (!candidate.ok()) return fail(candidate.status().with_context("--candidate"));
  TrafficReader traffic;
  if (auto st = traffic.open(args.traffic); !st.ok()) return fail(st);

  ember::CanaryAnalysis analysis(*plan, std::chrono::nanoseconds(0));
  std::optional<ember::WeightedRouter> router;
  double router_weight = -1;
  std::int64_t t_ms = 0;
  ember::Prediction p, shadow;
  TrafficLine line;
  for (;;) {
    auto more = traffic.next(line);
    if (!more.ok()) return fail(more.status());
    if (!*more) break;
    if (line.t_ms) {
      const double v = *line.t_ms;
      if (!std::isfinite(v) || v < static_cast<double>(t_ms)) {
        return fail(ember::invalid_argument(args.traffic + ":" + std::to_string(line.line_no) +
                                            ": t_ms goes backwards or is not finite"));
      }
      t_ms = static_cast<std::int64_t>(v);
    } else {
      t_ms += 1;  // no times recorded: one request per simulated millisecond
    }
    // Arms {control, candidate}: raising the candidate's weight moves keys only from the
    // control. The router is rebuilt when a step changes the weight.
    const double weight = analysis.status().weight;
    if (weight != router_weight) {
      const double weights[] = {100.0 - weight, weight};
      auto r = ember::WeightedRouter::create(weights);
      if (!r.ok()) return fail(r.status());
      router = std::move(*r);
      router_weight = weight;
    }
    const bool to_candidate = router->arm(line.key) == 1;
    const std::string& record = line.record;
    const ember::Model& arm = to_candidate ? **candidate : **control;
    const Status st = arm.predict(record, p);
    ember::RolloutObservation o = ember::rollout_observation(to_candidate, st, p);
    o.outcome = line.outcome;
    if (to_candidate && st.ok() && (*control)->predict(record, shadow).ok()) o.control_output = first_output(shadow);
    analysis.observe(o, std::chrono::milliseconds(t_ms));
    if (analysis.status().state != ember::RolloutState::kRunning) break;
  }
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
  result["traffic_lines"] = traffic.requests();
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

struct AbArgs {
  std::string outcomes;
  std::string control;
  double alpha = 0.05;
  double effect = 0;
  double power = 0.8;
  bool json = false;
};

int cmd_ab(const AbArgs& args) {
  std::ifstream in(args.outcomes, std::ios::binary);
  if (!in) return fail(ember::not_found("cannot read '" + args.outcomes + "'"));
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> values;
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    const auto where = args.outcomes + ":" + std::to_string(line_no) + ": ";
    if (j.is_discarded() || !j.is_object() || !j.contains("arm") || !j["arm"].is_string() || !j.contains("outcome") ||
        !j["outcome"].is_number() || !std::isfinite(j["outcome"].get<double>())) {
      return fail(ember::invalid_argument(where + "expected {\"arm\": \"...\", \"outcome\": number}"));
    }
    const auto arm = j["arm"].get<std::string>();
    if (!values.contains(arm)) order.push_back(arm);
    values[arm].push_back(j["outcome"].get<double>());
  }
  if (order.size() < 2) return fail(ember::invalid_argument("an experiment needs outcomes of at least two arms"));
  const std::string control = args.control.empty() ? order.front() : args.control;
  if (!values.contains(control)) return fail(ember::not_found("no outcomes of the control arm '" + control + "'"));
  bool binary = true;
  for (const auto& [arm, v] : values) {
    for (double x : v) binary = binary && (x == 0 || x == 1);
  }
  nlohmann::ordered_json out;
  out["test"] = binary ? "two_proportion_z" : "welch_t";
  out["control"] = control;
  out["alpha"] = args.alpha;
  const auto summary = [&](const std::vector<double>& v) {
    const auto s = ember::describe_sample(v);
    return nlohmann::ordered_json{{"n", s.n}, {"mean", s.mean}, {"variance", s.variance}};
  };
  for (const auto& arm : order) out["arms"][arm] = summary(values[arm]);
  const auto proportion = [](const std::vector<double>& v) {
    ember::ProportionSample p;
    p.trials = v.size();
    for (double x : v) p.successes += x == 1;
    return p;
  };
  for (const auto& arm : order) {
    if (arm == control) continue;
    auto r = binary ? ember::proportions_z_test(proportion(values[control]), proportion(values[arm]), args.alpha)
                    : ember::welch_t_test(ember::describe_sample(values[control]), ember::describe_sample(values[arm]), args.alpha);
    if (!r.ok()) return fail(r.status().with_context("arm '" + arm + "'"));
    out["comparisons"][arm] = {{"effect", r->effect}, {"statistic", r->statistic}, {"dof", r->dof},
                               {"p_value", r->p_value}, {"ci", {r->ci_low, r->ci_high}}, {"significant", r->significant}};
  }
  if (args.effect != 0) {
    const auto c = ember::describe_sample(values[control]);
    auto n = binary ? ember::sample_size_proportions(c.mean, args.effect, args.alpha, args.power)
                    : ember::sample_size_means(std::sqrt(c.variance), args.effect, args.alpha, args.power);
    if (!n.ok()) return fail(n.status().with_context("--effect"));
    out["sample_size_per_arm"] = *n;
    out["power"] = args.power;
    out["effect"] = args.effect;
  }
  if (!args.json) {
    for (const auto& [arm, c] : out["comparisons"].items()) {
      std::printf("%s vs %s: effect %+.6g (%.3g%% CI %.6g .. %.6g), p = %.4g: %s\n", arm.c_str(), control.c_str(),
                  c["effect"].get<double>(), 100 * (1 - args.alpha), c["ci"][0].get<double>(), c["ci"][1].get<double>(),
                  c["p_value"].get<double>(), c["significant"].get<bool>() ? "significant" : "not significant");
    }
  }
  std::cout << out.dump() << "\n";
  return std::cout ? 0 : 1;
}

}  // namespace

void add_rollout_commands(CLI::App& app, std::function<int()>& run) {
  CLI::App* rollout = app.add_subcommand(
      "rollout", "Canary rollouts on a registry (start, status, pause, resume, abort, promote), offline replay, A/B significance.");
  rollout->require_subcommand(1);
  add_rollout_registry_commands(rollout, run);
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

  auto ab = std::make_shared<AbArgs>();
  CLI::App* abc = rollout->add_subcommand("ab", "Is an A/B arm better? Significance of outcomes per arm, and sample size.");
  abc->footer(
      "Each line of --outcomes is {\"arm\": \"b\", \"outcome\": x}. Outcomes all 0 or 1: the two-proportion\n"
      "z-test (pooled); otherwise Welch's t-test; every arm against the control (the first arm seen,\n"
      "or --control). With --effect, the sample size per arm needed to detect that change of the\n"
      "control's rate or mean at --alpha with --power.\n"
      "  ember rollout ab --outcomes outcomes.jsonl --effect 0.02 --json");
  abc->add_option("--outcomes", ab->outcomes, "Outcomes per arm, JSON lines")->required();
  abc->add_option("--control", ab->control, "The control arm (default: the first seen)");
  abc->add_option("--alpha", ab->alpha, "Significance level")->check(CLI::Range(1e-9, 0.5));
  abc->add_option("--effect", ab->effect, "A change to detect (absolute), for the sample size");
  abc->add_option("--power", ab->power, "Power for the sample size")->check(CLI::Range(0.01, 0.999));
  abc->add_flag("--json", ab->json, "Print only the JSON line");
  abc->callback([&run, ab] { run = [ab] { return cmd_ab(*ab); }; });
}

}  // namespace ember_cli
