#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ember/fallback.hpp"

using namespace std::chrono_literals;
using ember::BreakerState;
using ember::ChainOptions;
using ember::ChainResult;
using ember::ChainStage;
using ember::FallbackChain;
using ember::FaultKind;
using ember::FaultRule;
using ember::StatusCode;
using ember::Tensor;

namespace {

constexpr std::size_t kWidth = 3;

// A host-written stage: answers "output" = value + the row's first feature, one value
// per row ([rows]), or with `width` values per row when width > 1.
class Answer final : public ember::Stage {
 public:
  explicit Answer(float value, std::int64_t width = 1, std::string name = "output")
      : value_(value), width_(width), name_(std::move(name)) {}
  // A quick answer, like a linear model's: the chain may run it past the deadline.
  static std::shared_ptr<Answer> quick(float value) {
    auto a = std::make_shared<Answer>(value);
    a->bounded_ = true;
    return a;
  }
  bool bounded() const override { return bounded_; }
  ember::Result<ember::NamedTensors> run(const Tensor& features) const override {
    calls_.fetch_add(1);
    const std::int64_t rows = features.size(0);
    std::vector<std::int64_t> shape{rows};
    if (width_ > 1) shape.push_back(width_);
    auto t = Tensor::zeros(ember::DType::kFloat32, shape);
    auto out = t->values<float>();
    const auto in = features.values<double>();
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = value_ + static_cast<float>(in[(i / static_cast<std::size_t>(width_)) * kWidth]);
    }
    ember::NamedTensors result;  // no Catch assertions here: stages run on worker threads
    EMBER_RETURN_IF_ERROR(result.add(name_, *t));
    return result;
  }
  std::string type() const override { return "answer"; }
  ember::Result<std::vector<ember::OutputSpec>> outputs(std::size_t) const override {
    ember::OutputSpec spec{name_, ember::DType::kFloat32, {}};
    if (width_ > 1) spec.row_shape.push_back(width_);
    return std::vector<ember::OutputSpec>{spec};
  }
  int calls() const { return calls_.load(); }

 private:
  float value_;
  std::int64_t width_;
  std::string name_;
  bool bounded_ = false;
  mutable std::atomic<int> calls_{0};
};

// A stage whose answer has the wrong shape, without saying so in advance.
class Misshapen final : public ember::Stage {
 public:
  ember::Result<ember::NamedTensors> run(const Tensor& features) const override {
    auto t = Tensor::zeros(ember::DType::kFloat32, {features.size(0), 2});
    ember::NamedTensors result;
    EMBER_RETURN_IF_ERROR(result.add("output", *t));
    return result;
  }
  std::string type() const override { return "misshapen"; }
};

// A rows x kWidth view of `data` (no Catch assertion: also used on other threads).
Tensor rows(std::vector<double>& data) {
  return Tensor::view(data, {static_cast<std::int64_t>(data.size() / kWidth), static_cast<std::int64_t>(kWidth)})
      .value_or(Tensor());
}

std::shared_ptr<ember::FaultInjector> inject(std::shared_ptr<const ember::Stage> inner, FaultRule rule,
                                             std::shared_ptr<const ember::Clock> clock = {}) {
  auto f = ember::FaultInjector::wrap(std::move(inner), {rule}, std::move(clock));
  REQUIRE(f.ok());
  return *f;
}

FaultRule fault(FaultKind kind, std::chrono::nanoseconds duration = 0ns) {
  FaultRule r;
  r.kind = kind;
  r.duration = duration;
  return r;
}

std::unique_ptr<FallbackChain> build(ChainOptions options) {
  options.input_width = kWidth;
  auto chain = FallbackChain::create(std::move(options));
  INFO(chain.status().to_string());
  REQUIRE(chain.ok());
  return std::move(chain).value();
}

float first_output(const ChainResult& r) { return r.outputs.find("output")->values<float>()[0]; }

