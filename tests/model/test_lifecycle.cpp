// The Model as the lifecycle uses it, without LibTorch: exact numbers, predictions that
// outlive their model, checked output access, observers, prepare/execute, host threads,
// and the inputs that used to crash.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "ember/ember.hpp"

using ember::ChainOptions;
using ember::FallbackChain;
using ember::Model;
using ember::Prediction;
using ember::StatusCode;
using ember::Tensor;

namespace {

constexpr const char* kSchema = R"({"type": "object", "properties": {
    "user": {"type": "integer"}, "ts": {"type": "number"}, "cents": {"type": "number"}},
    "required": ["user", "ts", "cents"], "additionalProperties": false})";

// Answers "output" = the row's `ts` column minus 1.7e9 (float32), and fails, or throws,
// for rows whose `user` is negative.
class Probe final : public ember::Stage {
 public:
  ember::Result<ember::NamedTensors> run(const Tensor& features) const override {
    calls.fetch_add(1);
    const auto in = features.values<double>();
    if (in.empty()) return ember::invalid_argument("probe: not a float64 matrix");
    const std::int64_t rows = features.size(0);
    auto t = Tensor::zeros(ember::DType::kFloat32, {rows});
    if (!t.ok()) return t.status();
    for (std::int64_t r = 0; r < rows; ++r) {
      const double user = in[static_cast<std::size_t>(r) * 3];
      if (user < 0 && throw_bad_alloc) throw std::bad_alloc();
      if (user < 0) return ember::internal_error("probe: a negative user");
      t->values<float>()[static_cast<std::size_t>(r)] = static_cast<float>(in[static_cast<std::size_t>(r) * 3 + 1] - 1.7e9);
    }
    ember::NamedTensors out;
    EMBER_RETURN_IF_ERROR(out.add("output", *t));
    return out;
  }
  std::string type() const override { return "probe"; }
  ember::Result<std::vector<ember::OutputSpec>> outputs(std::size_t) const override {
    return std::vector<ember::OutputSpec>{{"output", ember::DType::kFloat32, {}}};
  }
  mutable std::atomic<int> calls{0};
  bool throw_bad_alloc = false;
};

std::unique_ptr<Model> make_model(std::shared_ptr<ember::Stage> stage, const ember::ModelOptions& options,
                                  bool with_default = false) {
  auto schema = ember::Schema::compile(kSchema);
  REQUIRE(schema.ok());
  ChainOptions chain;
  chain.input_width = 3;
  chain.executor = options.executor;
  chain.stages.push_back({"probe", std::move(stage), std::nullopt});
  if (with_default) {
    chain.stages.push_back({"default", *ember::make_default_stage({{"output", {-1.0F}}}), std::nullopt});
  }
  auto c = FallbackChain::create(std::move(chain));
  REQUIRE(c.ok());
  auto m = Model::assemble(std::move(schema).value(), std::nullopt, std::move(c).value(), options);
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  return std::move(m).value();
}

struct Recorder final : ember::Observer {
  void on_request(const ember::RequestEvent& e) override {
    std::lock_guard<std::mutex> lock(mutex);
    ids.push_back(e.request_id);
    served_by.push_back(e.result != nullptr ? e.result->served_by : "");
    if (e.model_input != nullptr) inputs.push_back(e.model_input->values<double>()[1]);
    if (e.features != nullptr) users.push_back(e.features->integers[0]);
    statuses.push_back(e.status.code());
    name = std::string(e.model_name);
  }
  std::mutex mutex;
  std::vector<std::uint64_t> ids;
  std::vector<std::string> served_by;
  std::vector<double> inputs;
  std::vector<std::int64_t> users;
  std::vector<StatusCode> statuses;
  std::string name;
};

}  // namespace

