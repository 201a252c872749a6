// Monitor through the public API: drifted traffic through a Deployment raises alerts for
// exactly the drifted features; outcomes, the prediction log, the retraining hook and
// the report.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember_test::TempDir;

namespace {

// Four numbers (x4 is personal data) and a category, answered by a linear model.
std::filesystem::path write_model(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "schema.json") << R"({"type": "object", "properties": {
      "x1": {"type": "number"}, "x2": {"type": "number"}, "x3": {"type": "number"},
      "x4": {"type": "number", "x-ember-personal": true, "x-ember-training-range": {"min": -10, "max": 10}},
      "plan": {"type": "string", "enum": ["basic", "plus", "pro"]}},
      "required": ["x1", "x2", "x3", "x4", "plan"], "additionalProperties": false})";
  std::ofstream(dir / "linear.json")
      << R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[0.1,0.05,0.02,0.1,0.1]],"intercept":[0.2]})";
  std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
      {"name": "linear", "type": "linear", "path": "linear.json"},
      {"name": "default", "type": "default", "outputs": {"output": 0}}]})";
  return dir;
}

struct Traffic {
  double x2_shift = 0;
  std::array<double, 3> plan{0.5, 0.3, 0.2};
};

std::string record(std::mt19937_64& rng, const Traffic& t) {
  std::normal_distribution<double> n01(0, 1);
  std::uniform_real_distribution<double> u(0, 10);
  std::discrete_distribution<int> plan({t.plan[0], t.plan[1], t.plan[2]});
  static const char* plans[] = {"basic", "plus", "pro"};
  std::ostringstream s;
  s.precision(17);
  s << R"({"x1": )" << n01(rng) << R"(, "x2": )" << 5 + 2 * n01(rng) + t.x2_shift << R"(, "x3": )" << u(rng)
    << R"(, "x4": )" << n01(rng) << R"(, "plan": ")" << plans[plan(rng)] << R"("})";
  return s.str();
}

// Reference statistics of 5000 rows of undrifted traffic, read back through read_table.
ember::ReferenceStats reference(const std::filesystem::path& dir, const ember::Schema& schema) {
  std::mt19937_64 rng(7);
  {
    std::ofstream f(dir / "train.jsonl");
    for (int i = 0; i < 5000; ++i) f << record(rng, {}) << "\n";
  }
  auto table = ember::read_table(dir / "train.jsonl", schema);
  REQUIRE(table.ok());
  REQUIRE(table->rows == 5000);
  return ember::describe_table(*table, {});
}

// A model directory in a temporary folder, its schema, and models that tell a monitor.
struct Rig {
  TempDir tmp;
  std::filesystem::path dir = write_model(tmp.path() / "model");
  ember::Schema schema = ember::Schema::load(dir / "schema.json").value();
  std::unique_ptr<ember::Model> watched_by(const std::shared_ptr<ember::Monitor>& monitor, std::string version = {}) {
    ember::ModelOptions options;
    options.observers.push_back(monitor);
    options.version = std::move(version);
    auto model = ember::Model::load(dir, options);
    REQUIRE(model.ok());
    return std::move(*model);
  }
};

}  // namespace