// primary (faulty) -> linear-like fallback (answers 100 + x).
std::unique_ptr<FallbackChain> two_stage(FaultRule rule) {
  ChainOptions o;
  o.stages.push_back({"primary", inject(std::make_shared<Answer>(0), rule)});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  return build(std::move(o));
}

}  // namespace

TEST_CASE("chain: a healthy primary serves, and nothing is skipped") {
  ChainOptions o;
  auto primary = std::make_shared<Answer>(0);
  o.stages.push_back({"primary", primary});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  auto chain = build(std::move(o));
  std::vector<double> x{7, 0, 0};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "primary");
  CHECK(r.skipped.empty());
  CHECK(first_output(r) == 7);
  CHECK(chain->counters()[0].served == 1);
  CHECK(chain->counters()[1].calls == 0);
}

TEST_CASE("chain: each trigger moves to the next stage and is reported with its code") {
  struct Trigger {
    FaultKind kind;
    StatusCode code;
  };
  for (auto [kind, code] : {Trigger{FaultKind::kError, StatusCode::kInternal},
                            Trigger{FaultKind::kThrow, StatusCode::kInternal},
                            Trigger{FaultKind::kOutOfMemory, StatusCode::kResourceExhausted},
                            Trigger{FaultKind::kNaN, StatusCode::kOutOfRange}}) {
    INFO(ember::fault_kind_name(kind));
    auto chain = two_stage(fault(kind));
    std::vector<double> x{1, 2, 3};
    ChainResult r;
    REQUIRE(chain->run(rows(x), r).ok());
    CHECK(r.served_by == "fallback");
    CHECK(first_output(r) == 101);
    REQUIRE(r.skipped.size() == 1);
    CHECK(r.skipped[0].stage == "primary");
    CHECK(r.skipped[0].status.code() == code);
    const auto c = chain->counters();
    CHECK(c[0].failures == 1);
    CHECK(c[0].fallbacks == 1);
    CHECK(c[1].served == 1);
  }
}

TEST_CASE("chain: the exception's message is kept") {
  auto chain = two_stage(fault(FaultKind::kThrow));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK_THAT(r.skipped[0].status.message(), Catch::Contains("the stage threw: injected fault: the model threw"));
}

TEST_CASE("chain: an answer of the wrong shape moves on; a compatible shape is reshaped") {
  ChainOptions o;
  o.stages.push_back({"primary", std::make_shared<Misshapen>()});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3, 4, 5, 6};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "fallback");
  CHECK(r.skipped[0].status.code() == StatusCode::kInternal);
  CHECK_THAT(r.skipped[0].status.message(), Catch::Contains("float32[2, 2]"));
  CHECK(r.outputs.find("output")->shape() == std::vector<std::int64_t>{2});
}

