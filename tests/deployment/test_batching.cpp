// Dynamic batching and the asynchronous API of a Deployment.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember::Answer;
using ember::Deployment;
using ember::StatusCode;
using ember_test::TempDir;

namespace {

constexpr const char* kRecord = R"({"a": 1, "b": 1})";  // answered 3.5 by the linear model

std::unique_ptr<Deployment> deploy(const TempDir& t, const ember::DeploymentOptions& o) {
  ember_test::write_linear_model(t / "model", 1);
  auto d = Deployment::create(t / "model", o);
  REQUIRE(d.ok());
  return std::move(*d);
}

ember::DeploymentOptions batching(std::size_t max_rows, std::chrono::microseconds delay) {
  ember::DeploymentOptions o;
  o.batching.enabled = true;
  o.batching.max_batch_rows = max_rows;
  o.batching.max_queue_delay = delay;
  return o;
}

// The batcher is kept busy by a first call that takes `ms` (an injected slow fault);
// with `every_call`, every call is that slow.
ember::DeploymentOptions busy_first(ember::DeploymentOptions o, int ms, bool every_call = false) {
  auto rule = ember::parse_fault_rule("slow:" + std::to_string(ms) + "ms" + (every_call ? "" : ",count=1"));
  REQUIRE(rule.ok());
  o.model.inject["linear"].push_back(*rule);
  return o;
}

}  // namespace

TEST_CASE("batching: concurrent requests share forward passes and each gets its own answer") {
  TempDir t;
  auto d = deploy(t, batching(16, std::chrono::milliseconds(2)));
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      ember::Prediction p;
      for (int i = 0; i < 50; ++i) {
        // Each client its own b, so a mixed-up answer would show.
        const std::string record = R"({"a": 1, "b": )" + std::to_string(c) + "}";
        const ember::Status s = d->predict(record, p, ember::RequestOptions{});
        if (!s.ok() || p.value("output", 0).value_or(-1) != 1.5 + 2.0 * c || p.model_version != "1") ++wrong;
      }
    });
  }
  for (auto& c : clients) c.join();
  CHECK(wrong == 0);
  const auto counters = d->counters();
  CHECK(counters.requests == 400);
  CHECK(counters.batched_rows == 400);
  CHECK(counters.batches < 400);  // requests were gathered
  WARN("400 requests in " << counters.batches << " forward passes");
}

TEST_CASE("async: a future, a callback and a PendingAnswer that is polled without blocking") {
  TempDir t;
  for (bool batched : {false, true}) {
    INFO("batching " << batched);
    auto d = deploy(t, batched ? batching(8, std::chrono::microseconds(200)) : ember::DeploymentOptions{});
    auto future = d->submit(kRecord);
    Answer a = future.get();
    INFO(a.status.to_string());
    REQUIRE(a.status.ok());
    CHECK(a.prediction.value("output", 0).value() == Approx(3.5));
    CHECK(a.batch_rows >= 1);

    std::promise<Answer> got;
    d->submit(kRecord, [&](Answer&& answer) { got.set_value(std::move(answer)); });
    CHECK(got.get_future().get().status.ok());

    auto pending = d->submit_pending(kRecord);
    Answer polled;
    int polls = 0;
    while (!pending.try_get(polled)) {
      ++polls;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      REQUIRE(polls < 100000);
    }
    CHECK(polled.prediction.value("output", 0).value() == Approx(3.5));
    CHECK_FALSE(pending.ready());          // taken
    CHECK_FALSE(pending.try_get(polled));  // once
    // An invalid record is answered with its errors, never queued.
    auto bad = d->submit(R"({"a": "x"})").get();
    CHECK(bad.status.code() == StatusCode::kInvalidArgument);
    std::filesystem::remove_all(t / "model");
  }
}

