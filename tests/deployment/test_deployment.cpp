// Deployment: serving a name while its version changes underneath.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember::Deployment;
using ember::Registry;
using ember::StatusCode;
using ember::VersionState;
using ember_test::TempDir;

namespace {

struct Fixture {
  TempDir t;
  std::shared_ptr<Registry> registry;
  int bundles = 0;

  Fixture() {
    auto r = Registry::init(t / "reg");
    REQUIRE(r.ok());
    registry = std::move(*r);
  }
  // Publishes a model whose output is weight*a + 2b + 0.5; returns its version.
  std::int64_t publish(double weight) {
    const std::string name = "b" + std::to_string(++bundles);
    ember_test::write_linear_model(t / (name + "-model"), weight);
    ember::BundleCreateOptions o;
    o.name = "churn";
    REQUIRE(ember::create_bundle(t / (name + "-model"), t / name, o).ok());
    auto v = registry->publish(t / name, "alice", "");
    REQUIRE(v.ok());
    return *v;
  }
  void point(std::int64_t version) {
    REQUIRE(registry->set_alias("churn", "production", version, Registry::kAnyVersion, "alice", "").ok());
  }
};

// Waits (bounded) for a condition that background work makes true.
template <typename F>
bool eventually(F&& f) {
  for (int i = 0; i < 2000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

VersionState state_of(const Deployment& d, const std::string& version) {
  VersionState s = VersionState::kLoading;
  for (const auto& v : d.versions()) {
    if (v.version == version) s = v.state;
  }
  return s;
}

}  // namespace

TEST_CASE("deployment: serves the alias, swaps on reload, and says which version answered") {
  Fixture f;
  f.point(f.publish(1));
  auto d = Deployment::create(f.registry, "churn@production");
  REQUIRE(d.ok());
  ember::Prediction p;
  REQUIRE((*d)->predict(R"({"a": 1, "b": 1})", p).ok());
  CHECK(p.value("output", 0).value() == Approx(3.5));
  CHECK(p.model_version == "1");
  CHECK((*d)->reload().ok());  // nothing moved: nothing to do
  CHECK((*d)->swaps() == 0);

  f.point(f.publish(10));
  auto held = (*d)->current();  // a request still running on version 1
  REQUIRE((*d)->reload().ok());
  CHECK((*d)->swaps() == 1);
  REQUIRE((*d)->predict(R"({"a": 1, "b": 1})", p).ok());
  CHECK(p.value("output", 0).value() == Approx(12.5));
  CHECK(p.model_version == "2");
  CHECK(state_of(**d, "1") == VersionState::kDraining);
  CHECK(held->version() == "1");
  held.reset();  // its last request ended: destroyed on the executor
  CHECK(eventually([&] { return state_of(**d, "1") == VersionState::kUnloaded; }));
  CHECK(state_of(**d, "2") == VersionState::kReady);
  auto log = f.registry->audit();
  REQUIRE(log.ok());
  std::set<std::string> events;
  for (const auto& e : *log) events.insert(e.event);
  CHECK(events.count("deploy_ready") == 1);
  CHECK(events.count("deploy_unloaded") == 1);
}

TEST_CASE("deployment: a version that fails to load or to match leaves the old one serving") {
  Fixture f;
  f.point(f.publish(1));
  std::vector<ember::DeploymentEvent> events;
  std::mutex mu;
  ember::DeploymentOptions o;
  o.on_event = [&](const ember::DeploymentEvent& e) {
    std::lock_guard<std::mutex> g(mu);
    events.push_back(e);
  };
  auto d = Deployment::create(f.registry, "churn@production", o);
  REQUIRE(d.ok());

  SECTION("a chain that does not fit the schema") {
    ember_test::write_linear_model(f.t / "bad-model", 1);
    std::ofstream(f.t / "bad-model" / "linear.json")
        << R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[1,2,3]],"intercept":[0]})";
    ember::BundleCreateOptions bo;
    bo.name = "churn";
    REQUIRE(ember::create_bundle(f.t / "bad-model", f.t / "bad", bo).ok());
    f.point(*f.registry->publish(f.t / "bad", "alice", ""));
  }
  SECTION("another request schema") {
    ember_test::write_linear_model(f.t / "other-model", 1);
    std::ofstream(f.t / "other-model" / "schema.json") << R"({"type": "object", "properties": {
        "a": {"type": "number"}, "c": {"type": "number"}}, "required": ["a", "c"]})";
    ember::BundleCreateOptions bo;
    bo.name = "churn";
    REQUIRE(ember::create_bundle(f.t / "other-model", f.t / "other", bo).ok());
    f.point(*f.registry->publish(f.t / "other", "alice", ""));
  }
  const ember::Status s = (*d)->reload();
  CHECK_FALSE(s.ok());
  ember::Prediction p;
  REQUIRE((*d)->predict(R"({"a": 1, "b": 1})", p).ok());
  CHECK(p.model_version == "1");
  CHECK(state_of(**d, "2") == VersionState::kFailed);
  const auto statuses = (*d)->versions();
  CHECK_FALSE(statuses.back().reason.ok());
  std::lock_guard<std::mutex> g(mu);
  REQUIRE(events.size() >= 3);
  CHECK(events.back().status.state == VersionState::kFailed);
  CHECK(events.back().name == "churn");
}

