#include <algorithm>
#include <cmath>
#include <ctime>
#include <optional>
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

// The window of a CLOSED breaker with a count-based window of at most 65,535 calls
// (resilience4j's default is 100), recorded without a lock. Totals live in one 64-bit
// word: generation | calls | failed | slow, 16 bits each; each slot holds the generation
// that wrote it and its outcome. Starting a new window bumps the generation: slots of an
// older one count as empty, and a record that raced the bump is dropped.
struct CircuitBreaker::FastWindow {
  static constexpr std::uint32_t kMaxSize = 65535;
  static constexpr std::uint32_t kFailed = 1, kSlow = 2, kUsed = 4;
  std::uint32_t size;
  std::uint32_t minimum;
  std::unique_ptr<std::atomic<std::uint32_t>[]> slots;
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> totals{0};

  FastWindow(std::uint32_t n, std::uint32_t min_calls)
      : size(n), minimum(std::min(min_calls, n)), slots(new std::atomic<std::uint32_t>[n]) {
    for (std::uint32_t i = 0; i < n; ++i) slots[i].store(0, std::memory_order_relaxed);
  }
  static std::uint32_t field(std::uint64_t t, int k) { return static_cast<std::uint32_t>((t >> (16 * k)) & 0xFFFF); }
  static std::uint64_t pack(std::uint32_t gen, std::uint32_t calls, std::uint32_t failed, std::uint32_t slow) {
    return std::uint64_t{gen & 0xFFFF} << 48 | std::uint64_t{calls} << 32 | std::uint64_t{failed} << 16 | slow;
  }
  static std::uint32_t gen(std::uint64_t t) { return field(t, 3); }
  static std::uint32_t calls(std::uint64_t t) { return field(t, 2); }
  static std::uint32_t failed(std::uint64_t t) { return field(t, 1); }
  static std::uint32_t slow(std::uint64_t t) { return field(t, 0); }

  // An empty window of the next generation.
  void restart() {
    const std::uint64_t t = totals.load(std::memory_order_relaxed);
    totals.store(pack(gen(t) + 1, 0, 0, 0), std::memory_order_release);
  }

  // Records one outcome; returns the totals after it (with the generation it went into),
  // or nothing when a new window started meanwhile.
  std::optional<std::uint64_t> record(bool is_failed, bool is_slow) {
    std::uint64_t t = totals.load(std::memory_order_acquire);
    const std::uint32_t g = gen(t) & 0xFFFF;
    const std::uint32_t mine = g << 8 | kUsed | (is_failed ? kFailed : 0) | (is_slow ? kSlow : 0);
    const std::uint32_t old = slots[next.fetch_add(1, std::memory_order_relaxed) % size].exchange(mine);
    const bool old_counts = (old >> 8) == g && (old & kUsed);
    const auto delta = [&](std::uint32_t flag) {
      return static_cast<std::int32_t>((mine & flag) != 0) - static_cast<std::int32_t>(old_counts && (old & flag));
    };
    for (;;) {
      if (gen(t) != g) return std::nullopt;
      const std::uint64_t updated =
          pack(g, calls(t) + (old_counts ? 0 : 1), static_cast<std::uint32_t>(static_cast<std::int32_t>(failed(t)) + delta(kFailed)),
               static_cast<std::uint32_t>(static_cast<std::int32_t>(slow(t)) + delta(kSlow)));
      if (totals.compare_exchange_weak(t, updated, std::memory_order_acq_rel)) return updated;
    }
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
  if (config_.sliding_window_type == SlidingWindowType::kCountBased &&
      config_.sliding_window_size <= FastWindow::kMaxSize) {
    fast_ = std::make_unique<FastWindow>(config_.sliding_window_size, config_.minimum_number_of_calls);
  }
  state_since_ = clock_->now();
}

CircuitBreaker::~CircuitBreaker() = default;

bool CircuitBreaker::move_locked(BreakerState to) {
  if (state_.load(std::memory_order_relaxed) == to) return false;
  state_.store(to, std::memory_order_release);
  state_since_ = clock_->now();
  ++transitions_;
  half_open_permits_ = 0;
  if (fast_) fast_->restart();  // a fresh CLOSED window; late records of the old one are dropped
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
  if (fast_ && state_.load(std::memory_order_acquire) == BreakerState::kClosed) {
    // The healthy path: recorded without the lock, which is taken only to trip.
    const auto t = fast_->record(failed, slow);
    if (!t) return;
    const std::uint32_t calls = FastWindow::calls(*t);
    if (calls < fast_->minimum ||
        (100.0 * FastWindow::failed(*t) < config_.failure_rate_threshold * calls &&
         100.0 * FastWindow::slow(*t) < config_.slow_call_rate_threshold * calls)) {
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      from = state_;
      // Still CLOSED, and still the window this record tripped.
      if (state_ == BreakerState::kClosed &&
          FastWindow::gen(fast_->totals.load(std::memory_order_acquire)) == FastWindow::gen(*t)) {
        move_locked(BreakerState::kOpen);
      }
      to = state_;
    }
    notify(from, to);
    return;
  }
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
  if (fast_ && state_ == BreakerState::kClosed) {
    const std::uint64_t t = fast_->totals.load(std::memory_order_acquire);
    m.calls = FastWindow::calls(t);
    m.failed_calls = FastWindow::failed(t);
    m.slow_calls = FastWindow::slow(t);
    const bool judged = m.calls >= fast_->minimum && m.calls > 0;
    m.failure_rate = judged ? 100.0F * static_cast<float>(m.failed_calls) / static_cast<float>(m.calls) : -1.0F;
    m.slow_call_rate = judged ? 100.0F * static_cast<float>(m.slow_calls) / static_cast<float>(m.calls) : -1.0F;
  } else {
    m.failure_rate = window_->failure_rate();
    m.slow_call_rate = window_->slow_rate();
    m.calls = window_->totals.calls;
    m.failed_calls = window_->totals.failed;
    m.slow_calls = window_->totals.slow;
  }
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
    if (fast_) fast_->restart();
    state_since_ = clock_->now();
  }
  notify(from, BreakerState::kClosed);
}

}  // namespace ember