TEST_CASE("batching: a full queue refuses at once, and queued requests are answered when the deployment goes") {
  TempDir t;
  auto o = busy_first(batching(1, std::chrono::milliseconds(1)), 200);
  o.batching.max_queue_rows = 2;
  auto d = deploy(t, o);  // (warm-up runs nothing: no warm-up records)
  auto first = d->submit(kRecord);   // taken by the batcher: slow
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto second = d->submit(kRecord);  // queued
  auto third = d->submit(kRecord);   // queued
  auto fourth = d->submit(kRecord);  // the queue is full
  CHECK(fourth.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  CHECK(fourth.get().status.code() == StatusCode::kResourceExhausted);
  d.reset();
  CHECK(first.get().status.ok());
  CHECK(second.get().status.ok());
  CHECK(third.get().status.ok());
}

TEST_CASE("batching: deadlines count from arrival; late requests are rejected or answered by the cheap stages") {
  TempDir t;
  SECTION("refused on admission when the deadline cannot be met") {
    auto d = deploy(t, batching(4, std::chrono::microseconds(100)));
    ember::RequestOptions ro;
    ro.deadline = std::chrono::microseconds(1);
    std::this_thread::sleep_for(std::chrono::microseconds(5));
    auto a = d->submit(kRecord, ro);
    CHECK(a.get().status.code() == StatusCode::kDeadlineExceeded);
    CHECK(d->counters().refused_deadline == 1);
  }
  SECTION("timed out while queued behind a slow batch: rejected") {
    auto d = deploy(t, busy_first(batching(1, std::chrono::microseconds(100)), 300));
    auto slow = d->submit(kRecord);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ember::RequestOptions ro;
    ro.deadline = std::chrono::milliseconds(50);
    Answer late = d->submit(kRecord, ro).get();
    INFO(late.status.to_string() << " queue " << late.queue_time.count() << " rows " << late.batch_rows);
    CHECK(late.status.code() == StatusCode::kDeadlineExceeded);
    CHECK(slow.get().status.ok());
    CHECK(d->counters().timed_out == 1);
  }
  SECTION("timed out while queued: answered by the stages after the model") {
    auto o = busy_first(batching(1, std::chrono::microseconds(100)), 300, true);
    o.batching.timeout_action = ember::TimeoutAction::kFallback;
    auto d = deploy(t, o);
    auto slow = d->submit(kRecord);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ember::RequestOptions ro;
    ro.deadline = std::chrono::milliseconds(50);
    Answer late = d->submit(kRecord, ro).get();
    REQUIRE(late.status.ok());
    CHECK(late.prediction.served_by == "default");  // the model stage was given no time
    CHECK(late.prediction.value("output", 0).value() == 0.0);
    CHECK(slow.get().status.ok());
    CHECK(d->counters().timed_out == 1);
  }
}

TEST_CASE("batching: strict priority levels, then earliest deadline, then arrival") {
  TempDir t;
  auto d = deploy(t, busy_first(batching(1, std::chrono::microseconds(50)), 200));
  std::mutex mu;
  std::vector<std::string> order;
  const auto record = [&](std::string tag) {
    return [&mu, &order, tag](Answer&& a) {
      std::lock_guard<std::mutex> g(mu);
      order.push_back(a.status.ok() ? tag : tag + "!");
    };
  };
  auto busy = d->submit(kRecord);  // occupies the batcher for 200 ms
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ember::RequestOptions low;
  low.priority = 2;
  ember::RequestOptions high;
  high.priority = 0;
  ember::RequestOptions normal_soon;
  normal_soon.deadline = std::chrono::seconds(5);
  ember::RequestOptions normal_later;
  normal_later.deadline = std::chrono::seconds(10);
  d->submit(kRecord, record("low"), low);
  d->submit(kRecord, record("normal-later"), normal_later);
  d->submit(kRecord, record("normal-soon"), normal_soon);
  d->submit(kRecord, record("high"), high);
  REQUIRE(busy.get().status.ok());
  d.reset();  // answers everything queued
  CHECK(order == std::vector<std::string>{"high", "normal-soon", "normal-later", "low"});
}

TEST_CASE("batching: the host's request id is carried, and warm-up runs the batch sizes the version will see") {
  TempDir t;
  auto o = batching(8, std::chrono::microseconds(100));
  o.batching.preferred_batch_rows = {4};
  o.warmup_records = {kRecord, R"({"a": 2, "b": 0})"};
  auto d = deploy(t, o);
  // One by one (2), then batches of 4 and of 8.
  CHECK(d->current()->counters().requests == 2 + 4 + 8);
  ember::RequestOptions ro;
  ro.request_id = 4242;
  CHECK(d->submit(kRecord, ro).get().prediction.request_id == 4242);
  ember::Prediction p;
  REQUIRE(d->predict(kRecord, p, ro).ok());
  CHECK(p.request_id == 4242);
}

TEST_CASE("batching: bad options are refused") {
  TempDir t;
  ember_test::write_linear_model(t / "model", 1);
  auto o = batching(0, std::chrono::microseconds(1));
  CHECK(Deployment::create(t / "model", o).status().code() == StatusCode::kInvalidArgument);
  o = batching(4, std::chrono::microseconds(1));
  o.batching.preferred_batch_rows = {8};
  CHECK(Deployment::create(t / "model", o).status().code() == StatusCode::kInvalidArgument);
}

