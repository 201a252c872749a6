// Model: schema -> pipeline -> fallback chain, for one record or a batch.
#include "ember/model.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <thread>
#include <utility>

#include "core/striped.hpp"
#include "ember/bundle.hpp"
#include "fallback/stage_outputs.hpp"
#include "model/model_internal.hpp"

namespace ember {

Observer::~Observer() = default;

Result<double> Prediction::value(std::string_view name, std::size_t index) const {
  auto t = outputs.get(name);
  if (!t.ok()) return t.status();
  auto v = (*t)->at(index);
  if (!v.ok()) return v.status().with_context("output '" + std::string(name) + "'");
  return v;
}

Result<Tensor> PreparedBatch::input_tensor() const {
  if (rows * width > inputs.size()) return failed_precondition("prepared batch: fewer inputs than rows x width");
  return Tensor::view(std::span<const double>(inputs.data(), rows * width),
                      {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(width)});
}

namespace detail {

// What one predict() call needs besides the model: reused across calls.
struct Scratch {
  explicit Scratch(const JsonLimits& limits) : parser(limits) {}
  JsonParser parser;
  FeatureRow row;
  std::vector<double> features;
  Tensor input;  // a 1 x width view of `features`, made once (a Tensor's shape allocates)
  PreparedBatch prepared;

  // Points `input` at the model input row; `features` holds `width` values.
  Status view_input(std::size_t width) {
    if (!input.defined() || input.data() != features.data() || input.size(1) != static_cast<std::int64_t>(width)) {
      auto view = Tensor::view(std::span<double>(features), {1, static_cast<std::int64_t>(width)});
      if (!view.ok()) return view.status();
      input = std::move(view).value();
    }
    return {};
  }
};

// Scratches for requests, taken and given back without a lock: a few slots that a
// request empties with one exchange and refills with one compare-exchange. Each thread
// starts at its own slot, so threads rarely touch the same one.
class ScratchPool {
 public:
  explicit ScratchPool(JsonLimits limits) : limits_(limits) {}
  ~ScratchPool() {
    for (auto& slot : slots_) delete slot.load();  // NOLINT(cppcoreguidelines-owning-memory)
  }
  ScratchPool(const ScratchPool&) = delete;
  ScratchPool& operator=(const ScratchPool&) = delete;

  struct Return {
    ScratchPool* pool;
    void operator()(Scratch* s) const noexcept { pool->give_back(s); }
  };
  using Lease = std::unique_ptr<Scratch, Return>;

  // Throws std::bad_alloc when a new scratch cannot be made.
  Lease take() {
    const std::size_t start = home();
    for (std::size_t i = 0; i < kSlots; ++i) {
      if (Scratch* s = slots_[(start + i) % kSlots].exchange(nullptr, std::memory_order_acquire)) {
        return Lease(s, Return{this});
      }
    }
    return Lease(new Scratch(limits_), Return{this});
  }

  void give_back(Scratch* s) noexcept {
    const std::size_t start = home();
    for (std::size_t i = 0; i < kSlots; ++i) {
      Scratch* empty = nullptr;
      if (slots_[(start + i) % kSlots].compare_exchange_strong(empty, s, std::memory_order_release,
                                                               std::memory_order_relaxed)) {
        return;
      }
    }
    delete s;  // every slot is full: more threads than slots at this moment
  }

 private:
  static constexpr std::size_t kSlots = 2 * kStripes;
  static std::size_t home() noexcept { return 2 * thread_stripe(); }
  struct alignas(64) Slot : std::atomic<Scratch*> {  // one cache line each: threads do not share them
    Slot() : std::atomic<Scratch*>(nullptr) {}
  };
  JsonLimits limits_;
  std::array<Slot, kSlots> slots_{};
};

struct ModelImpl {
  Schema schema;
  std::optional<Pipeline> pipeline;
  std::unique_ptr<FallbackChain> chain;
  std::size_t width = 0;
  std::string name, version;
  std::shared_ptr<TaskExecutor> executor;
  std::vector<std::shared_ptr<Observer>> observers;
  mutable ScratchPool scratch;
  // Bumped on every request: striped, so that threads do not share their cache lines.
  mutable StripedCounter requests, invalid, flagged, failed, observer_errors;

