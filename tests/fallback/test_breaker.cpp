#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ember/resilience.hpp"

using namespace std::chrono_literals;
using ember::BreakerState;
using ember::CircuitBreaker;
using ember::CircuitBreakerConfig;
using ember::StatusCode;

namespace {

struct Fixture {
  std::shared_ptr<ember::ManualClock> clock = std::make_shared<ember::ManualClock>();
  std::vector<std::pair<BreakerState, BreakerState>> changes;

  std::unique_ptr<CircuitBreaker> make(const CircuitBreakerConfig& config) {
    auto b = CircuitBreaker::create("primary", config, clock, [this](std::string_view name, BreakerState from, BreakerState to) {
      CHECK(name == "primary");
      changes.emplace_back(from, to);
    });
    REQUIRE(b.ok());
    return std::move(b).value();
  }
};

// Runs one call through the breaker: false when it was refused.
bool call(CircuitBreaker& b, StatusCode code, std::chrono::nanoseconds duration = 1ms) {
  if (!b.try_acquire()) return false;
  b.on_result(code, duration);
  return true;
}

CircuitBreakerConfig small_count_window() {
  CircuitBreakerConfig c;
  c.sliding_window_size = 4;
  c.minimum_number_of_calls = 4;
  c.failure_rate_threshold = 50;
  c.wait_duration_in_open_state = 10s;
  c.permitted_calls_in_half_open_state = 2;
  return c;
}

}  // namespace

TEST_CASE("breaker: closed until the failure rate over the minimum number of calls reaches the threshold") {
  Fixture f;
  auto b = f.make(small_count_window());
  CHECK(b->state() == BreakerState::kClosed);
  CHECK(call(*b, StatusCode::kInternal));
  CHECK(call(*b, StatusCode::kOk));
  CHECK(call(*b, StatusCode::kInternal));
  CHECK(b->metrics().failure_rate == -1);  // 3 calls: below the minimum of 4
  CHECK(b->state() == BreakerState::kClosed);
  CHECK(call(*b, StatusCode::kOk));        // 2 of 4 failed: 50 % >= 50 %
  CHECK(b->state() == BreakerState::kOpen);
  REQUIRE(f.changes.size() == 1);
  CHECK(f.changes[0] == std::pair{BreakerState::kClosed, BreakerState::kOpen});
}

TEST_CASE("breaker: stays closed below the threshold, and the count window forgets old calls") {
  Fixture f;
  auto b = f.make(small_count_window());
  CHECK(call(*b, StatusCode::kInternal));
  for (int i = 0; i < 3; ++i) CHECK(call(*b, StatusCode::kOk));  // 25 %
  CHECK(b->state() == BreakerState::kClosed);
  CHECK(b->metrics().failure_rate == Approx(25));
  // The failure slides out of the 4-call window.
  CHECK(call(*b, StatusCode::kOk));
  CHECK(b->metrics().failure_rate == Approx(0));
  CHECK(b->metrics().calls == 4);
}

TEST_CASE("breaker: open refuses calls, counts them, and half-opens after the wait") {
  Fixture f;
  auto b = f.make(small_count_window());
  for (int i = 0; i < 4; ++i) CHECK(call(*b, StatusCode::kInternal));
  REQUIRE(b->state() == BreakerState::kOpen);
  CHECK_FALSE(b->try_acquire());
  f.clock->advance(9999ms);
  CHECK_FALSE(b->try_acquire());
  CHECK(b->metrics().not_permitted_calls == 2);
  f.clock->advance(1ms);
  CHECK(b->try_acquire());  // the wait has passed: HALF_OPEN, first trial call
  CHECK(b->state() == BreakerState::kHalfOpen);
  CHECK(b->try_acquire());        // second trial call
  CHECK_FALSE(b->try_acquire());  // only 2 permitted
  b->on_result(StatusCode::kOk, 1ms);
  CHECK(b->state() == BreakerState::kHalfOpen);  // waits for both trials
  b->on_result(StatusCode::kOk, 1ms);
  CHECK(b->state() == BreakerState::kClosed);
  CHECK(b->metrics().calls == 0);  // a fresh window
  const std::vector<std::pair<BreakerState, BreakerState>> expected{
      {BreakerState::kClosed, BreakerState::kOpen},
      {BreakerState::kOpen, BreakerState::kHalfOpen},
      {BreakerState::kHalfOpen, BreakerState::kClosed}};
  CHECK(f.changes == expected);
}

