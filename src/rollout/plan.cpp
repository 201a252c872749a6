// Sticky weighted routing and rollout plans (parsing, writing).
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "ember/rollout.hpp"

namespace ember {

std::uint32_t rollout_bucket(std::string_view key) noexcept {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 30;  // splitmix64's finaliser: FNV's low bits alone are weak
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<std::uint32_t>(h % kRolloutBuckets);
}

Result<WeightedRouter> WeightedRouter::create(std::span<const double> weights) {
  if (weights.empty()) return invalid_argument("router: no arms");
  WeightedRouter r;
  double sum = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double w = weights[i];
    if (!std::isfinite(w) || w < 0 || w > 100) {
      return invalid_argument("router: arm " + std::to_string(i) + " has weight " + std::to_string(w) +
                              " (expected a percentage in [0, 100])");
    }
    sum += w;
    r.weights_.push_back(w);
    // Bucket bounds from the running sum: a weight of 0 owns no bucket at all.
    r.upper_.push_back(static_cast<std::uint32_t>(std::llround(std::min(sum, 100.0) * (kRolloutBuckets / 100.0))));
  }
  if (std::fabs(sum - 100.0) > 1e-9) {
    return invalid_argument("router: weights sum to " + std::to_string(sum) + ", not 100");
  }
  r.upper_.back() = kRolloutBuckets;
  return r;
}

std::size_t WeightedRouter::arm_of_bucket(std::uint32_t bucket) const noexcept {
  for (std::size_t i = 0; i < upper_.size(); ++i) {
    if (bucket < upper_[i]) return i;
  }
  return upper_.size() - 1;
}

std::string_view rollout_metric_name(RolloutMetric metric) noexcept {
  switch (metric) {
    case RolloutMetric::kErrorRate: return "error_rate";
    case RolloutMetric::kFallbackRate: return "fallback_rate";
    case RolloutMetric::kP99LatencyMs: return "p99_latency_ms";
    case RolloutMetric::kDisagreement: return "disagreement";
    case RolloutMetric::kPredictionDrift: return "prediction_drift";
    case RolloutMetric::kOutcome: return "outcome";
  }
  return "unknown";
}

std::string_view rollout_state_name(RolloutState state) noexcept {
  switch (state) {
    case RolloutState::kRunning: return "running";
    case RolloutState::kPromoted: return "promoted";
    case RolloutState::kAborted: return "aborted";
    case RolloutState::kPaused: return "paused";
  }
  return "unknown";
}

namespace {

using json = nlohmann::json;

Status bad(const std::string& field, std::string_view what) {
  return invalid_argument("rollout plan: '" + field + "' " + std::string(what));
}

Status only_keys(const json& obj, std::initializer_list<std::string_view> keys, const std::string& field) {
  for (const auto& item : obj.items()) {
    bool known = false;
    for (auto k : keys) known = known || item.key() == k;
    if (!known) return bad(field + "." + item.key(), "is not a known key");
  }
  return {};
}

Result<double> number(const json& obj, const char* key, const std::string& field, double fallback, bool required) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return bad(field + "." + key, "is missing");
    return fallback;
  }
  if (!it->is_number() || !std::isfinite(it->get<double>())) return bad(field + "." + key, "must be a finite number");
  return it->get<double>();
}

Result<std::uint64_t> count(const json& obj, const char* key, const std::string& field, std::uint64_t fallback) {
  const auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<std::int64_t>() >= 0)) {
    return bad(field + "." + key, "must be a non-negative integer");
  }
  return it->get<std::uint64_t>();
}

}  // namespace

