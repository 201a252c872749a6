#pragma once

/// Clocks and circuit breakers: the pieces of the fallback chain that decide when a
/// stage is tried at all. The breaker follows resilience4j's CircuitBreaker: the same
/// states, sliding windows, thresholds and transitions.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

/// A source of monotonic time. Breakers and caches read it, so tests can drive them
/// with a ManualClock and stay deterministic. Implementations must be thread-safe.
class EMBER_API Clock {
 public:
  virtual ~Clock();
  /// Time since an arbitrary fixed origin.
  [[nodiscard]] virtual std::chrono::nanoseconds now() const noexcept = 0;
  /// The same origin, read more cheaply and with a resolution of a few milliseconds at
  /// worst; for expiry times (the cache). Defaults to now().
  [[nodiscard]] virtual std::chrono::nanoseconds coarse_now() const noexcept { return now(); }
  /// How far coarse_now() may lag behind now(); 0 when they are the same clock.
  [[nodiscard]] virtual std::chrono::nanoseconds coarse_resolution() const noexcept { return {}; }
  /// Lets `duration` pass (the fault injector's "slow" uses it).
  virtual void sleep_for(std::chrono::nanoseconds duration) const = 0;
};

/// std::chrono::steady_clock.
class EMBER_API SteadyClock final : public Clock {
 public:
  [[nodiscard]] std::chrono::nanoseconds now() const noexcept override;
  /// CLOCK_MONOTONIC_COARSE where there is one (the same origin as now() on Linux).
  [[nodiscard]] std::chrono::nanoseconds coarse_now() const noexcept override;
  [[nodiscard]] std::chrono::nanoseconds coarse_resolution() const noexcept override;
  void sleep_for(std::chrono::nanoseconds duration) const override;
};

/// A clock that moves only when told: advance() or sleep_for(). Starts at zero.
class EMBER_API ManualClock final : public Clock {
 public:
  [[nodiscard]] std::chrono::nanoseconds now() const noexcept override;
  /// Advances the clock instead of sleeping.
  void sleep_for(std::chrono::nanoseconds duration) const override;
  void advance(std::chrono::nanoseconds duration) noexcept;

 private:
  mutable std::atomic<std::int64_t> now_ns_{0};
};

enum class BreakerState : std::uint8_t {
  kClosed,      ///< calls pass; outcomes are recorded in the sliding window
  kOpen,        ///< calls are refused until the wait in open state has passed
  kHalfOpen,    ///< a few trial calls pass; their outcome closes or reopens the breaker
  kForcedOpen,  ///< refuses every call until a manual transition
  kDisabled,    ///< lets every call pass and records nothing, until a manual transition
};
/// "CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED".
EMBER_API std::string_view breaker_state_name(BreakerState state) noexcept;

enum class SlidingWindowType : std::uint8_t {
  kCountBased,  ///< the last `sliding_window_size` calls
  kTimeBased,   ///< the calls of the last `sliding_window_size` seconds
};

/// resilience4j's CircuitBreakerConfig, with its defaults.
struct CircuitBreakerConfig {
  /// Failure rate (percent of calls, in (0, 100]) at or above which the breaker opens.
  double failure_rate_threshold = 50;
  /// Slow-call rate (percent, in (0, 100]) at or above which the breaker opens.
  double slow_call_rate_threshold = 100;
  /// A call that takes at least this long is slow.
  std::chrono::nanoseconds slow_call_duration = std::chrono::seconds(60);
  SlidingWindowType sliding_window_type = SlidingWindowType::kCountBased;
  /// Calls (count-based) or seconds (time-based); at least 1.
  std::uint32_t sliding_window_size = 100;
  /// No rate is computed (and the breaker cannot open) before this many calls are in
  /// the window. For a count-based window it is capped at the window's size.
  std::uint32_t minimum_number_of_calls = 100;
  /// How long the breaker stays OPEN before it lets trial calls through.
  std::chrono::nanoseconds wait_duration_in_open_state = std::chrono::seconds(60);
  /// Trial calls allowed in HALF_OPEN; their rates decide CLOSED or OPEN.
  std::uint32_t permitted_calls_in_half_open_state = 10;
  /// 0: HALF_OPEN waits for its trial calls however long they take. Otherwise it goes
  /// back to OPEN when they have not all finished within this time.
  std::chrono::nanoseconds max_wait_duration_in_half_open_state{0};
  /// Outcomes with these codes count as successes (e.g. kInvalidArgument: the input's
  /// fault, not the stage's).
  std::vector<StatusCode> ignored_codes;