TEST_CASE("breaker: failing trial calls in half-open reopen it") {
  Fixture f;
  auto b = f.make(small_count_window());
  for (int i = 0; i < 4; ++i) CHECK(call(*b, StatusCode::kInternal));
  f.clock->advance(10s);
  CHECK(call(*b, StatusCode::kOk));
  CHECK(call(*b, StatusCode::kUnavailable));  // 1 of 2 failed: 50 %
  CHECK(b->state() == BreakerState::kOpen);
  CHECK_FALSE(b->try_acquire());
  CHECK(f.changes.back() == std::pair{BreakerState::kHalfOpen, BreakerState::kOpen});
}

TEST_CASE("breaker: half-open goes back to open when its trials take longer than the maximum wait") {
  Fixture f;
  auto config = small_count_window();
  config.max_wait_duration_in_half_open_state = 2s;
  auto b = f.make(config);
  for (int i = 0; i < 4; ++i) CHECK(call(*b, StatusCode::kInternal));
  f.clock->advance(10s);
  CHECK(b->try_acquire());  // HALF_OPEN; this trial never reports
  f.clock->advance(2s);
  CHECK_FALSE(b->try_acquire());
  CHECK(b->state() == BreakerState::kOpen);
}

TEST_CASE("breaker: slow calls open it at the slow-call rate threshold") {
  Fixture f;
  auto config = small_count_window();
  config.slow_call_duration = 100ms;
  config.slow_call_rate_threshold = 75;
  auto b = f.make(config);
  CHECK(call(*b, StatusCode::kOk, 100ms));  // slow: at least the duration
  CHECK(call(*b, StatusCode::kOk, 150ms));
  CHECK(call(*b, StatusCode::kOk, 99ms));   // not slow
  CHECK(b->metrics().slow_calls == 2);
  CHECK(b->metrics().failed_calls == 0);
  CHECK(call(*b, StatusCode::kOk, 1s));     // 3 of 4 slow: 75 %
  CHECK(b->state() == BreakerState::kOpen);
}

TEST_CASE("breaker: a slow failure counts as both slow and failed") {
  Fixture f;
  auto config = small_count_window();
  config.slow_call_duration = 100ms;
  config.failure_rate_threshold = 100;
  auto b = f.make(config);
  for (int i = 0; i < 3; ++i) CHECK(call(*b, StatusCode::kOk));
  CHECK(call(*b, StatusCode::kInternal, 200ms));
  const auto m = b->metrics();
  CHECK(m.failed_calls == 1);
  CHECK(m.slow_calls == 1);
  CHECK(m.failure_rate == Approx(25));
  CHECK(m.slow_call_rate == Approx(25));
  CHECK(b->state() == BreakerState::kClosed);
}

TEST_CASE("breaker: the minimum number of calls of a count window is capped at its size") {
  Fixture f;
  auto config = small_count_window();
  config.minimum_number_of_calls = 100;  // more than the window of 4
  auto b = f.make(config);
  for (int i = 0; i < 4; ++i) CHECK(call(*b, StatusCode::kInternal));
  CHECK(b->state() == BreakerState::kOpen);
}

TEST_CASE("breaker: a time-based window counts the calls of the last N seconds") {
  Fixture f;
  CircuitBreakerConfig config;
  config.sliding_window_type = ember::SlidingWindowType::kTimeBased;
  config.sliding_window_size = 10;  // seconds
  config.minimum_number_of_calls = 3;
  config.failure_rate_threshold = 60;
  auto b = f.make(config);
  CHECK(call(*b, StatusCode::kInternal));
  CHECK(call(*b, StatusCode::kInternal));
  f.clock->advance(11s);  // both failures leave the window
  CHECK(call(*b, StatusCode::kOk));
  CHECK(b->metrics().calls == 1);
  f.clock->advance(5s);
  CHECK(call(*b, StatusCode::kInternal));
  CHECK(call(*b, StatusCode::kInternal));  // 2 of 3 in the last 10 s: 66.7 %
  CHECK(b->state() == BreakerState::kOpen);
}

TEST_CASE("breaker: ignored codes count as successes") {
  Fixture f;
  auto config = small_count_window();
  config.ignored_codes = {StatusCode::kInvalidArgument};
  auto b = f.make(config);
  for (int i = 0; i < 4; ++i) CHECK(call(*b, StatusCode::kInvalidArgument));
  CHECK(b->state() == BreakerState::kClosed);
  CHECK(b->metrics().failed_calls == 0);
}

