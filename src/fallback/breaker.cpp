#include <algorithm>
#include <ctime>
#include <cmath>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ember/resilience.hpp"

namespace ember {

Clock::~Clock() = default;

std::chrono::nanoseconds SteadyClock::now() const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
}

std::chrono::nanoseconds SteadyClock::coarse_now() const noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
  // std::chrono::steady_clock is CLOCK_MONOTONIC on Linux: the coarse clock shares its
  // origin and costs a few nanoseconds instead of a few dozen.
  timespec ts{};
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  }
#endif
  return now();
}

std::chrono::nanoseconds SteadyClock::coarse_resolution() const noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
  timespec res{};
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0) {
    return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
  }
#endif
  return {};
}

void SteadyClock::sleep_for(std::chrono::nanoseconds duration) const { std::this_thread::sleep_for(duration); }

std::chrono::nanoseconds ManualClock::now() const noexcept {
  return std::chrono::nanoseconds(now_ns_.load(std::memory_order_acquire));
}

void ManualClock::sleep_for(std::chrono::nanoseconds duration) const {
  now_ns_.fetch_add(duration.count(), std::memory_order_acq_rel);
}

void ManualClock::advance(std::chrono::nanoseconds duration) noexcept {
  now_ns_.fetch_add(duration.count(), std::memory_order_acq_rel);
}

std::string_view breaker_state_name(BreakerState state) noexcept {
  switch (state) {
    case BreakerState::kClosed: return "CLOSED";
    case BreakerState::kOpen: return "OPEN";
    case BreakerState::kHalfOpen: return "HALF_OPEN";
    case BreakerState::kForcedOpen: return "FORCED_OPEN";
    case BreakerState::kDisabled: return "DISABLED";
  }
  return "UNKNOWN";
}

Status CircuitBreakerConfig::validate() const {
  const auto rate_ok = [](double r) { return std::isfinite(r) && r > 0 && r <= 100; };
  if (!rate_ok(failure_rate_threshold)) {
    return invalid_argument("failure_rate_threshold must be in (0, 100], got " + std::to_string(failure_rate_threshold));
  }
  if (!rate_ok(slow_call_rate_threshold)) {
    return invalid_argument("slow_call_rate_threshold must be in (0, 100], got " +
                            std::to_string(slow_call_rate_threshold));
  }
  if (slow_call_duration.count() <= 0) return invalid_argument("slow_call_duration must be positive");
  if (sliding_window_size < 1) return invalid_argument("sliding_window_size must be at least 1");
  if (sliding_window_type == SlidingWindowType::kTimeBased && sliding_window_size > 86400) {
    return invalid_argument("a time-based sliding_window_size is in seconds and at most 86400, got " +
                            std::to_string(sliding_window_size));
  }
  if (sliding_window_type == SlidingWindowType::kCountBased && sliding_window_size > 1000000) {
    return invalid_argument("a count-based sliding_window_size is at most 1000000, got " +
                            std::to_string(sliding_window_size));
  }
  if (minimum_number_of_calls < 1) return invalid_argument("minimum_number_of_calls must be at least 1");
  if (wait_duration_in_open_state.count() <= 0) return invalid_argument("wait_duration_in_open_state must be positive");
  if (permitted_calls_in_half_open_state < 1) {
    return invalid_argument("permitted_calls_in_half_open_state must be at least 1");
  }
  if (permitted_calls_in_half_open_state > 1000000) {
    return invalid_argument("permitted_calls_in_half_open_state is at most 1000000");
  }
  if (max_wait_duration_in_half_open_state.count() < 0) {
    return invalid_argument("max_wait_duration_in_half_open_state must not be negative");
  }
  return {};
}

// Outcomes of the calls in the window, with running totals.
struct CircuitBreaker::Window {
  struct Totals {
    std::uint32_t calls = 0, failed = 0, slow = 0;
  };
  enum : std::uint8_t { kFailed = 1, kSlow = 2, kUsed = 4 };

  SlidingWindowType type;
  std::uint32_t size;
  std::uint32_t minimum;
  Totals totals;
  // Count-based: one outcome per slot, `next` the oldest.
  std::vector<std::uint8_t> outcomes;
  std::uint32_t next = 0;
  // Time-based: one bucket per second, `epoch` the newest second recorded.
  std::vector<Totals> buckets;
  std::int64_t epoch = -1;

