#pragma once

/// Serving a model *name*: a Deployment answers requests with the version a registry
/// alias (or a model directory) holds now, and swaps in a new version while requests
/// keep coming. The new version is resolved, verified, loaded, checked against the old
/// one's request schema and warmed up off the request path, then swapped atomically.
/// Requests in flight finish on the version they started on; the old version is
/// destroyed when its last request ends, on the deployment's executor, never on a
/// request thread. A version that fails to load, to warm up or to match leaves the old
/// one serving.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/metrics.hpp"
#include "ember/model.hpp"
#include "ember/monitor.hpp"
#include "ember/registry.hpp"
#include "ember/status.hpp"
#include "ember/threads.hpp"

namespace ember {

/// A version's life in a Deployment (Triton's per-version ready state, with reasons).
enum class VersionState : std::uint8_t {
  kLoading,   ///< being resolved, verified, loaded and warmed up
  kReady,     ///< serving
  kFailed,    ///< did not load, warm up or match; `reason` says why; the old one serves
  kDraining,  ///< replaced; requests that started on it are finishing
  kUnloaded,  ///< its last request ended and it was destroyed
};
/// "loading", "ready", "failed", "draining", "unloaded".
EMBER_API std::string_view version_state_name(VersionState state) noexcept;

struct VersionStatus {
  /// The registry version number ("3"), or for a directory the load count ("1", "2", ...).
  std::string version;
  VersionState state = VersionState::kLoading;
  Status reason;  ///< for kFailed
  std::chrono::system_clock::time_point since;
};

/// What a Deployment tells its host (and, for a registry, the audit log: events
/// "deploy_loading", "deploy_ready", "deploy_failed", "deploy_unloaded").
struct DeploymentEvent {
  std::string name;
  VersionStatus status;
};

/// Per request, for the deadline-aware forms of predict() and for submit().
struct RequestOptions {
  /// Answer within this long of the request's arrival (0: BatchingOptions::default_deadline,
  /// and none when that is 0 too). With batching, a request whose deadline cannot be met
  /// is refused at once (DeadlineExceeded), not after waiting.
  std::chrono::microseconds deadline{0};
  /// 0 is served first. Levels are strict; within one, the earliest deadline goes first
  /// (then the earliest arrival).
  std::uint8_t priority = 1;
  /// The host's id for the request, carried into Prediction::request_id (0: ember's own).
  std::uint64_t request_id = 0;
};
inline constexpr std::uint8_t kPriorityLevels = 3;

/// What happens to a batched request whose deadline passes while it waits.
enum class TimeoutAction : std::uint8_t {
  kReject,    ///< answered DeadlineExceeded
  kFallback,  ///< answered at once by the chain's stages after the model (linear, cache,
              ///< default): the model stage is given no time
};

/// Dynamic batching (Triton's dynamic batcher, in rows): concurrent requests are
/// validated and preprocessed on their own threads, then gathered into one execute().
struct BatchingOptions {
  bool enabled = false;
  /// Rows per forward pass at most.
  std::size_t max_batch_rows = 32;
  /// How long the first request of a batch may wait for others.
  std::chrono::microseconds max_queue_delay{500};
  /// Batch sizes to dispatch as soon as they can be formed (e.g. {8, 16, 32}); a
  /// batch of max_batch_rows always is.
  std::vector<std::size_t> preferred_batch_rows;
  /// Rows waiting at most; more are refused at once with ResourceExhausted.
  std::size_t max_queue_rows = 4096;
  std::chrono::microseconds default_deadline{0};
  TimeoutAction timeout_action = TimeoutAction::kReject;
};

/// An answer delivered by submit().
struct Answer {
  Status status;
  Prediction prediction;
  std::chrono::nanoseconds queue_time{0};  ///< from arrival to the forward pass
  std::size_t batch_rows = 0;              ///< rows in the forward pass that answered it
};

/// A request in flight, for loops that must never block: poll it each frame.
class EMBER_API PendingAnswer {
 public:
  PendingAnswer() = default;
  /// True once the answer is there (and until it is taken).
  [[nodiscard]] bool ready() const noexcept;
  /// Moves the answer into `out` and returns true when it is there; false otherwise
  /// (also after it was taken). Never blocks.
  bool try_get(Answer& out);

