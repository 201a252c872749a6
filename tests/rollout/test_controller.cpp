// Live rollouts through the public API: the registry's rollout records and commands,
// and a RolloutController driving real deployments on simulated traffic with an
// injected clock: a good candidate promoted (the alias moves), a worse one aborted at
// once (weight 0, alias kept, host told, audited), a restart mid-rollout resuming at
// the same step, and commands from another process reaching it.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember::Registry;
using ember::RolloutCommand;
using ember::RolloutState;
using ember::StatusCode;
using ember_test::TempDir;

namespace {

// Time the tests move by hand, shared by the registry and the controller.
struct Clock {
  std::atomic<std::int64_t> us{1'700'000'000'000'000};
  std::chrono::system_clock::time_point now() const {
    return std::chrono::system_clock::time_point(std::chrono::microseconds(us.load()));
  }
  void advance(std::chrono::milliseconds ms) { us += ms.count() * 1000; }
};

struct Fixture {
  TempDir t;
  Clock clock;
  std::shared_ptr<Registry> registry;

  Fixture() {
    ember::RegistryOptions o;
    o.now = [this] { return clock.now(); };
    auto r = Registry::init(t / "reg", o);
    REQUIRE(r.ok());
    registry = std::move(*r);
  }
  // Publishes a linear model (output = weight * a + 2b + 0.5) as the next version of churn.
  std::int64_t publish(double weight) {
    const std::string dir = "v" + std::to_string(next_++);
    ember_test::write_linear_model(t / (dir + "-model"), weight);
    ember::BundleCreateOptions bo;
    bo.name = "churn";
    REQUIRE(ember::create_bundle(t / (dir + "-model"), t / dir, bo).ok());
    auto v = registry->publish(t / dir, "alice", "");
    REQUIRE(v.ok());
    return *v;
  }
  // churn/1 (weight 1) on production and churn/2 (`candidate_weight`), and a rollout of
  // the second under kPlan when `start`.
  std::pair<std::int64_t, std::int64_t> production_and_candidate(double candidate_weight, bool start = true);
  std::unique_ptr<Registry> open_again() {
    ember::RegistryOptions o;
    o.now = [this] { return clock.now(); };
    auto r = Registry::open(t / "reg", o);
    REQUIRE(r.ok());
    return std::move(*r);
  }
  int next_ = 1;
};

constexpr std::string_view kPlan = R"({
  "steps": [{"weight": 10, "min_requests": 100}, {"weight": 50, "min_requests": 100}, {"weight": 100, "min_requests": 100}],
  "checks": [{"metric": "error_rate", "max": 0.05, "min_samples": 50},
             {"metric": "disagreement", "max": 0.05, "min_samples": 50, "tolerance": 0.01}],
  "evaluate_every": 25})";

std::pair<std::int64_t, std::int64_t> Fixture::production_and_candidate(double candidate_weight, bool start) {
  const auto v1 = publish(1.0);
  const auto v2 = publish(candidate_weight);
  REQUIRE(registry->set_alias("churn", "production", v1, Registry::kUnset, "alice", "").ok());
  if (start) REQUIRE(registry->start_rollout("churn", "production", v2, kPlan, "alice", "").ok());
  return {v1, v2};
}

std::string record(int i) {
  return R"({"a": )" + std::to_string(i % 17) + R"(, "b": )" + std::to_string(i % 5) + "}";
}

struct Events {
  std::mutex mu;
  std::vector<ember::RolloutEvent> seen;
  std::function<void(const ember::RolloutEvent&)> sink() {
    return [this](const ember::RolloutEvent& e) {
      std::lock_guard lock(mu);
      seen.push_back(e);
    };
  }
  std::vector<std::string> kinds() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& e : seen) out.push_back(e.kind);
    return out;
  }
};

std::unique_ptr<ember::RolloutController> controller(Fixture& f, Events* events = nullptr) {
  ember::RolloutControllerOptions o;
  o.now = [&f] { return f.clock.now(); };
  if (events != nullptr) o.on_event = events->sink();
  auto c = ember::RolloutController::create(f.registry, "churn@production", o);
  REQUIRE(c.ok());
  return std::move(*c);
}

