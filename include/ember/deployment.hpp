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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/model.hpp"
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

struct DeploymentOptions {
  /// How each version is built (its name and version are filled in per version).
  ModelOptions model;
  /// Background work: loads for notify() and the alias watch, and destroying replaced
  /// versions. Null: a one-thread ThreadPool the Deployment owns.
  std::shared_ptr<TaskExecutor> executor;
  /// Poll the alias this often and reload when it moved (0: only reload() / notify()).
  /// The watch is the one thread a Deployment starts itself.
  std::chrono::milliseconds watch_interval{0};
  /// JSON records every new version answers before it serves; a record the version
  /// refuses as invalid is fine, one it cannot answer fails the version.
  std::vector<std::string> warmup_records;
  /// Refuse a version whose files, times this factor, exceed the memory available
  /// alongside the version serving now (MemAvailable on Linux). 0: no check.
  double memory_factor = 2.0;
  /// Told of every state change, on the thread that made it (a reload's, or the
  /// executor's for kUnloaded). Must not throw, and must not call the Deployment back.
  std::function<void(const DeploymentEvent&)> on_event;
  /// Who the registry's audit log says acted.
  std::string actor = "deployment";
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

  /// Model::predict on the version serving now; the Prediction says which version.
  Status predict(std::string_view json, Prediction& prediction, const PredictOptions& options = {}) const;

  /// Resolves the source again and, when it names another version (a directory: always),
  /// loads, checks, warms and swaps it in. Returns when done: OK when the new version
  /// serves or nothing changed; otherwise why the new version failed (the old one still
  /// serves). Reloads run one at a time.
  Status reload();
  /// Asks for a reload on the executor and returns at once.
  void notify();

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
