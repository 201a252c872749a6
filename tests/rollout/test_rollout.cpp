// Rollouts through the public API: the documented sticky hash, weighted routing that
// moves only the needed share, plan parsing, and the canary analysis on simulated
// traffic and time (no sleeping): worse candidates abort, good ones promote, no data
// never passes.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <string>

#include "ember/rollout.hpp"

using namespace std::chrono_literals;

TEST_CASE("the sticky hash is the documented one") {
  // Values of an independent implementation of the documented hash (FNV-1a 64 of the
  // bytes, splitmix64's finaliser, modulo 10,000).
  CHECK(ember::rollout_bucket("") == 6203);
  CHECK(ember::rollout_bucket("user-1") == 7624);
  CHECK(ember::rollout_bucket("user-2") == 8795);
  CHECK(ember::rollout_bucket("alice") == 572);
  CHECK(ember::rollout_bucket("bob") == 3964);
  CHECK(ember::rollout_bucket("42") == 4770);
  // Spread evenly: each tenth of the buckets holds 10 % ± 0.5 % of 100,000 keys.
  std::vector<int> tenths(10);
  for (int i = 0; i < 100000; ++i) ++tenths[ember::rollout_bucket("user-" + std::to_string(i)) / 1000];
  for (int n : tenths) CHECK(std::abs(n - 10000) < 500);
}

TEST_CASE("weights are validated, 0 means 0, and changing them moves only the needed share") {
  const double bad_sum[] = {50, 40};
  CHECK_FALSE(ember::WeightedRouter::create(bad_sum).ok());
  const double negative[] = {110, -10};
  CHECK_FALSE(ember::WeightedRouter::create(negative).ok());
  const double nan[] = {NAN, 100};
  CHECK_FALSE(ember::WeightedRouter::create(nan).ok());
  CHECK_FALSE(ember::WeightedRouter::create(std::span<const double>()).ok());

  const double all_first[] = {100, 0};
  auto r = ember::WeightedRouter::create(all_first);
  REQUIRE(r.ok());
  for (int i = 0; i < 20000; ++i) REQUIRE(r->arm("k" + std::to_string(i)) == 0);  // 100:0 is not 50:50
  const double all_second[] = {0, 100};
  r = ember::WeightedRouter::create(all_second);
  REQUIRE(r.ok());
  for (std::uint32_t b = 0; b < ember::kRolloutBuckets; ++b) REQUIRE(r->arm_of_bucket(b) == 1);

  // 95:5 -> 75:25: a fifth of the keys move, all from the first arm to the second.
  const double before_w[] = {95, 5}, after_w[] = {75, 25};
  auto before = ember::WeightedRouter::create(before_w);
  auto after = ember::WeightedRouter::create(after_w);
  REQUIRE(before.ok());
  REQUIRE(after.ok());
  int moved = 0, wrong_way = 0, candidate = 0;
  constexpr int kKeys = 200000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "user-" + std::to_string(i);
    const auto a = before->arm(key), b = after->arm(key);
    REQUIRE(before->arm(key) == a);  // the same key, the same arm
    moved += a != b;
    wrong_way += a == 1 && b == 0;
    candidate += a == 1;
  }
  CHECK(wrong_way == 0);
  CHECK(std::abs(moved - kKeys / 5) < kKeys / 100);
  CHECK(std::abs(candidate - kKeys / 20) < kKeys / 200);
}

