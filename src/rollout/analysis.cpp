// The canary state machine: per-step samples of both arms, checks evaluated as they
// come, steps passed only on full evidence.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "drift/sort.hpp"
#include "ember/drift.hpp"
#include "ember/monitor.hpp"
#include "ember/rollout.hpp"

namespace ember {

namespace {

// A uniform sample of at most kKept values of a stream (reservoir sampling with a
// deterministic generator), and how many the stream held: a step of millions of
// requests holds a bounded amount of memory.
template <typename T>
struct Reservoir {
  static constexpr std::size_t kKept = 100000;
  std::vector<T> kept;
  std::uint64_t seen = 0;
  void add(T value) {
    ++seen;
    if (kept.size() < kKept) {
      kept.push_back(std::move(value));
      return;
    }
    std::uint64_t x = seen * 0x9e3779b97f4a7c15ULL;  // splitmix64's finaliser
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    const std::uint64_t j = x % seen;
    if (j < kKept) kept[j] = std::move(value);
  }
};

}  // namespace

// What the current step has seen.
struct CanaryAnalysis::StepData {
  std::uint64_t candidate_requests = 0;  // valid ones
  std::uint64_t failed = 0, answered = 0, fallbacks = 0;
  Reservoir<std::int64_t> latency_ns;
  Reservoir<double> outputs;
  std::vector<double> control_outputs;              // the last 20,000 across steps
  Reservoir<double> differences;                     // |candidate - control| on records both answered
  Reservoir<std::pair<double, double>> outcomes;     // (prediction, outcome)
  std::uint64_t evaluated_at = 0;  // candidate requests at the last evaluation
  bool end_seen = false;           // the step's minimums were met at an evaluation
};

CanaryAnalysis::CanaryAnalysis(RolloutPlan plan, std::chrono::nanoseconds now)
    : plan_(std::move(plan)), data_(std::make_shared<StepData>()), failures_(plan_.checks.size(), 0) {
  if (plan_.steps.empty()) {
    status_.state = RolloutState::kAborted;
    status_.reason = "the plan has no steps";
    return;
  }
  start_step(0, now);
}

void CanaryAnalysis::start_step(std::size_t step, std::chrono::nanoseconds now) {
  status_.step = step;
  status_.weight = plan_.steps[step].weight;
  status_.step_started = now;
  // The control's outputs are the reference for prediction drift across steps (at 100 %
  // the control answers nothing new); the last 20,000 are kept.
  std::vector<double> control = std::move(data_->control_outputs);
  if (control.size() > 20000) control.erase(control.begin(), control.end() - 20000);
  *data_ = StepData{};
  data_->control_outputs = std::move(control);
  std::fill(failures_.begin(), failures_.end(), 0);
}

const RolloutStatus& CanaryAnalysis::observe(const RolloutObservation& o, std::chrono::nanoseconds now) {
  ArmCounters& arm = o.candidate ? status_.candidate : status_.control;
  ++arm.requests;
  arm.invalid += o.invalid;
  arm.failed += o.failed;
  arm.fallbacks += o.fallback;
  arm.outcomes += o.outcome.has_value();
  if (status_.state != RolloutState::kRunning || o.invalid) return status_;
  StepData& d = *data_;
  if (!o.candidate) {
    if (o.output && std::isfinite(*o.output)) {
      d.control_outputs.push_back(*o.output);
      if (d.control_outputs.size() > 40000) d.control_outputs.erase(d.control_outputs.begin(), d.control_outputs.end() - 20000);
    }
    return tick(now);
  }
  ++d.candidate_requests;
  if (o.failed) {
    ++d.failed;
  } else {
    ++d.answered;
    d.fallbacks += o.fallback;
    d.latency_ns.add(o.latency.count());
    if (o.output && std::isfinite(*o.output)) {
      d.outputs.add(*o.output);
      if (o.outcome && std::isfinite(*o.outcome)) d.outcomes.add({*o.output, *o.outcome});
    }
  }
  // Disagreement: the same record answered by both arms.
  if (!o.failed && o.output && o.control_output && std::isfinite(*o.output) && std::isfinite(*o.control_output)) {
    d.differences.add(std::fabs(*o.output - *o.control_output));
  }
  return tick(now);
}

const RolloutStatus& CanaryAnalysis::observe_comparison(double candidate_output, double control_output,
                                                        std::chrono::nanoseconds now) {
  if (status_.state != RolloutState::kRunning) return status_;
  if (std::isfinite(candidate_output) && std::isfinite(control_output)) {
    data_->differences.add(std::fabs(candidate_output - control_output));
  }
  return tick(now);
}

const RolloutStatus& CanaryAnalysis::observe_outcome(double candidate_output, double outcome,
                                                     std::chrono::nanoseconds now) {
  ++status_.candidate.outcomes;
  if (status_.state != RolloutState::kRunning) return status_;
  if (std::isfinite(candidate_output) && std::isfinite(outcome)) data_->outcomes.add({candidate_output, outcome});
  return tick(now);
}

void CanaryAnalysis::restore(std::size_t step, RolloutState state, std::string reason,
                             std::chrono::nanoseconds step_started) {
  if (plan_.steps.empty()) return;
  start_step(std::min(step, plan_.steps.size() - 1), step_started);
  status_.state = state;
  status_.reason = std::move(reason);
  if (state == RolloutState::kAborted) status_.weight = 0;
  if (state == RolloutState::kPromoted) status_.weight = 100;
}

const RolloutStatus& CanaryAnalysis::tick(std::chrono::nanoseconds now) {
  if (status_.state != RolloutState::kRunning) return status_;
  StepData& d = *data_;
  const RolloutStep& step = plan_.steps[status_.step];
  const bool step_end_due = d.candidate_requests >= step.min_requests && now - status_.step_started >= step.min_duration;
  // Every evaluate_every candidate requests, and as soon as the step's minimums are met:
  // never on every request (an evaluation sorts the step's samples).
  const bool periodic = d.candidate_requests >= d.evaluated_at + plan_.evaluate_every;
  if (!periodic && !(step_end_due && !d.end_seen)) return status_;
  d.evaluated_at = d.candidate_requests;
  d.end_seen = d.end_seen || step_end_due;
  evaluate(now, step_end_due);
  return status_;
}

namespace {

std::string describe(const RolloutCheck& c, double value) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s is %.6g, %s %.6g", std::string(rollout_metric_name(c.metric)).c_str(), value,
                c.max ? "above the maximum" : "below the minimum", c.max ? *c.max : *c.min);
  return buf;
}

}  // namespace

