// TrafficSplit through the public API: sticky arms, feature flags, weight changes under
// load (blue-green), and a shadow that never changes an answer, never blocks, and
// measures disagreement.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <span>
#include <thread>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember_test::TempDir;
using ember_test::write_linear_model;

namespace {

std::shared_ptr<const ember::Deployment> deploy(const std::filesystem::path& dir) {
  auto d = ember::Deployment::create(dir);
  REQUIRE(d.ok());
  return std::shared_ptr<const ember::Deployment>(std::move(*d));
}

std::string record(int a, int b) { return R"({"a": )" + std::to_string(a) + R"(, "b": )" + std::to_string(b) + "}"; }

// Holds posted tasks until told to run them: a shadow that never gets a thread.
class HeldExecutor final : public ember::TaskExecutor {
 public:
  bool post(std::function<void()> task) override {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    return true;
  }
  void run_all() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
};

}  // namespace

TEST_CASE("arms are sticky by key, 0 means 0, and a feature flag picks an arm") {
  TempDir tmp;
  auto v1 = deploy(write_linear_model(tmp.path() / "v1", 1.0));  // output = a + 2b + 0.5
  auto v2 = deploy(write_linear_model(tmp.path() / "v2", 3.0));  // output = 3a + 2b + 0.5
  auto split = ember::TrafficSplit::create({{"control", v1, 100}, {"candidate", v2, 0}}, {});
  REQUIRE(split.ok());
  ember::Prediction p;
  std::size_t arm = 9;
  for (int i = 0; i < 2000; ++i) {
    REQUIRE((*split)->predict(record(1, 1), "user-" + std::to_string(i), p, &arm).ok());
    REQUIRE(arm == 0);
    REQUIRE(p.value().value() == Approx(3.5));
  }
  REQUIRE((*split)->predict(record(1, 1), "user-1", p, &arm, "candidate").ok());
  CHECK(arm == 1);
  CHECK(p.value().value() == Approx(5.5));
  CHECK((*split)->predict(record(1, 1), "user-1", p, &arm, "nope").code() == ember::StatusCode::kNotFound);

  // 50:50: each key keeps its arm on every call, and only keys that go to the
  // candidate moved.
  const double half[] = {50, 50};
  REQUIRE((*split)->set_weights(half).ok());
  int candidate = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string key = "user-" + std::to_string(i);
    REQUIRE((*split)->predict(record(1, 1), key, p, &arm).ok());
    REQUIRE(arm == (*split)->arm_of(key));
    REQUIRE(p.value().value() == Approx(arm == 0 ? 3.5 : 5.5));
    candidate += arm == 1;
  }
  CHECK(std::abs(candidate - 2000) < 150);
  const double three[] = {40, 30, 30};
  CHECK((*split)->set_weights(three).code() == ember::StatusCode::kInvalidArgument);
  const double bad[] = {60, 60};
  CHECK((*split)->set_weights(bad).code() == ember::StatusCode::kInvalidArgument);
  CHECK((*split)->weights() == std::vector<double>{50, 50});
}

TEST_CASE("bad arms are refused") {
  TempDir tmp;
  auto v1 = deploy(write_linear_model(tmp.path() / "v1", 1.0));
  CHECK_FALSE(ember::TrafficSplit::create({}, {}).ok());
  CHECK_FALSE(ember::TrafficSplit::create({{"a", nullptr, 100}}, {}).ok());
  CHECK_FALSE(ember::TrafficSplit::create({{"a", v1, 50}, {"a", v1, 50}}, {}).ok());
  CHECK_FALSE(ember::TrafficSplit::create({{"", v1, 100}}, {}).ok());
  CHECK_FALSE(ember::TrafficSplit::create({{"a", v1, 100}, {"b", v1, -1}}, {}).ok());
}