TEST_CASE("chain: stages whose outputs differ are refused when the chain is built") {
  ChainOptions o;
  o.input_width = kWidth;
  o.stages.push_back({"primary", std::make_shared<Answer>(0, 1)});
  o.stages.push_back({"fallback", std::make_shared<Answer>(0, 3)});
  auto chain = FallbackChain::create(std::move(o));
  REQUIRE_FALSE(chain.ok());
  CHECK(chain.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(chain.status().message(), Catch::Contains("'fallback'") && Catch::Contains("differ"));

  ChainOptions named;
  named.input_width = kWidth;
  named.stages.push_back({"primary", std::make_shared<Answer>(0, 1, "output")});
  named.stages.push_back({"fallback", std::make_shared<Answer>(0, 1, "score")});
  CHECK_FALSE(FallbackChain::create(std::move(named)).ok());
}

TEST_CASE("chain: bad configuration is refused") {
  const auto refused = [](ChainOptions o, const std::string& says) {
    auto chain = FallbackChain::create(std::move(o));
    REQUIRE_FALSE(chain.ok());
    CHECK(chain.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(chain.status().message(), Catch::Contains(says));
  };
  ChainOptions o;
  o.input_width = kWidth;
  refused(o, "no stages");
  o.stages.push_back({"", std::make_shared<Answer>(0)});
  refused(o, "no name");
  o.stages[0].name = "a";
  o.stages.push_back({"a", std::make_shared<Answer>(0)});
  refused(o, "used twice");
  o.stages.pop_back();
  o.stages.push_back({"b", nullptr});
  refused(o, "no stage");
  o.stages.pop_back();
  o.stages[0].breaker->failure_rate_threshold = 150;
  refused(o, "failure_rate_threshold");
  o.stages[0].breaker = ember::CircuitBreakerConfig{};
  o.confidence = ember::ConfidencePolicy{"output", 1.5};
  refused(o, "confidence");
  o.confidence.reset();
  o.input_width = 0;
  refused(o, "input_width");
}

TEST_CASE("chain: a malformed input is InvalidArgument and reaches no stage") {
  ChainOptions o;
  auto stage = std::make_shared<Answer>(0);
  o.stages.push_back({"primary", stage});
  auto chain = build(std::move(o));
  std::vector<double> wrong(4);
  auto t = Tensor::view(wrong, {1, 4});
  ChainResult r;
  CHECK(chain->run(*t, r).code() == StatusCode::kInvalidArgument);
  CHECK(chain->run(Tensor(), r).code() == StatusCode::kInvalidArgument);
  CHECK(stage->calls() == 0);
}

TEST_CASE("chain: when every stage fails, the error lists every reason") {
  ChainOptions o;
  o.stages.push_back({"a", inject(std::make_shared<Answer>(0), fault(FaultKind::kError))});
  o.stages.push_back({"b", inject(std::make_shared<Answer>(0), fault(FaultKind::kOutOfMemory))});
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  const auto s = chain->run(rows(x), r);
  CHECK(s.code() == StatusCode::kResourceExhausted);
  CHECK_THAT(s.message(), Catch::Contains("[a] Internal") && Catch::Contains("[b] ResourceExhausted"));
  CHECK(r.skipped.size() == 2);
}

TEST_CASE("chain: out of memory splits the batch when asked to") {
  ChainOptions o;
  FaultRule oom = fault(FaultKind::kOutOfMemory);
  oom.min_rows = 3;  // batches of 3 rows or more do not fit
  auto primary = inject(std::make_shared<Answer>(0), oom);
  o.stages.push_back({"primary", primary, ember::CircuitBreakerConfig{}, ember::OutOfMemoryPolicy::kSplitBatch});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  auto chain = build(std::move(o));
  std::vector<double> x;
  for (int r = 0; r < 5; ++r) x.insert(x.end(), {static_cast<double>(r), 0, 0});
  ChainResult result;
  REQUIRE(chain->run(rows(x), result).ok());
  CHECK(result.served_by == "primary");
  const auto out = result.outputs.find("output")->values<float>();
  REQUIRE(out.size() == 5);
  for (int r = 0; r < 5; ++r) CHECK(out[static_cast<std::size_t>(r)] == static_cast<float>(r));
  // 5 rows -> OOM; 2 + 3 -> 2 fits, 3 -> OOM; 1 + 2 fit: 5 calls, 2 of them faults.
  CHECK(primary->calls() == 5);
  CHECK(primary->injected() == 2);
}

TEST_CASE("chain: without a split, out of memory falls through") {
  FaultRule oom = fault(FaultKind::kOutOfMemory);
  oom.min_rows = 2;
  auto chain = two_stage(oom);
  std::vector<double> x{1, 0, 0, 2, 0, 0};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "fallback");
}

TEST_CASE("chain: a breaker opens after failures, then skips the stage with kUnavailable, then recovers") {
  auto clock = std::make_shared<ember::ManualClock>();
  ChainOptions o;
  o.clock = clock;
  FaultRule failures = fault(FaultKind::kError);
  failures.count = 4;  // the first 4 calls fail, then the stage is healthy again
  auto primary = inject(std::make_shared<Answer>(0), failures);
  ember::CircuitBreakerConfig b;
  b.sliding_window_size = 4;
  b.minimum_number_of_calls = 4;
  b.wait_duration_in_open_state = 30s;
  b.permitted_calls_in_half_open_state = 1;
  o.stages.push_back({"primary", primary, b});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  std::vector<std::string> transitions;
  o.on_breaker_change = [&](std::string_view stage, BreakerState from, BreakerState to) {
    transitions.push_back(std::string(stage) + ":" + std::string(ember::breaker_state_name(from)) + "->" +
                          std::string(ember::breaker_state_name(to)));
  };
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  for (int i = 0; i < 4; ++i) REQUIRE(chain->run(rows(x), r).ok());
  CHECK(chain->breaker("primary")->state() == BreakerState::kOpen);
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "fallback");
  CHECK(r.skipped[0].status.code() == StatusCode::kUnavailable);
  CHECK(primary->calls() == 4);  // the open breaker kept the call away
  clock->advance(30s);
  REQUIRE(chain->run(rows(x), r).ok());  // the trial call succeeds: CLOSED
  CHECK(r.served_by == "primary");
  CHECK(chain->breaker("primary")->state() == BreakerState::kClosed);
  const std::vector<std::string> expected{"primary:CLOSED->OPEN", "primary:OPEN->HALF_OPEN", "primary:HALF_OPEN->CLOSED"};
  CHECK(transitions == expected);
  const auto c = chain->counters()[0];
  CHECK(c.not_permitted == 1);
  CHECK(c.failures == 4);
  CHECK(c.served == 1);
  REQUIRE(c.breaker.has_value());
  CHECK(c.breaker->transitions == 3);
}