void CanaryAnalysis::evaluate(std::chrono::nanoseconds now, bool step_end_due) {
  StepData& d = *data_;
  status_.checks.clear();
  bool all_passed = true;
  std::string failed_reason, inconclusive;
  for (std::size_t i = 0; i < plan_.checks.size(); ++i) {
    const RolloutCheck& c = plan_.checks[i];
    CheckResult r;
    r.metric = c.metric;
    std::optional<double> value;
    switch (c.metric) {
      case RolloutMetric::kErrorRate:
        r.samples = d.candidate_requests;
        if (r.samples > 0) value = static_cast<double>(d.failed) / static_cast<double>(r.samples);
        break;
      case RolloutMetric::kFallbackRate:
        r.samples = d.answered;
        if (r.samples > 0) value = static_cast<double>(d.fallbacks) / static_cast<double>(r.samples);
        break;
      case RolloutMetric::kP99LatencyMs: {
        r.samples = d.latency_ns.seen;
        if (r.samples > 0) {
          std::vector<std::int64_t> lat = d.latency_ns.kept;
          const auto k = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(lat.size()))) - 1;
          std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
          value = static_cast<double>(lat[k]) / 1e6;
        }
        break;
      }
      case RolloutMetric::kDisagreement: {
        r.samples = d.differences.seen;
        const auto& kept = d.differences.kept;
        const auto differ = std::count_if(kept.begin(), kept.end(), [&](double x) { return x > c.tolerance; });
        if (r.samples > 0) value = static_cast<double>(differ) / static_cast<double>(kept.size());
        break;
      }
      case RolloutMetric::kPredictionDrift: {
        r.samples = std::min<std::uint64_t>(d.outputs.seen, d.control_outputs.size());
        if (r.samples > 0) {
          std::uint64_t ignored = 0;
          const auto a = detail::finite_sorted(d.outputs.kept, ignored);
          const auto b = detail::finite_sorted(d.control_outputs, ignored);
          double mean = 0, ss = 0;
          for (double x : b) mean += x;
          mean /= static_cast<double>(b.size());
          for (double x : b) ss += (x - mean) * (x - mean);
          value = wasserstein_1(a, b) / std::max(std::sqrt(ss / static_cast<double>(b.size())), 0.001);
        }
        break;
      }
      case RolloutMetric::kOutcome: {
        r.samples = d.outcomes.seen;
        if (r.samples > 0) {
          const auto s = outcome_stats("", d.outcomes.kept);
          if (c.stat == "mae") value = s.mae;
          else if (s.accuracy) value = *s.accuracy;
        }
        break;
      }
    }
    if (value && r.samples >= c.min_samples) {
      r.value = value;
      r.failed = (c.max && *value > *c.max) || (c.min && *value < *c.min);
      r.passed = !r.failed;
    }
    failures_[i] = r.failed ? failures_[i] + 1 : 0;
    if (r.failed && failures_[i] >= c.failure_limit && failed_reason.empty()) failed_reason = describe(c, *value);
    if (!r.passed) all_passed = false;
    if (!r.passed && !r.failed && inconclusive.empty()) {
      inconclusive = std::string(rollout_metric_name(c.metric)) + " has " + std::to_string(r.samples) + " of the " +
                     std::to_string(c.min_samples) + " samples it needs";
    }
    status_.checks.push_back(r);
  }
  const std::string at_step = " at step " + std::to_string(status_.step + 1) + " (" +
                              std::to_string(static_cast<int>(plan_.steps[status_.step].weight)) + "%)";
  if (!failed_reason.empty()) {
    status_.state = RolloutState::kAborted;
    status_.weight = 0;
    status_.reason = failed_reason + at_step;
    return;
  }
  if (!step_end_due) return;
  if (all_passed) {
    if (status_.step + 1 == plan_.steps.size()) {
      status_.state = RolloutState::kPromoted;
      status_.weight = 100;
      status_.reason = "every check passed at every step";
      return;
    }
    start_step(status_.step + 1, now);
    return;
  }
  const RolloutStep& step = plan_.steps[status_.step];
  const std::uint64_t limit =
      plan_.inconclusive_limit > 0 ? plan_.inconclusive_limit : std::max<std::uint64_t>(10 * step.min_requests, 1000);
  if (d.candidate_requests >= step.min_requests + limit) {
    status_.state = RolloutState::kPaused;
    status_.reason = "inconclusive" + at_step + ": " + inconclusive;
  }
}

