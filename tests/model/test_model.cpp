#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/model.hpp"
#include "fixtures.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using ember::Model;
using ember::ModelOptions;
using ember::Prediction;
using ember::StatusCode;

namespace {

using ember_test::models_dir;

fs::path churn() { return models_dir() / "churn"; }

std::vector<std::string> requests() {
  std::ifstream f(churn() / "requests.jsonl");
  REQUIRE(f.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  return lines;
}

nlohmann::json expected() { return ember_test::read_json(churn() / "expected.json"); }

std::unique_ptr<Model> load(const fs::path& dir, const ModelOptions& options) {
  auto m = Model::load(dir, options);
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  return std::move(m).value();
}

std::unique_ptr<Model> load(const fs::path& dir) {
  auto m = Model::load(dir);
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  return std::move(m).value();
}

// A copy of the churn directory in a fresh temporary folder, to be modified.
struct TempModel {
  fs::path dir;
  explicit TempModel(const std::string& name) {
    dir = fs::temp_directory_path() / ("ember_model_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::copy(churn(), dir);
  }
  ~TempModel() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const std::string& file, const std::string& text) const {
    std::ofstream f(dir / file, std::ios::trunc);
    f << text;
  }
  void chain(const nlohmann::json& doc) const { write("chain.json", doc.dump()); }
};

nlohmann::json chain_with(const nlohmann::json& stages) {
  return {{"format", "ember-chain"}, {"version", 1}, {"stages", stages}};
}

float output(const Prediction& p) { return p.outputs.find("output")->values<float>()[0]; }

}  // namespace

TEST_CASE("model: predictions equal Python's (pydantic + ColumnTransformer + TorchScript)") {
  auto model = load(churn());
  const auto want = expected();
  CHECK(model->pipeline() != nullptr);
  CHECK(model->chain().input_width() == want.at("width").get<std::size_t>());
  CHECK(model->chain().stage_names() == std::vector<std::string>{"primary", "linear", "cache", "default"});
  const auto lines = requests();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO("request " << i << ": " << lines[i]);
    Prediction p;
    REQUIRE(model->predict(lines[i], p).ok());
    CHECK(p.served_by == "primary");
    CHECK(p.skipped.empty());
    CHECK(output(p) == Approx(want.at("primary")[i].get<double>()).margin(1e-5));
    CHECK(p.latency > 0ns);
  }
  const auto c = model->counters();
  CHECK(c.requests == lines.size());
  CHECK(c.stages[0].served == lines.size());
}

TEST_CASE("model: the primary failing is answered by the linear model, equal to scikit-learn's") {
  ModelOptions options;
  options.inject["primary"] = {*ember::parse_fault_rule("throw")};
  auto model = load(churn(), options);
  const auto want = expected();
  const auto lines = requests();
  for (std::size_t i = 0; i < 10; ++i) {
    Prediction p;
    REQUIRE(model->predict(lines[i], p).ok());
    REQUIRE(p.skipped.size() == 1);
    if (i < 5) {
      CHECK(p.skipped[0].status.code() == StatusCode::kInternal);
    } else {  // the breaker opened after 5 failures (minimum_number_of_calls)
      CHECK(p.skipped[0].status.code() == StatusCode::kUnavailable);
    }
    CHECK(p.served_by == "linear");
    CHECK(output(p) == Approx(want.at("linear")[i].get<double>()).margin(1e-6));
  }
  CHECK(model->chain().breaker("primary")->state() == ember::BreakerState::kOpen);
}

