#pragma once

// Per-thread stripes: counters that many threads bump on every request without sharing
// a cache line, and the stripe a thread uses.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ember::detail {

inline constexpr std::size_t kStripes = 8;

/// This thread's stripe, in [0, kStripes): dealt round-robin to threads as they first
/// ask, so that up to kStripes threads never share one (a hash of thread ids collides).
/// The dealer is one constant-initialised counter: no object is built at start-up.
inline std::size_t thread_stripe() noexcept {
  static std::atomic<std::size_t> dealt{0};
  thread_local const std::size_t stripe = dealt.fetch_add(1, std::memory_order_relaxed) % kStripes;
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
