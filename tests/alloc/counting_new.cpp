// A replacement operator new for the allocation tests: counts, and fails on request.
#include "counting_new.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::size_t> g_allocations{0};
std::atomic<std::size_t> g_fail_at{SIZE_MAX};  // the allocation number that fails
std::atomic<bool> g_failed{false};
}  // namespace

namespace ember_test {
std::size_t allocations() noexcept { return g_allocations.load(std::memory_order_relaxed); }
void fail_allocation_in(std::size_t n) noexcept {
  g_failed.store(false);
  g_fail_at.store(n == SIZE_MAX ? SIZE_MAX : allocations() + n);
}
bool allocation_failed() noexcept { return g_failed.load(); }
}  // namespace ember_test

void* operator new(std::size_t size) {
  const std::size_t number = g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t at = g_fail_at.load(std::memory_order_relaxed);
  if (number == at && g_fail_at.compare_exchange_strong(at, SIZE_MAX)) {
    g_failed.store(true);
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