TEST_CASE("lifecycle: numbers keep full precision and integers stay exact through validation") {
  auto schema = ember::Schema::compile(kSchema);
  REQUIRE(schema.ok());
  ember::JsonParser parser;
  ember::FeatureRow row;
  ember::ValidationReport report;
  REQUIRE(schema->validate_into(R"({"user": 9007199254740993, "ts": 1700000123.456789, "cents": 19.99})", parser, row,
                                report)
              .ok());
  CHECK(row.integers[0] == 9007199254740993LL);  // 2^53 + 1: a double cannot hold it
  CHECK(row.values[1] == 1700000123.456789);
  CHECK(row.values[2] == 19.99);
  CHECK(row.integers[1] == ember::kNotInteger);

  ember::Record record;
  record.set("user", std::int64_t{16777217}).set("ts", 1.0e15 + 0.5).set("cents", -0.0);
  REQUIRE(schema->validate_into(record, row, report).ok());
  CHECK(row.integers[0] == 16777217);  // 2^24 + 1: float32 would make it 2^24
  CHECK(row.values[0] == 16777217.0);
  CHECK(row.values[1] == 1.0e15 + 0.5);
  CHECK(std::signbit(row.values[2]));

  std::vector<std::string_view> records{R"({"user": 9223372036854775807, "ts": 1, "cents": 2})",
                                        R"({"user": "x", "ts": 1, "cents": 2})",
                                        R"({"user": -9007199254740993, "ts": 1.5, "cents": 2})"};
  ember::FeatureBatch batch;
  ember::BatchReport batch_report;
  REQUIRE(schema->validate_batch(records, parser, batch, batch_report).ok());
  REQUIRE(batch.rows == 2);
  CHECK(batch.integers[0] == INT64_MAX);
  CHECK(batch.integers[3] == -9007199254740993LL);
  CHECK(batch.values[4] == 1.5);
}

TEST_CASE("lifecycle: a prediction owns what it says and outlives its model") {
  ember::ModelOptions options;
  options.name = "churn";
  options.version = "7";
  auto probe = std::make_shared<Probe>();
  auto model = make_model(probe, options, /*with_default=*/true);
  Prediction p;
  REQUIRE(model->predict(R"({"user": -5, "ts": 1700000000.25, "cents": 1})", p).ok());
  REQUIRE(model->predict(R"({"user": -5, "ts": 1700000000.25, "cents": 1})", p).ok());  // reused
  model.reset();
  CHECK(p.served_by == "default");
  REQUIRE(p.skipped.size() == 1);
  CHECK(p.skipped[0].stage == "probe");
  CHECK(p.skipped[0].status.code() == StatusCode::kInternal);
  CHECK(p.model_name == "churn");
  CHECK(p.model_version == "7");
  CHECK(p.request_id > 1);  // the second request of this thread
  CHECK(p.value().value_or(0) == -1.0);
}

