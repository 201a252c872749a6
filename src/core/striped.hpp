#pragma once

// Per-thread stripes: counters that many threads bump on every request without sharing
// a cache line, and the stripe a thread uses.

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace ember::detail {

inline constexpr std::size_t kStripes = 8;

/// The stripes live threads hold: bit i set while a thread holds stripe i.
inline std::atomic<std::uint32_t>& stripe_claims() noexcept {
  static std::atomic<std::uint32_t> bits{0};  // constant-initialised: no work at start-up
  return bits;
}

/// A thread's stripe: the lowest one no live thread holds, given back when the thread
/// ends, so that up to kStripes live threads never share one however many threads come
/// and go (dealing round-robin, as before, made a new thread collide with an old one
/// after kStripes others had started). With more live threads than stripes, the extra
/// ones are dealt round-robin.
class StripeClaim {
 public:
  StripeClaim() noexcept {
    auto& bits = stripe_claims();
    std::uint32_t held = bits.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint32_t free = ~held & ((std::uint32_t{1} << kStripes) - 1);
      if (free == 0) {
        static std::atomic<std::size_t> dealt{0};
        stripe_ = dealt.fetch_add(1, std::memory_order_relaxed) % kStripes;
        return;
      }
      const std::uint32_t bit = free & (~free + 1);
      if (bits.compare_exchange_weak(held, held | bit, std::memory_order_relaxed)) {
        stripe_ = static_cast<std::size_t>(std::countr_zero(bit));
        owned_ = true;
        return;
      }
    }
  }
  ~StripeClaim() {
    if (owned_) stripe_claims().fetch_and(~(std::uint32_t{1} << stripe_), std::memory_order_relaxed);
  }
  StripeClaim(const StripeClaim&) = delete;
  StripeClaim& operator=(const StripeClaim&) = delete;
  [[nodiscard]] std::size_t stripe() const noexcept { return stripe_; }

 private:
  std::size_t stripe_ = 0;
  bool owned_ = false;
};

/// This thread's stripe, in [0, kStripes).
inline std::size_t thread_stripe() noexcept {
  thread_local const StripeClaim claim;
  return claim.stripe();
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
