// Metrics: what the observer records, and the text exposition's structure.
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <sstream>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember_test::TempDir;

namespace {

// The value of the sample line that starts with `prefix` (name and labels), or -1.
double sample(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix + " ", 0) == 0) return std::stod(line.substr(prefix.size() + 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("metrics: requests, refusals, served_by and latency of a model, and its stages") {
  TempDir t;
  ember_test::write_linear_model(t / "model", 1);
  auto metrics = ember::Metrics::create();
  ember::ModelOptions o;
  o.name = "churn";
  o.version = "7";
  o.observers.push_back(metrics->observer("churn", "7"));
  auto loaded = ember::Model::load(t / "model", o);
  REQUIRE(loaded.ok());
  std::shared_ptr<const ember::Model> model = std::move(*loaded);
  metrics->watch(model);
  ember::Prediction p;
  for (int i = 0; i < 5; ++i) REQUIRE(model->predict(R"({"a": 1, "b": 2})", p).ok());
  CHECK_FALSE(model->predict(R"({"a": "x"})", p).ok());
  const std::string text = metrics->text();
  const std::string l = R"({model="churn",version="7")";
  CHECK(sample(text, "ember_requests_total" + l + "}") == 6);
  CHECK(sample(text, "ember_invalid_requests_total" + l + "}") == 1);
  CHECK(sample(text, "ember_failed_requests_total" + l + "}") == 0);
  CHECK(sample(text, "ember_served_total" + l + R"(,stage="linear"})") == 5);
  CHECK(sample(text, "ember_request_latency_seconds_count" + l + "}") == 5);
  CHECK(sample(text, "ember_request_latency_seconds_bucket" + l + R"(,le="+Inf"})") == 5);
  CHECK(sample(text, "ember_stage_calls_total" + l + R"(,stage="linear"})") == 5);
  CHECK(sample(text, "ember_breaker_state" + l + R"(,stage="linear"})") == -1);  // this stage has no breaker

  // Structure: HELP and TYPE once per family; buckets cumulative and ascending.
  std::map<std::string, int> helps;
  std::istringstream in(text);
  double last_le = -1, last_count = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) ++helps[line.substr(7, line.find(' ', 7) - 7)];
    static const std::regex bucket(R"re(^ember_request_latency_seconds_bucket\{.*le="([^"]+)"\} (\d+)$)re");
    std::smatch m;
    if (std::regex_match(line, m, bucket)) {
      const double le = m[1] == "+Inf" ? 1e300 : std::stod(m[1]);
      const double count = std::stod(m[2]);
      CHECK(le > last_le);
      CHECK(count >= last_count);
      last_le = le;
      last_count = count;
    }
  }
  for (const auto& [family, n] : helps) CHECK(n == 1);
  CHECK(metrics->text(ember::MetricsFormat::kOpenMetrics).ends_with("# EOF\n"));
  CHECK(metrics->text(ember::MetricsFormat::kOpenMetrics).find("# TYPE ember_requests counter\n") != std::string::npos);
}

TEST_CASE("metrics: label values are escaped; the same labels share one series") {
  auto metrics = ember::Metrics::create();
  auto a = metrics->observer("we\"ird\\name\nx", "1");
  auto b = metrics->observer("we\"ird\\name\nx", "1");
  ember::RequestEvent e;
  ember::ChainResult r;
  r.served_by = "primary";
  e.result = &r;
  a->on_request(e);
  b->on_request(e);
  const std::string text = metrics->text();
  CHECK(sample(text, R"(ember_requests_total{model="we\"ird\\name\nx",version="1"})") == 2);
}

TEST_CASE("metrics: a deployment records each version, and its batcher's queue time and batch sizes") {
  TempDir t;
  ember_test::write_linear_model(t / "model", 1);
  ember::DeploymentOptions o;
  o.metrics = ember::Metrics::create();
  o.batching.enabled = true;
  o.batching.max_batch_rows = 4;
  o.batching.max_queue_delay = std::chrono::microseconds(200);
  auto d = ember::Deployment::create(t / "model", o);
  REQUIRE(d.ok());
  std::vector<std::future<ember::Answer>> answers;
  for (int i = 0; i < 10; ++i) answers.push_back((*d)->submit(R"({"a": 1, "b": 1})"));
  for (auto& a : answers) REQUIRE(a.get().status.ok());
  REQUIRE((*d)->reload().ok());
  ember::Prediction p;
  REQUIRE((*d)->predict(R"({"a": 1, "b": 1})", p).ok());
  const std::string text = o.metrics->text();
  CHECK(sample(text, R"(ember_requests_total{model="model",version="1"})") == 10);
  CHECK(sample(text, R"(ember_requests_total{model="model",version="2"})") == 1);
  CHECK(sample(text, R"(ember_queue_time_seconds_count{model="model"})") == 10);
  const auto batches = (*d)->counters().batches;
  CHECK(sample(text, R"(ember_batch_rows_count{model="model"})") == static_cast<double>(batches));
  CHECK(sample(text, R"(ember_batch_rows_sum{model="model"})") == 10);
}