  struct State;
  explicit PendingAnswer(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

/// What the serving path counts (monitoring reads it).
struct ServingCounters {
  std::uint64_t requests = 0;          ///< predict() and submit() calls
  std::uint64_t batches = 0;           ///< forward passes the batcher made
  std::uint64_t batched_rows = 0;      ///< rows in them
  std::uint64_t refused_queue_full = 0;
  std::uint64_t refused_deadline = 0;  ///< refused at admission: the deadline could not be met
  std::uint64_t timed_out = 0;         ///< deadline passed while queued
  std::uint64_t queue_time_ns = 0;     ///< summed over batched requests
  std::uint64_t max_queue_time_ns = 0;
};

struct DeploymentOptions {
  /// How each version is built (its name and version are filled in per version).
  ModelOptions model;
  /// Background work: loads for notify(), destroying replaced versions, and unbatched
  /// submit() requests. Null: a ThreadPool the Deployment owns (1 thread, up to 8 while busy).
  std::shared_ptr<TaskExecutor> executor;
  /// Poll the alias this often and reload when it moved (0: only reload() / notify()).
  /// The watch is the one thread a Deployment starts itself.
  std::chrono::milliseconds watch_interval{0};
  /// JSON records every new version answers before it serves, one by one and, with
  /// batching, also as batches of each preferred size and of max_batch_rows (the
  /// records repeated); a record the version refuses as invalid is fine, one it cannot
  /// answer fails the version.
  std::vector<std::string> warmup_records;
  /// Refuse a version whose files, times this factor, exceed the memory available
  /// alongside the version serving now (MemAvailable on Linux). 0: no check.
  double memory_factor = 2.0;
  /// Told of every state change, on the thread that made it (a reload's, or the
  /// executor's for kUnloaded). Must not throw, and must not call the Deployment back.
  std::function<void(const DeploymentEvent&)> on_event;
  /// Who the registry's audit log says acted.
  std::string actor = "deployment";
  /// Off by default. With it, the Deployment starts one batcher thread that gathers
  /// requests and runs the forward passes; callbacks run on it.
  BatchingOptions batching;
  /// Where each version's requests, stages and breakers, and the batcher's queue time
  /// and batch sizes, are recorded (labels model, version). Null: not recorded.
  std::shared_ptr<Metrics> metrics;
  /// Watches every version's requests: drift windows, outcomes, prediction log, alerts
  /// (see monitor.hpp). Null: none. With batching, the batched forward passes tell the
  /// monitor of their outputs, latency and stage, not of the features.
  std::shared_ptr<Monitor> monitor;
};

/// One served name. predict() is safe from many threads at once, also during reloads.
class EMBER_API Deployment {
 public:
  /// Serves `ref` ("churn@production", "churn@latest", "churn/3") from `registry`,
  /// which the deployment shares. Loads the version now: its error when it cannot.
  static Result<std::unique_ptr<Deployment>> create(std::shared_ptr<Registry> registry, std::string ref,
                                                    const DeploymentOptions& options);
  static Result<std::unique_ptr<Deployment>> create(std::shared_ptr<Registry> registry, std::string ref);
  /// Serves a model or bundle directory; reload() loads it again.
  static Result<std::unique_ptr<Deployment>> create(const std::filesystem::path& dir,
                                                    const DeploymentOptions& options);
  static Result<std::unique_ptr<Deployment>> create(const std::filesystem::path& dir);
  /// Stops the watch, waits for a reload in progress, and releases the serving version.
  ~Deployment();
  Deployment(const Deployment&) = delete;
  Deployment& operator=(const Deployment&) = delete;

  /// Model::predict on the version serving now, on the caller's thread (batching or
  /// not); the Prediction says which version.
  Status predict(std::string_view json, Prediction& prediction, const PredictOptions& options = {}) const;
  /// The same through the batcher when batching is on (waiting for the answer), with a
  /// deadline and a priority.
  Status predict(std::string_view json, Prediction& prediction, const RequestOptions& options) const;

  /// Asynchronous forms: the answer goes to `callback` (on the batcher thread, or on the
  /// executor without batching; on the caller's thread when refused at once), to a
  /// future, or into a PendingAnswer to poll. Never block the caller beyond validating
  /// and preprocessing the record. `callback` must not throw.
  void submit(std::string json, std::function<void(Answer&&)> callback, const RequestOptions& options = {}) const;
  [[nodiscard]] std::future<Answer> submit(std::string json, const RequestOptions& options = {}) const;
  [[nodiscard]] PendingAnswer submit_pending(std::string json, const RequestOptions& options = {}) const;
  [[nodiscard]] ServingCounters counters() const;

  /// Resolves the source again and, when it names another version (a directory: always),
  /// loads, checks, warms and swaps it in. Returns when done: OK when the new version
  /// serves or nothing changed; otherwise why the new version failed (the old one still
  /// serves). Reloads run one at a time.
  Status reload();
  /// Asks for a reload on the executor and returns at once.
  void notify();
  /// Points the deployment at another reference of the same name ("churn/3",
  /// "churn@canary") and reloads: what serving a chosen version, or blue-green, needs.
  /// InvalidArgument for a malformed reference or another name; FailedPrecondition for
  /// a directory deployment. On failure the old source and version stay.
  Status switch_to(std::string ref);

  /// The version serving now (never null). Holding it keeps that version alive.
  [[nodiscard]] std::shared_ptr<const Model> current() const;
  /// Every version this deployment has seen, oldest first.
  [[nodiscard]] std::vector<VersionStatus> versions() const;
  /// Successful swaps since creation.
  [[nodiscard]] std::uint64_t swaps() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;

  struct Impl;

 private:
  explicit Deployment(std::shared_ptr<Impl> impl);
  static Result<std::unique_ptr<Deployment>> start(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace ember