TEST_CASE("lifecycle: reading an output by a wrong name, dtype or index is an error, not a wrong read") {
  const ember::ModelOptions options;
  auto model = make_model(std::make_shared<Probe>(), options);
  Prediction p;
  REQUIRE(model->predict(R"({"user": 1, "ts": 1700000000.25, "cents": 1})", p).ok());
  CHECK(*p.value() == 0.25);
  CHECK(p.value("score").status().code() == StatusCode::kNotFound);
  CHECK_THAT(p.value("score").status().message(), Catch::Contains("'output'"));
  CHECK(p.value("output", 1).status().code() == StatusCode::kOutOfRange);
  CHECK(p.outputs.values<double>("output").status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(p.outputs.values<double>("output").status().message(), Catch::Contains("float32, read as float64"));
  REQUIRE(p.outputs.values<float>("output").ok());
  CHECK((*p.outputs.values<float>("output"))[0] == 0.25F);
  CHECK(Tensor().get<float>().status().code() == StatusCode::kFailedPrecondition);
  auto device = Tensor::view_bytes(reinterpret_cast<void*>(64), ember::DType::kFloat32, {1}, ember::Device::cuda());
  REQUIRE(device.ok());
  CHECK(device->get<float>().status().code() == StatusCode::kFailedPrecondition);
  CHECK(device->at(0).status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("lifecycle: observers see every request; one that throws is counted and changes nothing") {
  auto recorder = std::make_shared<Recorder>();
  struct Thrower final : ember::Observer {
    void on_request(const ember::RequestEvent&) override { throw std::runtime_error("observer bug"); }
  };
  ember::ModelOptions options;
  options.name = "m";
  options.observers = {recorder, std::make_shared<Thrower>()};
  auto model = make_model(std::make_shared<Probe>(), options);
  Prediction p;
  REQUIRE(model->predict(R"({"user": 16777217, "ts": 1700000000.5, "cents": 1})", p).ok());
  CHECK(model->predict(R"({"user": "nope", "ts": 1, "cents": 1})", p).code() == StatusCode::kInvalidArgument);
  CHECK(model->predict(R"({"user": -1, "ts": 1, "cents": 1})", p).code() == StatusCode::kInternal);
  REQUIRE(recorder->ids.size() == 3);
  CHECK(recorder->ids[0] > 0);
  CHECK(recorder->ids[0] < recorder->ids[1]);  // one thread: increasing, and unique
  CHECK(recorder->ids[1] < recorder->ids[2]);
  CHECK(recorder->statuses ==
        std::vector<StatusCode>{StatusCode::kOk, StatusCode::kInvalidArgument, StatusCode::kInternal});
  CHECK(recorder->served_by[0] == "probe");
  CHECK(recorder->inputs.at(0) == 1700000000.5);  // the model input, before any cast
  CHECK(recorder->users.at(0) == 16777217);
  CHECK(recorder->name == "m");
  CHECK(model->counters().observer_errors == 3);
  ember::ModelOptions null_observer;
  null_observer.observers = {nullptr};
  auto schema = ember::Schema::compile(kSchema);
  ChainOptions chain;
  chain.input_width = 3;
  chain.stages.push_back({"probe", std::make_shared<Probe>(), std::nullopt});
  CHECK(Model::assemble(*schema, std::nullopt, *FallbackChain::create(chain), null_observer).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("lifecycle: prepare and execute; a row that fails does not fail its neighbours") {
  const ember::ModelOptions options;
  auto model = make_model(std::make_shared<Probe>(), options);
  std::vector<std::string_view> records{R"({"user": 1, "ts": 1700000001, "cents": 1})", R"({"user": "bad"})",
                                        R"({"user": -1, "ts": 1700000002, "cents": 1})",
                                        R"({"user": 3, "ts": 1700000003, "cents": 1})"};
  ember::PreparedBatch prepared;
  REQUIRE(model->prepare(records, prepared).ok());
  CHECK(prepared.rows == 3);
  CHECK(prepared.source_index == std::vector<std::size_t>{0, 2, 3});
  CHECK(prepared.validation.invalid == 1);
  auto inputs = prepared.input_tensor();
  REQUIRE(inputs.ok());
  ember::BatchPrediction out;
  REQUIRE(model->execute(*inputs, out).ok());
  REQUIRE(out.rows.size() == 3);
  CHECK(out.rows[0].status.ok());
  CHECK(out.rows[1].status.code() == StatusCode::kInternal);
  CHECK(out.rows[2].served_by == "probe");
  CHECK(out.failed_rows == 1);
  const auto v = *out.outputs.values<float>("output");
  CHECK(v[0] == 1.0F);
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == 3.0F);

  // Rows of two requests gathered into one call, then handed back.
  auto first = inputs->slice_rows(0, 1);
  auto last = inputs->slice_rows(2, 3);
  REQUIRE(first.ok());
  REQUIRE(last.ok());
  const Tensor parts[] = {*first, *last};
  auto gathered = Tensor::concat_rows(parts);
  REQUIRE(gathered.ok());
  REQUIRE(model->execute(*gathered, out).ok());
  CHECK(out.failed_rows == 0);
  auto second = out.outputs.slice_rows(1, 2);
  REQUIRE(second.ok());
  CHECK((*second->values<float>("output"))[0] == 3.0F);
  CHECK(inputs->slice_rows(2, 4).status().code() == StatusCode::kOutOfRange);
  const Tensor mixed[] = {*first, *Tensor::zeros(ember::DType::kFloat32, {1, 3})};
  CHECK(Tensor::concat_rows(mixed).status().code() == StatusCode::kInvalidArgument);
  CHECK(Tensor::concat_rows({}).status().code() == StatusCode::kInvalidArgument);

  ember::BatchPrediction batch;
  REQUIRE(model->predict_batch(records, batch).ok());
  CHECK(batch.source_index == std::vector<std::size_t>{0, 2, 3});
  CHECK(batch.failed_rows == 1);
}

TEST_CASE("lifecycle: out of memory, a throwing listener and an unlimited budget become Status values") {
  auto probe = std::make_shared<Probe>();
  probe->throw_bad_alloc = true;
  const ember::ModelOptions options;
  auto model = make_model(probe, options, /*with_default=*/true);
  Prediction p;
  REQUIRE(model->predict(R"({"user": -1, "ts": 1, "cents": 1})", p).ok());
  CHECK(p.served_by == "default");
  CHECK(p.skipped.at(0).status.code() == StatusCode::kResourceExhausted);

  ChainOptions o;
  o.input_width = 3;
  ember::CircuitBreakerConfig config;
  config.sliding_window_size = 2;
  config.minimum_number_of_calls = 2;
  o.stages.push_back({"probe", std::make_shared<Probe>(), config});
  o.stages.push_back({"default", *ember::make_default_stage({{"output", {-1.0F}}}), std::nullopt});
  o.on_breaker_change = [](std::string_view, ember::BreakerState, ember::BreakerState) {
    throw std::runtime_error("listener bug");
  };
  auto chain = FallbackChain::create(std::move(o));
  REQUIRE(chain.ok());
  std::vector<double> bad{-1, 0, 0};
  auto x = *Tensor::view(bad, {1, 3});
  ember::ChainResult r;
  for (int i = 0; i < 3; ++i) REQUIRE((*chain)->run(x, r).ok());
  CHECK((*chain)->breaker("probe")->state() == ember::BreakerState::kOpen);
  CHECK((*chain)->breaker("probe")->listener_errors() == 1);

  std::vector<double> good{1, 1.7e9 + 2, 0};
  auto y = *Tensor::view(good, {1, 3});
  ember::RunOptions unlimited;
  unlimited.budget = std::chrono::nanoseconds::max();
  REQUIRE((*chain)->run(y, r, unlimited).ok());
  CHECK(r.served_by == "default");  // the breaker is open; the budget did not overflow into the past

  // As a chain's own budget too: the stage runs, with no deadline to miss.
  ChainOptions u;
  u.input_width = 3;
  u.budget = std::chrono::nanoseconds::max();
  u.stages.push_back({"probe", std::make_shared<Probe>(), std::nullopt});
  auto no_limit = FallbackChain::create(std::move(u));
  REQUIRE(no_limit.ok());
  REQUIRE((*no_limit)->run(y, r).ok());
  CHECK(r.served_by == "probe");
  CHECK(*r.outputs.values<float>("output").value().data() == 2.0F);
}

TEST_CASE("lifecycle: a model that writes into its input changes nothing that others see") {
  // An executor that adds 1 to its input in place, as x.add_(1) would.
  struct Writer final : ember::Executor {
    ember::Result<ember::NamedTensors> run(std::span<const Tensor> inputs) const override {
      auto v = inputs[0].values<float>();
      for (float& x : v) x += 1.0F;
      ember::NamedTensors out;
      EMBER_RETURN_IF_ERROR(out.add("output", *Tensor::from_values(std::vector<float>{v[0]}, {1})));
      return out;
    }
    std::string name() const override { return "writer"; }
  };
  auto stage = ember::make_executor_stage(std::make_shared<Writer>());
  ChainOptions o;
  o.input_width = 3;
  o.stages.push_back({"writer", stage, std::nullopt});
  auto chain = FallbackChain::create(std::move(o));
  REQUIRE(chain.ok());
  std::vector<double> row{5, 6, 7};
  auto x = *Tensor::view(row, {1, 3});
  ember::ChainResult r;
  for (int i = 0; i < 3; ++i) {
    REQUIRE((*chain)->run(x, r).ok());
    CHECK(*r.outputs.values<float>("output").value().data() == 6.0F);  // each call sees the row as it was
  }
  CHECK(row == std::vector<double>{5, 6, 7});
}

TEST_CASE("lifecycle: background work runs on the host's executor; a pool is the host's to own") {
  struct Counting final : ember::TaskExecutor {
    explicit Counting(std::shared_ptr<ember::TaskExecutor> inner) : inner_(std::move(inner)) {}
    bool post(std::function<void()> task) override {
      posted.fetch_add(1);
      return inner_->post(std::move(task));
    }
    std::size_t concurrency() const noexcept override { return 2; }
    std::atomic<int> posted{0};
    std::shared_ptr<ember::TaskExecutor> inner_;
  };
  auto pool = ember::ThreadPool::create({});
  REQUIRE(pool.ok());
  auto counting = std::make_shared<Counting>(*pool);

  // A budgeted chain posts its unbounded stages.
  ChainOptions o;
  o.input_width = 3;
  o.budget = std::chrono::seconds(5);
  o.executor = counting;
  o.stages.push_back({"probe", std::make_shared<Probe>(), std::nullopt});
  auto chain = FallbackChain::create(std::move(o));
  REQUIRE(chain.ok());
  std::vector<double> row{1, 1.7e9 + 1, 0};
  ember::ChainResult r;
  REQUIRE((*chain)->run(*Tensor::view(row, {1, 3}), r).ok());
  CHECK(counting->posted.load() >= 2);  // outputs() at build, then the call

  // A large batch is validated in parts on it, with the same result as on one thread.
  auto schema = ember::Schema::compile(kSchema);
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i) {
    texts.push_back(i % 7 == 3 ? R"({"user": "x"})"
                               : R"({"user": )" + std::to_string(i) + R"(, "ts": 1.5, "cents": )" + std::to_string(i) + "}");
  }
  std::vector<std::string_view> records(texts.begin(), texts.end());
  ember::JsonParser parser;
  ember::FeatureBatch one, many;
  ember::BatchReport one_report, many_report;
  REQUIRE(schema->validate_batch(records, parser, one, one_report).ok());
  ember::BatchOptions bo;
  bo.threads = 3;
  bo.executor = counting.get();
  const int before = counting->posted.load();
  REQUIRE(schema->validate_batch(records, parser, many, many_report, bo).ok());
  CHECK(counting->posted.load() == before + 2);
  CHECK(many.values == one.values);
  CHECK(many.integers == one.integers);
  CHECK(many.source_index == one.source_index);
  CHECK(many_report.invalid == one_report.invalid);

  CHECK(ember::ThreadPool::create({2, 1}).status().code() == StatusCode::kInvalidArgument);
  auto small = ember::ThreadPool::create({0, 1});
  REQUIRE(small.ok());
  std::atomic<int> ran{0};
  CHECK((*small)->post([&] { ran.fetch_add(1); }));
  small->reset();  // waits for the task
  CHECK(ran.load() == 1);
}

TEST_CASE("lifecycle: a $ref chain 10,000 links long is refused, not a stack overflow") {
  for (bool forward : {true, false}) {
    std::string defs;
    const int n = 10000;
    for (int i = 0; i < n; ++i) {
      const int k = forward ? i : n - 1 - i;
      if (!defs.empty()) defs += ",";
      defs += "\"d" + std::to_string(k) + "\": " +
              (k + 1 < n ? R"({"$ref": "#/$defs/d)" + std::to_string(k + 1) + "\"}" : std::string(R"({"type": "number"})"));
    }
    const std::string schema = R"({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": {)" + defs + "}}";
    auto s = ember::Schema::compile(schema);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.status().message(), Catch::Contains("$ref"));
  }
}

TEST_CASE("lifecycle: paths in chain.json stay inside the model directory") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "ember_confined_test" / "model";
  fs::remove_all(dir.parent_path());
  fs::create_directories(dir);
  const std::string linear =
      R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[1,0,0]],"intercept":[0]})";
  std::ofstream(dir.parent_path() / "outside.json") << linear;
  std::ofstream(dir / "linear.json") << linear;
  fs::create_symlink(dir.parent_path() / "outside.json", dir / "link.json");
  const auto chain_with = [&](const std::string& path) {
    std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
        {"type": "linear", "path": ")" + path + R"("}]})";
    return ember::load_chain(dir / "chain.json", dir, 3);
  };
  CHECK(chain_with("linear.json").ok());
  for (const char* bad : {"../outside.json", "/etc/passwd", "link.json", "sub/../../outside.json", ""}) {
    INFO(bad);
    auto c = chain_with(bad);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == StatusCode::kInvalidArgument);
  }
  fs::remove_all(dir.parent_path());
}