// Sends `n` requests from keys user-<from>..; waits for the control's comparisons every
// 20 (they arrive off the request path), stopping early once the rollout ends.
void drive(ember::RolloutController& c, Fixture& f, int from, int n) {
  ember::Prediction p;
  for (int i = from; i < from + n; ++i) {
    REQUIRE(c.predict(record(i), "user-" + std::to_string(i), p).ok());
    f.clock.advance(std::chrono::milliseconds(10));
    if (i % 20 == 0) {
      REQUIRE(c.wait_idle(std::chrono::seconds(30)));
      if (c.status().state != RolloutState::kRunning) return;
    }
  }
  REQUIRE(c.wait_idle(std::chrono::seconds(30)));
}

std::int64_t alias_version(Registry& r) {
  auto v = r.show("churn@production");
  REQUIRE(v.ok());
  return v->version;
}

std::vector<std::string> audit_events(Registry& r, std::string_view prefix) {
  auto a = r.audit();
  REQUIRE(a.ok());
  std::vector<std::string> out;
  for (const auto& e : *a) {
    if (e.event.rfind(prefix, 0) == 0) out.push_back(e.event);
  }
  return out;
}

}  // namespace

TEST_CASE("registry rollouts: start validates, one at a time, commands move the alias in the same transaction") {
  Fixture f;
  const auto v1 = f.publish(1.0);
  const auto v2 = f.publish(1.0);
  auto unset = f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "");
  CHECK(unset.status().code() == StatusCode::kNotFound);  // nothing serving to compare with
  REQUIRE(f.registry->set_alias("churn", "production", v1, Registry::kUnset, "alice", "").ok());
  CHECK(f.registry->start_rollout("churn", "production", v1, kPlan, "alice", "").status().code() ==
        StatusCode::kInvalidArgument);  // the alias holds it already
  CHECK(f.registry->start_rollout("churn", "production", 9, kPlan, "alice", "").status().code() == StatusCode::kNotFound);
  auto bad = f.registry->start_rollout("churn", "production", v2, R"({"steps": [{"weight": 5, "min_requests": 1}], "checks": [{"metric": "latency"}]})", "alice", "");
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find("rollout plan") != std::string::npos);
  CHECK(f.registry->command_rollout("churn", "production", RolloutCommand::kPause, "alice", "").status().code() ==
        StatusCode::kNotFound);

  auto r = f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "new features");
  REQUIRE(r.ok());
  CHECK(r->control == v1);
  CHECK(r->candidate == v2);
  CHECK(r->state == "running");
  CHECK(r->step == 0);
  CHECK(r->revision == 1);
  CHECK(f.registry->start_rollout("churn", "production", v2, kPlan, "bob", "").status().code() ==
        StatusCode::kFailedPrecondition);
  CHECK(f.registry->remove("churn", v2, "bob").code() == StatusCode::kFailedPrecondition);  // in the rollout

  // The controller's writes check the revision they acted on.
  CHECK(f.registry->advance_rollout(r->id, 1, r->revision + 1, "{}", "ctl", "").status().code() == StatusCode::kAborted);
  CHECK(f.registry->advance_rollout(r->id, 0, r->revision, "{}", "ctl", "").status().code() == StatusCode::kInvalidArgument);
  CHECK(f.registry->advance_rollout(r->id, 3, r->revision, "{}", "ctl", "").status().code() == StatusCode::kInvalidArgument);
  CHECK(f.registry->advance_rollout(r->id, 1, r->revision, "[1]", "ctl", "").status().code() == StatusCode::kInvalidArgument);
  auto step = f.registry->advance_rollout(r->id, 1, r->revision, R"({"state": "running"})", "ctl", "step 1 passed");
  REQUIRE(step.ok());
  CHECK(step->step == 1);
  CHECK(step->revision == 2);
  CHECK(step->status == R"({"state": "running"})");

  auto paused = f.registry->command_rollout("churn", "production", RolloutCommand::kPause, "bob", "looking");
  REQUIRE(paused.ok());
  CHECK(paused->state == "paused");
  CHECK(f.registry->command_rollout("churn", "production", RolloutCommand::kPause, "bob", "").status().code() ==
        StatusCode::kFailedPrecondition);
  f.clock.advance(std::chrono::minutes(5));
  auto resumed = f.registry->command_rollout("churn", "production", RolloutCommand::kResume, "bob", "");
  REQUIRE(resumed.ok());
  CHECK(resumed->state == "running");
  CHECK(resumed->step == 1);
  CHECK(resumed->step_started_us == f.clock.us.load());  // the step starts over

  auto promoted = f.registry->command_rollout("churn", "production", RolloutCommand::kPromote, "bob", "good");
  REQUIRE(promoted.ok());
  CHECK(promoted->state == "promoted");
  CHECK(alias_version(*f.registry) == v2);
  CHECK(f.registry->command_rollout("churn", "production", RolloutCommand::kPromote, "bob", "").status().code() ==
        StatusCode::kFailedPrecondition);
  // Aborting a promoted rollout puts the alias back on the control.
  auto aborted = f.registry->command_rollout("churn", "production", RolloutCommand::kAbort, "bob", "complaints");
  REQUIRE(aborted.ok());
  CHECK(aborted->state == "aborted");
  CHECK(alias_version(*f.registry) == v1);
  auto history = f.registry->alias_history("churn", "production");
  REQUIRE(history.ok());
  CHECK(history->back().kind == "rollback");

  CHECK(audit_events(*f.registry, "rollout_") ==
        std::vector<std::string>{"rollout_start", "rollout_step", "rollout_pause", "rollout_resume", "rollout_promote",
                                 "rollout_abort"});
  CHECK(f.registry->verify_audit().ok());
  auto all = f.registry->rollouts("churn");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK(all->front().revision == aborted->revision);
  // A new rollout may start once the last one ended.
  CHECK(f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "again").ok());
}