TEST_CASE("a shadow never changes an answer, and measures how much it disagrees") {
  TempDir tmp;
  auto v1 = deploy(write_linear_model(tmp.path() / "v1", 1.0));
  auto v2 = deploy(write_linear_model(tmp.path() / "v2", 1.1));  // output = 1.1a + 2b + 0.5
  ember::TrafficSplitOptions options;
  options.shadow.deployment = v2;
  options.shadow.tolerance = 0.25;
  auto split = ember::TrafficSplit::create({{"control", v1, 100}}, options);
  REQUIRE(split.ok());
  ember::Prediction p;
  double sum_diff = 0;
  int differ = 0;
  constexpr int kRequests = 600;
  for (int i = 0; i < kRequests; ++i) {
    const int a = i % 6;  // |diff| = 0.1 a: disagrees (> 0.25) for a >= 3
    REQUIRE((*split)->predict(record(a, 2), "k" + std::to_string(i), p).ok());
    REQUIRE(p.value().value() == Approx(a + 4.5));  // the primary's answer, always
    sum_diff += 0.1 * a;
    differ += a >= 3;
  }
  REQUIRE((*split)->wait_for_shadow(std::chrono::seconds(30)));
  const auto s = (*split)->shadow_stats();
  CHECK(s.copied == kRequests);
  CHECK(s.dropped == 0);
  CHECK(s.answered == kRequests);
  CHECK(s.compared == kRequests);
  CHECK(s.disagreed == static_cast<std::uint64_t>(differ));
  CHECK(s.disagreement_rate() == Approx(0.5));
  CHECK(s.mean_abs_diff.at("output") == Approx(sum_diff / kRequests));
}

TEST_CASE("a shadow that falls behind drops copies, counted, and never blocks a request") {
  TempDir tmp;
  auto v1 = deploy(write_linear_model(tmp.path() / "v1", 1.0));
  auto held = std::make_shared<HeldExecutor>();
  ember::TrafficSplitOptions options;
  options.shadow.deployment = v1;
  options.shadow.max_queue = 16;
  options.executor = held;
  auto split = ember::TrafficSplit::create({{"control", v1, 100}}, options);
  REQUIRE(split.ok());
  ember::Prediction p;
  for (int i = 0; i < 100; ++i) REQUIRE((*split)->predict(record(i, 0), "k", p).ok());
  auto s = (*split)->shadow_stats();
  CHECK(s.copied == 16);
  CHECK(s.dropped == 84);
  CHECK(s.answered == 0);
  held->run_all();  // the shadow's thread comes at last
  REQUIRE((*split)->wait_for_shadow(std::chrono::seconds(30)));
  s = (*split)->shadow_stats();
  CHECK(s.answered == 16);
  CHECK(s.disagreed == 0);
}

TEST_CASE("blue-green: all traffic switches at once and back while requests keep coming") {
  TempDir tmp;
  auto blue = deploy(write_linear_model(tmp.path() / "blue", 1.0));
  auto green = deploy(write_linear_model(tmp.path() / "green", 3.0));
  auto split = ember::TrafficSplit::create({{"blue", blue, 100}, {"green", green, 0}}, {});
  REQUIRE(split.ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      ember::Prediction p;
      std::size_t arm = 0;
      for (int i = 0; !stop.load(); ++i) {
        if (!(*split)->predict(record(2, 0), "user-" + std::to_string(t * 100000 + i), p, &arm).ok()) {
          ++failures;
          continue;
        }
        if (p.value().value() != (arm == 0 ? 2.5 : 6.5)) ++wrong;  // the arm that answered is the arm reported
      }
    });
  }
  const double to_green[] = {0, 100}, to_blue[] = {100, 0};
  for (int i = 0; i < 200; ++i) REQUIRE((*split)->set_weights(i % 2 ? to_blue : to_green).ok());
  REQUIRE((*split)->set_weights(to_green).ok());
  ember::Prediction p;
  std::size_t arm = 0;
  REQUIRE((*split)->predict(record(2, 0), "anyone", p, &arm).ok());
  CHECK(arm == 1);
  stop = true;
  for (auto& c : clients) c.join();
  CHECK(failures == 0);
  CHECK(wrong == 0);
}