TEST_CASE("lifecycle: when no thread can be had, the work is refused or done here, never lost") {
  // An executor that refuses every task (as a full pool, or a system out of threads), and
  // one whose post() throws (a host's bug).
  struct Refusing final : ember::TaskExecutor {
    bool post(std::function<void()>) override { return false; }
    std::size_t concurrency() const noexcept override { return 4; }
  };
  struct Throwing final : ember::TaskExecutor {
    bool post(std::function<void()>) override { throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again)); }
    std::size_t concurrency() const noexcept override { return 4; }
  };
  for (std::shared_ptr<ember::TaskExecutor> executor :
       {std::shared_ptr<ember::TaskExecutor>(std::make_shared<Refusing>()),
        std::shared_ptr<ember::TaskExecutor>(std::make_shared<Throwing>())}) {
    ChainOptions o;
    o.input_width = 3;
    o.budget = std::chrono::seconds(5);
    o.executor = executor;
    o.stages.push_back({"probe", std::make_shared<Probe>(), std::nullopt});
    o.stages.push_back({"default", *ember::make_default_stage({{"output", {-1.0F}}}), std::nullopt});
    auto chain = FallbackChain::create(std::move(o));  // outputs() is asked on this thread instead
    REQUIRE(chain.ok());
    std::vector<double> row{1, 1.7e9 + 1, 0};
    ember::ChainResult r;
    REQUIRE((*chain)->run(*Tensor::view(row, {1, 3}), r).ok());
    CHECK(r.served_by == "default");  // the budgeted stage could not run: the next one answered
    REQUIRE(r.skipped.size() == 1);
    CHECK(r.skipped[0].status.code() == StatusCode::kResourceExhausted);

    // A batch's parts are validated on the caller's thread instead.
    auto schema = ember::Schema::compile(kSchema);
    std::vector<std::string> texts(600, R"({"user": 1, "ts": 2, "cents": 3})");
    std::vector<std::string_view> records(texts.begin(), texts.end());
    ember::JsonParser parser;
    ember::FeatureBatch batch;
    ember::BatchReport report;
    ember::BatchOptions bo;
    bo.threads = 4;
    bo.executor = executor.get();
    REQUIRE(schema->validate_batch(records, parser, batch, report, bo).ok());
    CHECK(batch.rows == 600);
    CHECK(report.valid == 600);
  }
}