TEST_CASE("chain: slow calls, timed on the injectable clock, open the breaker") {
  auto clock = std::make_shared<ember::ManualClock>();
  ChainOptions o;
  o.clock = clock;
  auto primary = inject(std::make_shared<Answer>(0), fault(FaultKind::kSlow, 2s), clock);  // advances the clock
  ember::CircuitBreakerConfig b;
  b.sliding_window_size = 2;
  b.minimum_number_of_calls = 2;
  b.slow_call_duration = 1s;
  b.slow_call_rate_threshold = 100;
  o.stages.push_back({"primary", primary, b});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "primary");  // slow, but it answered
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(chain->breaker("primary")->state() == BreakerState::kOpen);
  CHECK(chain->counters()[0].slow_calls == 2);
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "fallback");
}

TEST_CASE("chain: a hang never holds the request past its budget") {
  ChainOptions o;
  auto primary = inject(std::make_shared<Answer>(0), fault(FaultKind::kHang, 2s));
  o.stages.push_back({"primary", primary});
  o.stages.push_back({"fallback", Answer::quick(100)});
  o.budget = 20ms;
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  // Answered while the 2 s hang still runs: the request did not wait for it (how long
  // it took is bench/'s business, not a unit test's).
  CHECK(chain->abandoned_in_flight() == 1);
  CHECK(r.served_by == "fallback");
  REQUIRE(r.skipped.size() == 1);
  CHECK(r.skipped[0].status.code() == StatusCode::kDeadlineExceeded);
  CHECK(chain->abandoned_in_flight() == 1);
  CHECK(chain->counters()[0].timeouts == 1);
  primary->release_hangs();
  for (int i = 0; i < 200 && chain->abandoned_in_flight() > 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(chain->abandoned_in_flight() == 0);
}

TEST_CASE("chain: a budget given per call overrides the chain's") {
  ChainOptions o;
  auto primary = inject(std::make_shared<Answer>(0), fault(FaultKind::kHang, 5s));
  o.stages.push_back({"primary", primary});
  o.stages.push_back({"fallback", Answer::quick(100)});
  auto chain = build(std::move(o));  // no budget by default
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r, ember::RunOptions{10ms}).ok());
  CHECK(r.served_by == "fallback");
  primary->release_hangs();
}