TEST_CASE("rollout plans: the issue's form parses, and bad plans are refused naming the field") {
  auto plan = ember::parse_rollout_plan(R"({"steps": [{"weight": 1, "min_requests": 100}, {"weight": 5, "min_requests": 200},
      {"weight": 50, "min_requests": 200, "min_duration_ms": 60000}, {"weight": 100, "min_requests": 200}],
      "checks": [{"metric": "error_rate", "max": 0.02}, {"metric": "p99_latency_ms", "max": 25, "min_samples": 100},
                 {"metric": "outcome", "min": 0.8, "stat": "accuracy"}, {"metric": "disagreement", "max": 0.1, "tolerance": 0.2}]})");
  REQUIRE(plan.ok());
  CHECK(plan->steps.size() == 4);
  CHECK(plan->steps[2].min_duration == 60s);
  CHECK(plan->checks[1].min_samples == 100);
  CHECK(plan->checks[3].tolerance == 0.2);
  auto again = ember::parse_rollout_plan(ember::rollout_plan_to_json(*plan));
  REQUIRE(again.ok());
  CHECK(ember::rollout_plan_to_json(*again) == ember::rollout_plan_to_json(*plan));

  const auto refused = [](const std::string& text, const std::string& needle) {
    auto p = ember::parse_rollout_plan(text);
    REQUIRE_FALSE(p.ok());
    INFO(p.status().message());
    CHECK(p.status().message().find(needle) != std::string::npos);
  };
  refused("{", "not a JSON object");
  refused(R"({"steps": []})", "'steps'");
  refused(R"({"steps": [{"weight": 10}, {"weight": 5}]})", "steps[1].weight");
  refused(R"({"steps": [{"weight": 0}]})", "steps[0].weight");
  refused(R"({"steps": [{"weight": 101}]})", "steps[0].weight");
  refused(R"({"steps": [{"weight": 10, "min_requests": -1}]})", "min_requests");
  refused(R"({"steps": [{"weight": 10, "hold": 3}]})", "steps[0].hold");
  refused(R"({"steps": [{"weight": 10}], "checks": [{"metric": "vibes", "max": 1}]})", "checks[0].metric");
  refused(R"({"steps": [{"weight": 10}], "checks": [{"metric": "error_rate"}]})", "exactly one of");
  refused(R"({"steps": [{"weight": 10}], "checks": [{"metric": "error_rate", "min": 0, "max": 1}]})", "exactly one of");
  refused(R"({"steps": [{"weight": 10}], "checks": [{"metric": "outcome", "min": 0.5, "stat": "f1"}]})", "stat");
  refused(R"({"steps": [{"weight": 10}], "extra": 1})", "plan.extra");
  refused(std::string(1000, '[') + std::string(1000, ']'), "nests deeper");
}

namespace {

// A candidate's behaviour in simulation.
struct Arm {
  double error_rate = 0.005;
  double fallback_rate = 0.0;
  double latency_ms = 5;        // mean of an exponential tail over 2 ms
  double output_shift = 0;      // added to the score
  double accuracy = 0.9;        // share of outcomes that agree with the score
};

struct Sim {
  ember::RolloutPlan plan;
  Arm control, candidate;
  bool outcomes = true;
  std::uint64_t seed = 1;
  std::chrono::milliseconds gap{10};  // between requests
};

// Runs keyed traffic through the analysis until it decides (or `max_requests`).
ember::RolloutStatus simulate(const Sim& sim, int max_requests = 200000) {
  std::mt19937_64 rng(sim.seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::exponential_distribution<double> tail(1.0);
  ember::CanaryAnalysis analysis(sim.plan, 0ns);
  std::chrono::nanoseconds now{0};
  for (int i = 0; i < max_requests && analysis.status().state == ember::RolloutState::kRunning; ++i) {
    now += sim.gap;
    const double w = analysis.status().weight;
    const bool cand = ember::rollout_bucket("user-" + std::to_string(i)) >= static_cast<std::uint32_t>((100 - w) * 100);
    const Arm& a = cand ? sim.candidate : sim.control;
    ember::RolloutObservation o;
    o.candidate = cand;
    o.failed = u(rng) < a.error_rate;
    o.fallback = !o.failed && u(rng) < a.fallback_rate;
    o.latency = std::chrono::nanoseconds(static_cast<std::int64_t>((2 + (a.latency_ms - 2) * tail(rng)) * 1e6));
    const double base = u(rng);
    if (!o.failed) {
      o.output = std::clamp(base + a.output_shift, 0.0, 1.0);
      if (cand) o.control_output = base;
      if (sim.outcomes) {
        const bool agree = u(rng) < a.accuracy;
        o.outcome = (*o.output >= 0.5) == agree ? 1.0 : 0.0;
      }
    }
    analysis.observe(o, now);
  }
  return analysis.status();
}

ember::RolloutPlan standard_plan() {
  return *ember::parse_rollout_plan(R"({"steps": [{"weight": 5, "min_requests": 300}, {"weight": 25, "min_requests": 500},
      {"weight": 50, "min_requests": 500}, {"weight": 100, "min_requests": 500}],
      "checks": [{"metric": "error_rate", "max": 0.02, "min_samples": 200},
                 {"metric": "fallback_rate", "max": 0.05, "min_samples": 200},
                 {"metric": "p99_latency_ms", "max": 40, "min_samples": 200},
                 {"metric": "disagreement", "max": 0.05, "tolerance": 0.1, "min_samples": 200},
                 {"metric": "prediction_drift", "max": 0.25, "min_samples": 300},
                 {"metric": "outcome", "min": 0.8, "min_samples": 200}]})");
}

}  // namespace

