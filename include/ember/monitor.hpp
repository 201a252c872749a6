#pragma once

/// Monitor: an Observer that watches a model in production. On the request thread it
/// only appends the request's features, outputs, latency and stage to its thread's
/// buffer; when a window closes (by rows, or by time), the window is compared with the
/// reference statistics (drift.hpp) on the host's executor, and alerts go to the host,
/// to the registry's audit log and, when they persist, to a retraining hook. It also
/// joins ground truth to predictions (record_outcome), keeps a sampled prediction log,
/// and writes a self-contained HTML report.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/drift.hpp"
#include "ember/export.hpp"
#include "ember/model.hpp"
#include "ember/registry.hpp"
#include "ember/resilience.hpp"
#include "ember/status.hpp"
#include "ember/threads.hpp"

namespace ember {

/// Something a monitor found wrong.
struct Alert {
  /// "feature_drift" (subject: the feature), "dataset_drift", "prediction_drift"
  /// (subject: the output), "confidence", "accuracy", "auc", "mae", "fallback_rate",
  /// "latency" (subject: the version for outcome alerts).
  std::string kind;
  std::string model;
  std::string subject;
  double value = 0;
  double threshold = 0;
  /// Monitor clock time the condition was first seen in this run of it.
  std::chrono::nanoseconds since{0};
  /// True on the call that says it has lasted MonitorOptions::retrain_after.
  bool persistent = false;
};

/// Which conditions raise alerts; an unset threshold raises none.
struct AlertRules {
  /// A feature_drift alert per drifted feature, dataset_drift when the share passes
  /// DriftOptions::drift_share, prediction_drift per drifted output.
  bool drift = true;
  /// Mean confidence of a window below this (confidence of a row: max(p, 1 - p) for a
  /// single probability, else the largest output element).
  std::optional<double> min_confidence;
  /// Over the outcomes joined so far for a version (at least min_outcomes of them).
  std::optional<double> min_accuracy;
  std::optional<double> min_auc;
  std::optional<double> max_mae;
  std::size_t min_outcomes = 100;
  /// Share of a window's answers not given by the first stage of the chain.
  std::optional<double> max_fallback_rate;
  /// 95th percentile of a window's latency.
  std::optional<std::chrono::nanoseconds> max_latency_p95;
};

/// Joining ground truth to predictions.
struct OutcomeOptions {
  bool enabled = false;
  /// A prediction waits this long for its outcome, then is dropped.
  std::chrono::seconds ttl{3600};
  /// Predictions waiting at most (oldest dropped first).
  std::size_t max_pending = 100000;
  /// The output compared with the outcome (element 0).
  std::string output = "output";
  /// Outcomes of 0 and 1: the prediction is class 1 at or above this.
  double positive_threshold = 0.5;
  /// Joined outcomes kept per version for accuracy, AUC and MAE.
  std::size_t window = 10000;
};

/// The prediction log: JSON lines, one per logged request.
struct PredictionLogOptions {
  std::filesystem::path path;  ///< empty: no log
  /// Share of ordinary requests logged (by a hash of the request id: deterministic).
  /// Invalid and flagged requests are always logged.
  double sample_rate = 0.01;
  /// The file is rotated past this size: path.1 (newest) ... path.max_files, oldest dropped.
  std::uint64_t max_file_bytes = std::uint64_t{64} << 20;
  std::size_t max_files = 4;
};

struct MonitorOptions {
  /// The model's name in alerts, the audit log and the report.
  std::string model;
  /// Drift needs reference statistics (a bundle's reference.json: load_reference()).
  std::optional<ReferenceStats> reference;
  DriftOptions drift;
  /// A window closes after this many rows (at the next 32-row step of a thread)...
  std::size_t window_rows = 1000;
  /// ...or after this long, checked on requests and by poll() (0: rows only).
  std::chrono::milliseconds window_time{0};
  /// Windows kept for windows() and the report.
  std::size_t keep_windows = 100;
  AlertRules alerts;
  /// Told of each alert when it starts, and again (persistent) when it has lasted
  /// retrain_after; on the thread that evaluates the window. Must not throw.
  std::function<void(const Alert&)> on_alert;
  /// Alerts are written to this registry's audit log ("monitor_alert", "monitor_retrain").
  std::shared_ptr<Registry> registry;
  /// Retraining hook: when an alert has lasted this long (0: never), call on_retrain
  /// and/or run retrain_command (with /bin/sh -c; EMBER_MODEL, EMBER_ALERT_KIND,
  /// EMBER_ALERT_SUBJECT and EMBER_ALERT_VALUE in its environment), once per episode.
  std::chrono::seconds retrain_after{0};
  std::function<void(const Alert&)> on_retrain;
  std::string retrain_command;
  OutcomeOptions outcomes;
  PredictionLogOptions log;
  /// Where windows are evaluated. Null: on the request thread that closes the window.
  std::shared_ptr<TaskExecutor> executor;
  std::shared_ptr<const Clock> clock;
};

/// What one closed window held and what it showed. Aggregates only.
struct WindowReport {
  std::uint64_t index = 0;
  std::uint64_t rows = 0;
  std::chrono::nanoseconds start{0}, end{0};  ///< monitor clock
  std::optional<DriftResult> drift;           ///< with reference statistics
  double mean_confidence = 0;                 ///< NaN without outputs
  double fallback_rate = 0;
  std::chrono::nanoseconds latency_p50{0}, latency_p95{0};
  std::map<std::string, std::uint64_t> served_by;
  std::map<std::string, std::uint64_t> versions;  ///< rows per model version
  std::vector<Alert> alerts;                      ///< started in this window
};

/// Outcomes joined for one version.
struct OutcomeStats {
  std::string version;
  std::uint64_t joined = 0;   ///< outcomes recorded
  std::size_t window = 0;     ///< of which kept for the figures below
  std::optional<double> accuracy, auc;  ///< when every outcome kept is 0 or 1
  double mae = 0;
};

/// Accuracy and AUC (when every outcome is 0 or 1; AUC needs both) and MAE of
/// (prediction, outcome) pairs: what Monitor::outcomes() reports.
EMBER_API OutcomeStats outcome_stats(std::string version, std::span<const std::pair<double, double>> pairs,
                                     double positive_threshold = 0.5);

struct MonitorCounters {
  std::uint64_t requests = 0;
  std::uint64_t windows = 0;
  std::uint64_t outcomes_joined = 0;
  std::uint64_t outcomes_unknown = 0;  ///< record_outcome for an unknown or expired id
  std::uint64_t predictions_expired = 0;
  std::uint64_t logged = 0;
  std::uint64_t log_errors = 0;
};

namespace detail {
struct MonitorImpl;
}

/// Watches one model's requests. Add it to ModelOptions::observers or
/// DeploymentOptions::monitor. All methods are safe from many threads at once.
class EMBER_API Monitor final : public Observer {
 public:
  /// InvalidArgument when the reference lacks every feature of `schema`, for a window
  /// of 0 rows and no time, or a sample rate outside [0, 1]; the log's error when its
  /// file cannot be opened.
  static Result<std::shared_ptr<Monitor>> create(const Schema& schema, MonitorOptions options);
  /// Closes the window (waiting for its evaluation) and flushes the log.
  ~Monitor() override;
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  void on_request(const RequestEvent& event) override;

