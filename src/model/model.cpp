// Model: schema -> pipeline -> fallback chain, for one record or a batch.
#include "ember/model.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>

#include "model/model_internal.hpp"

namespace ember {
namespace detail {

// What one predict() call needs besides the model: reused across calls.
struct Scratch {
  explicit Scratch(const JsonLimits& limits) : parser(limits) {}
  JsonParser parser;
  FeatureRow row;
  std::vector<float> features;
  FeatureBatch batch;
};

struct ModelImpl {
  Schema schema;
  std::optional<Pipeline> pipeline;
  std::unique_ptr<FallbackChain> chain;
  std::size_t width = 0;
  std::vector<std::string_view> feature_names;

  mutable std::mutex scratch_mutex;
  mutable std::vector<std::unique_ptr<Scratch>> scratch;
  mutable std::atomic<std::uint64_t> requests{0}, invalid{0}, flagged{0}, failed{0};

  ModelImpl(Schema s, std::optional<Pipeline> p, std::unique_ptr<FallbackChain> c)
      : schema(std::move(s)), pipeline(std::move(p)), chain(std::move(c)) {}

  // A scratch for this call; it goes back to the pool when the lease ends.
  struct Return {
    const ModelImpl* model;
    void operator()(Scratch* s) const {
      std::lock_guard<std::mutex> lock(model->scratch_mutex);
      model->scratch.emplace_back(s);
    }
  };
  using Lease = std::unique_ptr<Scratch, Return>;
  Lease lease() const {
    {
      std::lock_guard<std::mutex> lock(scratch_mutex);
      if (!scratch.empty()) {
        Lease l(scratch.back().release(), Return{this});
        scratch.pop_back();
        return l;
      }
    }
    return Lease(new Scratch(schema.options().limits), Return{this});
  }

  // The model's input row for a validated feature row.
  Status features_of(const FeatureRow& row, std::span<float> out) const {
    if (pipeline) return pipeline->transform(row, out);
    std::copy(row.values.begin(), row.values.end(), out.begin());
    return {};
  }