TEST_CASE("lifecycle: block_rows runs the model on blocks of one shape; answers and failures stay per row") {
  // Records every call's row count.
  class Shapes final : public ember::Stage {
   public:
    ember::Result<ember::NamedTensors> run(const Tensor& features) const override {
      {
        std::lock_guard<std::mutex> lock(mutex);
        rows.push_back(features.size(0));
      }
      return probe.run(features);
    }
    std::string type() const override { return "shapes"; }
    ember::Result<std::vector<ember::OutputSpec>> outputs(std::size_t w) const override { return probe.outputs(w); }
    Probe probe;
    mutable std::mutex mutex;
    mutable std::vector<std::int64_t> rows;
  };
  auto stage = std::make_shared<Shapes>();
  const ember::ModelOptions options;
  auto model = make_model(stage, options);
  std::vector<std::string> texts;
  for (int i = 0; i < 10; ++i) {
    const int user = i == 6 ? -1 : i;  // row 6 fails, and with it its block
    texts.push_back(R"({"user": )" + std::to_string(user) + R"(, "ts": )" + std::to_string(1700000000 + i) +
                    R"(, "cents": 1})");
  }
  texts.insert(texts.begin() + 2, R"({"user": "bad"})");  // invalid: not a row
  const std::vector<std::string_view> records(texts.begin(), texts.end());
  ember::PredictOptions blocks;
  blocks.block_rows = 4;
  ember::BatchPrediction out;
  stage->rows.clear();
  REQUIRE(model->predict_batch(records, out, blocks).ok());
  REQUIRE(out.rows.size() == 10);
  CHECK(out.failed_rows == 1);
  CHECK(out.rows[6].status.code() == StatusCode::kInternal);
  const auto v = *out.outputs.values<float>("output");
  REQUIRE(v.size() == 10);
  for (std::size_t i = 0; i < 10; ++i) {
    if (i == 6) {
      CHECK(std::isnan(v[i]));
    } else {
      CHECK(v[i] == static_cast<float>(i));
      CHECK(out.rows[i].served_by == "probe");
    }
  }
  CHECK(out.source_index.size() == 10);
  CHECK(out.source_index[2] == 3);  // the invalid record is left out
  // Blocks of 4, 4 (failed, then row by row), and the last 2 rows filled up to 4.
  const std::vector<std::int64_t> want{4, 4, 1, 1, 1, 1, 4};
  CHECK(stage->rows == want);

  // The same answers as the whole batch at once, and a batch of exactly one block is one call.
  ember::BatchPrediction whole;
  REQUIRE(model->predict_batch(records, whole).ok());
  const auto w = *whole.outputs.values<float>("output");
  for (std::size_t i = 0; i < 10; ++i) CHECK((std::isnan(w[i]) ? std::isnan(v[i]) : w[i] == v[i]));
  stage->rows.clear();
  blocks.block_rows = 10;
  REQUIRE(model->predict_batch(records, out, blocks).ok());
  CHECK(stage->rows.front() == 10);

  // Every block failing: the chain's error, every row failed.
  std::vector<std::string_view> bad{R"({"user": -1, "ts": 1, "cents": 1})", R"({"user": -2, "ts": 1, "cents": 1})",
                                    R"({"user": -3, "ts": 1, "cents": 1})"};
  blocks.block_rows = 2;
  CHECK(model->predict_batch(bad, out, blocks).code() == StatusCode::kInternal);
  CHECK(out.failed_rows == 3);
  CHECK(out.rows.size() == 3);
}