  /// Joins an outcome (a label 0/1 or a value) to the prediction of `request_id`
  /// (Prediction::request_id). NotFound when the id is unknown, expired or already
  /// joined; FailedPrecondition when outcomes are off.
  Status record_outcome(std::uint64_t request_id, double outcome);

  /// Closes the window now and evaluates it on the caller's thread (also when it has
  /// fewer rows than window_rows), waits for windows still being evaluated on the
  /// executor, and flushes the prediction log. OK with nothing to do. Not from a task of
  /// the monitor's executor.
  Status flush();
  /// Closes the window when window_time has passed: for hosts whose traffic may stop.
  void poll();

  [[nodiscard]] std::vector<WindowReport> windows() const;
  [[nodiscard]] std::vector<OutcomeStats> outcomes() const;
  /// Alerts active now.
  [[nodiscard]] std::vector<Alert> active_alerts() const;
  [[nodiscard]] MonitorCounters counters() const;

  /// The report of what this monitor has seen, as one self-contained HTML page.
  [[nodiscard]] std::string report_html(std::string_view title = {}) const;

 private:
  explicit Monitor(std::unique_ptr<detail::MonitorImpl> impl);
  std::unique_ptr<detail::MonitorImpl> impl_;
};

/// What a report shows; Monitor::report_html and `ember report` fill it.
struct ReportData {
  std::string title;
  std::string model;
  std::optional<DriftResult> drift;  ///< histograms included
  std::vector<WindowReport> windows;
  /// Latency histogram per version: counts per latency_buckets() bound (and +Inf).
  std::map<std::string, std::vector<std::uint64_t>> latency;
  std::vector<OutcomeStats> outcomes;
};

/// Renders a report: one HTML file, inline SVG, no script, no network, no raw rows.
EMBER_API std::string render_report(const ReportData& data);

}  // namespace ember