TEST_CASE("registry rollouts: a protected alias refuses a candidate that could never be promoted") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(1.0, false);
  REQUIRE(f.registry->protect_alias("production", 1, "admin").ok());
  CHECK(f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "").status().code() ==
        StatusCode::kPermissionDenied);
  REQUIRE(f.registry->approve("churn", v2, "bob", "ok").ok());
  CHECK(f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "").ok());
}

TEST_CASE("controller: a candidate as good as production is promoted step by step and the alias moves") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(1.0, false);
  Events events;
  auto c = controller(f, &events);
  CHECK_FALSE(c->has_rollout());
  CHECK(c->candidate_weight() == 0);
  drive(*c, f, 0, 50);  // the alias alone

  REQUIRE(f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "").ok());
  REQUIRE(c->sync().ok());  // picked up
  CHECK(c->has_rollout());
  CHECK(c->candidate_weight() == 10);
  drive(*c, f, 1000, 6000);
  const auto s = c->status();
  CHECK(s.state == RolloutState::kPromoted);
  CHECK(s.weight == 100);
  CHECK(c->candidate_weight() == 100);
  CHECK(alias_version(*f.registry) == v2);
  const auto rec = c->record();
  CHECK(rec.state == "promoted");
  CHECK(rec.step == 2);
  CHECK(events.kinds() == std::vector<std::string>{"started", "step", "step", "promoted"});
  CHECK(audit_events(*f.registry, "rollout_") ==
        std::vector<std::string>{"rollout_start", "rollout_step", "rollout_step", "rollout_promote"});
  // Everyone is on the new version now.
  ember::Prediction p;
  std::string arm;
  for (int i = 0; i < 200; ++i) {
    REQUIRE(c->predict(record(i), "user-" + std::to_string(i), p, &arm).ok());
    CHECK(p.model_version == std::to_string(v2));
  }
  REQUIRE(c->sync().ok());
  CHECK_FALSE(c->has_rollout());
}