  Window(SlidingWindowType t, std::uint32_t n, std::uint32_t min_calls) : type(t), size(n), minimum(min_calls) {
    if (type == SlidingWindowType::kCountBased) {
      outcomes.assign(n, 0);
      minimum = std::min(minimum, n);
    } else {
      buckets.assign(n, {});
    }
  }

  // Drops the seconds that have left a time-based window by `now`.
  void expire(std::chrono::nanoseconds now) {
    if (type != SlidingWindowType::kTimeBased) return;
    const std::int64_t second = std::chrono::duration_cast<std::chrono::seconds>(now).count();
    if (epoch < 0) {
      epoch = second;
      return;
    }
    if (second <= epoch) return;
    const std::int64_t steps = std::min<std::int64_t>(second - epoch, size);
    for (std::int64_t k = 1; k <= steps; ++k) {
      Totals& b = buckets[static_cast<std::size_t>((epoch + k) % size)];
      totals.calls -= b.calls;
      totals.failed -= b.failed;
      totals.slow -= b.slow;
      b = {};
    }
    epoch = second;
  }

  void record(bool failed, bool slow, std::chrono::nanoseconds now) {
    if (type == SlidingWindowType::kCountBased) {
      std::uint8_t& slot = outcomes[next];
      if (slot & kUsed) {
        totals.calls -= 1;
        totals.failed -= (slot & kFailed) ? 1 : 0;
        totals.slow -= (slot & kSlow) ? 1 : 0;
      }
      slot = static_cast<std::uint8_t>(kUsed | (failed ? kFailed : 0) | (slow ? kSlow : 0));
      next = (next + 1) % size;
    } else {
      expire(now);
      Totals& b = buckets[static_cast<std::size_t>(epoch % size)];
      b.calls += 1;
      b.failed += failed ? 1 : 0;
      b.slow += slow ? 1 : 0;
    }
    totals.calls += 1;
    totals.failed += failed ? 1 : 0;
    totals.slow += slow ? 1 : 0;
  }

  [[nodiscard]] float failure_rate() const {
    return totals.calls < minimum ? -1.0F : 100.0F * static_cast<float>(totals.failed) / static_cast<float>(totals.calls);
  }
  [[nodiscard]] float slow_rate() const {
    return totals.calls < minimum ? -1.0F : 100.0F * static_cast<float>(totals.slow) / static_cast<float>(totals.calls);
  }
};

Result<std::unique_ptr<CircuitBreaker>> CircuitBreaker::create(std::string name, CircuitBreakerConfig config,
                                                              std::shared_ptr<const Clock> clock, Listener listener) {
  EMBER_RETURN_IF_ERROR(config.validate().with_context("breaker '" + name + "'"));
  if (clock == nullptr) clock = std::make_shared<SteadyClock>();
  return std::unique_ptr<CircuitBreaker>(
      new CircuitBreaker(std::move(name), std::move(config), std::move(clock), std::move(listener)));
}

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerConfig config, std::shared_ptr<const Clock> clock,
                               Listener listener)
    : name_(std::move(name)), config_(std::move(config)), clock_(std::move(clock)), listener_(std::move(listener)) {
  window_ = std::make_unique<Window>(config_.sliding_window_type, config_.sliding_window_size,
                                     config_.minimum_number_of_calls);
  state_since_ = clock_->now();
}

CircuitBreaker::~CircuitBreaker() = default;

bool CircuitBreaker::move_locked(BreakerState to) {
  if (state_.load(std::memory_order_relaxed) == to) return false;
  state_.store(to, std::memory_order_release);
  state_since_ = clock_->now();
  ++transitions_;
  half_open_permits_ = 0;
  if (to == BreakerState::kHalfOpen) {
    // Trial calls are judged on their own: a count-based window of exactly that many.
    const std::uint32_t n = config_.permitted_calls_in_half_open_state;
    window_ = std::make_unique<Window>(SlidingWindowType::kCountBased, n, n);
  } else {
    window_ = std::make_unique<Window>(config_.sliding_window_type, config_.sliding_window_size,
                                       config_.minimum_number_of_calls);
  }
  return true;
}