TEST_CASE("breaker: forced open and disabled hold until a manual transition; reset closes") {
  Fixture f;
  auto b = f.make(small_count_window());
  b->transition_to_forced_open();
  CHECK(b->state() == BreakerState::kForcedOpen);
  f.clock->advance(1h);
  CHECK_FALSE(b->try_acquire());  // never half-opens by itself
  b->transition_to_disabled();
  for (int i = 0; i < 20; ++i) CHECK(call(*b, StatusCode::kInternal));
  CHECK(b->state() == BreakerState::kDisabled);  // records nothing, never opens
  CHECK(b->metrics().calls == 0);
  b->transition_to_closed();
  CHECK(b->state() == BreakerState::kClosed);
  b->transition_to_open();
  CHECK_FALSE(b->try_acquire());
  b->reset();
  CHECK(b->state() == BreakerState::kClosed);
  CHECK(call(*b, StatusCode::kOk));
  CHECK(b->metrics().transitions == 5);
  CHECK(f.changes.size() == 5);
}

TEST_CASE("breaker: a listener may call back into the breaker") {
  auto clock = std::make_shared<ember::ManualClock>();
  CircuitBreaker* self = nullptr;
  BreakerState seen = BreakerState::kClosed;
  auto b = CircuitBreaker::create("b", small_count_window(), clock,
                                  [&](std::string_view, BreakerState, BreakerState) { seen = self->state(); });
  REQUIRE(b.ok());
  self = b->get();
  for (int i = 0; i < 4; ++i) CHECK(call(**b, StatusCode::kInternal));
  CHECK(seen == BreakerState::kOpen);
}

TEST_CASE("breaker: configs out of range are refused, naming the field") {
  auto clock = std::make_shared<ember::ManualClock>();
  const auto refused = [&](CircuitBreakerConfig c, const std::string& field) {
    auto b = CircuitBreaker::create("x", c, clock);
    REQUIRE_FALSE(b.ok());
    CHECK(b.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(b.status().message(), Catch::Contains(field));
  };
  CircuitBreakerConfig c;
  c.failure_rate_threshold = 0;
  refused(c, "failure_rate_threshold");
  c = {};
  c.failure_rate_threshold = 101;
  refused(c, "failure_rate_threshold");
  c = {};
  c.slow_call_rate_threshold = std::numeric_limits<double>::quiet_NaN();
  refused(c, "slow_call_rate_threshold");
  c = {};
  c.sliding_window_size = 0;
  refused(c, "sliding_window_size");
  c = {};
  c.minimum_number_of_calls = 0;
  refused(c, "minimum_number_of_calls");
  c = {};
  c.wait_duration_in_open_state = 0s;
  refused(c, "wait_duration_in_open_state");
  c = {};
  c.permitted_calls_in_half_open_state = 0;
  refused(c, "permitted_calls_in_half_open_state");
  c = {};
  c.slow_call_duration = -1s;
  refused(c, "slow_call_duration");
  c = {};
  c.sliding_window_type = ember::SlidingWindowType::kTimeBased;
  c.sliding_window_size = 100000;
  refused(c, "sliding_window_size");
}

TEST_CASE("breaker: many threads record a CLOSED window at once, without losing count, and trip once") {
  Fixture f;
  CircuitBreakerConfig config;  // count-based, 100 calls: recorded without the lock
  config.sliding_window_size = 100;
  config.minimum_number_of_calls = 100;
  config.failure_rate_threshold = 50;
  auto b = f.make(config);
  const auto hammer = [&](StatusCode code, int calls) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < calls; ++i) (void)call(*b, code);
      });
    }
    for (auto& t : threads) t.join();
  };
  hammer(StatusCode::kOk, 5000);
  auto m = b->metrics();
  CHECK(m.state == BreakerState::kClosed);
  CHECK(m.calls == 100);  // the window holds its size, however the threads interleaved
  CHECK(m.failed_calls == 0);
  CHECK(m.failure_rate == 0.0F);
  hammer(StatusCode::kInternal, 200);
  CHECK(b->state() == BreakerState::kOpen);
  CHECK(f.changes.size() == 1);  // one transition, though every thread saw the rate cross
  CHECK(b->metrics().not_permitted_calls > 0);
}