  ModelImpl(Schema s, std::optional<Pipeline> p, std::unique_ptr<FallbackChain> c)
      : schema(std::move(s)), pipeline(std::move(p)), chain(std::move(c)), scratch(schema.options().limits) {}

  // The model's input row for a validated feature row.
  Status features_of(const FeatureRow& row, std::span<double> out) const {
    if (pipeline) return pipeline->transform(row, out);
    std::copy(row.values.begin(), row.values.end(), out.begin());
    return {};
  }

  void notify(const RequestEvent& event) const {
    for (const auto& o : observers) {
      try {
        o->on_request(event);
      } catch (...) {  // an observer must not change the answer
        observer_errors.add();
      }
    }
  }

  // What observers are told of a request: the parts common to one record and a batch.
  RequestEvent event(const AnswerOrigin& origin, const ChainResult& result, const Tensor* input,
                     const Status& status) const {
    RequestEvent e;
    e.request_id = origin.request_id;
    e.model_name = name;
    e.model_version = version;
    e.model_input = input;
    e.result = &result;
    e.latency = origin.latency;
    e.status = status;
    return e;
  }

  void stamp(AnswerOrigin& origin, std::uint64_t id, std::chrono::steady_clock::time_point start) const {
    origin.model_name = name;  // assignments reuse the strings' memory
    origin.model_version = version;
    origin.request_id = id;
    origin.latency = std::chrono::steady_clock::now() - start;
  }

  // Validates with `validate` (JSON or Record) into a scratch row, preprocesses, and
  // runs the chain on the row.
  template <typename Validate>
  Status predict_one(Prediction& p, const PredictOptions& options, Validate&& validate) const {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t id = requests.add_unique(1);
    // Nothing of an earlier request may be left in `p` when this one fails early; its
    // outputs are kept for the chain's stages to write into, and cleared on failure.
    p.served_by.clear();
    p.skipped.clear();
    p.needs_review.clear();
    p.flagged_features.clear();
    auto held = scratch.take();
    Scratch& s = *held;
    s.features.resize(width);
    const Tensor* input = nullptr;
    Status st = validate(s, p.validation);
    if (st.ok()) {
      st = features_of(s.row, s.features);
      if (!st.ok()) p.validation.add_error({"", "", "pipeline", st.message()}, 1);
    }
    if (!st.ok()) {
      p.outputs.clear();
      invalid.add();
    } else {
      for (std::uint32_t f : p.validation.flagged()) {
        const std::string& feature = schema.features()[f].name;
        if (std::find(p.flagged_features.begin(), p.flagged_features.end(), feature) == p.flagged_features.end()) {
          p.flagged_features.push_back(feature);
        }
      }
      if (!p.flagged_features.empty()) flagged.add();
      EMBER_RETURN_IF_ERROR(s.view_input(width));
      input = &s.input;
      st = chain->run(*input, p, RunOptions{options.budget});
      if (!st.ok()) failed.add();
    }
    stamp(p, id, start);
    if (!observers.empty()) {
      RequestEvent e = event(p, p, input, st);
      e.features = &s.row;
      e.validation = &p.validation;
      notify(e);
    }
    return st;
  }

  // N records as JSON texts or column by column (one of the two).
  struct BatchInput {
    std::span<const std::string_view> texts;
    const Columns* columns = nullptr;
    [[nodiscard]] std::size_t size() const noexcept { return columns != nullptr ? columns->rows : texts.size(); }
  };
  Status prepare(const BatchInput& records, PreparedBatch& out, const PredictOptions& options,
                 JsonParser& parser) const;
  Status predict_batch(const BatchInput& records, BatchPrediction& prediction, const PredictOptions& options) const;
  Status execute(const Tensor& inputs, BatchPrediction& prediction, const PredictOptions& options) const;
  Status execute_whole(const Tensor& inputs, BatchPrediction& prediction, const PredictOptions& options) const;
  Status execute_blocks(const Tensor& inputs, BatchPrediction& prediction, const PredictOptions& options) const;
};

// Guards a public entry point: an exception that escapes (std::bad_alloc above all)
// becomes a Status.
template <typename F>
Status guarded(const char* what, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "out of memory");  // short: builds without allocating
  } catch (const std::exception& e) {
    return internal_error(std::string(what) + ": " + e.what());
  } catch (...) {
    return internal_error(std::string(what) + ": a non-standard exception");
  }
}