TEST_CASE("model: invalid records are refused with every error and its path, and reach no stage") {
  auto model = load(churn());
  Prediction p;
  const auto s = model->predict(R"({"tenure": 212, "monthly_charges": -1, "autopay": "yes", "plan": "gold"})", p);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  std::vector<std::string> paths;
  for (const auto& e : p.validation.errors()) paths.push_back(e.instance_path);
  CHECK_THAT(s.message(), Catch::Contains("/tenure: 212 is greater than the maximum 120"));
  CHECK(std::find(paths.begin(), paths.end(), "/monthly_charges") != paths.end());
  CHECK(std::find(paths.begin(), paths.end(), "/autopay") != paths.end());
  CHECK(std::find(paths.begin(), paths.end(), "/plan") != paths.end());
  CHECK(std::find(paths.begin(), paths.end(), "") != paths.end());  // region is required
  for (const char* bad : {"", "{", "[]", "null", R"({"tenure": 1e999})", "{\"tenure\": \"\xff\"}"}) {
    INFO(bad);
    CHECK(model->predict(bad, p).code() == StatusCode::kInvalidArgument);
  }
  // A refused record leaves nothing of an earlier answer in the Prediction.
  REQUIRE(model->predict(requests()[0], p).ok());
  CHECK(model->predict("{}", p).code() == StatusCode::kInvalidArgument);
  CHECK(p.outputs.empty());
  CHECK(p.served_by.empty());
  const auto c = model->counters();
  CHECK(c.invalid == 8);
  CHECK(c.stages[0].calls == 1);  // the one valid request only
}

TEST_CASE("model: values outside the training range are served and flagged") {
  auto model = load(churn());
  Prediction p;
  REQUIRE(model->predict(R"({"tenure": 3, "monthly_charges": 400, "autopay": true, "plan": "pro", "region": "east"})",
                         p).ok());
  CHECK(p.flagged_features == std::vector<std::string>{"monthly_charges"});
  CHECK(model->counters().flagged == 1);
}

TEST_CASE("model: a Record built in C++ predicts the same as its JSON") {
  auto model = load(churn());
  ember::Record r;
  r.set("tenure", 54).set("monthly_charges", 44.6387232531495).set("autopay", false).set("plan", "pro")
      .set("region", "west").set("support_calls", 3);
  auto from_record = model->predict(r);
  auto from_json = model->predict(requests()[0]);
  REQUIRE(from_record.ok());
  REQUIRE(from_json.ok());
  CHECK(output(*from_record) == output(*from_json));
}