TEST_CASE("controller: a candidate that answers differently is aborted at the first step, at once") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(3.0);
  Events events;
  auto c = controller(f, &events);
  CHECK(c->candidate_weight() == 10);  // resumed from the registry at creation
  drive(*c, f, 0, 3000);
  const auto s = c->status();
  CHECK(s.state == RolloutState::kAborted);
  CHECK(s.step == 0);
  CHECK(s.reason.find("disagreement") != std::string::npos);
  CHECK(s.candidate.requests < 300);  // min_samples 50 of its ~10 %, plus one evaluation
  CHECK(c->candidate_weight() == 0);
  CHECK(alias_version(*f.registry) == v1);
  auto rec = f.registry->rollout("churn", "production");
  REQUIRE(rec.ok());
  CHECK(rec->state == "aborted");
  CHECK(rec->reason.find("disagreement") != std::string::npos);
  const auto saved = nlohmann::json::parse(rec->status);
  CHECK(saved["state"] == "aborted");
  CHECK(events.kinds() == std::vector<std::string>{"started", "aborted"});
  CHECK(audit_events(*f.registry, "rollout_") == std::vector<std::string>{"rollout_start", "rollout_abort"});
  ember::Prediction p;
  std::string arm;
  for (int i = 0; i < 500; ++i) {
    REQUIRE(c->predict(record(i), "user-" + std::to_string(i), p, &arm).ok());
    CHECK(arm == "control");
  }
}

TEST_CASE("controller: worse outcomes abort the candidate (outcomes arrive after the answers)") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(3.0, false);
  REQUIRE(f.registry->start_rollout("churn", "production", v2, R"({
    "steps": [{"weight": 20, "min_requests": 100}, {"weight": 100, "min_requests": 100}],
    "checks": [{"metric": "outcome", "stat": "mae", "max": 0.5, "min_samples": 40}], "evaluate_every": 10})",
                                    "alice", "").ok());
  ember::RolloutControllerOptions o;
  o.now = [&f] { return f.clock.now(); };
  o.compare_queue = 0;  // no copies: this plan does not compare
  auto c = ember::RolloutController::create(f.registry, "churn@production", o);
  REQUIRE(c.ok());
  ember::Prediction p;
  for (int i = 0; i < 3000 && (*c)->status().state == RolloutState::kRunning; ++i) {
    REQUIRE((*c)->predict(record(i), "user-" + std::to_string(i), p).ok());
    const double truth = (i % 17) + 2.0 * (i % 5) + 0.5;  // what production answers
    (*c)->record_outcome(p, truth);
  }
  REQUIRE((*c)->wait_idle(std::chrono::seconds(30)));
  CHECK((*c)->status().state == RolloutState::kAborted);
  CHECK((*c)->status().reason.find("outcome") != std::string::npos);
  CHECK((*c)->status().candidate.outcomes >= 40);
  CHECK(alias_version(*f.registry) == v1);
}

TEST_CASE("controller: a restart mid-rollout resumes at the same step, with the same keys on the candidate") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(1.0);
  std::vector<std::string> on_candidate;
  {
    auto c = controller(f);
    ember::Prediction p;
    std::string arm;
    for (int i = 0; c->status().step == 0 && i < 20000; ++i) {
      REQUIRE(c->predict(record(i), "user-" + std::to_string(i), p, &arm).ok());
      f.clock.advance(std::chrono::milliseconds(10));
      if (i % 20 == 0) REQUIRE(c->wait_idle(std::chrono::seconds(30)));
    }
    REQUIRE(c->wait_idle(std::chrono::seconds(30)));
    REQUIRE(c->status().step == 1);
    CHECK(c->candidate_weight() == 50);
    for (int i = 0; i < 120; ++i) {  // ~60 on the candidate: under the step's 100
      REQUIRE(c->predict(record(i), "key-" + std::to_string(i), p, &arm).ok());
      if (arm == "candidate") on_candidate.push_back("key-" + std::to_string(i));
    }
    REQUIRE(c->wait_idle(std::chrono::seconds(30)));
  }  // the process "exits" mid-step
  const auto before = f.registry->rollout("churn", "production");
  REQUIRE(before.ok());
  CHECK(before->step == 1);

  // A new process: a new Registry object and controller on the same directory.
  std::shared_ptr<Registry> again = f.open_again();
  ember::RolloutControllerOptions o;
  o.now = [&f] { return f.clock.now(); };
  auto c2 = ember::RolloutController::create(again, "churn@production", o);
  REQUIRE(c2.ok());
  auto& c = **c2;
  CHECK(c.status().state == RolloutState::kRunning);
  CHECK(c.status().step == 1);
  CHECK(c.candidate_weight() == 50);
  CHECK(c.status().step_started.count() == before->step_started_us * 1000);
  ember::Prediction p;
  std::string arm;
  for (const auto& key : on_candidate) {
    REQUIRE(c.predict(record(1), key, p, &arm).ok());
    CHECK(arm == "candidate");
  }
  REQUIRE(c.wait_idle(std::chrono::seconds(30)));
  drive(c, f, 50000, 6000);
  CHECK(c.status().state == RolloutState::kPromoted);
  CHECK(alias_version(*again) == v2);
}

