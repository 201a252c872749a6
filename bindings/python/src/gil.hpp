#pragma once

// Releasing the GIL around ember's work, and taking it back without sleeping when
// another thread holds it only for a moment.
//
// CPython's take_gil waits on a condition variable as soon as the GIL is held: the
// waiting thread sleeps and is woken when the holder lets go. Two Python threads calling
// predict in a loop meet like that on about one call in twenty (each holds the GIL for
// half a microsecond around an 11 µs call), and on a virtual machine a sleep and wake-up
// idles the thread for far longer than the holder needed the GIL (measured: 4,300
// context switches and 1.48 CPUs busy for 90,000 calls on two threads; spinning first:
// 680 and 1.59). Where the GIL's state can be read (CPython 3.11: gil_probe.c), the
// thread spins while it is held, up to EMBER_GIL_SPIN_US microseconds (default 20; 0:
// never; never on one core), before asking for it. The state is only a hint: a wrong
// read costs at most the spin, never correctness.

#include <chrono>
#include <cstdlib>
#include <thread>

#include <pybind11/pybind11.h>

#if defined(EMBER_GIL_PROBE)
extern "C" int ember_gil_locked(void);
#endif

namespace ember_py {

class GilRelease {
 public:
  GilRelease() : state_(PyEval_SaveThread()) {}
  ~GilRelease() {
#if defined(EMBER_GIL_PROBE)
    static const std::chrono::microseconds spin = spin_limit();
    if (spin.count() > 0 && ember_gil_locked() != 0) {
      const auto until = std::chrono::steady_clock::now() + spin;
      while (ember_gil_locked() != 0 && std::chrono::steady_clock::now() < until) relax();
    }
#endif
    PyEval_RestoreThread(state_);
  }
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

 private:
  static std::chrono::microseconds spin_limit() {
    if (std::thread::hardware_concurrency() == 1) return std::chrono::microseconds(0);
    const char* env = std::getenv("EMBER_GIL_SPIN_US");
    if (env == nullptr || *env == '\0') return std::chrono::microseconds(20);
    char* end = nullptr;
    const long us = std::strtol(env, &end, 10);
    return std::chrono::microseconds(*end == '\0' && us > 0 ? (us > 1000 ? 1000 : us) : 0);
  }
  static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  PyThreadState* state_;
};

}  // namespace ember_py