TEST_CASE("model: a batch answers its valid records in one pass and reports the others") {
  auto model = load(churn());
  auto lines = requests();
  lines.insert(lines.begin() + 2, R"({"tenure": -5})");
  lines.push_back("not json");
  std::vector<std::string_view> views(lines.begin(), lines.end());
  ember::BatchPrediction b;
  REQUIRE(model->predict_batch(views, b).ok());
  CHECK(b.served_by == "primary");
  CHECK(b.validation.valid == lines.size() - 2);
  CHECK(b.validation.invalid == 2);
  const auto out = b.outputs.find("output")->values<float>();
  REQUIRE(out.size() == lines.size() - 2);
  CHECK(b.source_index[2] == 3);
  const auto want = expected();
  for (std::size_t r = 0; r < out.size(); ++r) {
    const std::size_t original = b.source_index[r] - (b.source_index[r] > 2 ? 1 : 0);
    CHECK(out[r] == Approx(want.at("primary")[original].get<double>()).margin(1e-5));
  }
  std::vector<std::string_view> none{"{}", "[]"};
  CHECK(model->predict_batch(none, b).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("model: a batch given column by column answers as its JSON texts do") {
  auto model = load(churn());
  REQUIRE(model->schema().accepts_columns());
  auto lines = requests();
  lines.push_back(R"({"tenure": -5, "plan": "pro"})");  // invalid: reported, left out
  std::vector<nlohmann::json> docs;
  for (const auto& line : lines) docs.push_back(nlohmann::json::parse(line));
  // One column of cells per property any record has; absent where a record lacks it.
  std::vector<std::string> names;
  for (const auto& doc : docs) {
    for (const auto& [key, value] : doc.items()) {
      if (std::find(names.begin(), names.end(), key) == names.end()) names.push_back(key);
    }
  }
  std::vector<std::vector<ember::Cell>> cells(names.size(), std::vector<ember::Cell>(docs.size()));
  for (std::size_t k = 0; k < names.size(); ++k) {
    for (std::size_t i = 0; i < docs.size(); ++i) {
      const auto it = docs[i].find(names[k]);
      if (it == docs[i].end()) continue;
      ember::Cell& c = cells[k][i];
      if (it->is_boolean()) {
        c.type = ember::Cell::Type::kBool;
        c.integer = it->get<bool>() ? 1 : 0;
      } else if (it->is_number_integer()) {
        c.type = ember::Cell::Type::kInteger;
        c.integer = it->get<std::int64_t>();
      } else if (it->is_number()) {
        c.type = ember::Cell::Type::kNumber;
        c.number = it->get<double>();
      } else if (it->is_string()) {
        c.type = ember::Cell::Type::kString;
        c.text = it->get_ref<const std::string&>();
      } else {
        c.type = ember::Cell::Type::kNull;
      }
    }
  }
  std::vector<ember::ColumnView> columns;
  for (std::size_t k = 0; k < names.size(); ++k) {
    columns.push_back({names[k], ember::ColumnView::Type::kCells, cells[k].data(), 0});
  }
  std::vector<std::string_view> views(lines.begin(), lines.end());
  ember::BatchPrediction from_text, from_columns;
  REQUIRE(model->predict_batch(views, from_text).ok());
  REQUIRE(model->predict_batch(ember::Columns{columns, docs.size()}, from_columns).ok());
  CHECK(from_columns.source_index == from_text.source_index);
  CHECK(from_columns.validation.invalid == 1);
  REQUIRE(from_columns.validation.records.size() == from_text.validation.records.size());
  CHECK(from_columns.validation.records[0].second.status() == from_text.validation.records[0].second.status());
  const auto a = from_text.outputs.find("output")->values<float>();
  const auto b = from_columns.outputs.find("output")->values<float>();
  CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  ember::PreparedBatch prepared;
  REQUIRE(model->prepare(ember::Columns{columns, docs.size()}, prepared).ok());
  CHECK(prepared.rows == lines.size() - 1);
  // A malformed column is an error of the call, not of a record.
  const std::vector<ember::ColumnView> broken{{"tenure", ember::ColumnView::Type::kInt64, nullptr, 0}};
  CHECK(model->predict_batch(ember::Columns{broken, 3}, from_columns).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("model: a hung primary is answered by the linear model at the deadline") {
  ModelOptions options;
  options.inject["primary"] = {*ember::parse_fault_rule("hang:3s")};
  options.budget = 20ms;
  auto model = load(churn(), options);
  Prediction p;
  REQUIRE(model->predict(requests()[0], p).ok());
  CHECK(model->chain().abandoned_in_flight() == 1);  // answered while the 3 s hang still runs
  CHECK(p.served_by == "linear");
  CHECK(p.skipped[0].status.code() == StatusCode::kDeadlineExceeded);
}

TEST_CASE("model: low-confidence answers are flagged for review") {
  auto model = load(churn());
  std::size_t flagged = 0;
  for (const auto& line : requests()) {
    Prediction p;
    REQUIRE(model->predict(line, p).ok());
    const float prob = output(p);
    CHECK(p.needs_review_flag() == (std::max(prob, 1.0F - prob) < 0.6F));
    flagged += p.needs_review_flag() ? 1 : 0;
  }
  CHECK(model->counters().needs_review == flagged);
}

TEST_CASE("model: many threads predict at once") {
  auto model = load(churn());
  const auto lines = requests();
  const auto want = expected();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Prediction p;
      for (int k = 0; k < 100; ++k) {
        const std::size_t i = static_cast<std::size_t>(t * 7 + k) % lines.size();
        if (!model->predict(lines[i], p).ok() ||
            std::abs(output(p) - want.at("primary")[i].get<double>()) > 1e-5) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(model->counters().requests == 400);
}

TEST_CASE("model: without chain.json, the TorchScript model serves alone on the CPU") {
  TempModel m("nochain");
  fs::remove(m.dir / "chain.json");
  auto model = load(m.dir);
  CHECK(model->chain().stage_names() == std::vector<std::string>{"primary"});
  auto p = model->predict(requests()[0]);
  REQUIRE(p.ok());
  CHECK(output(*p) == Approx(expected().at("primary")[0].get<double>()).margin(1e-5));
}

TEST_CASE("model: a model that does not take the pipeline's width is refused at load") {
  TempModel m("wide");
  fs::copy_file(models_dir() / "churn_wide.pt", m.dir / "model.pt", fs::copy_options::overwrite_existing);
  auto model = Model::load(m.dir);
  REQUIRE_FALSE(model.ok());
  INFO(model.status().to_string());
  CHECK(model.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(model.status().message(), Catch::Contains("stage 0 'primary'") &&
                                           Catch::Contains("pipeline's 11 columns"));
}

TEST_CASE("model: missing and broken files are clear errors") {
  CHECK(Model::load("/nonexistent/model").status().code() == StatusCode::kNotFound);
  {
    TempModel m("noschema");
    fs::remove(m.dir / "schema.json");
    CHECK(Model::load(m.dir).status().code() == StatusCode::kNotFound);
  }
  {
    TempModel m("nomodel");
    fs::remove(m.dir / "model.pt");
    auto r = Model::load(m.dir);
    CHECK(r.status().code() == StatusCode::kNotFound);
    CHECK_THAT(r.status().message(), Catch::Contains("model.pt"));
  }
  {
    TempModel m("truncated");
    std::ifstream in(m.dir / "model.pt", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    m.write("model.pt", bytes.substr(0, bytes.size() / 2));
    CHECK(Model::load(m.dir).status().code() == StatusCode::kDataLoss);
  }
  {
    TempModel m("pipeline");
    m.write("pipeline.json", "{\"format\": \"ember-pipeline\", \"version\": 1, \"inputs\": [");
    CHECK(Model::load(m.dir).status().code() == StatusCode::kInvalidArgument);
  }
  {
    TempModel m("schema_order");
    // A schema whose features are not the pipeline's inputs.
    m.write("schema.json", R"({"type":"object","properties":{"a":{"type":"number"}},"required":["a"]})");
    auto r = Model::load(m.dir);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("pipeline input"));
  }
}

TEST_CASE("model: bad chain.json is refused at load, naming the stage and field") {
  TempModel m("badchain");
  const auto refused = [&](const std::string& text, const std::string& says) {
    m.write("chain.json", text);
    auto r = Model::load(m.dir);
    INFO(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains(says));
  };
  const auto linear = [](const char* output) {
    return nlohmann::json{{"name", "linear"}, {"type", "linear"}, {"output", output}};
  };
  const nlohmann::json primary{{"name", "primary"}, {"type", "torchscript"}, {"device", "cpu"}};
  refused("", "not valid JSON");
  refused("{\"format\": \"ember-chain\", \"version\": 1, \"stages\": [", "not valid JSON");
  refused(R"({"format": "ember-chain", "version": 9, "stages": []})", "version");
  refused(chain_with(nlohmann::json::array()).dump(), "'stages' must be a non-empty array");
  refused(chain_with({{{"type", "quantum"}}}).dump(), "unknown stage type 'quantum'");
  refused(chain_with({{{"type", "torchscript"}, {"devise", "cpu"}}}).dump(), "unknown key 'devise'");
  refused(chain_with({primary, linear("predict_proba")}).dump(), "stage 1 'linear': its outputs");
  refused(chain_with({primary, linear("nonsense")}).dump(), "unknown linear output 'nonsense'");
  refused(chain_with({primary, {{"type", "default"}, {"outputs", {{"output", {0.1, 0.9}}}}}}).dump(), "differ");
  refused(chain_with({primary, {{"type", "default"}, {"outputs", {{"score", 0.5}}}}}).dump(), "differ");
  refused(chain_with({primary, primary}).dump(), "used twice");
  auto breaker = primary;
  breaker["breaker"] = {{"failure_rate_threshold", 120}};
  refused(chain_with(nlohmann::json::array({breaker})).dump(), "'failure_rate_threshold' must be a number in (0, 100]");
  breaker["breaker"] = {{"sliding_window_type", "sometimes"}};
  refused(chain_with(nlohmann::json::array({breaker})).dump(), "sliding_window_type");
  breaker["breaker"] = {{"ignored_codes", {"Nope"}}};
  refused(chain_with(nlohmann::json::array({breaker})).dump(), "not a status code name");
  auto doc = chain_with({primary});
  doc["confidence"] = {{"output", "output"}, {"threshold", 1.5}};
  refused(doc.dump(), "threshold");
  doc = chain_with({primary});
  doc["budget_ms"] = -5;
  refused(doc.dump(), "budget_ms");
  refused(chain_with({primary, {{"type", "cache"}, {"capacity", 0}}}).dump(), "capacity");
  m.write("chain.json", chain_with({{{"type", "linear"}, {"path", "missing.json"}}}).dump());
  auto missing = Model::load(m.dir);
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK_THAT(missing.status().message(), Catch::Contains("missing.json"));
  m.write("chain.json", chain_with({{{"type", "torchscript"}, {"device", "cuda:7"}}}).dump());
  CHECK_FALSE(Model::load(m.dir).ok());
  // Oversized and deeply nested files.
  m.write("chain.json", "{\"format\": \"ember-chain\", \"pad\": \"" + std::string(2 << 20, 'x') + "\"}");
  auto big = Model::load(m.dir);
  CHECK(big.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(big.status().message(), Catch::Contains("more than the limit"));
  refused(std::string(100000, '[') + std::string(100000, ']'), "not an ember chain");
  refused(std::string(100000, '['), "not valid JSON");
}

TEST_CASE("model: injecting faults into a stage that does not exist is an error") {
  ModelOptions options;
  options.inject["gpu"] = {*ember::parse_fault_rule("throw")};
  auto r = Model::load(churn(), options);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("primary, linear, cache, default"));
}

TEST_CASE("model: assembled in code from the same parts") {
  auto schema = ember::Schema::load(churn() / "schema.json");
  auto pipeline = ember::Pipeline::load(churn() / "pipeline.json");
  auto lin = ember::LinearModel::load(churn() / "linear.json");
  REQUIRE(schema.ok());
  REQUIRE(pipeline.ok());
  REQUIRE(lin.ok());
  ember::ChainOptions options;
  options.input_width = pipeline->output_width();
  options.stages.push_back({"linear", *ember::make_linear_stage(*lin, ember::LinearOutput::kPositiveProba), std::nullopt});
  auto chain = ember::FallbackChain::create(std::move(options));
  REQUIRE(chain.ok());
  auto model = Model::assemble(*schema, *pipeline, std::move(chain).value());
  REQUIRE(model.ok());
  auto p = (*model)->predict(requests()[1]);
  REQUIRE(p.ok());
  CHECK(p->served_by == "linear");
  CHECK(output(*p) == Approx(expected().at("linear")[1].get<double>()).margin(1e-6));

  ember::ChainOptions narrow;
  narrow.input_width = 3;
  narrow.stages.push_back({"d", *ember::make_default_stage({{"output", {0.5F}}}), std::nullopt});
  auto wrong = Model::assemble(*schema, *pipeline, *ember::FallbackChain::create(std::move(narrow)));
  CHECK(wrong.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("model: without pipeline.json the schema's features are the model's input") {
  TempModel m("nopipeline");
  fs::remove(m.dir / "pipeline.json");
  auto refused = Model::load(m.dir);  // 6 features (categories as their index), but the model takes 11
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(refused.status().message(), Catch::Contains("the schema's 6 columns"));

  // The executor tests' MLP takes 32 numbers: a schema of 32 numbers serves it directly.
  nlohmann::json schema{{"type", "object"}, {"properties", nlohmann::json::object()}, {"required", nlohmann::json::array()}};
  nlohmann::json record = nlohmann::json::object();
  for (int i = 0; i < 32; ++i) {
    const std::string name = "f" + std::to_string(100 + i);  // names sort in schema order
    schema["properties"][name] = {{"type", "number"}};
    schema["required"].push_back(name);
    record[name] = 0.25;
  }
  fs::remove(m.dir / "chain.json");
  m.write("schema.json", schema.dump());
  fs::copy_file(models_dir() / "mlp.pt", m.dir / "model.pt", fs::copy_options::overwrite_existing);
  auto model = load(m.dir);
  CHECK(model->pipeline() == nullptr);
  auto p = model->predict(record.dump());
  REQUIRE(p.ok());
  const float out = p->outputs.find("output")->values<float>()[0];
  CHECK(out > 0.0F);
  CHECK(out < 1.0F);
  std::vector<std::string> lines{record.dump(), R"({"f100": 1})", record.dump()};
  std::vector<std::string_view> views(lines.begin(), lines.end());
  ember::BatchPrediction b;
  REQUIRE(model->predict_batch(views, b).ok());
  CHECK(b.source_index == std::vector<std::size_t>{0, 2});
  CHECK(b.outputs.find("output")->values<float>()[1] == out);
}
