#pragma once

/// Threads belong to the host: ember's background work (budgeted model calls, calls
/// that outlived their deadline, parts of a large batch) goes to a TaskExecutor that the
/// host supplies, such as a game's job system, or to ember's ThreadPool, which the host
/// creates, owns and may share between models.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

/// Where ember posts background work. Implementations must be safe to call from many
/// threads at once.
class EMBER_API TaskExecutor {
 public:
  virtual ~TaskExecutor();
  /// Runs `task` once, soon, on a thread other than the caller's. False when it will not
  /// (full, shutting down): ember then does the work on the caller's thread or answers
  /// kResourceExhausted. An exception thrown here counts as false. A budgeted model call
  /// waits for its task to start, so a host whose tasks may wait long should refuse.
  virtual bool post(std::function<void()> task) = 0;
  /// How many tasks may run at once; ember splits a batch into at most this many parts
  /// (the caller's thread doing one of them).
  [[nodiscard]] virtual std::size_t concurrency() const noexcept { return 1; }
};

/// How a ThreadPool runs. Defaults are written here.
struct ThreadPoolOptions {
  /// Threads started by create(); 0: none until the first task.
  std::size_t threads = 2;
  /// More are started when every thread is busy, up to this many (tasks beyond are
  /// refused: post() returns false).
  std::size_t max_threads = 16;
  /// How long an idle thread polls for work before it sleeps: a hand-off through a
  /// sleeping thread costs tens of microseconds of wake-up.
  std::chrono::microseconds spin{30};
};

/// ember's own TaskExecutor: threads that poll briefly, then sleep, until destroyed.
/// The destructor waits for running tasks (queued ones still run first).
class EMBER_API ThreadPool final : public TaskExecutor {
 public:
  /// InvalidArgument for max_threads of 0 or below `threads`; ResourceExhausted when
  /// the system cannot start the threads asked for.
  static Result<std::shared_ptr<ThreadPool>> create(const ThreadPoolOptions& options = {});
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// False when every thread is busy and no more may (or can) be started.
  bool post(std::function<void()> task) override;
  [[nodiscard]] std::size_t concurrency() const noexcept override;
  /// Threads started so far.
  [[nodiscard]] std::size_t threads() const noexcept;

 private:
  struct State;
  explicit ThreadPool(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/// Sets LibTorch's process-wide intra-op thread count (at::set_num_threads). Loading a
/// model never changes it; call this once at start-up. InvalidArgument for n < 1;
/// Unimplemented in a build without LibTorch.
EMBER_API Status set_torch_threads(int n);

}  // namespace ember