TEST_CASE("chain: the bulkhead caps abandoned calls; then the stage is skipped at once") {
  ChainOptions o;
  auto primary = inject(std::make_shared<Answer>(0), fault(FaultKind::kHang));  // until released
  o.stages.push_back({"primary", primary, std::nullopt});
  o.stages.push_back({"fallback", Answer::quick(100)});
  o.budget = 5ms;
  o.max_abandoned = 2;
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(chain->run(rows(x), r).ok());
    CHECK(r.skipped[0].status.code() == StatusCode::kDeadlineExceeded);
  }
  CHECK(chain->abandoned_in_flight() == 2);
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.skipped[0].status.code() == StatusCode::kResourceExhausted);  // refused without a call
  CHECK(chain->counters()[0].rejected_by_bulkhead == 1);
  CHECK(primary->calls() == 2);
  // The chain's destructor cancels the hung calls (the injector releases them) and waits.
}

TEST_CASE("chain: a cache serves recent answers when the models before it fail, until they expire") {
  auto clock = std::make_shared<ember::ManualClock>();
  ChainOptions o;
  o.clock = clock;
  FaultRule later = fault(FaultKind::kError);
  later.first_call = 2;  // healthy for two calls, then failing
  o.stages.push_back({"primary", inject(std::make_shared<Answer>(0), later), std::nullopt});
  auto cache = ember::make_cache_stage({/*capacity=*/2, /*time_to_live=*/60s}, clock);
  REQUIRE(cache.ok());
  o.stages.push_back({"cache", *cache, std::nullopt});
  o.stages.push_back({"default", *ember::make_default_stage({{"output", {-1}}}), std::nullopt});
  auto chain = build(std::move(o));
  std::vector<double> a{1, 0, 0}, b{2, 0, 0}, c{3, 0, 0}, ab{1, 0, 0, 2, 0, 0};
  ChainResult r;
  REQUIRE(chain->run(rows(a), r).ok());
  REQUIRE(chain->run(rows(b), r).ok());
  CHECK(r.served_by == "primary");
  // The primary now fails: cached rows are served, others get the default.
  REQUIRE(chain->run(rows(a), r).ok());
  CHECK(r.served_by == "cache");
  CHECK(first_output(r) == 1);
  REQUIRE(chain->run(rows(ab), r).ok());
  CHECK(r.served_by == "cache");
  CHECK(r.outputs.find("output")->values<float>()[1] == 2);
  REQUIRE(chain->run(rows(c), r).ok());
  CHECK(r.served_by == "default");
  CHECK(first_output(r) == -1);
  CHECK(r.skipped[1].status.code() == StatusCode::kNotFound);
  clock->advance(61s);
  REQUIRE(chain->run(rows(a), r).ok());
  CHECK(r.served_by == "default");  // expired
}

TEST_CASE("cache: the least recently used row goes first; batches are all-or-nothing") {
  auto cache = ember::make_cache_stage({2, 60s});
  REQUIRE(cache.ok());
  const auto answer = [](float v) {
    ember::NamedTensors out;
    REQUIRE(out.add("output", *Tensor::from_values(std::vector<float>{v}, {1})).ok());
    return out;
  };
  std::vector<double> a{1, 0, 0}, b{2, 0, 0}, c{3, 0, 0};
  (*cache)->observe(rows(a), answer(10));
  (*cache)->observe(rows(b), answer(20));
  CHECK((*cache)->run(rows(a)).ok());  // a is now more recent than b
  (*cache)->observe(rows(c), answer(30));  // evicts b
  CHECK((*cache)->run(rows(a)).ok());
  CHECK((*cache)->run(rows(c)).ok());
  auto miss = (*cache)->run(rows(b));
  CHECK(miss.status().code() == StatusCode::kNotFound);
  std::vector<double> ab{1, 0, 0, 2, 0, 0};
  CHECK_THAT((*cache)->run(rows(ab)).status().message(), Catch::Contains("1 of 2 rows"));
  CHECK_FALSE(ember::make_cache_stage({0, 60s}).ok());
  CHECK_FALSE(ember::make_cache_stage({10, 0s}).ok());
}