Status ModelImpl::prepare(const BatchInput& records, PreparedBatch& out, const PredictOptions& options,
                          JsonParser& parser) const {
  BatchOptions bo;
  bo.policy = BatchPolicy::kSkipInvalid;  // bad records go to the report, not the status
  bo.threads = options.threads;
  bo.executor = executor.get();
  EMBER_RETURN_IF_ERROR(records.columns != nullptr
                            ? schema.validate_batch(*records.columns, out.features, out.validation, bo)
                            : schema.validate_batch(records.texts, parser, out.features, out.validation, bo));
  FeatureBatch& batch = out.features;
  out.width = width;
  out.inputs.resize(batch.rows * width);
  out.source_index.clear();
  std::size_t rows = 0;
  if (!pipeline) {  // the features are the model's input
    std::copy(batch.values.begin(), batch.values.end(), out.inputs.begin());
    rows = batch.rows;
    out.source_index = batch.source_index;
  } else if (pipeline->transform_batch(batch, out.inputs).ok()) {
    rows = batch.rows;
    out.source_index = batch.source_index;
  } else {
    // Row by row, so that a row preprocessing refuses is reported and left out (its
    // features too, so that they stay aligned with the inputs).
    FeatureRow row;
    const std::size_t cols = batch.cols;
    for (std::size_t r = 0; r < batch.rows; ++r) {
      const auto at = [&](auto& v, std::size_t i) { return v.begin() + static_cast<std::ptrdiff_t>(i * cols); };
      row.values.assign(at(batch.values, r), at(batch.values, r + 1));
      row.integers.assign(at(batch.integers, r), at(batch.integers, r + 1));
      row.text.assign(at(batch.text, r), at(batch.text, r + 1));
      Status t = features_of(row, std::span<double>(out.inputs).subspan(rows * width, width));
      if (t.ok()) {
        if (rows != r) {
          std::copy(row.values.begin(), row.values.end(), at(batch.values, rows));
          std::copy(row.integers.begin(), row.integers.end(), at(batch.integers, rows));
          std::move(row.text.begin(), row.text.end(), at(batch.text, rows));
        }
        out.source_index.push_back(batch.source_index[r]);
        ++rows;
        continue;
      }
      ValidationReport report;
      report.add_error({"", "", "pipeline", t.message()}, 1);
      auto& reports = out.validation.records;
      const auto same = std::find_if(reports.begin(), reports.end(),
                                     [&](const auto& e) { return e.first == batch.source_index[r]; });
      if (same != reports.end()) {  // it was valid but flagged: now it is invalid instead
        --out.validation.flagged;
        same->second = std::move(report);
      } else {
        reports.emplace_back(batch.source_index[r], std::move(report));
      }
      --out.validation.valid;
      ++out.validation.invalid;
    }
    std::sort(out.validation.records.begin(), out.validation.records.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    batch.rows = rows;
    batch.values.resize(rows * cols);
    batch.integers.resize(rows * cols);
    batch.text.resize(rows * cols);
    batch.source_index = out.source_index;
  }
  out.rows = rows;
  out.inputs.resize(rows * width);
  invalid.add(out.validation.invalid);
  flagged.add(out.validation.flagged);
  if (rows == 0) return invalid_argument("none of the " + std::to_string(records.size()) + " records is valid");
  return {};
}

namespace {
// Fills row `r` of every output with NaN (0 for integer and bool outputs).
void blank_row(NamedTensors& outputs, std::int64_t r) {
  for (const auto& e : outputs) {
    const Tensor& t = e.tensor;
    const std::size_t per_row = t.numel() / std::max<std::int64_t>(t.size(0), 1);
    const std::size_t first = static_cast<std::size_t>(r) * per_row;
    if (t.dtype() == DType::kFloat32) {
      std::fill_n(t.values<float>().begin() + static_cast<std::ptrdiff_t>(first), per_row, NAN);
    } else if (t.dtype() == DType::kFloat64) {
      std::fill_n(t.values<double>().begin() + static_cast<std::ptrdiff_t>(first), per_row, NAN);
    }  // other dtypes stay zero, as Tensor::zeros made them
  }
}
}  // namespace

Status ModelImpl::execute(const Tensor& inputs, BatchPrediction& p, const PredictOptions& options) const {
  const std::int64_t n = inputs.defined() && inputs.dim() == 2 ? inputs.size(0) : 0;
  const auto block = static_cast<std::int64_t>(options.block_rows);
  if (block > 0 && n > 0 && n != block && inputs.dtype() == DType::kFloat64 && inputs.device().is_cpu()) {
    return execute_blocks(inputs, p, options);
  }
  return execute_whole(inputs, p, options);
}

// The rows in blocks of exactly options.block_rows, the last one filled up with copies
// of its first row, so that every model call has the same shape.
Status ModelImpl::execute_blocks(const Tensor& inputs, BatchPrediction& p, const PredictOptions& options) const {
  const std::int64_t n = inputs.size(0);
  const auto block = static_cast<std::int64_t>(options.block_rows);
  const auto cols = static_cast<std::size_t>(inputs.size(1));
  NamedTensors outputs;
  EMBER_RETURN_IF_ERROR(writable_outputs(outputs, chain->outputs(), n));
  std::vector<double> buffer(static_cast<std::size_t>(block) * cols);
  auto block_input = Tensor::view(std::span<double>(buffer), {block, static_cast<std::int64_t>(cols)});
  if (!block_input.ok()) return block_input.status();
  const auto in = inputs.values<double>();
  BatchPrediction part;
  std::vector<RowOutcome> rows;
  std::vector<std::uint32_t> needs_review;
  std::vector<SkippedStage> skipped;
  std::string served_by;
  std::size_t failed_rows = 0;
  Status last;
  for (std::int64_t start = 0; start < n; start += block) {
    const std::int64_t m = std::min(block, n - start);
    const auto first = in.begin() + static_cast<std::ptrdiff_t>(start * static_cast<std::int64_t>(cols));
    std::copy(first, first + static_cast<std::ptrdiff_t>(m * static_cast<std::int64_t>(cols)), buffer.begin());
    for (std::int64_t r = m; r < block; ++r) {
      std::copy(first, first + static_cast<std::ptrdiff_t>(cols),
                buffer.begin() + static_cast<std::ptrdiff_t>(r * static_cast<std::int64_t>(cols)));
    }
    Status st = execute_whole(*block_input, part, options);
    const bool answered = part.failed_rows < static_cast<std::size_t>(block);
    if (!answered) last = st;
    for (std::size_t k = 0; k < outputs.size() && answered; ++k) {
      const Tensor& dst = outputs[k].tensor;
      const Tensor& src = part.outputs[k].tensor;
      const std::size_t row_bytes = src.nbytes() / static_cast<std::size_t>(block);
      std::memcpy(static_cast<std::byte*>(dst.data()) + static_cast<std::size_t>(start) * row_bytes, src.data(),
                  static_cast<std::size_t>(m) * row_bytes);
    }
    if (!answered) {
      for (std::int64_t r = start; r < start + m; ++r) blank_row(outputs, r);
    }
    for (std::int64_t r = 0; r < m; ++r) {
      RowOutcome& o = part.rows[static_cast<std::size_t>(r)];
      if (!o.status.ok()) ++failed_rows;
      rows.push_back(std::move(o));
    }
    for (auto r : part.needs_review) {
      if (r < m) needs_review.push_back(static_cast<std::uint32_t>(start + r));
    }
    for (auto& s : part.skipped) skipped.push_back(std::move(s));
    if (served_by.empty()) served_by = part.served_by;
  }
  p.rows = std::move(rows);
  p.failed_rows = failed_rows;
  p.needs_review = std::move(needs_review);
  p.skipped = std::move(skipped);
  if (failed_rows == static_cast<std::size_t>(n)) {
    p.outputs.clear();
    p.served_by.clear();
    return last.ok() ? internal_error("no row was answered") : last;
  }
  p.outputs = std::move(outputs);
  p.served_by = std::move(served_by);
  return {};
}

Status ModelImpl::execute_whole(const Tensor& inputs, BatchPrediction& p, const PredictOptions& options) const {
  p.rows.clear();
  p.failed_rows = 0;
  Status st = chain->run(inputs, p, RunOptions{options.budget});
  const std::int64_t n = inputs.defined() && inputs.dim() == 2 ? inputs.size(0) : 0;
  if (st.ok()) {
    p.rows.assign(static_cast<std::size_t>(n), RowOutcome{Status(), p.served_by});
    return st;
  }
  if (st.code() == StatusCode::kInvalidArgument || n < 2) {  // a malformed input, or nothing to split
    p.rows.assign(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), RowOutcome{st, ""});
    p.failed_rows = p.rows.size();
    failed.add();
    return st;
  }
  // The chain could not answer the batch: each row alone, so that a row that fails does
  // not fail its neighbours.
  NamedTensors outputs;
  EMBER_RETURN_IF_ERROR(writable_outputs(outputs, chain->outputs(), n));
  ChainResult one;  // p.skipped keeps why the whole batch failed
  std::string served_by;
  for (std::int64_t r = 0; r < n; ++r) {
    auto row = inputs.slice_rows(r, r + 1);
    if (!row.ok()) return row.status();
    Status s = chain->run(*row, one, RunOptions{options.budget});
    if (!s.ok()) {
      blank_row(outputs, r);
      p.rows.push_back({std::move(s), ""});
      ++p.failed_rows;
      continue;
    }
    for (std::size_t k = 0; k < outputs.size(); ++k) {
      const Tensor& dst = outputs[k].tensor;
      const Tensor& src = one.outputs[k].tensor;
      std::memcpy(static_cast<std::byte*>(dst.data()) + static_cast<std::size_t>(r) * src.nbytes(), src.data(),
                  src.nbytes());
    }
    if (served_by.empty()) served_by = one.served_by;
    if (!one.needs_review.empty()) p.needs_review.push_back(static_cast<std::uint32_t>(r));
    p.rows.push_back({Status(), one.served_by});
  }
  if (p.failed_rows == static_cast<std::size_t>(n)) {
    failed.add();
    return st;
  }
  p.outputs = std::move(outputs);
  p.served_by = std::move(served_by);
  return {};
}

