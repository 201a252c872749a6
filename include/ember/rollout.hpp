#pragma once

/// Rollouts: sticky weighted assignment of callers to versions, and the canary analysis
/// that moves a candidate through the steps of a plan, promoting it when every check
/// passes at every step and aborting it the moment one fails. "No data" is never a
/// pass: a check without its minimum sample is inconclusive, and a step that stays
/// inconclusive past its limit pauses the rollout.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

// --- sticky assignment ------------------------------------------------------------

/// Buckets a key falls into: 10,000 (weights have a resolution of 0.01 %).
inline constexpr std::uint32_t kRolloutBuckets = 10000;

/// The bucket of a caller's key: FNV-1a 64 of the key's bytes, then splitmix64's
/// finaliser, modulo 10,000. The same in every process, build and restart (the
/// constants are FNV's 14695981039346656037 and 1099511628211).
EMBER_API std::uint32_t rollout_bucket(std::string_view key) noexcept;

/// Weights of arms, in percent, validated: each in [0, 100] and finite, summing to 100
/// (within 1e-9). 0 means no traffic at all. Arm i owns the buckets from the sum of the
/// weights before it, so raising the last arm's weight moves keys only from the arms
/// before it, and only as many as the change needs.
class EMBER_API WeightedRouter {
 public:
  /// InvalidArgument naming the arm for a negative, non-finite or > 100 weight, or a sum
  /// other than 100; for no arms.
  static Result<WeightedRouter> create(std::span<const double> weights);
  /// The arm of a key.
  [[nodiscard]] std::size_t arm(std::string_view key) const noexcept { return arm_of_bucket(rollout_bucket(key)); }
  [[nodiscard]] std::size_t arm_of_bucket(std::uint32_t bucket) const noexcept;
  [[nodiscard]] const std::vector<double>& weights() const noexcept { return weights_; }

 private:
  std::vector<double> weights_;
  std::vector<std::uint32_t> upper_;  // arm i owns buckets [upper_[i-1], upper_[i])
};

// --- the plan -----------------------------------------------------------------------

struct RolloutStep {
  double weight = 0;  ///< the candidate's share, percent (0 < weight <= 100)
  std::uint64_t min_requests = 0;  ///< candidate requests at this step before it may pass
  std::chrono::milliseconds min_duration{0};  ///< and time at this step
};

/// What a check measures, on the candidate's requests at the current step.
enum class RolloutMetric : std::uint8_t {
  kErrorRate,        ///< requests no stage could answer / requests (invalid input excluded)
  kFallbackRate,     ///< answers after a skipped stage / answers
  kP99LatencyMs,     ///< 99th percentile of latency, milliseconds
  kDisagreement,     ///< share of records the control answers differently (|diff| > tolerance)
  kPredictionDrift,  ///< Wasserstein distance of the outputs from the control's (its last 20,000 in the rollout), / their std
  kOutcome,          ///< accuracy (labels 0/1) or mean absolute error of joined outcomes
};
/// "error_rate", "fallback_rate", "p99_latency_ms", "disagreement", "prediction_drift", "outcome".
EMBER_API std::string_view rollout_metric_name(RolloutMetric metric) noexcept;

struct RolloutCheck {
  RolloutMetric metric = RolloutMetric::kErrorRate;
  std::optional<double> max;  ///< fails above
  std::optional<double> min;  ///< fails below
  /// Samples the metric needs before it counts (requests; compared records for
  /// disagreement; outcomes for outcome). Below it the check is inconclusive.
  std::uint64_t min_samples = 50;
  /// disagreement: outputs further apart than this differ.
  double tolerance = 0.05;
  /// outcome: "accuracy" or "mae".
  std::string stat = "accuracy";
  /// Failing evaluations in a row (evaluations every `evaluate_every` requests) before
  /// the rollout aborts.
  std::uint32_t failure_limit = 1;
};

struct RolloutPlan {
  std::vector<RolloutStep> steps;
  std::vector<RolloutCheck> checks;
  /// Checks are evaluated every this many candidate requests (and at each step's end).
  std::uint64_t evaluate_every = 50;
  /// A step still inconclusive this many candidate requests past its minimum pauses the
  /// rollout (0: 10 x min_requests, at least 1000).
  std::uint64_t inconclusive_limit = 0;
};

/// Parses a plan: {"steps": [{"weight": 5, "min_requests": 200, "min_duration_ms": 0}, ...],
/// "checks": [{"metric": "error_rate", "max": 0.01, "min_samples": 100, ...}, ...],
/// "evaluate_every": 50, "inconclusive_limit": 0}. InvalidArgument naming the field for an
/// unknown key or metric, weights not increasing within (0, 100], a check with neither
/// or both of min and max, non-finite numbers, more than 100 steps or checks.
EMBER_API Result<RolloutPlan> parse_rollout_plan(std::string_view json);
EMBER_API std::string rollout_plan_to_json(const RolloutPlan& plan);

// --- the analysis -----------------------------------------------------------------

enum class RolloutState : std::uint8_t { kRunning, kPromoted, kAborted, kPaused };
/// "running", "promoted", "aborted", "paused".
EMBER_API std::string_view rollout_state_name(RolloutState state) noexcept;

/// One request as the analysis sees it.
struct RolloutObservation {
  bool candidate = false;  ///< which arm answered
  bool invalid = false;    ///< refused as invalid input (counted, judged by no check)
  bool failed = false;     ///< no stage could answer
  bool fallback = false;   ///< answered after a skipped stage
  std::chrono::nanoseconds latency{0};
  std::optional<double> output;          ///< the answer's first output element
  std::optional<double> control_output;  ///< the control's answer to the same record (shadow), when known
  std::optional<double> outcome;         ///< ground truth, when known
};