void CanaryAnalysis::pause(std::string reason) {
  if (status_.state != RolloutState::kRunning) return;
  status_.state = RolloutState::kPaused;
  status_.reason = std::move(reason);
}

void CanaryAnalysis::resume(std::chrono::nanoseconds now) {
  if (status_.state != RolloutState::kPaused) return;
  status_.state = RolloutState::kRunning;
  status_.reason.clear();
  start_step(status_.step, now);  // the step starts over: its evidence must be fresh
}

void CanaryAnalysis::abort(std::string reason) {
  if (status_.state == RolloutState::kPromoted || status_.state == RolloutState::kAborted) return;
  status_.state = RolloutState::kAborted;
  status_.weight = 0;
  status_.reason = std::move(reason);
}

void CanaryAnalysis::promote(std::string reason) {
  if (status_.state == RolloutState::kPromoted || status_.state == RolloutState::kAborted) return;
  status_.state = RolloutState::kPromoted;
  status_.weight = 100;
  status_.reason = std::move(reason);
}

std::string rollout_status_to_json(const RolloutStatus& s) {
  nlohmann::ordered_json j;
  j["state"] = rollout_state_name(s.state);
  j["step"] = s.step + 1;
  j["weight"] = s.weight;
  j["reason"] = s.reason;
  j["checks"] = nlohmann::ordered_json::array();
  for (const auto& c : s.checks) {
    j["checks"].push_back({{"metric", rollout_metric_name(c.metric)},
                           {"value", c.value ? nlohmann::ordered_json(*c.value) : nlohmann::ordered_json()},
                           {"samples", c.samples},
                           {"result", c.failed ? "failed" : c.passed ? "passed" : "inconclusive"}});
  }
  for (const auto& [name, arm] : {std::pair{"control", &s.control}, {"candidate", &s.candidate}}) {
    j["arms"][name] = {{"requests", arm->requests}, {"invalid", arm->invalid}, {"failed", arm->failed},
                       {"fallbacks", arm->fallbacks}, {"outcomes", arm->outcomes}};
  }
  return j.dump();
}

}  // namespace ember