TEST_CASE("lifecycle: without LibTorch, a model that needs TorchScript is refused by name; one that does not runs") {
  namespace fs = std::filesystem;
  if (ember::TorchExecutor::load("/nonexistent.pt").status().code() != StatusCode::kUnimplemented) {
    SUCCEED("this build has LibTorch");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / "ember_no_torch_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "schema.json") << kSchema;
  std::ofstream(dir / "model.pt") << "not needed to know";
  const std::string linear =
      R"({"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[0,1,0]],"intercept":[-1.7e9]})";
  std::ofstream(dir / "linear.json") << linear;
  const std::string record = R"({"user": 1, "ts": 1700000005, "cents": 1})";

  // No chain.json: the default chain is TorchScript.
  auto model = Model::load(dir);
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == StatusCode::kFailedPrecondition);
  CHECK(model.status().message().find("LibTorch") != std::string::npos);
  CHECK(model.status().message().find("'primary'") != std::string::npos);

  // A chain that needs it.
  std::ofstream(dir / "chain.json") << R"({"format": "ember-chain", "version": 1, "stages": [
      {"name": "mlp", "type": "torchscript"}, {"name": "fallback", "type": "linear", "path": "linear.json"}]})";
  model = Model::load(dir);
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == StatusCode::kFailedPrecondition);
  CHECK(model.status().message().find("mlp") != std::string::npos);

  // The same stage marked optional is left out; a chain without it runs.
  for (const char* chain : {R"({"format": "ember-chain", "version": 1, "stages": [
                                {"name": "mlp", "type": "torchscript", "optional": true},
                                {"name": "fallback", "type": "linear", "path": "linear.json"}]})",
                            R"({"format": "ember-chain", "version": 1, "stages": [
                                {"name": "fallback", "type": "linear", "path": "linear.json"}]})"}) {
    std::ofstream(dir / "chain.json") << chain;
    model = Model::load(dir);
    INFO(model.status().to_string());
    REQUIRE(model.ok());
    auto p = (*model)->predict(record);
    REQUIRE(p.ok());
    CHECK(p->served_by == "fallback");
    CHECK(p->value().value_or(0) == Approx(5.0));
  }
  fs::remove_all(dir);
}