TEST_CASE("drifted traffic through a deployment raises alerts for exactly the drifted features") {
  Rig rig;
  auto registry = ember::Registry::init(rig.tmp.path() / "registry");
  INFO(registry.status().to_string());
  REQUIRE(registry.ok());
  std::shared_ptr<ember::Registry> reg = std::move(*registry);

  std::vector<ember::Alert> alerts;
  std::mutex mu;
  ember::MonitorOptions mo;
  mo.model = "churn";
  mo.reference = reference(rig.tmp.path(), rig.schema);
  mo.window_rows = 2048;
  mo.registry = reg;
  mo.on_alert = [&](const ember::Alert& a) {
    std::lock_guard lock(mu);
    alerts.push_back(a);
  };
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  ember::DeploymentOptions dopt;
  dopt.monitor = *monitor;
  auto deployment = ember::Deployment::create(rig.dir, dopt);
  REQUIRE(deployment.ok());

  std::mt19937_64 rng(11);
  ember::Prediction p;
  for (int i = 0; i < 2048; ++i) REQUIRE((*deployment)->predict(record(rng, {}), p).ok());
  auto windows = (*monitor)->windows();
  REQUIRE(windows.size() == 1);
  REQUIRE(windows[0].rows == 2048);
  REQUIRE(windows[0].drift.has_value());
  CHECK(windows[0].drift->compared == 5);
  CHECK(windows[0].drift->drifted == 0);
  CHECK(alerts.empty());

  // x2 moves by 0.75 standard deviations and the plans' mix changes: two of five drift.
  for (int i = 0; i < 2048; ++i) REQUIRE((*deployment)->predict(record(rng, {1.5, {0.2, 0.3, 0.5}}), p).ok());
  windows = (*monitor)->windows();
  REQUIRE(windows.size() == 2);
  const auto& d = *windows[1].drift;
  std::set<std::string> drifted;
  for (const auto& c : d.features) {
    if (c.drift) drifted.insert(c.name);
    CHECK(c.test == (c.name == "plan" ? "jensen_shannon" : "wasserstein"));
  }
  CHECK(drifted == std::set<std::string>{"x2", "plan"});
  CHECK_FALSE(d.dataset_drift);  // 2 of 5 is under half
  std::set<std::string> alerted;
  for (const auto& a : alerts) {
    CHECK(a.kind == "feature_drift");
    CHECK(a.model == "churn");
    alerted.insert(a.subject);
  }
  CHECK(alerted == drifted);
  CHECK(alerts.size() == 2);

  // The same drift in the next window: the alerts are still active, not raised again.
  for (int i = 0; i < 2048; ++i) REQUIRE((*deployment)->predict(record(rng, {1.5, {0.2, 0.3, 0.5}}), p).ok());
  CHECK(alerts.size() == 2);
  CHECK((*monitor)->active_alerts().size() == 2);

  // Each alert went to the audit log once.
  auto audit = reg->audit();
  REQUIRE(audit.ok());
  std::set<std::string> audited;
  for (const auto& e : *audit) {
    if (e.event == "monitor_alert") audited.insert(e.detail);
  }
  CHECK(audited.size() == 2);

  // Back to normal: the alerts clear.
  for (int i = 0; i < 2048; ++i) REQUIRE((*deployment)->predict(record(rng, {}), p).ok());
  CHECK((*monitor)->active_alerts().empty());
  const std::string html = (*monitor)->report_html("churn in production");
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("x2") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
}

TEST_CASE("an alert that lasts fires the retraining hook once, and the command") {
  Rig rig;
  auto clock = std::make_shared<ember::ManualClock>();
  std::vector<ember::Alert> retrains;
  ember::MonitorOptions mo;
  mo.model = "churn";
  mo.reference = reference(rig.tmp.path(), rig.schema);
  mo.window_rows = 1024;
  mo.clock = clock;
  mo.retrain_after = std::chrono::minutes(10);
  mo.on_retrain = [&](const ember::Alert& a) { retrains.push_back(a); };
  const auto marker = rig.tmp.path() / "retrain.txt";
  mo.retrain_command = "echo \"$EMBER_MODEL $EMBER_ALERT_KIND $EMBER_ALERT_SUBJECT\" >> '" + marker.string() + "'";
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  auto model = rig.watched_by(*monitor);
  std::mt19937_64 rng(5);
  ember::Prediction p;
  const auto window = [&](const Traffic& t) {
    for (int i = 0; i < 1024; ++i) REQUIRE(model->predict(record(rng, t), p).ok());
  };
  window({3.0, {0.5, 0.3, 0.2}});  // x2 drifts
  CHECK(retrains.empty());
  clock->advance(std::chrono::minutes(5));
  window({3.0, {0.5, 0.3, 0.2}});
  CHECK(retrains.empty());
  clock->advance(std::chrono::minutes(6));
  window({3.0, {0.5, 0.3, 0.2}});
  REQUIRE(retrains.size() == 1);
  CHECK(retrains[0].subject == "x2");
  CHECK(retrains[0].persistent);
  clock->advance(std::chrono::minutes(30));
  window({3.0, {0.5, 0.3, 0.2}});
  CHECK(retrains.size() == 1);  // once per episode
  std::ifstream f(marker);
  std::string line;
  REQUIRE(std::getline(f, line));
  CHECK(line == "churn feature_drift x2");
  CHECK_FALSE(std::getline(f, line));
}