void CircuitBreaker::notify(BreakerState from, BreakerState to) const {
  if (!listener_ || from == to) return;
  try {
    listener_(name_, from, to);
  } catch (...) {  // the host's listener must not break the request that moved the breaker
    listener_errors_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::uint64_t CircuitBreaker::listener_errors() const noexcept { return listener_errors_.load(std::memory_order_relaxed); }

bool CircuitBreaker::try_acquire() {
  // CLOSED and DISABLED let every call through and change nothing: no lock needed.
  if (const auto s = state_.load(std::memory_order_acquire); s == BreakerState::kClosed || s == BreakerState::kDisabled) {
    return true;
  }
  BreakerState from{};
  BreakerState to{};
  bool permitted = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    from = state_;
    // Only OPEN and a timed HALF_OPEN need the time (CLOSED, the common case, does not).
    if (state_ == BreakerState::kOpen && clock_->now() - state_since_ >= config_.wait_duration_in_open_state) {
      move_locked(BreakerState::kHalfOpen);
    } else if (state_ == BreakerState::kHalfOpen && config_.max_wait_duration_in_half_open_state.count() > 0 &&
               clock_->now() - state_since_ >= config_.max_wait_duration_in_half_open_state) {
      move_locked(BreakerState::kOpen);
    }
    switch (state_) {
      case BreakerState::kClosed:
      case BreakerState::kDisabled: permitted = true; break;
      case BreakerState::kHalfOpen:
        permitted = half_open_permits_ < config_.permitted_calls_in_half_open_state;
        if (permitted) ++half_open_permits_;
        break;
      case BreakerState::kOpen:
      case BreakerState::kForcedOpen: permitted = false; break;
    }
    if (!permitted) ++not_permitted_;
    to = state_;
  }
  notify(from, to);
  return permitted;
}

void CircuitBreaker::on_result(StatusCode code, std::chrono::nanoseconds duration) {
  const bool failed = code != StatusCode::kOk && std::find(config_.ignored_codes.begin(), config_.ignored_codes.end(),
                                                           code) == config_.ignored_codes.end();
  const bool slow = duration >= config_.slow_call_duration;
  BreakerState from{};
  BreakerState to{};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    from = state_;
    // OPEN, FORCED_OPEN and DISABLED record nothing (a late result of a call let
    // through before the breaker opened changes nothing).
    if (state_ == BreakerState::kClosed || state_ == BreakerState::kHalfOpen) {
      window_->record(failed, slow,
                      window_->type == SlidingWindowType::kTimeBased ? clock_->now() : std::chrono::nanoseconds{0});
      const auto& t = window_->totals;
      const bool judged = t.calls >= window_->minimum;  // enough calls in the window
      // rate >= threshold, as 100 * count >= threshold * calls (no division)
      const bool trip = judged && (100.0 * t.failed >= config_.failure_rate_threshold * t.calls ||
                                   100.0 * t.slow >= config_.slow_call_rate_threshold * t.calls);
      if (trip) {
        move_locked(BreakerState::kOpen);
      } else if (judged && state_ == BreakerState::kHalfOpen) {
        move_locked(BreakerState::kClosed);
      }
    }
    to = state_;
  }
  notify(from, to);
}

BreakerState CircuitBreaker::state() const { return state_.load(std::memory_order_acquire); }

BreakerMetrics CircuitBreaker::metrics() const {
  std::lock_guard<std::mutex> lock(mutex_);
  window_->expire(clock_->now());
  BreakerMetrics m;
  m.state = state_;
  m.failure_rate = window_->failure_rate();
  m.slow_call_rate = window_->slow_rate();
  m.calls = window_->totals.calls;
  m.failed_calls = window_->totals.failed;
  m.slow_calls = window_->totals.slow;
  m.not_permitted_calls = not_permitted_;
  m.transitions = transitions_;
  return m;
}

void CircuitBreaker::manual(BreakerState to) {
  BreakerState from{};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    from = state_;
    move_locked(to);
  }
  notify(from, to);
}

void CircuitBreaker::transition_to_closed() { manual(BreakerState::kClosed); }
void CircuitBreaker::transition_to_open() { manual(BreakerState::kOpen); }
void CircuitBreaker::transition_to_half_open() { manual(BreakerState::kHalfOpen); }
void CircuitBreaker::transition_to_forced_open() { manual(BreakerState::kForcedOpen); }
void CircuitBreaker::transition_to_disabled() { manual(BreakerState::kDisabled); }

void CircuitBreaker::reset() {
  BreakerState from{};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    from = state_;
    move_locked(BreakerState::kClosed);
    window_ = std::make_unique<Window>(config_.sliding_window_type, config_.sliding_window_size,
                                       config_.minimum_number_of_calls);
    state_since_ = clock_->now();
  }
  notify(from, BreakerState::kClosed);
}

}  // namespace ember
