#pragma once

// Per-thread stripes: counters that many threads bump on every request without sharing
// a cache line, and the stripe a thread uses.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>

namespace ember::detail {

inline constexpr std::size_t kStripes = 8;

/// This thread's stripe, in [0, kStripes): a mix of its id, computed once per thread.
inline std::size_t thread_stripe() noexcept {
  thread_local const std::size_t stripe = [] {
    const std::uint64_t h = std::hash<std::thread::id>{}(std::this_thread::get_id());
    return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ULL) >> 61) % kStripes;  // ids are aligned
  }();
  return stripe;
}

/// A counter bumped on the request path: each thread adds to its own cache line, readers
/// sum the stripes (exact once the adds are done; a read during them may miss some).
class StripedCounter {
 public:
  void add(std::uint64_t n = 1) noexcept { cells_[thread_stripe()].value.fetch_add(n, std::memory_order_relaxed); }
  /// Adds `n` and returns a number no other call returns (from 1; increasing on each
  /// thread, not dense): a request id with no cache line shared between threads.
  std::uint64_t add_unique(std::uint64_t n) noexcept {
    const std::size_t s = thread_stripe();
    return cells_[s].value.fetch_add(n, std::memory_order_relaxed) * kStripes + s + 1;
  }
  [[nodiscard]] std::uint64_t load() const noexcept {
    std::uint64_t sum = 0;
    for (const auto& c : cells_) sum += c.value.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Cell {
    std::atomic<std::uint64_t> value{0};
  };
  std::array<Cell, kStripes> cells_{};
};

}  // namespace ember::detail