TEST_CASE("controller: pause, resume and abort from another process reach it at its next sync") {
  Fixture f;
  (void)f.production_and_candidate(1.0);
  Events events;
  auto c = controller(f, &events);
  drive(*c, f, 0, 40);
  auto cli = f.open_again();  // `ember rollout pause` elsewhere

  REQUIRE(cli->command_rollout("churn", "production", RolloutCommand::kPause, "oncall", "investigating").ok());
  CHECK(c->status().state == RolloutState::kRunning);  // not read yet
  REQUIRE(c->sync().ok());
  CHECK(c->status().state == RolloutState::kPaused);
  CHECK(c->status().reason == "investigating");
  CHECK(c->candidate_weight() == 10);  // a pause holds the weight
  drive(*c, f, 100, 3000);              // no decisions while paused
  CHECK(c->status().state == RolloutState::kPaused);
  CHECK(c->status().step == 0);

  REQUIRE(cli->command_rollout("churn", "production", RolloutCommand::kResume, "oncall", "").ok());
  REQUIRE(c->sync().ok());
  CHECK(c->status().state == RolloutState::kRunning);
  REQUIRE(cli->command_rollout("churn", "production", RolloutCommand::kAbort, "oncall", "customer report").ok());
  REQUIRE(c->sync().ok());
  CHECK(c->status().state == RolloutState::kAborted);
  CHECK(c->candidate_weight() == 0);
  CHECK(events.kinds() == std::vector<std::string>{"started", "paused", "resumed", "aborted"});
  // The host's own commands go through the registry too.
  CHECK(c->promote("oncall", "").code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("controller: a promotion the alias's policy refuses pauses the rollout and tells the host") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(1.0);
  REQUIRE(f.registry->protect_alias("production", 1, "admin").ok());  // after the start
  Events events;
  auto c = controller(f, &events);
  drive(*c, f, 0, 6000);
  REQUIRE(c->wait_idle(std::chrono::seconds(30)));
  REQUIRE(c->sync().ok());
  CHECK(c->status().state == RolloutState::kPaused);
  CHECK(c->status().reason.find("promotion refused") != std::string::npos);
  CHECK(c->candidate_weight() == 100);  // the last step's weight, held while paused
  CHECK(alias_version(*f.registry) == v1);
  const auto kinds = events.kinds();
  CHECK(std::find(kinds.begin(), kinds.end(), "error") != kinds.end());
  REQUIRE(f.registry->approve("churn", v2, "bob", "").ok());
  REQUIRE(c->promote("bob", "approved").ok());
  CHECK(c->status().state == RolloutState::kPromoted);
  CHECK(alias_version(*f.registry) == v2);
}

TEST_CASE("controller: a ref without an alias is refused") {
  Fixture f;
  (void)f.publish(1.0);
  const ember::RolloutControllerOptions o;
  CHECK(ember::RolloutController::create(f.registry, "churn/1", o).status().code() == StatusCode::kInvalidArgument);
  CHECK(ember::RolloutController::create(f.registry, "churn@latest", o).status().code() == StatusCode::kInvalidArgument);
  CHECK(ember::RolloutController::create(nullptr, "churn@production", o).status().code() == StatusCode::kInvalidArgument);
  CHECK(ember::RolloutController::create(f.registry, "churn@production", o).status().code() == StatusCode::kNotFound);
}

TEST_CASE("controller: with a watch interval it follows the registry by itself") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(1.0, false);
  ember::RolloutControllerOptions o;
  o.now = [&f] { return f.clock.now(); };
  o.watch_interval = std::chrono::milliseconds(2);
  auto c = ember::RolloutController::create(f.registry, "churn@production", o);
  REQUIRE(c.ok());
  auto cli = f.open_again();
  // Polls (real time) until the watch has read what another process wrote.
  auto eventually = [&](auto condition) {
    for (int i = 0; i < 5000 && !condition(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return condition();
  };
  REQUIRE(cli->start_rollout("churn", "production", v2, kPlan, "alice", "").ok());
  CHECK(eventually([&] { return (*c)->candidate_weight() == 10; }));
  REQUIRE(cli->command_rollout("churn", "production", RolloutCommand::kAbort, "oncall", "drill").ok());
  CHECK(eventually([&] { return (*c)->candidate_weight() == 0 && (*c)->status().state == RolloutState::kAborted; }));
  ember::Prediction p;
  REQUIRE((*c)->predict(record(1), "user-1", p).ok());
  CHECK(p.model_version == std::to_string(v1));
}

TEST_CASE("controller: a candidate whose files were damaged leaves the alias serving and tells the host") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(5.0);
  auto resolved = f.registry->resolve("churn/" + std::to_string(v2));
  REQUIRE(resolved.ok());
  const auto file = resolved->dir / "linear.json";
  std::string text = ember_test::read_all(file);
  text[text.find("0.5")] = '9';  // same size, another intercept
  ember_test::write_all(file, text);
  Events events;
  auto c = controller(f, &events);  // a fresh Registry object would refuse it too
  CHECK(events.kinds() == std::vector<std::string>{"error"});
  CHECK(events.seen.front().status.reason.find("DataLoss") != std::string::npos);
  CHECK(c->candidate_weight() == 0);
  ember::Prediction p;
  std::string arm;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(c->predict(record(i), "user-" + std::to_string(i), p, &arm).ok());
    CHECK(p.model_version == std::to_string(v1));
  }
  CHECK(c->sync().code() == StatusCode::kDataLoss);
}