TEST_CASE("outcomes are joined to predictions: accuracy, AUC and MAE per version, with a time to live") {
  Rig rig;
  auto clock = std::make_shared<ember::ManualClock>();
  ember::MonitorOptions mo;
  mo.window_rows = 1 << 20;
  mo.clock = clock;
  mo.outcomes.enabled = true;
  mo.outcomes.ttl = std::chrono::seconds(60);
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  auto model = rig.watched_by(*monitor, "3");

  // output = 0.2 + 0.1 x1 (the rest are 0): predictions 0.2 + 0.1 k.
  std::vector<std::uint64_t> ids;
  std::vector<double> preds;
  for (int k = 0; k < 8; ++k) {
    auto p = model->predict(R"({"x1": )" + std::to_string(k) + R"(, "x2": 0, "x3": 0, "x4": 0, "plan": "basic"})");
    REQUIRE(p.ok());
    ids.push_back(p->request_id);
    preds.push_back(*p->value());
  }
  CHECK(preds[3] == Approx(0.5));
  // Labels: predictions >= 0.5 are class 1; two of eight are wrong.
  const double labels[] = {0, 0, 1, 1, 1, 0, 1, 1};
  for (int k = 0; k < 8; ++k) REQUIRE((*monitor)->record_outcome(ids[k], labels[k]).ok());
  CHECK((*monitor)->record_outcome(ids[0], 1).code() == ember::StatusCode::kNotFound);  // joined already
  CHECK((*monitor)->record_outcome(12345678, 1).code() == ember::StatusCode::kNotFound);
  CHECK((*monitor)->record_outcome(ids[1], NAN).code() == ember::StatusCode::kInvalidArgument);
  auto stats = (*monitor)->outcomes();
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].version == "3");
  CHECK(stats[0].joined == 8);
  REQUIRE(stats[0].accuracy);
  CHECK(*stats[0].accuracy == Approx(6.0 / 8));
  // AUC by pairs: positives {2,3,4,6,7}, negatives {0,1,5}: pairs ordered right 12 of 15.
  REQUIRE(stats[0].auc);
  CHECK(*stats[0].auc == Approx(12.0 / 15));
  double mae = 0;
  for (int k = 0; k < 8; ++k) mae += std::fabs(preds[k] - labels[k]);
  CHECK(stats[0].mae == Approx(mae / 8));

  // A prediction whose outcome comes after the time to live is dropped.
  auto late = model->predict(R"({"x1": 1, "x2": 0, "x3": 0, "x4": 0, "plan": "basic"})");
  REQUIRE(late.ok());
  clock->advance(std::chrono::seconds(61));
  CHECK((*monitor)->record_outcome(late->request_id, 1).code() == ember::StatusCode::kNotFound);

  mo.outcomes.enabled = false;
  auto off = ember::Monitor::create(rig.schema, mo);
  REQUIRE(off.ok());
  CHECK((*off)->record_outcome(1, 1).code() == ember::StatusCode::kFailedPrecondition);
}

