#pragma once

// Brief polling before sleeping: a hand-off through a condition variable costs tens of
// microseconds of wake-up; polling for a few microseconds avoids it when the other side
// answers quickly. Shared by the fallback chain and the thread pool.

#include <chrono>
#include <thread>

namespace ember::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

/// Polls `ready` until it holds or `limit` passes (the clock is read every 64 polls);
/// true when it held.
template <typename Ready>
bool spin_until(Ready&& ready, std::chrono::steady_clock::time_point limit) {
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= limit) return false;
    cpu_relax();
  }
}

}  // namespace ember::detail
