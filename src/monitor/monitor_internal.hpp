#pragma once

// The prediction log behind a Monitor: sampled JSON lines, rotated by size.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "ember/monitor.hpp"

namespace ember::detail {

class PredictionLog {
 public:
  /// Opens (appends to) the log file; its error when it cannot be.
  static Result<std::unique_ptr<PredictionLog>> open(const PredictionLogOptions& options, const Schema& schema,
                                                     std::string model);
  ~PredictionLog();
  /// Logs the request when it is invalid, flagged, or sampled; buffered.
  void consider(const RequestEvent& event);
  /// Writes what is buffered (rotating first when the file would pass its size).
  Status flush();
  [[nodiscard]] std::uint64_t logged() const noexcept { return logged_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }

 private:
  PredictionLog(const PredictionLogOptions& options, const Schema& schema, std::string model);
  Status write_locked();
  Status rotate_locked();

  PredictionLogOptions options_;
  Schema schema_;
  std::string model_;
  std::uint64_t sample_below_ = 0;  // a request is sampled when its hash is below this
  std::mutex mu_;
  std::FILE* file_ = nullptr;
  std::uint64_t file_bytes_ = 0;
  std::string buffer_;
  std::atomic<std::uint64_t> logged_{0}, errors_{0};
};

}  // namespace ember::detail