TEST_CASE("the prediction log: invalid and flagged always, the rest sampled, personal fields redacted, rotated") {
  Rig rig;
  const auto log = rig.tmp.path() / "predictions.jsonl";
  ember::MonitorOptions mo;
  mo.model = "churn";
  mo.log.path = log;
  mo.log.sample_rate = 0;
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  auto model = rig.watched_by(*monitor);
  ember::Prediction p;
  for (int i = 0; i < 50; ++i) {
    REQUIRE(model->predict(R"({"x1": 1, "x2": 2, "x3": 3, "x4": 0.123456, "plan": "pro"})", p).ok());
  }
  CHECK_FALSE(model->predict(R"({"x1": "one", "x2": 2, "x3": 3, "x4": 0.5, "plan": "pro"})", p).ok());
  REQUIRE(model->predict(R"({"x1": 1, "x2": 2, "x3": 3, "x4": 99.5, "plan": "pro"})", p).ok());  // flagged: x4 out of range
  REQUIRE((*monitor)->flush().ok());
  std::ifstream f(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find(R"("reason":"invalid")") != std::string::npos);
  CHECK(lines[0].find("/x1") != std::string::npos);
  CHECK(lines[1].find(R"("reason":"flagged")") != std::string::npos);
  CHECK(lines[1].find(R"("x4":"[redacted]")") != std::string::npos);
  CHECK(lines[1].find("99.5") == std::string::npos);
  CHECK(lines[1].find(R"("flagged":["x4"])") != std::string::npos);

  // Every request sampled, into small files: rotated, at most max_files kept.
  const auto log2 = rig.tmp.path() / "all.jsonl";
  mo.log.path = log2;
  mo.log.sample_rate = 1;
  mo.log.max_file_bytes = 4096;
  mo.log.max_files = 2;
  auto all = ember::Monitor::create(rig.schema, mo);
  REQUIRE(all.ok());
  auto m2 = rig.watched_by(*all);
  for (int i = 0; i < 400; ++i) {
    REQUIRE(m2->predict(R"({"x1": 1, "x2": 2, "x3": 3, "x4": 0.5, "plan": "pro"})", p).ok());
    if (i % 20 == 19) REQUIRE((*all)->flush().ok());
  }
  REQUIRE((*all)->flush().ok());
  CHECK((*all)->counters().logged == 400);
  CHECK(std::filesystem::exists(log2));
  CHECK(std::filesystem::exists(log2.string() + ".1"));
  CHECK(std::filesystem::exists(log2.string() + ".2"));
  CHECK_FALSE(std::filesystem::exists(log2.string() + ".3"));
  for (const auto& path : {log2.string(), log2.string() + ".1", log2.string() + ".2"}) {
    CHECK(std::filesystem::file_size(path) <= 4096 + 20 * 400);
  }
}

TEST_CASE("monitor options are checked") {
  Rig rig;
  ember::MonitorOptions mo;
  mo.window_rows = 0;
  CHECK(ember::Monitor::create(rig.schema, mo).status().code() == ember::StatusCode::kInvalidArgument);
  mo.window_rows = 10;
  mo.log.sample_rate = 1.5;
  CHECK(ember::Monitor::create(rig.schema, mo).status().code() == ember::StatusCode::kInvalidArgument);
  mo.log.sample_rate = 0.5;
  mo.log.path = rig.tmp.path() / "no" / "such" / "dir" / "log.jsonl";
  CHECK(ember::Monitor::create(rig.schema, mo).status().code() == ember::StatusCode::kInvalidArgument);
  mo.log.path.clear();
  ember::ReferenceStats other;
  other.rows = 1;
  ember::ColumnReference unrelated;
  unrelated.name = "unrelated";
  other.features.push_back(unrelated);
  mo.reference = other;
  CHECK(ember::Monitor::create(rig.schema, mo).status().code() == ember::StatusCode::kInvalidArgument);
}

