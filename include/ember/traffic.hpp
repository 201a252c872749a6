#pragma once

/// TrafficSplit: several deployments (arms) behind one predict(), each caller sticky to
/// an arm by a hash of its key (rollout_bucket), weights changed atomically while
/// requests keep coming; and a shadow deployment that receives a copy of the traffic
/// off the request path, whose answers are never returned but compared with the
/// primary's.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/deployment.hpp"
#include "ember/export.hpp"
#include "ember/rollout.hpp"
#include "ember/status.hpp"
#include "ember/threads.hpp"

namespace ember {

/// One arm: a named deployment and its weight in percent.
struct SplitArm {
  std::string name;  ///< "control", "candidate", "b", ... (unique, non-empty)
  std::shared_ptr<const Deployment> deployment;
  double weight = 0;
};

/// One copy the shadow answered: the first element of the primary's first output and
/// the shadow's answer for it (NaN where it had none).
struct ShadowComparison {
  std::size_t arm = 0;  ///< the arm that answered the request
  double primary = 0;
  double shadow = 0;
};

struct ShadowOptions {
  /// Receives a copy of every answered request (null: no shadow).
  std::shared_ptr<const Deployment> deployment;
  /// Only requests these arms answered are copied (empty: every arm's).
  std::vector<std::string> copy_arms;
  /// Called with the copies answered in one drain (each batch once), on the
  /// executor's thread, after they were counted. Must not throw.
  std::function<void(std::span<const ShadowComparison>)> on_compare;
  /// Copies waiting at most; more are dropped (counted), never waited for.
  std::size_t max_queue = 1024;
  /// Outputs further apart than this disagree.
  double tolerance = 0.05;
};

/// Records whose value at `pointer` equals `equals` go to `arm`, whatever the weights.
struct Segment {
  std::string pointer;  ///< JSON Pointer into the record: "/region", "/address/country"
  std::string equals;   ///< a string's value, or a number's or boolean's JSON text ("5", "true")
  std::string arm;      ///< the arm's name
};

struct TrafficSplitOptions {
  /// Checked in order before the weights (a forced arm comes first); the first that
  /// matches routes the record. Each costs a parse of the record.
  std::vector<Segment> segments;
  ShadowOptions shadow;
  /// Where the shadow answers copies (one task drains the queue at a time; when the
  /// executor refuses it, the copies wait for the next request to post again, and a
  /// full queue drops new ones). Null: a small ThreadPool the split owns.
  std::shared_ptr<TaskExecutor> executor;
};

/// What the shadow did.
struct ShadowStats {
  std::uint64_t copied = 0;     ///< copies queued
  std::uint64_t dropped = 0;    ///< copies dropped because the queue was full
  std::uint64_t answered = 0;   ///< copies the shadow answered
  std::uint64_t failed = 0;     ///< copies the shadow could not answer (or refused)
  std::uint64_t compared = 0;   ///< answers compared with the primary's
  std::uint64_t disagreed = 0;  ///< of which some output element differed by more than the tolerance
  [[nodiscard]] double disagreement_rate() const noexcept {
    return compared ? static_cast<double>(disagreed) / static_cast<double>(compared) : 0.0;
  }
  /// Mean absolute difference per output (over its elements and the compared answers).
  std::map<std::string, double> mean_abs_diff;
};

namespace detail {
struct TrafficSplitImpl;
}

/// Thread-safe: predict() from many threads at once, also while weights change.
class EMBER_API TrafficSplit {
 public:
  /// InvalidArgument for no arms, an arm without a deployment, an empty or repeated
  /// name, weights WeightedRouter refuses, or a segment with a pointer that does not
  /// start with '/' or an arm that does not exist.
  static Result<std::unique_ptr<TrafficSplit>> create(std::vector<SplitArm> arms, const TrafficSplitOptions& options);
  /// Waits for the shadow's queued copies to be answered.
  ~TrafficSplit();
  TrafficSplit(const TrafficSplit&) = delete;
  TrafficSplit& operator=(const TrafficSplit&) = delete;

  /// Answers with the arm `force_arm` names (a feature flag), else the first segment's
  /// that matches, else the one `key` falls in, through its Deployment::predict; `*arm`
  /// (when given) says which.
  /// An answered request is copied to the shadow. NotFound for an unknown `force_arm`.
  Status predict(std::string_view json, std::string_view key, Prediction& prediction, std::size_t* arm = nullptr,
                 std::string_view force_arm = {}) const;
  /// The arm a key goes to now.
  [[nodiscard]] std::size_t arm_of(std::string_view key) const;
  /// New weights, one per arm, validated as WeightedRouter does; requests in flight
  /// finish on the arm they started on. Blue-green is {0, 100} and back.
  Status set_weights(std::span<const double> weights);
  [[nodiscard]] std::vector<double> weights() const;
  [[nodiscard]] const std::vector<SplitArm>& arms() const noexcept;
  [[nodiscard]] ShadowStats shadow_stats() const;
  /// Waits until the shadow has no copy queued or in hand (false after `timeout`); copies
  /// left waiting because the executor refused their drain are answered on this thread.
  bool wait_for_shadow(std::chrono::milliseconds timeout) const;

 private:
  explicit TrafficSplit(std::unique_ptr<detail::TrafficSplitImpl> impl);
  std::unique_ptr<detail::TrafficSplitImpl> impl_;
};

}  // namespace ember
