#pragma once

/// Metrics a host exposes to Prometheus: per model and version, requests and what became
/// of them, which stage served, latency histograms; per stage, calls, failures,
/// fallbacks, timeouts and the breaker's state; per deployment, queue time and batch
/// size. Recording is lock-free (per-thread stripes merged when the text is rendered).
/// ember opens no socket: the host serves text() on its own endpoint.

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ember/export.hpp"
#include "ember/model.hpp"

namespace ember {

enum class MetricsFormat : std::uint8_t {
  kPrometheus,   ///< text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4)
  kOpenMetrics,  ///< OpenMetrics 1.0 text (application/openmetrics-text; version=1.0.0), ends with "# EOF"
};

/// Upper bounds, in seconds, of the latency and queue-time histograms (1 µs to 10 s).
EMBER_API std::span<const double> latency_buckets() noexcept;

namespace detail {
struct MetricsImpl;
}

/// One set of metrics; share it between the models and deployments of a process. All
/// methods are safe from many threads at once.
class EMBER_API Metrics {
 public:
  static std::shared_ptr<Metrics> create();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// An observer recording the requests of one model version under the labels
  /// model=`model`, version=`version`; add it to ModelOptions::observers (a Deployment
  /// with DeploymentOptions::metrics does this for each version). Observers for the
  /// same labels share their series.
  [[nodiscard]] std::shared_ptr<Observer> observer(std::string_view model, std::string_view version);
  /// Stage counters and breaker states are read from `model` when text() renders
  /// (held weakly: a model that is gone drops out).
  void watch(const std::shared_ptr<const Model>& model);
  /// A forward pass of deployment `model`: one row per request, and the time each
  /// request waited in the queue for it.
  void record_batch(std::string_view model, std::span<const std::chrono::nanoseconds> queue_times);

  /// Everything, in the format asked for: HELP and TYPE once per family, labels
  /// escaped, histogram buckets ascending with +Inf equal to _count.
  [[nodiscard]] std::string text(MetricsFormat format = MetricsFormat::kPrometheus) const;

 private:
  Metrics();
  std::unique_ptr<detail::MetricsImpl> impl_;
};

}  // namespace ember
