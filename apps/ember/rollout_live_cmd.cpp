// ember rollout start | status | pause | resume | abort | promote: live rollouts as the
// registry keeps them. A process serving the alias through a RolloutController picks
// each change up at its next sync.
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/registry.hpp"
#include "ember/rollout.hpp"
#include "ember/rollout_controller.hpp"
#include "registry_cmd.hpp"
#include "traffic_lines.hpp"

namespace ember_cli {

namespace {

using nlohmann::ordered_json;

struct LiveArgs {
  std::shared_ptr<Common> common = std::make_shared<Common>();
  std::string ref;    // positional NAME@ALIAS
  std::string model;  // or --model
  std::string candidate;
  std::string plan;
  std::string reason;
  bool all = false;
  // serve
  std::string traffic;
  std::vector<std::string> candidate_inject;
  std::uint64_t seed = 0;
  std::size_t sync_every = 100;
};

ordered_json record_json(const ember::RolloutRecord& r) {
  ordered_json j;
  j["rollout"] = r.id;
  j["model"] = r.name;
  j["alias"] = r.alias;
  j["control"] = r.control;
  j["candidate"] = r.candidate;
  j["state"] = r.state;
  j["step"] = r.step + 1;
  auto plan = ember::parse_rollout_plan(r.plan);
  double weight = 0;
  if (plan.ok()) {
    j["steps"] = plan->steps.size();
    if (r.state == "promoted") weight = 100;
    else if (r.state != "aborted" && r.step >= 0 && static_cast<std::size_t>(r.step) < plan->steps.size())
      weight = plan->steps[static_cast<std::size_t>(r.step)].weight;
  }
  j["weight"] = weight;
  j["reason"] = r.reason;
  j["actor"] = r.actor;
  j["started"] = format_time_us(r.started_us);
  j["updated"] = format_time_us(r.updated_us);
  j["step_started"] = format_time_us(r.step_started_us);
  j["revision"] = r.revision;
  j["plan"] = ordered_json::parse(r.plan, nullptr, false);
  j["analysis"] = ordered_json::parse(r.status, nullptr, false);
  return j;
}

void print_record(const ember::RolloutRecord& r, bool as_json) {
  const ordered_json j = record_json(r);
  if (as_json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("%s@%s: rollout %lld of version %lld (control %lld): %s at step %lld of %s, candidate weight %g%%%s%s\n",
              r.name.c_str(), r.alias.c_str(), static_cast<long long>(r.id), static_cast<long long>(r.candidate),
              static_cast<long long>(r.control), r.state.c_str(), static_cast<long long>(r.step + 1),
              j.contains("steps") ? j["steps"].dump().c_str() : "?", j["weight"].get<double>(),
              r.reason.empty() ? "" : ": ", r.reason.c_str());
}

ember::Result<std::pair<std::string, std::string>> target(const LiveArgs& a) {
  if (a.ref.empty() == a.model.empty()) {
    return ember::invalid_argument("name the rollout's alias once: NAME@ALIAS or --model NAME@ALIAS");
  }
  return alias_ref(a.ref.empty() ? a.model : a.ref);
}

int cmd_start(const LiveArgs& a) {
  auto t = target(a);
  if (!t.ok()) return fail(t.status());
  std::string version = a.candidate;
  if (const auto slash = version.find('/'); slash != std::string::npos) {
    if (version.substr(0, slash) != t->first) {
      return fail(ember::invalid_argument("--candidate " + a.candidate + " is not a version of " + t->first));
    }
    version = version.substr(slash + 1);
  }
  const std::int64_t candidate = parse_version(version);
  if (candidate <= 0) return fail(ember::invalid_argument("--candidate must be a version (4 or NAME/4), got '" + a.candidate + "'"));
  std::ifstream f(a.plan, std::ios::binary);
  if (!f) return fail(ember::not_found("cannot read the plan '" + a.plan + "'"));
  std::ostringstream text;
  text << f.rdbuf();
  if (text.str().size() > (std::size_t{1} << 20)) return fail(ember::invalid_argument("the plan is larger than 1 MiB"));
  auto r = open_registry(*a.common);
  if (!r.ok()) return fail(r.status());
  auto rec = (*r)->start_rollout(t->first, t->second, candidate, text.str(), actor_or_default(a.common->actor), a.reason);
  if (!rec.ok()) return fail(rec.status());
  print_record(*rec, a.common->json);
  return 0;
}

int cmd_status(const LiveArgs& a) {
  auto t = target(a);
  if (!t.ok()) return fail(t.status());
  auto r = open_registry(*a.common);
  if (!r.ok()) return fail(r.status());
  if (a.all) {
    auto all = (*r)->rollouts(t->first);
    if (!all.ok()) return fail(all.status());
    ordered_json out = ordered_json::array();
    for (const auto& rec : *all) {
      if (rec.alias != t->second) continue;
      if (a.common->json) out.push_back(record_json(rec));
      else print_record(rec, false);
    }
    if (a.common->json) std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  auto rec = (*r)->rollout(t->first, t->second);
  if (!rec.ok()) return fail(rec.status());
  print_record(*rec, a.common->json);
  return 0;
}

int cmd_command(const LiveArgs& a, ember::RolloutCommand command) {
  auto t = target(a);
  if (!t.ok()) return fail(t.status());
  auto r = open_registry(*a.common);
  if (!r.ok()) return fail(r.status());
  auto rec = (*r)->command_rollout(t->first, t->second, command, actor_or_default(a.common->actor), a.reason);
  if (!rec.ok()) return fail(rec.status());
  print_record(*rec, a.common->json);
  return 0;
}

// Serves recorded traffic through a RolloutController on the registry, in real time:
// what a host process does, for drills and scripts.
int cmd_serve(const LiveArgs& a) {
  auto t = target(a);
  if (!t.ok()) return fail(t.status());
  auto r = open_registry(*a.common);
  if (!r.ok()) return fail(r.status());
  std::shared_ptr<ember::Registry> registry = std::move(*r);
  ember::RolloutControllerOptions o;
  o.actor = actor_or_default(a.common->actor);
  if (!a.candidate_inject.empty()) {
    ember::DeploymentOptions drill;
    drill.model.fault_seed = a.seed;
    if (auto st = add_fault_rules(a.candidate_inject, "--candidate-inject", drill.model); !st.ok()) return fail(st);
    o.candidate_deployment = drill;
  }
  auto controller = ember::RolloutController::create(registry, t->first + "@" + t->second, o);
  if (!controller.ok()) return fail(controller.status());
  auto& c = **controller;
  TrafficReader traffic;
  if (auto st = traffic.open(a.traffic); !st.ok()) return fail(st);
  std::map<std::string, std::uint64_t> served;
  std::uint64_t failed = 0;
  ember::Prediction p;
  std::string arm;
  TrafficLine line;
  for (;;) {
    auto more = traffic.next(line);
    if (!more.ok()) return fail(more.status());
    if (!*more) break;
    const ember::Status st = c.predict(line.record, line.key, p, &arm);
    ++served[arm];
    failed += st.ok() ? 0 : 1;
    if (st.ok() && line.outcome) c.record_outcome(p, *line.outcome);
    if (a.sync_every > 0 && traffic.requests() % a.sync_every == 0) {
      if (auto s = c.sync(); !s.ok()) return fail(s);
    }
  }
  if (!c.wait_idle(std::chrono::minutes(5))) return fail(ember::Status(ember::StatusCode::kDeadlineExceeded, "the rollout's writes did not finish"));
  if (auto s = c.sync(); !s.ok()) return fail(s);
  const auto rec = c.record();
  const auto status = c.status();
  auto analysis = ordered_json::parse(ember::rollout_status_to_json(status));
  ordered_json out;
  out["rollout"] = rec.id;
  out["decision"] = rec.id == 0 ? "none" : rec.state;
  out["step_reached"] = rec.id == 0 ? 0 : rec.step + 1;
  out["weight"] = c.candidate_weight();
  out["reason"] = rec.reason;
  out["arms"] = analysis["arms"];
  out["checks"] = analysis["checks"];
  out["served"] = served;
  out["failed"] = failed;
  out["traffic_lines"] = traffic.requests();
  if (!a.common->json) {
    if (rec.id == 0) std::printf("no rollout of %s@%s: the alias served every request\n", t->first.c_str(), t->second.c_str());
    else print_record(rec, false);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

CLI::App* live_command(CLI::App* rollout, const char* name, const char* help, const std::shared_ptr<LiveArgs>& a) {
  CLI::App* cmd = rollout->add_subcommand(name, help);
  add_common(cmd, a->common, true);
  cmd->add_option("ref", a->ref, "NAME@ALIAS, e.g. churn@production");
  cmd->add_option("--model", a->model, "NAME@ALIAS (instead of the positional form)");
  return cmd;
}

}  // namespace

void add_rollout_registry_commands(CLI::App* rollout, std::function<int()>& run) {
  {
    auto a = std::make_shared<LiveArgs>();
    CLI::App* cmd = live_command(rollout, "start", "Start rolling a version out onto NAME@ALIAS under a plan.", a);
    cmd->footer(
        "The alias's version now is the control. Processes serving the alias through a\n"
        "RolloutController pick the rollout up at their next sync and move the candidate\n"
        "through the plan's steps; the registry keeps the step, so a restarted process resumes it.\n"
        "  ember rollout start churn@production --candidate 4 --plan plan.json --registry reg --json");
    cmd->add_option("--candidate", a->candidate, "The version to roll out: 4 or NAME/4")->required();
    cmd->add_option("--plan", a->plan, "The rollout plan (JSON file; see docs/rollouts.md)")->required();
    cmd->add_option("--reason", a->reason, "Why (kept in the audit log)");
    cmd->callback([&run, a] { run = [a] { return cmd_start(*a); }; });
  }
  {
    auto a = std::make_shared<LiveArgs>();
    CLI::App* cmd = live_command(rollout, "status", "Show the latest rollout of NAME@ALIAS (--all: every one).", a);
    cmd->footer(
        "JSON keys: rollout, model, alias, control, candidate, state (running, paused, promoted,\n"
        "aborted), step (1-based), steps, weight, reason, actor, started, updated, step_started,\n"
        "revision, plan, analysis (the controller's last checks and per-arm counts).");
    cmd->add_flag("--all", a->all, "Every rollout of the alias, oldest first (a JSON array with --json)");
    cmd->callback([&run, a] { run = [a] { return cmd_status(*a); }; });
  }
  {
    auto a = std::make_shared<LiveArgs>();
    CLI::App* cmd = live_command(rollout, "serve", "Serve recorded traffic through the live rollout of NAME@ALIAS (as a host would).", a);
    cmd->footer(
        "Each line of --traffic is {\"record\": {...}, \"key\": \"...\", \"outcome\": x} (as for replay;\n"
        "t_ms is ignored: this runs on the real clock). Requests go through a RolloutController:\n"
        "the candidate's share follows the plan, decisions are written to the registry, and\n"
        "commands from other processes are read every --sync-every requests. The last line is a\n"
        "JSON object: rollout, decision (running, paused, promoted, aborted, or none), step_reached,\n"
        "weight, reason, arms.<arm>.requests, checks, served.<arm>, failed, traffic_lines.\n"
        "  ember rollout serve churn@production --registry reg --traffic requests.jsonl --json");
    cmd->add_option("--traffic", a->traffic, "Requests, JSON lines")->required();
    cmd->add_option("--candidate-inject", a->candidate_inject,
                    "Faults for the candidate's stages, a drill (STAGE=FAULT, as ember predict --inject)");
    cmd->add_option("--seed", a->seed, "Seed of the injected faults' draws");
    cmd->add_option("--sync-every", a->sync_every, "Read the registry every this many requests (0: only at the end)")
        ->capture_default_str();
    cmd->callback([&run, a] { run = [a] { return cmd_serve(*a); }; });
  }
  struct Verb {
    const char* name;
    const char* help;
    ember::RolloutCommand command;
  };
  for (const Verb& v : {Verb{"pause", "Hold the running rollout at its step and weight.", ember::RolloutCommand::kPause},
                        Verb{"resume", "Resume a paused rollout (its step starts over).", ember::RolloutCommand::kResume},
                        Verb{"abort", "Abort: the candidate's weight goes to 0 and the alias stays on (or goes back to) the control.",
                             ember::RolloutCommand::kAbort},
                        Verb{"promote", "Promote now: the alias moves to the candidate (its policy applies).",
                             ember::RolloutCommand::kPromote}}) {
    auto a = std::make_shared<LiveArgs>();
    CLI::App* cmd = live_command(rollout, v.name, v.help, a);
    cmd->add_option("--reason", a->reason, "Why (kept in the audit log)");
    const ember::RolloutCommand command = v.command;
    cmd->callback([&run, a, command] { run = [a, command] { return cmd_command(*a, command); }; });
  }
}

}  // namespace ember_cli
