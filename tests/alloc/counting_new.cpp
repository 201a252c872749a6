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

namespace {
// Counts one allocation; throws when it is the one asked to fail.
void count_or_fail() {
  const std::size_t number = g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t at = g_fail_at.load(std::memory_order_relaxed);
  if (number == at && g_fail_at.compare_exchange_strong(at, SIZE_MAX)) {
    g_failed.store(true);
    throw std::bad_alloc();
  }
}
}  // namespace

// Every allocating form goes through malloc/aligned_alloc and every freeing form through
// free, so AddressSanitizer still checks the memory (and sees no mismatch).
void* operator new(std::size_t size) {
  count_or_fail();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
  count_or_fail();
  const auto a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(EMBER_TEST_ASAN)
// Under AddressSanitizer, a shared library (simdjson) may bind to ASan's operator new
// while ember's objects are freed through this program's operator delete: the memory is
// the same malloc heap, checked all the same, but ASan would report the pairing.
// (tests/main.cpp asks for these instead of its own, so they repeat its own.)
extern "C" const char* ember_test_asan_options() { return "allocator_may_return_null=1:alloc_dealloc_mismatch=0"; }
#endif