TEST_CASE("deployment: warm-up runs before a version serves, and a version that cannot answer fails") {
  Fixture f;
  f.point(f.publish(1));
  ember::DeploymentOptions o;
  o.warmup_records = {R"({"a": 1, "b": 2})", R"({"not": "valid"})"};  // an invalid record is fine
  auto d = Deployment::create(f.registry, "churn@production", o);
  REQUIRE(d.ok());
  CHECK((*d)->current()->counters().requests >= 2);
}

TEST_CASE("deployment: 8 threads predict through 100 swaps without one failed request") {
  const bool batched = GENERATE(false, true);
  INFO("batching " << batched);
  Fixture f;
  const auto v1 = f.publish(1);
  const auto v2 = f.publish(3);
  f.point(v1);
  auto pool = ember::ThreadPool::create({});
  REQUIRE(pool.ok());
  ember::DeploymentOptions o;
  o.executor = *pool;
  o.batching.enabled = batched;  // rows prepared on one version run on that version
  o.batching.max_queue_delay = std::chrono::microseconds(200);
  auto d = Deployment::create(f.registry, "churn@production", o);
  REQUIRE(d.ok());
  std::atomic<bool> stop{false};
  std::atomic<long> answered{0}, failed{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      ember::Prediction p;
      while (!stop.load()) {
        const auto s = batched ? (*d)->predict(R"({"a": 1, "b": 1})", p, ember::RequestOptions{})
                               : (*d)->predict(R"({"a": 1, "b": 1})", p);
        if (!s.ok()) {
          ++failed;
          continue;
        }
        const double out = p.value("output", 0).value_or(-1);
        // Each answer is wholly one version's: 3.5 from version 1, 5.5 from version 2.
        if (!((p.model_version == "1" && out == 3.5) || (p.model_version == "2" && out == 5.5))) ++wrong;
        ++answered;
      }
    });
  }
  for (int swap = 0; swap < 100; ++swap) {
    f.point(swap % 2 == 0 ? v2 : v1);
    REQUIRE((*d)->reload().ok());
  }
  stop = true;
  for (auto& c : clients) c.join();
  CHECK(failed == 0);
  CHECK(wrong == 0);
  CHECK(answered > 0);
  CHECK((*d)->swaps() == 100);
  d->reset();
  CHECK(f.registry->verify_audit().ok());
}

TEST_CASE("deployment: the alias watch and notify() pick up a moved alias off the caller's thread") {
  Fixture f;
  f.point(f.publish(1));
  const auto v2 = f.publish(2);
  ember::DeploymentOptions o;
  SECTION("watch") {
    o.watch_interval = std::chrono::milliseconds(10);
    auto d = Deployment::create(f.registry, "churn@production", o);
    REQUIRE(d.ok());
    f.point(v2);
    CHECK(eventually([&] { return (*d)->current()->version() == "2"; }));
  }
  SECTION("notify") {
    auto d = Deployment::create(f.registry, "churn@production", o);
    REQUIRE(d.ok());
    f.point(v2);
    (*d)->notify();
    CHECK(eventually([&] { return (*d)->current()->version() == "2"; }));
  }
}

TEST_CASE("deployment: a model directory reloads in place") {
  TempDir t;
  ember_test::write_linear_model(t / "model", 1);
  auto d = Deployment::create(t / "model");
  REQUIRE(d.ok());
  CHECK((*d)->name() == "model");
  ember_test::write_linear_model(t / "model", 5);
  REQUIRE((*d)->reload().ok());
  ember::Prediction p;
  REQUIRE((*d)->predict(R"({"a": 1, "b": 1})", p).ok());
  CHECK(p.value("output", 0).value() == Approx(7.5));
  CHECK(p.model_version == "2");
  CHECK(Deployment::create(t / "missing").status().code() == StatusCode::kNotFound);
}

TEST_CASE("deployment: bad sources are clear errors") {
  Fixture f;
  CHECK(Deployment::create(f.registry, "churn@production").status().code() == StatusCode::kNotFound);
  CHECK(Deployment::create(f.registry, "bad ref").status().code() == StatusCode::kInvalidArgument);
  CHECK(Deployment::create(std::shared_ptr<Registry>(), "churn").status().code() == StatusCode::kInvalidArgument);
  f.point(f.publish(1));
  ember::DeploymentOptions o;
  o.memory_factor = 1e15;  // no machine has that much beside the serving version
  auto d = Deployment::create(f.registry, "churn@production", o);
  REQUIRE(d.ok());  // the first version has nothing beside it
  f.point(f.publish(2));
  CHECK((*d)->reload().code() == StatusCode::kResourceExhausted);
}

TEST_CASE("deployment: switch_to serves a chosen version of the same name") {
  Fixture f;
  const auto v1 = f.publish(1);
  f.publish(2);
  f.point(v1);
  auto d = Deployment::create(f.registry, "churn@production");
  REQUIRE(d.ok());
  REQUIRE((*d)->switch_to("churn/2").ok());
  CHECK((*d)->current()->version() == "2");
  CHECK((*d)->switch_to("fraud/1").code() == StatusCode::kInvalidArgument);
  CHECK((*d)->switch_to("churn/9").code() == StatusCode::kNotFound);
  CHECK((*d)->current()->version() == "2");  // a failed switch changes nothing
  REQUIRE((*d)->switch_to("churn@production").ok());
  CHECK((*d)->current()->version() == "1");
  TempDir other;
  ember_test::write_linear_model(other / "model", 1);
  auto dir = Deployment::create(other / "model");
  REQUIRE(dir.ok());
  CHECK((*dir)->switch_to("churn/1").code() == StatusCode::kFailedPrecondition);
}