  /// OK, or InvalidArgument naming the first field out of range.
  [[nodiscard]] EMBER_API Status validate() const;
};

/// A snapshot of a breaker's window and counters.
struct BreakerMetrics {
  BreakerState state = BreakerState::kClosed;
  float failure_rate = -1;    ///< percent; -1 while fewer than the minimum number of calls
  float slow_call_rate = -1;  ///< percent; -1 likewise
  std::uint32_t calls = 0;    ///< calls in the window
  std::uint32_t failed_calls = 0;
  std::uint32_t slow_calls = 0;
  std::uint64_t not_permitted_calls = 0;  ///< refused since creation
  std::uint64_t transitions = 0;          ///< state changes since creation
};

/// A circuit breaker with resilience4j's semantics.
///
/// Use: `if (breaker.try_acquire()) { run; breaker.on_result(code, duration); }`.
/// Every acquired call must report its result once. Thread-safe; while CLOSED with a
/// count-based window of up to 65,535 calls, acquiring and recording take no lock (the
/// lock is taken to change state). The state change
/// listener runs after the breaker's lock is released, on the thread that caused it;
/// what it throws is caught and counted (listener_errors()), never propagated.
class EMBER_API CircuitBreaker {
 public:
  using Listener = std::function<void(std::string_view breaker, BreakerState from, BreakerState to)>;

  /// InvalidArgument when the config is out of range (see validate()).
  static Result<std::unique_ptr<CircuitBreaker>> create(std::string name, CircuitBreakerConfig config,
                                                        std::shared_ptr<const Clock> clock, Listener listener = {});
  ~CircuitBreaker();
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  /// Whether a call may go ahead now. OPEN moves to HALF_OPEN here once its wait has
  /// passed; a refusal is counted.
  [[nodiscard]] bool try_acquire();
  /// Records the outcome of an acquired call: kOk (or an ignored code) is a success,
  /// any other code a failure; `duration` decides whether it was slow.
  void on_result(StatusCode code, std::chrono::nanoseconds duration);

  [[nodiscard]] BreakerState state() const;
  [[nodiscard]] BreakerMetrics metrics() const;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// How often the listener threw (each time caught and dropped).
  [[nodiscard]] std::uint64_t listener_errors() const noexcept;
  [[nodiscard]] const CircuitBreakerConfig& config() const noexcept { return config_; }

  /// Manual transitions; each starts a fresh window (resilience4j's transitionTo*).
  void transition_to_closed();
  void transition_to_open();
  void transition_to_half_open();
  void transition_to_forced_open();
  void transition_to_disabled();
  /// Back to CLOSED with an empty window, as if just created (no transition reported
  /// when it was already CLOSED).
  void reset();

 private:
  struct Window;
  struct FastWindow;
  CircuitBreaker(std::string name, CircuitBreakerConfig config, std::shared_ptr<const Clock> clock, Listener listener);
  // Changes state under the lock; returns whether it changed.
  bool move_locked(BreakerState to);
  void notify(BreakerState from, BreakerState to) const;
  void manual(BreakerState to);

  std::string name_;
  CircuitBreakerConfig config_;
  std::shared_ptr<const Clock> clock_;
  Listener listener_;
  mutable std::mutex mutex_;
  // Written under the lock; read without it on the fast path of try_acquire().
  std::atomic<BreakerState> state_{BreakerState::kClosed};
  std::unique_ptr<Window> window_;
  // A CLOSED count-based window, recorded without the lock (null when the window is
  // time-based or larger than 65,535 calls).
  std::unique_ptr<FastWindow> fast_;
  std::chrono::nanoseconds state_since_{0};
  std::uint32_t half_open_permits_ = 0;
  std::uint64_t not_permitted_ = 0;
  std::uint64_t transitions_ = 0;
  mutable std::atomic<std::uint64_t> listener_errors_{0};
};

}  // namespace ember
