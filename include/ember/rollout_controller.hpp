#pragma once

/// RolloutController: serves name@alias and, while the registry holds a running rollout
/// of it, splits the traffic between the control version and the candidate as the
/// plan's current step says, judges the candidate with the canary analysis, and acts:
/// the next step's weight, promotion (the alias moves), a pause, or an abort (the
/// candidate's weight goes to 0 at once). Every decision is written to the registry
/// (audited), so a restarted process resumes at the same step, and `ember rollout
/// pause|resume|abort|promote` from any process reaches it at its next sync().

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ember/deployment.hpp"
#include "ember/export.hpp"
#include "ember/registry.hpp"
#include "ember/rollout.hpp"
#include "ember/status.hpp"
#include "ember/traffic.hpp"

namespace ember {

/// What the analysis sees of one answered request: invalid (refused with validation
/// errors), failed (no stage answered), fallback (a stage was skipped), latency, and
/// the first element of the first output.
EMBER_API RolloutObservation rollout_observation(bool candidate, const Status& status, const Prediction& prediction);

/// What the controller tells its host when a rollout starts, moves or ends.
struct RolloutEvent {
  std::string subject;  ///< "churn@production"
  std::int64_t rollout = 0;
  std::int64_t candidate = 0;
  /// "started" (picked up), "step", "paused", "resumed", "promoted", "aborted", or
  /// "error" (a decision the registry refused; `reason` says why).
  std::string kind;
  RolloutStatus status;
};

struct RolloutControllerOptions {
  /// How both arms serve (executor, metrics, monitor, batching, ...). Its watch and
  /// on_event are not used: the controller follows the registry itself.
  DeploymentOptions deployment;
  /// How the candidate serves when it should differ (a fault drill, other batching);
  /// none: as `deployment` says.
  std::optional<DeploymentOptions> candidate_deployment;
  /// The clock the analysis and the registry's step times are read on (default: the
  /// system clock). Tests inject one; give the Registry the same.
  std::function<std::chrono::system_clock::time_point()> now;
  /// sync() this often on a thread of the controller's (0: the host calls sync()).
  std::chrono::milliseconds watch_interval{0};
  /// Who the audit log says decided.
  std::string actor = "rollout-controller";
  /// Told of every event, on the thread that caused it. Must not throw, and must not
  /// call the controller back.
  std::function<void(const RolloutEvent&)> on_event;
  /// When the plan has a disagreement check, the control answers copies of the
  /// candidate's requests off the request path; at most this many wait, more are
  /// dropped. 0: no copies (the check stays inconclusive).
  std::size_t compare_queue = 1024;
};

namespace detail {
struct RolloutControllerImpl;
}

/// Thread-safe: predict() from many threads at once, while sync() and the host's
/// commands run.
class EMBER_API RolloutController {
 public:
  /// Serves `ref` ("churn@production": an alias is required) from `registry` and resumes
  /// its rollout when one is running or paused. Errors: InvalidArgument for a ref
  /// without an alias; the alias's version cannot be loaded. A rollout whose versions
  /// cannot be loaded (a damaged file) leaves the alias serving alone and says why in an
  /// "error" event (each sync() tries again).
  static Result<std::unique_ptr<RolloutController>> create(std::shared_ptr<Registry> registry, std::string ref,
                                                           const RolloutControllerOptions& options);
  ~RolloutController();
  RolloutController(const RolloutController&) = delete;
  RolloutController& operator=(const RolloutController&) = delete;

  /// Answers with the arm the caller's `key` falls in (sticky; see rollout_bucket) and
  /// tells the analysis. `*arm` (when given) is "control" or "candidate".
  Status predict(std::string_view json, std::string_view key, Prediction& prediction,
                 std::string* arm = nullptr) const;
  /// Ground truth for an answer predict() gave: counted for the candidate's outcome
  /// check when the candidate gave it (a control's answer is ignored).
  void record_outcome(const Prediction& prediction, double outcome) const;

  /// Reads the registry: a new rollout of the alias is picked up, a host's command from
  /// another process (pause, resume, abort, promote) is applied, a time-held step is
  /// evaluated, and the analysis is saved. The watch calls it every watch_interval.
  Status sync();
  /// The host's commands: written to the registry first (audited), then applied.
  Status pause(std::string_view actor, std::string_view reason);
  Status resume(std::string_view actor, std::string_view reason);
  Status abort(std::string_view actor, std::string_view reason);
  Status promote(std::string_view actor, std::string_view reason);

  /// The analysis of the current (or last) rollout; a default status when there was none.
  [[nodiscard]] RolloutStatus status() const;
  /// The rollout as last read from or written to the registry (id 0: none).
  [[nodiscard]] RolloutRecord record() const;
  [[nodiscard]] bool has_rollout() const;
  /// The candidate's weight now, percent.
  [[nodiscard]] double candidate_weight() const;
  /// Waits until the writes decisions caused and the control's copies are done (false
  /// after `timeout`).
  bool wait_idle(std::chrono::milliseconds timeout) const;

 private:
  explicit RolloutController(std::shared_ptr<detail::RolloutControllerImpl> impl);
  std::shared_ptr<detail::RolloutControllerImpl> impl_;
};

}  // namespace ember