Result<std::unique_ptr<FallbackChain>> finish_chain(ChainOptions chain, const ModelOptions& options) {
  if (options.budget) chain.budget = *options.budget;
  if (options.clock) chain.clock = options.clock;
  if (options.executor) chain.executor = options.executor;
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
                                              std::unique_ptr<FallbackChain> chain, const ModelOptions& options) try {
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
  for (const auto& o : options.observers) {
    if (o == nullptr) return invalid_argument("model: an observer is null");
  }
  auto impl = std::make_unique<detail::ModelImpl>(std::move(schema), std::move(pipeline), std::move(chain));
  impl->width = width;
  impl->name = options.name;
  impl->version = options.version;
  impl->executor = options.executor;
  impl->observers = options.observers;
  {  // one scratch warmed now, so that the first request does not pay for its buffers
    auto warm = impl->scratch.take();
    (void)warm->parser.parse("{}");
    warm->features.resize(width);
  }
  return std::unique_ptr<Model>(new Model(std::move(impl)));
} catch (const std::bad_alloc&) {
  return resource_exhausted("model: out of memory");
}

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& dir, const ModelOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return not_found("model directory '" + dir.string() + "' does not exist");
  // A bundle: nothing is read before every file is verified against the manifest.
  if (std::filesystem::exists(dir / "manifest.json", ec)) {
    VerifyOptions verify;
    verify.hash = options.verify_bundle;
    auto manifest = verify_bundle(dir, verify);
    if (!manifest.ok()) return manifest.status();
    if (options.name.empty()) {
      ModelOptions named = options;
      named.name = manifest->name;
      return load_verified(dir, named);
    }
  }
  return load_verified(dir, options);
}