TEST_CASE("segments route by a value of the record before the weights; a forced arm comes first") {
  TempDir tmp;
  auto v1 = deploy(write_linear_model(tmp.path() / "v1", 1.0));
  auto v2 = deploy(write_linear_model(tmp.path() / "v2", 3.0));
  ember::TrafficSplitOptions options;
  options.segments.push_back({"/b", "7", "candidate"});
  auto split = ember::TrafficSplit::create({{"control", v1, 100}, {"candidate", v2, 0}}, options);
  REQUIRE(split.ok());
  ember::Prediction p;
  std::size_t arm = 9;
  REQUIRE((*split)->predict(record(1, 7), "anyone", p, &arm).ok());
  CHECK(arm == 1);
  CHECK(p.value().value() == Approx(17.5));
  REQUIRE((*split)->predict(record(1, 6), "anyone", p, &arm).ok());
  CHECK(arm == 0);
  REQUIRE((*split)->predict(record(1, 7), "anyone", p, &arm, "control").ok());
  CHECK(arm == 0);
  CHECK_FALSE((*split)->predict("not json", "anyone", p, &arm).ok());  // routed by weight, refused by the arm
  CHECK(arm == 0);

  options.segments = {{"b", "7", "candidate"}};
  CHECK(ember::TrafficSplit::create({{"control", v1, 100}, {"candidate", v2, 0}}, options).status().code() ==
        ember::StatusCode::kInvalidArgument);
  options.segments = {{"/b", "7", "nobody"}};
  CHECK(ember::TrafficSplit::create({{"control", v1, 100}, {"candidate", v2, 0}}, options).status().code() ==
        ember::StatusCode::kInvalidArgument);
}

TEST_CASE("a shadow can copy only some arms' answers and hands each comparison to the host") {
  TempDir tmp;
  auto v1 = deploy(write_linear_model(tmp.path() / "v1", 1.0));  // a + 2b + 0.5
  auto v3 = deploy(write_linear_model(tmp.path() / "v3", 3.0));  // 3a + 2b + 0.5
  std::mutex mu;
  std::vector<ember::ShadowComparison> seen;
  ember::TrafficSplitOptions o;
  o.shadow.deployment = v1;
  o.shadow.copy_arms = {"candidate"};
  o.shadow.on_compare = [&](std::span<const ember::ShadowComparison> batch) {
    std::lock_guard lock(mu);
    seen.insert(seen.end(), batch.begin(), batch.end());
  };
  auto split = ember::TrafficSplit::create({{"control", v1, 50}, {"candidate", v3, 50}}, o);
  REQUIRE(split.ok());
  ember::Prediction p;
  std::size_t arm = 0, on_candidate = 0;
  for (int i = 0; i < 400; ++i) {
    REQUIRE((*split)->predict(record(i % 7, 1), "user-" + std::to_string(i), p, &arm).ok());
    on_candidate += arm;
    if (i % 50 == 0) REQUIRE((*split)->wait_for_shadow(std::chrono::seconds(30)));
  }
  REQUIRE((*split)->wait_for_shadow(std::chrono::seconds(30)));
  const auto stats = (*split)->shadow_stats();
  CHECK(stats.copied + stats.dropped == on_candidate);
  std::lock_guard lock(mu);
  CHECK(seen.size() == stats.answered);
  CHECK(seen.size() > 100);
  for (const auto& c : seen) {
    CHECK(c.arm == 1);
    // The candidate answered 3a + 2 + 0.5, the control a + 2 + 0.5: 2a apart, a = (primary - 2.5) / 3.
    const double a = (c.primary - 2.5) / 3.0;
    CHECK(c.shadow == Approx(a + 2.5));
  }
  ember::TrafficSplitOptions bad;
  bad.shadow.deployment = v1;
  bad.shadow.copy_arms = {"nobody"};
  CHECK(ember::TrafficSplit::create({{"control", v1, 100}}, bad).status().code() == ember::StatusCode::kInvalidArgument);
}