Result<RolloutPlan> parse_rollout_plan(std::string_view text) {
  if (text.size() > (std::size_t{1} << 20)) return invalid_argument("rollout plan: larger than 1 MiB");
  if (detail::json_too_deep(text, 16)) return invalid_argument("rollout plan: nests deeper than 16 levels");
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("rollout plan: not a JSON object");
  if (auto st = only_keys(j, {"steps", "checks", "evaluate_every", "inconclusive_limit"}, "plan"); !st.ok()) return st;
  RolloutPlan plan;
  const auto steps = j.find("steps");
  if (steps == j.end() || !steps->is_array() || steps->empty()) return bad("steps", "must be a non-empty array");
  if (steps->size() > 100) return bad("steps", "has more than 100 steps");
  double last = 0;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const auto& s = (*steps)[i];
    const std::string field = "steps[" + std::to_string(i) + "]";
    if (!s.is_object()) return bad(field, "must be an object");
    if (auto st = only_keys(s, {"weight", "min_requests", "min_duration_ms"}, field); !st.ok()) return st;
    RolloutStep step;
    auto w = number(s, "weight", field, 0, true);
    if (!w.ok()) return w.status();
    if (!(*w > 0 && *w <= 100)) return bad(field + ".weight", "must be in (0, 100]");
    if (*w <= last) return bad(field + ".weight", "must be larger than the step before's");
    step.weight = last = *w;
    auto n = count(s, "min_requests", field, 0);
    if (!n.ok()) return n.status();
    step.min_requests = *n;
    auto ms = count(s, "min_duration_ms", field, 0);
    if (!ms.ok()) return ms.status();
    step.min_duration = std::chrono::milliseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*ms, 1ULL << 50)));
    plan.steps.push_back(step);
  }
  const auto checks = j.find("checks");
  if (checks != j.end()) {
    if (!checks->is_array()) return bad("checks", "must be an array");
    if (checks->size() > 100) return bad("checks", "has more than 100 checks");
    for (std::size_t i = 0; i < checks->size(); ++i) {
      const auto& c = (*checks)[i];
      const std::string field = "checks[" + std::to_string(i) + "]";
      if (!c.is_object()) return bad(field, "must be an object");
      if (auto st = only_keys(c, {"metric", "max", "min", "min_samples", "tolerance", "stat", "failure_limit"}, field);
          !st.ok()) {
        return st;
      }
      RolloutCheck check;
      const auto m = c.find("metric");
      if (m == c.end() || !m->is_string()) return bad(field + ".metric", "must be a metric name");
      bool found = false;
      for (auto metric : {RolloutMetric::kErrorRate, RolloutMetric::kFallbackRate, RolloutMetric::kP99LatencyMs,
                          RolloutMetric::kDisagreement, RolloutMetric::kPredictionDrift, RolloutMetric::kOutcome}) {
        if (*m == rollout_metric_name(metric)) {
          check.metric = metric;
          found = true;
        }
      }
      if (!found) {
        return bad(field + ".metric", "must be error_rate, fallback_rate, p99_latency_ms, disagreement, "
                                      "prediction_drift or outcome");
      }
      if (c.contains("max")) {
        auto v = number(c, "max", field, 0, true);
        if (!v.ok()) return v.status();
        check.max = *v;
      }
      if (c.contains("min")) {
        auto v = number(c, "min", field, 0, true);
        if (!v.ok()) return v.status();
        check.min = *v;
      }
      if (check.max.has_value() == check.min.has_value()) return bad(field, "needs exactly one of 'min' and 'max'");
      auto samples = count(c, "min_samples", field, check.min_samples);
      if (!samples.ok()) return samples.status();
      check.min_samples = std::max<std::uint64_t>(*samples, 1);
      auto tol = number(c, "tolerance", field, check.tolerance, false);
      if (!tol.ok()) return tol.status();
      if (*tol < 0) return bad(field + ".tolerance", "must not be negative");
      check.tolerance = *tol;
      if (const auto st = c.find("stat"); st != c.end()) {
        if (!st->is_string() || (*st != "accuracy" && *st != "mae")) return bad(field + ".stat", "must be \"accuracy\" or \"mae\"");
        check.stat = st->get<std::string>();
      }
      auto limit = count(c, "failure_limit", field, 1);
      if (!limit.ok()) return limit.status();
      if (*limit == 0 || *limit > 1000) return bad(field + ".failure_limit", "must be in [1, 1000]");
      check.failure_limit = static_cast<std::uint32_t>(*limit);
      plan.checks.push_back(std::move(check));
    }
  }
  auto every = count(j, "evaluate_every", "plan", plan.evaluate_every);
  if (!every.ok()) return every.status();
  plan.evaluate_every = std::max<std::uint64_t>(*every, 1);
  auto limit = count(j, "inconclusive_limit", "plan", 0);
  if (!limit.ok()) return limit.status();
  plan.inconclusive_limit = *limit;
  return plan;
}

std::string rollout_plan_to_json(const RolloutPlan& plan) {
  json j;
  j["steps"] = json::array();
  for (const auto& s : plan.steps) {
    j["steps"].push_back({{"weight", s.weight}, {"min_requests", s.min_requests}, {"min_duration_ms", s.min_duration.count()}});
  }
  j["checks"] = json::array();
  for (const auto& c : plan.checks) {
    json cj = {{"metric", rollout_metric_name(c.metric)}, {"min_samples", c.min_samples}, {"failure_limit", c.failure_limit}};
    if (c.max) cj["max"] = *c.max;
    if (c.min) cj["min"] = *c.min;
    if (c.metric == RolloutMetric::kDisagreement) cj["tolerance"] = c.tolerance;
    if (c.metric == RolloutMetric::kOutcome) cj["stat"] = c.stat;
    j["checks"].push_back(std::move(cj));
  }
  j["evaluate_every"] = plan.evaluate_every;
  j["inconclusive_limit"] = plan.inconclusive_limit;
  return j.dump();
}

}  // namespace ember