Result<std::unique_ptr<Model>> Model::load_verified(const std::filesystem::path& dir, const ModelOptions& options) {
  std::error_code ec;
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
  return assemble(std::move(schema).value(), std::move(pipeline), std::move(chain).value(), options);
}

Result<std::unique_ptr<Model>> Model::assemble(Schema schema, std::optional<Pipeline> pipeline,
                                              std::unique_ptr<FallbackChain> chain) {
  const ModelOptions defaults;
  return assemble(std::move(schema), std::move(pipeline), std::move(chain), defaults);
}

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& dir) {
  const ModelOptions defaults;
  return load(dir, defaults);
}

Status Model::predict(std::string_view json, Prediction& prediction, const PredictOptions& options) const {
  return detail::guarded("predict", [&] {
    return impl_->predict_one(prediction, options, [&](detail::Scratch& s, ValidationReport& report) {
      return impl_->schema.validate_into(json, s.parser, s.row, report);
    });
  });
}

Status Model::predict(const Record& record, Prediction& prediction, const PredictOptions& options) const {
  return detail::guarded("predict", [&] {
    return impl_->predict_one(prediction, options, [&](detail::Scratch& s, ValidationReport& report) {
      return impl_->schema.validate_into(record, s.row, report);
    });
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

Status Model::prepare(std::span<const std::string_view> records, PreparedBatch& prepared,
                      const PredictOptions& options) const {
  return detail::guarded("prepare", [&] {
    impl_->requests.add(records.size());
    auto lease = impl_->scratch.take();
    return impl_->prepare({records, nullptr}, prepared, options, lease->parser);
  });
}

Status Model::prepare(const Columns& records, PreparedBatch& prepared, const PredictOptions& options) const {
  return detail::guarded("prepare", [&] {
    impl_->requests.add(records.rows);
    auto lease = impl_->scratch.take();
    return impl_->prepare({{}, &records}, prepared, options, lease->parser);
  });
}

Status Model::execute(const Tensor& inputs, BatchPrediction& prediction, const PredictOptions& options) const {
  return detail::guarded("execute", [&] {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t id = impl_->requests.add_unique(1);
    Status st = impl_->execute(inputs, prediction, options);
    impl_->stamp(prediction, id, start);
    if (!impl_->observers.empty()) impl_->notify(impl_->event(prediction, prediction, &inputs, st));
    return st;
  });
}

Status detail::ModelImpl::predict_batch(const BatchInput& records, BatchPrediction& prediction,
                                       const PredictOptions& options) const {
  const auto start = std::chrono::steady_clock::now();
  const std::uint64_t id = requests.add_unique(std::max<std::size_t>(records.size(), 1));
  auto lease = scratch.take();
  PreparedBatch& prepared = lease->prepared;
  Status st = prepare(records, prepared, options, lease->parser);
  prediction.validation = prepared.validation;
  prediction.source_index = prepared.source_index;
  Tensor input;
  if (st.ok()) {
    auto view = prepared.input_tensor();
    if (!view.ok()) return view.status();
    input = std::move(view).value();
    st = execute(input, prediction, options);
  } else {
    prediction.outputs.clear();
    prediction.skipped.clear();
    prediction.needs_review.clear();
    prediction.served_by.clear();
    prediction.rows.clear();
    prediction.failed_rows = 0;
  }
  stamp(prediction, id, start);
  if (!observers.empty()) {
    RequestEvent e = event(prediction, prediction, input.defined() ? &input : nullptr, st);
    e.batch_features = &prepared.features;
    e.batch_validation = &prediction.validation;
    notify(e);
  }
  return st;
}

Status Model::predict_batch(std::span<const std::string_view> records, BatchPrediction& prediction,
                            const PredictOptions& options) const {
  return detail::guarded("predict_batch", [&] { return impl_->predict_batch({records, nullptr}, prediction, options); });
}

Status Model::predict_batch(const Columns& records, BatchPrediction& prediction, const PredictOptions& options) const {
  return detail::guarded("predict_batch", [&] { return impl_->predict_batch({{}, &records}, prediction, options); });
}

const Schema& Model::schema() const noexcept { return impl_->schema; }
const Pipeline* Model::pipeline() const noexcept { return impl_->pipeline ? &*impl_->pipeline : nullptr; }
const FallbackChain& Model::chain() const noexcept { return *impl_->chain; }
std::size_t Model::input_width() const noexcept { return impl_->width; }
const std::string& Model::name() const noexcept { return impl_->name; }
const std::string& Model::version() const noexcept { return impl_->version; }

ModelCounters Model::counters() const {
  ModelCounters c;
  c.requests = impl_->requests.load();
  c.invalid = impl_->invalid.load();
  c.flagged = impl_->flagged.load();
  c.failed = impl_->failed.load();
  c.observer_errors = impl_->observer_errors.load();
  c.needs_review = impl_->chain->needs_review_count();
  c.stages = impl_->chain->counters();
  return c;
}

}  // namespace ember