  // Validates with `validate` (JSON or Record) into a scratch row, preprocesses, and
  // runs the chain on the row.
  template <typename Validate>
  Status predict_one(Prediction& p, const PredictOptions& options, Validate&& validate) const {
    const auto start = std::chrono::steady_clock::now();
    requests.fetch_add(1, std::memory_order_relaxed);
    // Nothing of an earlier request may be left in `p` when this one fails early.
    p.outputs = NamedTensors();
    p.served_by = {};
    p.skipped.clear();
    p.needs_review.clear();
    p.flagged_features.clear();
    auto held = lease();
    Scratch& s = *held;
    s.features.resize(width);
    Status st = validate(s, p.validation);
    if (st.ok()) {
      st = features_of(s.row, s.features);
      if (!st.ok()) p.validation.add_error({"", "", "pipeline", st.message()}, 1);
    }
    if (!st.ok()) {
      invalid.fetch_add(1, std::memory_order_relaxed);
      p.latency = std::chrono::steady_clock::now() - start;
      return st;
    }
    for (std::uint32_t f : p.validation.flagged()) {
      if (std::find(p.flagged_features.begin(), p.flagged_features.end(), feature_names[f]) == p.flagged_features.end()) {
        p.flagged_features.push_back(feature_names[f]);
      }
    }
    if (!p.flagged_features.empty()) flagged.fetch_add(1, std::memory_order_relaxed);
    auto features = Tensor::view(s.features, {1, static_cast<std::int64_t>(width)});
    if (!features.ok()) return features.status();
    st = chain->run(*features, p, RunOptions{options.budget});
    if (!st.ok()) failed.fetch_add(1, std::memory_order_relaxed);
    p.latency = std::chrono::steady_clock::now() - start;
    return st;
  }
};

Result<std::unique_ptr<FallbackChain>> finish_chain(ChainOptions chain, const ModelOptions& options) {
  if (options.budget) chain.budget = *options.budget;
  if (options.clock) chain.clock = options.clock;
  if (options.on_breaker_change) chain.on_breaker_change = options.on_breaker_change;
  for (const auto& injection : options.inject) {
    const std::string& name = injection.first;
    const auto& rules = injection.second;
    auto it = std::find_if(chain.stages.begin(), chain.stages.end(), [&](const ChainStage& s) { return s.name == name; });
    if (it == chain.stages.end()) {
      std::string names;
      for (const auto& s : chain.stages) names += (names.empty() ? "" : ", ") + s.name;
      return invalid_argument("cannot inject faults into stage '" + name + "': the chain's stages are " + names);
    }
    auto wrapped = FaultInjector::wrap(it->stage, rules, options.clock, options.fault_seed);
    if (!wrapped.ok()) return wrapped.status();
    it->stage = std::move(wrapped).value();
  }
  return FallbackChain::create(std::move(chain));
}

}  // namespace detail

Model::Model(std::unique_ptr<detail::ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::assemble(Schema schema, std::optional<Pipeline> pipeline,
                                              std::unique_ptr<FallbackChain> chain) {
  if (chain == nullptr) return invalid_argument("model: no chain");
  std::size_t width = 0;
  if (pipeline) {
    EMBER_RETURN_IF_ERROR(pipeline->check_inputs(schema).with_context("model"));
    width = pipeline->output_width();
  } else {
    for (const auto& f : schema.features()) {
      if (f.kind == FeatureKind::kText) {
        return invalid_argument("model: feature '" + f.name + "' is free text; without a pipeline to encode it, "
                                "the model cannot take it");
      }
    }
    width = schema.features().size();
  }
  if (width != chain->input_width()) {
    return invalid_argument("model: " + std::string(pipeline ? "the pipeline produces " : "the schema has ") +
                            std::to_string(width) + " columns but the chain takes " +
                            std::to_string(chain->input_width()));
  }
  auto impl = std::make_unique<detail::ModelImpl>(std::move(schema), std::move(pipeline), std::move(chain));
  impl->width = width;
  for (const auto& f : impl->schema.features()) impl->feature_names.push_back(f.name);
  // One scratch made now, so that the first request does not pay for its buffers.
  auto warm = std::make_unique<detail::Scratch>(impl->schema.options().limits);
  (void)warm->parser.parse("{}");
  warm->features.resize(width);
  impl->scratch.push_back(std::move(warm));
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& dir, const ModelOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return not_found("model directory '" + dir.string() + "' does not exist");
  auto schema = Schema::load(dir / "schema.json", options.schema);
  if (!schema.ok()) return schema.status();
  std::optional<Pipeline> pipeline;
  std::size_t width = schema->features().size();
  if (std::filesystem::exists(dir / "pipeline.json", ec)) {
    auto p = Pipeline::load(dir / "pipeline.json");
    if (!p.ok()) return p.status();
    EMBER_RETURN_IF_ERROR(p->check_inputs(*schema).with_context("'" + (dir / "pipeline.json").string() + "'"));
    width = p->output_width();
    pipeline = std::move(p).value();
  }
  Result<std::unique_ptr<FallbackChain>> chain = Status(StatusCode::kUnknown, "not built");
  if (std::filesystem::exists(dir / "chain.json", ec)) {
    chain = load_chain(dir / "chain.json", dir, width, options);
  } else {
    auto parsed = detail::default_chain(dir, width, options);
    if (!parsed.ok()) return parsed.status().with_context("model '" + dir.string() + "'");
    chain = detail::finish_chain(std::move(parsed).value(), options);
  }
  if (!chain.ok()) {
    const Status& s = chain.status();
    return Status(s.code(), s.message() + " (the model's input is the " + (pipeline ? "pipeline's " : "schema's ") +
                                std::to_string(width) + " columns)");
  }
  return assemble(std::move(schema).value(), std::move(pipeline), std::move(chain).value());
}

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& dir) { return load(dir, ModelOptions{}); }

Status Model::predict(std::string_view json, Prediction& prediction, const PredictOptions& options) const {
  return impl_->predict_one(prediction, options, [&](detail::Scratch& s, ValidationReport& report) {
    return impl_->schema.validate_into(json, s.parser, s.row, report);
  });
}

Status Model::predict(const Record& record, Prediction& prediction, const PredictOptions& options) const {
  return impl_->predict_one(prediction, options, [&](detail::Scratch& s, ValidationReport& report) {
    return impl_->schema.validate_into(record, s.row, report);
  });
}

Result<Prediction> Model::predict(std::string_view json, const PredictOptions& options) const {
  Prediction p;
  EMBER_RETURN_IF_ERROR(predict(json, p, options));
  return p;
}

Result<Prediction> Model::predict(const Record& record, const PredictOptions& options) const {
  Prediction p;
  EMBER_RETURN_IF_ERROR(predict(record, p, options));
  return p;
}

Status Model::predict_batch(std::span<const std::string_view> records, BatchPrediction& prediction,
                            const PredictOptions& options) const {
  const auto start = std::chrono::steady_clock::now();
  auto& m = *impl_;
  m.requests.fetch_add(records.size(), std::memory_order_relaxed);
  prediction.source_index.clear();
  auto lease = m.lease();
  auto& s = *lease;
  Status st = m.schema.validate_batch(records, s.parser, s.batch, prediction.validation, BatchPolicy::kSkipInvalid);
  (void)st;  // under kSkipInvalid, bad records are in the report
  const FeatureBatch& batch = s.batch;
  s.features.resize(batch.rows * m.width);
  std::size_t rows = 0;
  if (!m.pipeline) {  // the features are the model's input
    std::copy(batch.values.begin(), batch.values.end(), s.features.begin());
    rows = batch.rows;
    prediction.source_index = batch.source_index;
  } else if (m.pipeline->transform_batch(batch, s.features).ok()) {
    rows = batch.rows;
    prediction.source_index = batch.source_index;
  } else {
    // Row by row, so that a row preprocessing refuses is reported and left out.
    FeatureRow row;
    for (std::size_t r = 0; r < batch.rows; ++r) {
      row.values.assign(batch.values.begin() + static_cast<std::ptrdiff_t>(r * batch.cols),
                        batch.values.begin() + static_cast<std::ptrdiff_t>((r + 1) * batch.cols));
      row.text.assign(batch.text.begin() + static_cast<std::ptrdiff_t>(r * batch.cols),
                      batch.text.begin() + static_cast<std::ptrdiff_t>((r + 1) * batch.cols));
      Status t = m.features_of(row, std::span<float>(s.features).subspan(rows * m.width, m.width));
      if (t.ok()) {
        prediction.source_index.push_back(batch.source_index[r]);
        ++rows;
        continue;
      }
      ValidationReport report;
      report.add_error({"", "", "pipeline", t.message()}, 1);
      auto& reports = prediction.validation.records;
      const auto same = std::find_if(reports.begin(), reports.end(),
                                     [&](const auto& e) { return e.first == batch.source_index[r]; });
      if (same != reports.end()) {  // it was valid but flagged: now it is invalid instead
        --prediction.validation.flagged;
        same->second = std::move(report);
      } else {
        reports.emplace_back(batch.source_index[r], std::move(report));
      }
      --prediction.validation.valid;
      ++prediction.validation.invalid;
    }
    std::sort(prediction.validation.records.begin(), prediction.validation.records.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  m.invalid.fetch_add(prediction.validation.invalid, std::memory_order_relaxed);
  m.flagged.fetch_add(prediction.validation.flagged, std::memory_order_relaxed);
  if (rows == 0) {
    prediction.outputs = NamedTensors();
    prediction.skipped.clear();
    prediction.needs_review.clear();
    prediction.served_by = {};
    prediction.latency = std::chrono::steady_clock::now() - start;
    return invalid_argument("none of the " + std::to_string(records.size()) + " records is valid");
  }
  auto features = Tensor::view(std::span<float>(s.features).first(rows * m.width),
                               {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(m.width)});
  if (!features.ok()) return features.status();
  st = m.chain->run(*features, prediction, RunOptions{options.budget});
  if (!st.ok()) m.failed.fetch_add(1, std::memory_order_relaxed);
  prediction.latency = std::chrono::steady_clock::now() - start;
  return st;
}

const Schema& Model::schema() const noexcept { return impl_->schema; }
const Pipeline* Model::pipeline() const noexcept { return impl_->pipeline ? &*impl_->pipeline : nullptr; }
const FallbackChain& Model::chain() const noexcept { return *impl_->chain; }

ModelCounters Model::counters() const {
  ModelCounters c;
  c.requests = impl_->requests.load();
  c.invalid = impl_->invalid.load();
  c.flagged = impl_->flagged.load();
  c.failed = impl_->failed.load();
  c.needs_review = impl_->chain->needs_review_count();
  c.stages = impl_->chain->counters();
  return c;
}

}  // namespace ember