TEST_CASE("chain: an answer that arrives after the deadline still fills the cache") {
  ChainOptions o;
  auto primary = inject(std::make_shared<Answer>(0), fault(FaultKind::kSlow, 60ms));
  o.stages.push_back({"primary", primary, std::nullopt});
  o.stages.push_back({"cache", *ember::make_cache_stage({}), std::nullopt});
  o.stages.push_back({"default", *ember::make_default_stage({{"output", {-1}}}), std::nullopt});
  o.budget = 10ms;
  auto chain = build(std::move(o));
  std::vector<double> x{5, 0, 0};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "default");
  for (int i = 0; i < 200 && chain->abandoned_in_flight() > 0; ++i) std::this_thread::sleep_for(5ms);
  REQUIRE(chain->run(rows(x), r).ok());  // still slow, but the late answer is cached now
  CHECK(r.served_by == "cache");
  CHECK(first_output(r) == 5);
}

TEST_CASE("chain: low confidence still answers, flags the rows and counts them") {
  ChainOptions o;
  o.stages.push_back({"primary", std::make_shared<Answer>(0)});  // P(positive) = the first feature
  o.confidence = ember::ConfidencePolicy{"output", 0.8};
  auto chain = build(std::move(o));
  std::vector<double> x{0.95F, 0, 0, 0.5F, 0, 0, 0.1F, 0, 0, 0.25F, 0, 0};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.needs_review == std::vector<std::uint32_t>{1, 3});  // top probabilities 0.95, 0.5, 0.9, 0.75
  CHECK(chain->needs_review_count() == 2);
}

TEST_CASE("chain: confidence over class probabilities uses the top one") {
  ChainOptions o;
  o.stages.push_back({"primary", std::make_shared<Answer>(0, 3, "probs")});
  o.confidence = ember::ConfidencePolicy{"probs", 0.5};
  auto chain = build(std::move(o));
  std::vector<double> x{0.4F, 0, 0, 0.6F, 0, 0};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.needs_review == std::vector<std::uint32_t>{0});
}

