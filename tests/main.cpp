#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_TESTS_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EMBER_TESTS_UNDER_ASAN 1
#endif

#ifdef EMBER_TESTS_UNDER_ASAN
// Under ASan an impossible allocation must fail as it does in production (calloc
// returns null); the tests for huge tensors rely on it. A test program may give options
// of its own by defining ember_test_asan_options (tests/alloc/counting_new.cpp).
extern "C" __attribute__((weak)) const char* ember_test_asan_options();
extern "C" const char* __asan_default_options() {
  return ember_test_asan_options != nullptr ? ember_test_asan_options() : "allocator_may_return_null=1";
}
#endif

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
// The same under TSan; and a race fails the test that found it.
extern "C" const char* __tsan_default_options() { return "allocator_may_return_null=1:halt_on_error=1"; }
// libstdc++ 12 guards std::atomic<std::shared_ptr> (the Deployment's serving version)
// with a lock bit inside the pointer, which ThreadSanitizer cannot see: its loads and
// exchanges would be reported as races. Nothing else is suppressed.
extern "C" const char* __tsan_default_suppressions() { return "race:std::_Sp_atomic\n"; }
#endif
#endif