TEST_CASE("windows close by time on poll(), with the clock injected") {
  Rig rig;
  auto clock = std::make_shared<ember::ManualClock>();
  ember::MonitorOptions mo;
  mo.window_rows = 0;
  mo.window_time = std::chrono::seconds(10);
  mo.clock = clock;
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  auto model = rig.watched_by(*monitor);
  ember::Prediction p;
  for (int i = 0; i < 5; ++i) REQUIRE(model->predict(R"({"x1": 1, "x2": 2, "x3": 3, "x4": 0.5, "plan": "pro"})", p).ok());
  (*monitor)->poll();
  CHECK((*monitor)->windows().empty());
  clock->advance(std::chrono::seconds(11));
  (*monitor)->poll();
  auto windows = (*monitor)->windows();
  REQUIRE(windows.size() == 1);
  CHECK(windows[0].rows == 5);
  CHECK(windows[0].served_by.at("linear") == 5);
  CHECK(windows[0].fallback_rate == 0);
  CHECK_FALSE(windows[0].drift.has_value());  // no reference
}

TEST_CASE("many request threads, windows evaluated on a pool, outcomes and reads at the same time") {
  Rig rig;
  auto pool = ember::ThreadPool::create({});
  REQUIRE(pool.ok());
  ember::MonitorOptions mo;
  mo.reference = reference(rig.tmp.path(), rig.schema);
  mo.window_rows = 1000;
  mo.executor = *pool;
  mo.outcomes.enabled = true;
  mo.log.path = rig.tmp.path() / "log.jsonl";
  mo.log.sample_rate = 0.1;
  mo.log.max_file_bytes = 64 << 10;
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  auto model = rig.watched_by(*monitor);
  constexpr int kThreads = 4, kEach = 3000;
  std::atomic<std::uint64_t> last_id{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      ember::Prediction p;
      for (int i = 0; i < kEach; ++i) {
        if (model->predict(record(rng, {}), p).ok()) last_id.store(p.request_id);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {  // the host reads and joins outcomes meanwhile
    (void)(*monitor)->windows();
    (void)(*monitor)->report_html();
    if (auto id = last_id.load()) (void)(*monitor)->record_outcome(id, 1);
  }
  for (auto& th : threads) th.join();
  REQUIRE((*monitor)->flush().ok());
  const auto counters = (*monitor)->counters();
  CHECK(counters.requests == kThreads * kEach);
  std::uint64_t rows = 0;
  for (const auto& w : (*monitor)->windows()) rows += w.rows;
  CHECK(rows == kThreads * kEach);  // every row in exactly one window (all kept: 12 <= 100)
  CHECK(counters.log_errors == 0);
}

TEST_CASE("with dynamic batching, the monitor still sees every row's outputs, stage and latency") {
  Rig rig;
  ember::MonitorOptions mo;
  mo.reference = reference(rig.tmp.path(), rig.schema);
  mo.window_rows = 1 << 20;
  auto monitor = ember::Monitor::create(rig.schema, mo);
  REQUIRE(monitor.ok());
  ember::DeploymentOptions dopt;
  dopt.monitor = *monitor;
  dopt.batching.enabled = true;
  dopt.batching.max_batch_rows = 8;
  auto deployment = ember::Deployment::create(rig.dir, dopt);
  REQUIRE(deployment.ok());
  std::mt19937_64 rng(3);
  ember::Prediction p;
  for (int i = 0; i < 40; ++i) REQUIRE((*deployment)->predict(record(rng, {}), p, ember::RequestOptions{}).ok());
  REQUIRE((*monitor)->flush().ok());
  const auto windows = (*monitor)->windows();
  REQUIRE(windows.size() == 1);
  CHECK(windows[0].rows == 40);
  CHECK(windows[0].served_by.at("linear") == 40);
  // The features were prepared on the callers' threads, unobserved: nothing to compare.
  REQUIRE(windows[0].drift.has_value());
  CHECK(windows[0].drift->compared == 0);
  CHECK_FALSE(windows[0].drift->dataset_drift);
}