TEST_CASE("chain: many threads at once, with faults on a probability, all get answers") {
  ChainOptions o;
  FaultRule flaky = fault(FaultKind::kThrow);
  flaky.probability = 0.3;
  auto primary = inject(std::make_shared<Answer>(0), flaky);
  o.stages.push_back({"primary", primary, std::nullopt});
  o.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  auto chain = build(std::move(o));
  std::atomic<int> served_primary{0}, served_fallback{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> x{static_cast<double>(t), 0, 0};
      ChainResult r;
      for (int i = 0; i < 500; ++i) {
        if (!chain->run(rows(x), r).ok()) {
          ++wrong;
          continue;
        }
        const float v = first_output(r);
        if (r.served_by == "primary" && v == static_cast<float>(t)) ++served_primary;
        else if (r.served_by == "fallback" && v == 100.0F + static_cast<float>(t)) ++served_fallback;
        else ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(served_primary + served_fallback == 2000);
  CHECK(static_cast<std::uint64_t>(served_fallback.load()) == primary->injected());
  CHECK(served_fallback > 400);  // about 30 %
  CHECK(served_fallback < 800);
}

TEST_CASE("fault rules: schedules and parsing") {
  auto r = ember::parse_fault_rule("slow:20ms,every=3,first=2,count=5,p=0.5,min_rows=4");
  REQUIRE(r.ok());
  CHECK(r->kind == FaultKind::kSlow);
  CHECK(r->duration == 20ms);
  CHECK(r->every == 3);
  CHECK(r->first_call == 2);
  CHECK(r->count == 5);
  CHECK(r->probability == 0.5);
  CHECK(r->min_rows == 4);
  CHECK(ember::parse_fault_rule("hang")->duration == 0ns);
  CHECK(ember::parse_fault_rule("hang:1.5s")->duration == 1500ms);
  for (const char* bad : {"", "explode", "slow", "slow:20", "slow:abc", "throw,p=2", "throw,every=0", "throw,x=1",
                          "throw,p", "hang:-1s", "throw,count=-1", "hang:99999s"}) {
    INFO(bad);
    CHECK(ember::parse_fault_rule(bad).status().code() == StatusCode::kInvalidArgument);
  }
  // every=3 from call 2: calls 2, 5, 8 fail.
  auto every = ember::parse_fault_rule("error,first=2,every=3");
  auto injector = inject(std::make_shared<Answer>(0), *every);
  std::vector<double> x{1, 2, 3};
  std::vector<int> failed;
  for (int call = 0; call < 9; ++call) {
    if (!injector->run(rows(x)).ok()) failed.push_back(call);
  }
  CHECK(failed == std::vector<int>{2, 5, 8});
}

TEST_CASE("chain: past the deadline, slow stages are skipped and quick ones still answer") {
  ChainOptions o;
  auto primary = inject(std::make_shared<Answer>(0), fault(FaultKind::kHang, 2s));
  o.stages.push_back({"primary", primary});
  o.stages.push_back({"cpu", std::make_shared<Answer>(50)});  // another model: not quick
  o.stages.push_back({"fallback", Answer::quick(100)});
  o.budget = 10ms;
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());
  CHECK(r.served_by == "fallback");
  REQUIRE(r.skipped.size() == 2);
  CHECK(r.skipped[1].stage == "cpu");
  CHECK(r.skipped[1].status.code() == StatusCode::kDeadlineExceeded);
  CHECK_THAT(r.skipped[1].status.message(), Catch::Contains("no time left"));
  primary->release_hangs();
}

namespace {
// A host stage whose every hook throws.
class Throwing final : public ember::Stage {
 public:
  explicit Throwing(bool in_outputs) : in_outputs_(in_outputs) {}
  ember::Result<ember::NamedTensors> run(const Tensor&) const override { throw 42; }
  std::string type() const override { return "throwing"; }
  ember::Result<std::vector<ember::OutputSpec>> outputs(std::size_t) const override {
    if (in_outputs_) throw std::runtime_error("no idea");
    return std::vector<ember::OutputSpec>{};
  }
  void observe(const Tensor&, const ember::NamedTensors&) const override { throw std::runtime_error("full"); }

 private:
  bool in_outputs_;
};
}  // namespace

TEST_CASE("chain: exceptions from a host's stage never leave the chain") {
  ChainOptions bad;
  bad.input_width = kWidth;
  bad.stages.push_back({"primary", std::make_shared<Throwing>(true)});
  auto refused = FallbackChain::create(std::move(bad));
  CHECK(refused.status().code() == StatusCode::kInternal);
  CHECK_THAT(refused.status().message(), Catch::Contains("outputs() threw: no idea"));

  ChainOptions o;
  o.stages.push_back({"primary", std::make_shared<Answer>(0)});
  o.stages.push_back({"observer", std::make_shared<Throwing>(false)});  // observe() throws
  o.stages.push_back({"odd", std::make_shared<Throwing>(false)});
  auto chain = build(std::move(o));
  std::vector<double> x{1, 2, 3};
  ChainResult r;
  REQUIRE(chain->run(rows(x), r).ok());  // observe() threw: the answer stands
  CHECK(r.served_by == "primary");

  ChainOptions odd;
  odd.stages.push_back({"primary", std::make_shared<Throwing>(false)});  // run() throws an int
  odd.stages.push_back({"fallback", std::make_shared<Answer>(100)});
  auto second = build(std::move(odd));
  REQUIRE(second->run(rows(x), r).ok());
  CHECK(r.served_by == "fallback");
  CHECK_THAT(r.skipped[0].status.message(), Catch::Contains("non-standard exception"));
}