/// A check's last evaluation.
struct CheckResult {
  RolloutMetric metric = RolloutMetric::kErrorRate;
  std::optional<double> value;  ///< none while inconclusive
  std::uint64_t samples = 0;
  bool passed = false;
  bool failed = false;  ///< neither: inconclusive
};

struct ArmCounters {
  std::uint64_t requests = 0, invalid = 0, failed = 0, fallbacks = 0, outcomes = 0;
};

struct RolloutStatus {
  RolloutState state = RolloutState::kRunning;
  std::size_t step = 0;  ///< index into the plan's steps (the last one reached)
  double weight = 0;     ///< the candidate's weight now (0 once aborted, 100 once promoted)
  std::string reason;
  std::vector<CheckResult> checks;
  ArmCounters control, candidate;  ///< over the whole rollout
  std::chrono::nanoseconds step_started{0};
};

/// The canary state machine. Feed it every request with the time it happened (any
/// clock: tests and replays pass simulated time); it says what the candidate's weight
/// is. Not thread-safe: one owner (a Deployment serialises calls).
class EMBER_API CanaryAnalysis {
 public:
  CanaryAnalysis(RolloutPlan plan, std::chrono::nanoseconds now);
  /// Records one request and re-evaluates when due. Returns the status after it.
  const RolloutStatus& observe(const RolloutObservation& o, std::chrono::nanoseconds now);
  /// What arrives after the request: the control's answer to a record the candidate
  /// answered (a shadow copy), and ground truth for a candidate's answer. Counted in
  /// the current step.
  const RolloutStatus& observe_comparison(double candidate_output, double control_output, std::chrono::nanoseconds now);
  const RolloutStatus& observe_outcome(double candidate_output, double outcome, std::chrono::nanoseconds now);
  /// Resumes a rollout a previous process kept (Registry::rollout): at `step`, in
  /// `state`, the step begun at `step_started`. The step's evidence starts again (a
  /// restart never passes a step on samples it no longer has); its time does not.
  void restore(std::size_t step, RolloutState state, std::string reason, std::chrono::nanoseconds step_started);
  /// Re-evaluates at `now` without a request (time-held steps end without traffic).
  const RolloutStatus& tick(std::chrono::nanoseconds now);
  /// A host's decisions: pause and resume keep the step; abort and promote end it.
  void pause(std::string reason);
  void resume(std::chrono::nanoseconds now);
  void abort(std::string reason);
  void promote(std::string reason);
  [[nodiscard]] const RolloutStatus& status() const noexcept { return status_; }
  [[nodiscard]] const RolloutPlan& plan() const noexcept { return plan_; }

 private:
  struct StepData;
  void evaluate(std::chrono::nanoseconds now, bool step_end_due);
  void start_step(std::size_t step, std::chrono::nanoseconds now);
  RolloutPlan plan_;
  RolloutStatus status_;
  std::shared_ptr<StepData> data_;
  std::vector<std::uint32_t> failures_;  // consecutive failing evaluations per check
};

/// status as JSON: {"state", "step", "weight", "reason", "checks": [...], "arms": {...}}.
EMBER_API std::string rollout_status_to_json(const RolloutStatus& status);

// --- A/B experiments: significance and sample size ------------------------------------

/// Successes out of trials (a conversion rate, an accuracy).
struct ProportionSample {
  std::uint64_t successes = 0;
  std::uint64_t trials = 0;
};
/// A sample's mean, variance (ddof = 1) and size.
struct MeanSample {
  double mean = 0;
  double variance = 0;
  std::uint64_t n = 0;
};
EMBER_API MeanSample describe_sample(std::span<const double> values);

/// A treatment against a control, two-sided.
struct SignificanceResult {
  double effect = 0;      ///< treatment - control (rate or mean)
  double statistic = 0;   ///< z, or Welch's t
  double dof = 0;         ///< Welch's degrees of freedom (0 for z)
  double p_value = 1;
  double ci_low = 0, ci_high = 0;  ///< the effect's (1 - alpha) confidence interval
  bool significant = false;        ///< p_value < alpha
};

/// Two-proportion z-test with the pooled proportion (statsmodels' proportions_ztest);
/// the interval is Wald's, unpooled. InvalidArgument for an empty arm, more successes
/// than trials, alpha outside (0, 1).
EMBER_API Result<SignificanceResult> proportions_z_test(const ProportionSample& control, const ProportionSample& treatment,
                                                        double alpha = 0.05);
/// Welch's t-test (scipy.stats.ttest_ind(equal_var=False)); the interval uses Welch's t.
/// InvalidArgument for an arm of fewer than 2 values or no variance in both.
EMBER_API Result<SignificanceResult> welch_t_test(const MeanSample& control, const MeanSample& treatment,
                                                  double alpha = 0.05);
/// Per arm, to detect an absolute change `effect` of a rate from `baseline` with a
/// two-sided test at `alpha` and `power` (normal approximation: the pooled variance
/// under no change, each arm's under the change).
EMBER_API Result<std::uint64_t> sample_size_proportions(double baseline, double effect, double alpha = 0.05,
                                                        double power = 0.8);
/// Per arm, to detect a change `effect` of a mean whose standard deviation is `stddev`.
EMBER_API Result<std::uint64_t> sample_size_means(double stddev, double effect, double alpha = 0.05, double power = 0.8);
/// The standard normal quantile (scipy.stats.norm.ppf), |error| < 1e-12.
EMBER_API double normal_quantile(double p);
/// Student's t upper tail, P(T > t) with `dof` degrees of freedom (scipy.stats.t.sf).
EMBER_API double student_t_sf(double t, double dof);

}  // namespace ember