TEST_CASE("a candidate as good as the control is promoted, step by step") {
  for (std::uint64_t seed : {1, 2, 3}) {
    Sim sim{standard_plan(), {}, {}, true, seed};
    const auto s = simulate(sim);
    INFO(ember::rollout_status_to_json(s));
    CHECK(s.state == ember::RolloutState::kPromoted);
    CHECK(s.step == 3);
    CHECK(s.weight == 100);
    CHECK(s.candidate.requests >= 300 + 500 + 500 + 500);
  }
}

TEST_CASE("worse candidates are aborted at the first step, within the plan's limits") {
  struct Case {
    const char* what;
    std::function<void(Arm&)> worse;
    const char* metric;
  };
  const Case cases[] = {
      {"more errors", [](Arm& a) { a.error_rate = 0.06; }, "error_rate"},
      {"more fallbacks", [](Arm& a) { a.fallback_rate = 0.15; }, "fallback_rate"},
      {"slower", [](Arm& a) { a.latency_ms = 15; }, "p99_latency_ms"},
      {"drifted outputs", [](Arm& a) { a.output_shift = 0.3; }, "disagreement"},
      {"worse outcomes", [](Arm& a) { a.accuracy = 0.65; }, "outcome"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Sim sim{standard_plan(), {}, {}, true, 7};
    c.worse(sim.candidate);
    const auto s = simulate(sim);
    INFO(ember::rollout_status_to_json(s));
    CHECK(s.state == ember::RolloutState::kAborted);
    CHECK(s.weight == 0);
    CHECK(s.step == 0);
    CHECK(s.reason.find(c.metric) != std::string::npos);
    // Decided as soon as the minimum sample was in, not after the step.
    CHECK(s.candidate.requests <= 200 + sim.plan.evaluate_every);
  }
}

TEST_CASE("no data is inconclusive, never a pass: the rollout pauses") {
  Sim sim{standard_plan(), {}, {}, /*outcomes=*/false, 11};
  const auto s = simulate(sim);
  INFO(ember::rollout_status_to_json(s));
  CHECK(s.state == ember::RolloutState::kPaused);
  CHECK(s.step == 0);
  CHECK(s.reason.find("outcome has 0 of the 200 samples") != std::string::npos);
  bool outcome_inconclusive = false;
  for (const auto& c : s.checks) {
    if (c.metric == ember::RolloutMetric::kOutcome) outcome_inconclusive = !c.passed && !c.failed && !c.value;
  }
  CHECK(outcome_inconclusive);
}

TEST_CASE("a step held for a time passes only when the time has passed, on the injected clock") {
  auto plan = *ember::parse_rollout_plan(R"({"steps": [{"weight": 10, "min_requests": 10, "min_duration_ms": 600000},
      {"weight": 100, "min_requests": 10}], "checks": [{"metric": "error_rate", "max": 0.5, "min_samples": 10}]})");
  ember::CanaryAnalysis a(plan, 0ns);
  ember::RolloutObservation ok;
  ok.candidate = true;
  ok.output = 0.5;
  for (int i = 0; i < 100; ++i) a.observe(ok, std::chrono::seconds(i));
  CHECK(a.status().step == 0);  // 100 s in: held
  a.tick(std::chrono::minutes(9));
  CHECK(a.status().step == 0);
  a.tick(std::chrono::minutes(10));
  CHECK(a.status().step == 1);  // ten minutes: next step
  for (int i = 0; i < 10; ++i) a.observe(ok, std::chrono::minutes(11));
  CHECK(a.status().state == ember::RolloutState::kPromoted);
}

TEST_CASE("the host can pause, resume, abort and promote") {
  auto plan = standard_plan();
  ember::CanaryAnalysis a(plan, 0ns);
  a.pause("a human looks");
  CHECK(a.status().state == ember::RolloutState::kPaused);
  ember::RolloutObservation o;
  o.candidate = true;
  o.failed = true;
  for (int i = 0; i < 1000; ++i) a.observe(o, 1s);  // counted, not judged while paused
  CHECK(a.status().state == ember::RolloutState::kPaused);
  CHECK(a.status().candidate.failed == 1000);
  a.resume(2s);
  CHECK(a.status().state == ember::RolloutState::kRunning);
  a.abort("changed our mind");
  CHECK(a.status().state == ember::RolloutState::kAborted);
  CHECK(a.status().weight == 0);
  a.promote("too late");  // an aborted rollout stays aborted
  CHECK(a.status().state == ember::RolloutState::kAborted);
  ember::CanaryAnalysis b(plan, 0ns);
  b.promote("by hand");
  CHECK(b.status().state == ember::RolloutState::kPromoted);
  CHECK(b.status().weight == 100);
}
