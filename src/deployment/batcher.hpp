#pragma once

// The dynamic batcher behind a Deployment: one thread that gathers prepared rows into
// forward passes, by priority and deadline, and hands each request its share.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/striped.hpp"
#include "ember/deployment.hpp"

namespace ember::detail {

using SteadyTime = std::chrono::steady_clock::time_point;

struct BatchItem {
  std::shared_ptr<const Model> model;  // the version that prepared the row runs it
  std::vector<double> row;
  std::function<void(Answer&&)> complete;
  SteadyTime arrival;
  SteadyTime deadline = SteadyTime::max();
  std::uint8_t priority = 1;
  std::uint64_t seq = 0;
};

struct ServingStats {
  StripedCounter requests;  // every request bumps it: per-thread stripes, no shared cache line
  std::atomic<std::uint64_t> batches{0}, batched_rows{0}, refused_queue_full{0}, refused_deadline{0},
      timed_out{0}, queue_time_ns{0}, max_queue_time_ns{0};
  ServingCounters snapshot() const;
};

class Batcher {
 public:
  /// ResourceExhausted when its thread cannot start.
  static Result<std::unique_ptr<Batcher>> start(const BatchingOptions& options, ServingStats& stats,
                                                std::shared_ptr<Metrics> metrics, std::string name);
  /// Answers what is queued, then stops the thread.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Queues a prepared request. ResourceExhausted when the queue is full,
  /// DeadlineExceeded when its deadline cannot be met: the item is not taken then.
  /// With `caller_runs` (a caller that waits for its answer anyway), a request that
  /// completes a full batch runs that batch on the caller's thread, saving a hand-off
  /// to the batcher thread.
  Status enqueue(BatchItem& item, bool caller_runs = false);

 private:
  Batcher(const BatchingOptions& options, ServingStats& stats, std::shared_ptr<Metrics> metrics, std::string name)
      : options_(options), stats_(stats), metrics_(std::move(metrics)), name_(std::move(name)) {}
  void loop();
  // Moves the next batch (highest priority first, one model version, at most `take`
  // rows) out of the queue. Hold mu_.
  void take_batch(std::vector<BatchItem>& batch, std::size_t take);
  // Runs items (all of one model) as one forward pass and answers each.
  void run(std::vector<BatchItem>& items, bool fallback);

  BatchingOptions options_;
  ServingStats& stats_;
  std::shared_ptr<Metrics> metrics_;  // may be null
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<BatchItem> queue_;
  bool stop_ = false;
  bool waiting_ = false;     // the batcher thread waits on cv_ (guarded by mu_)
  bool deep_sleep_ = false;  // ... with no timeout: a first request must wake it
  SteadyTime last_arrival_{};
  std::atomic<std::int64_t> batch_ns_{0};  // moving average of one forward pass
  std::thread thread_;
};

}  // namespace ember::detail
