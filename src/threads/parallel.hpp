#pragma once

// Items of independent work shared between the caller's thread and a host executor:
// each thread takes the next item until none is left; the call returns when all are done.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>

#include "ember/threads.hpp"

namespace ember::detail {

/// Runs fn(i) for i in [0, n), on the caller's thread and up to executor->concurrency()
/// helpers posted to `executor` (null: the caller alone). A helper the executor refuses
/// is simply not started. The first exception fn throws is rethrown here once every
/// item has ended (items after it still run).
template <typename Fn>
void for_each_item(TaskExecutor* executor, std::size_t n, Fn&& fn) {
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::exception_ptr error;
  const auto drain = [&] {
    for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::condition_variable cv;
  std::size_t running = 0;
  const std::size_t helpers = executor == nullptr || n < 2 ? 0 : std::min(executor->concurrency(), n - 1);
  for (std::size_t h = 0; h < helpers; ++h) {
    {
      std::lock_guard lock(mu);
      ++running;
    }
    bool posted = false;
    try {
      posted = executor->post([&] {
        drain();
        std::lock_guard lock(mu);
        if (--running == 0) cv.notify_all();
      });
    } catch (...) {
      posted = false;
    }
    if (!posted) {
      std::lock_guard lock(mu);
      --running;
      break;
    }
  }
  drain();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return running == 0; });
  if (error) std::rethrow_exception(error);
}

}  // namespace ember::detail