TEST_CASE("controller: blue-green through the alias switches every request at once, and back, audited") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(3.0, false);
  auto c = controller(f);
  ember::Prediction p;
  auto versions = [&] {
    std::set<std::string> seen;
    for (int i = 0; i < 300; ++i) {
      REQUIRE(c->predict(record(i), "user-" + std::to_string(i), p).ok());
      seen.insert(p.model_version);
    }
    return seen;
  };
  CHECK(versions() == std::set<std::string>{std::to_string(v1)});
  REQUIRE(f.registry->set_alias("churn", "production", v2, v1, "oncall", "green").ok());
  REQUIRE(c->sync().ok());
  CHECK(versions() == std::set<std::string>{std::to_string(v2)});
  REQUIRE(f.registry->rollback("churn", "production", "oncall", "back to blue").ok());
  REQUIRE(c->sync().ok());
  CHECK(versions() == std::set<std::string>{std::to_string(v1)});
  CHECK(audit_events(*f.registry, "alias").size() == 2);
  CHECK(audit_events(*f.registry, "rollback").size() == 1);
}

TEST_CASE("controller: a second rollout after the first ended is picked up by the same process") {
  Fixture f;
  const auto [v1, v2] = f.production_and_candidate(1.0);
  Events events;
  auto c = controller(f, &events);
  drive(*c, f, 0, 200);  // copies for the disagreement check are in flight
  REQUIRE(f.registry->command_rollout("churn", "production", RolloutCommand::kAbort, "oncall", "first try").ok());
  REQUIRE(c->sync().ok());
  CHECK(c->candidate_weight() == 0);
  REQUIRE(f.registry->start_rollout("churn", "production", v2, kPlan, "alice", "second try").ok());
  REQUIRE(c->sync().ok());
  CHECK(c->candidate_weight() == 10);
  CHECK(c->record().reason == "second try");
  drive(*c, f, 10000, 6000);
  CHECK(c->status().state == RolloutState::kPromoted);
  CHECK(alias_version(*f.registry) == v2);
  CHECK(events.kinds() == std::vector<std::string>{"started", "aborted", "started", "step", "step", "promoted"});
  (void)v1;
}
