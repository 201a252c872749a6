#pragma once

/// ember::Model: what a host calls predict() on. A request goes through the schema
/// (validation into a feature row), the pipeline (preprocessing into the model's input)
/// and the fallback chain (the model, then simpler answers), and comes back as a
/// Prediction that says which stage served it and why earlier ones did not.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/fallback.hpp"
#include "ember/log.hpp"
#include "ember/pipeline.hpp"
#include "ember/schema.hpp"
#include "ember/status.hpp"
#include "ember/threads.hpp"

namespace ember {

class Observer;

/// How Model::load builds a model. Defaults are written here.
struct ModelOptions {
  SchemaOptions schema;
  /// What predictions say they came from (a bundle's manifest gives both); may be empty.
  std::string name;
  std::string version;
  /// Device of the TorchScript stages that do not name one, and of the default chain:
  /// "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N".
  std::string device = "auto";
  /// Whether TorchScript stages run small feed-forward networks on ember's own kernels
  /// (native.hpp): the default chain's, and chain.json stages without a "native" key.
  NativePath native = NativePath::kAuto;
  /// Overrides chain.json's budget when set (0: no budget).
  std::optional<std::chrono::nanoseconds> budget;
  /// Faults to inject, by stage name (for demos and tests; see FaultInjector).
  std::map<std::string, std::vector<FaultRule>, std::less<>> inject;
  std::uint64_t fault_seed = 0;
  /// Drives breakers, cache expiry and injected slowness; default SteadyClock.
  std::shared_ptr<const Clock> clock;
  CircuitBreaker::Listener on_breaker_change;
  LogSink log;
  /// Where background work runs: budgeted model calls, and the parts of a large batch
  /// (see PredictOptions::threads). Null: a budgeted chain makes a small pool of its own,
  /// and batches are validated on the caller's thread.
  std::shared_ptr<TaskExecutor> executor;
  /// Told of every request, on the request's thread (see Observer).
  std::vector<std::shared_ptr<Observer>> observers;
  /// Model::load of a bundle (a directory with manifest.json) hashes every file before
  /// it reads one. false checks only that the files are listed and of the listed size:
  /// for a bundle that was just verified (Registry::load_model does this).
  bool verify_bundle = true;
};

/// Per request.
struct PredictOptions {
  /// Overrides the model's latency budget when set (0: no budget).
  std::optional<std::chrono::nanoseconds> budget;
  /// predict_batch / prepare: validate a large batch in up to this many parts at once,
  /// on the model's executor (the caller's thread takes one). 1: the caller's thread only.
  unsigned threads = 1;
  /// predict_batch / execute: run the model on blocks of exactly this many rows (the
  /// last one filled up with copies of its first row). A model's kernels may round a
  /// row's answer differently for other batch sizes (a last-bit difference); with
  /// blocks, a row's answer depends on the row alone, not on how the data set was cut
  /// into batches: the same scores from `ember score`, Spark and Ray. 0: the whole
  /// batch in one call.
  std::size_t block_rows = 0;
};

/// What every answer says about where it came from. Owned: valid after the Model is gone.
struct AnswerOrigin {
  std::string model_name;     ///< ModelOptions::name
  std::string model_version;  ///< ModelOptions::version
  /// Unique per Model, never 0; increasing on each thread, but not dense and not ordered
  /// across threads (threads draw them without sharing a counter).
  std::uint64_t request_id = 0;
  std::chrono::nanoseconds latency{0};
};

/// The answer to one record: the chain's result (outputs, served_by, skipped stages,
/// needs_review rows) plus what validation found. Owns everything it says; reusing one
/// reuses its memory. Read an output with value() or outputs.values<T>(name): a wrong
/// name, dtype or device is an error, never a wrong read.
struct Prediction : ChainResult, AnswerOrigin {
  /// Errors (when predict failed with kInvalidArgument) and flags of the record.
  ValidationReport validation;
  /// Features flagged by validation: outside their training range, or accepted under
  /// FieldPolicy::kFlag.
  std::vector<std::string> flagged_features;
  [[nodiscard]] bool needs_review_flag() const noexcept { return !needs_review.empty(); }
  /// Element `index` of output `name`, as a double (any numeric dtype). NotFound for an
  /// unknown output (naming those there are), OutOfRange past its end,
  /// FailedPrecondition when the output is on a device.
  ///   double p = prediction.value().value_or(NAN);   // "output", element 0
  [[nodiscard]] EMBER_API Result<double> value(std::string_view name = "output", std::size_t index = 0) const;
};

/// What happened to one row of an executed batch.
struct RowOutcome {
  Status status;          ///< OK, or why no stage could answer this row
  std::string served_by;  ///< the stage that answered it
};

/// The answer to a batch: one output row per model input row (per valid record).
struct BatchPrediction : ChainResult, AnswerOrigin {
  /// For each output row, the index of its record among the inputs.
  std::vector<std::size_t> source_index;
  /// Per-record validation: counts, and the reports of invalid and flagged records.
  BatchReport validation;
  /// Per output row. When the chain answers the whole batch, every row says its
  /// served_by; when it cannot, each row is tried alone, so a row that fails does not
  /// fail its neighbours: its outputs are NaN (0 for integer outputs) and its status
  /// says why.
  std::vector<RowOutcome> rows;
  /// Rows whose status is not OK.
  std::size_t failed_rows = 0;
};

/// Records validated and preprocessed into the model's input rows (prepare()), ready
/// for execute(). Owns its memory; reusing one reuses it.
struct PreparedBatch {
  /// rows x width, float64: the model's input at full precision.
  std::vector<double> inputs;
  std::size_t rows = 0;
  std::size_t width = 0;
  /// For each row, the index of its record among the inputs.
  std::vector<std::size_t> source_index;
  /// Per-record validation, preprocessing refusals included.
  BatchReport validation;
  /// The validated features of the rows (what observers see).
  FeatureBatch features;
  /// A zero-copy view of `inputs` as a rows x width tensor (valid while this batch is
  /// unchanged and alive).
  [[nodiscard]] EMBER_API Result<Tensor> input_tensor() const;
};

/// One request as observers see it. Views: valid during the call only.
struct RequestEvent {
  std::uint64_t request_id = 0;
  std::string_view model_name;
  std::string_view model_version;
  /// The validated features: a single record's row, or a batch's rows (one is null).
  const FeatureRow* features = nullptr;
  const FeatureBatch* batch_features = nullptr;
  /// The model's input: rows x width float64 (null when the request was refused before
  /// preprocessing finished).
  const Tensor* model_input = nullptr;
  /// The outputs, served_by, skipped stages and needs_review rows (empty when refused).
  const ChainResult* result = nullptr;
  /// Validation's errors and flags (a single record), or the batch's report.
  const ValidationReport* validation = nullptr;
  const BatchReport* batch_validation = nullptr;
  std::chrono::nanoseconds latency{0};
  /// What predict returned.
  Status status;
};

/// Told of every request a Model answers or refuses, on the request's thread, after
/// the answer is complete (execute() tells of its rows, with no features or validation:
/// prepare() tells nobody). Must be quick and must not block; must be safe to call from
/// many threads at once. What it throws is caught and counted
/// (ModelCounters::observer_errors); the request's answer stands. With no observer a
/// request pays nothing for this.
class EMBER_API Observer {
 public:
  virtual ~Observer();
  virtual void on_request(const RequestEvent& event) = 0;
};

/// Counters since the model was built. Monitoring reads them.
struct ModelCounters {
  std::uint64_t requests = 0;      ///< records received (a batch counts each record)
  std::uint64_t invalid = 0;       ///< records refused by validation or preprocessing
  std::uint64_t flagged = 0;       ///< valid records with at least one flagged feature
  std::uint64_t needs_review = 0;  ///< rows served under the confidence threshold
  std::uint64_t failed = 0;        ///< valid requests no stage could answer
  std::uint64_t observer_errors = 0;  ///< exceptions thrown by observers (caught)
  std::vector<StageCounters> stages;
};

namespace detail {
struct ModelImpl;
}

/// A servable model. Immutable once built; predict() is safe from many threads at once.
class EMBER_API Model {
 public:
  /// Loads a model directory:
  ///   schema.json    the request schema (required)
  ///   pipeline.json  fitted preprocessing (optional: without it the schema's features,
  ///                  as float64, are the model's input)
  ///   model.pt       the TorchScript model (needed by the default chain and by stages
  ///                  of type "torchscript" without a "path")
  ///   chain.json     the fallback chain (optional: without it, the TorchScript model on
  ///                  the best device, then on the CPU when that device is a GPU)
  /// The pipeline's inputs must be the schema's features, and the model must accept the
  /// pipeline's output width: checked here by running every model stage once on a row
  /// of zeros. NotFound for a missing required file; InvalidArgument for bad
  /// configuration, naming the file and field; any stage's load error.
  /// A bundle (the same files plus manifest.json, see bundle.hpp) is verified before
  /// anything is read: every file listed, of its size and SHA-256, and no other file
  /// present (DataLoss naming the file otherwise; InvalidArgument naming the field of a
  /// malformed manifest). The manifest's name becomes ModelOptions::name when that is empty.
  static Result<std::unique_ptr<Model>> load(const std::filesystem::path& dir, const ModelOptions& options);
  /// The same with default options.
  static Result<std::unique_ptr<Model>> load(const std::filesystem::path& dir);

  /// A model assembled in code. `pipeline` may be empty (then the schema's features are
  /// the input). InvalidArgument when the parts do not fit together. Of `options`, only
  /// name, version, executor and observers are used (the rest built the parts).
  static Result<std::unique_ptr<Model>> assemble(Schema schema, std::optional<Pipeline> pipeline,
                                                std::unique_ptr<FallbackChain> chain, const ModelOptions& options);
  /// The same with default options.
  static Result<std::unique_ptr<Model>> assemble(Schema schema, std::optional<Pipeline> pipeline,
                                                std::unique_ptr<FallbackChain> chain);

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// Predicts for one JSON record. InvalidArgument when validation or preprocessing
  /// refuses it (the errors, with their paths, are in prediction.validation and in the
  /// message); no stage runs then. When every stage fails, the chain's error.
  Status predict(std::string_view json, Prediction& prediction, const PredictOptions& options = {}) const;
  /// The same for a record built in C++.
  Status predict(const Record& record, Prediction& prediction, const PredictOptions& options = {}) const;
  /// Convenience forms.
  [[nodiscard]] Result<Prediction> predict(std::string_view json, const PredictOptions& options = {}) const;
  [[nodiscard]] Result<Prediction> predict(const Record& record, const PredictOptions& options = {}) const;

  /// Predicts for N JSON records: prepare(), then execute(). Invalid records are
  /// reported in prediction.validation and left out; InvalidArgument when none is
  /// valid. OK when at least one row was answered (see BatchPrediction::rows).
  Status predict_batch(std::span<const std::string_view> records, BatchPrediction& prediction,
                       const PredictOptions& options = {}) const;

  /// The same for N records given column by column (a frame's columns, read in place:
  /// see Schema::validate_batch(Columns)), with the same answers as their JSON texts.
  /// FailedPrecondition when the schema does not accept columns
  /// (Schema::accepts_columns); InvalidArgument for a malformed column.
  Status predict_batch(const Columns& records, BatchPrediction& prediction, const PredictOptions& options = {}) const;

  /// Validates and preprocesses N JSON records into the model's input rows. Invalid
  /// records (and those preprocessing refuses) are reported and left out.
  /// InvalidArgument when none is valid.
  Status prepare(std::span<const std::string_view> records, PreparedBatch& prepared,
                 const PredictOptions& options = {}) const;
  /// The same for N records given column by column.
  Status prepare(const Columns& records, PreparedBatch& prepared, const PredictOptions& options = {}) const;

  /// Runs the chain on model input rows (rows x input_width() float64, host): rows of
  /// several requests may be gathered into one call (Tensor::concat_rows) and the
  /// answer handed back per request (NamedTensors::slice_rows). One outcome per row;
  /// OK when at least one row was answered, else the chain's error.
  Status execute(const Tensor& inputs, BatchPrediction& prediction, const PredictOptions& options = {}) const;

  /// Columns of the model's input (the pipeline's output width, or the features').
  [[nodiscard]] std::size_t input_width() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] const std::string& version() const noexcept;

  [[nodiscard]] const Schema& schema() const noexcept;
  /// nullptr when the model has no pipeline.
  [[nodiscard]] const Pipeline* pipeline() const noexcept;
  [[nodiscard]] const FallbackChain& chain() const noexcept;
  [[nodiscard]] ModelCounters counters() const;

 private:
  static Result<std::unique_ptr<Model>> load_verified(const std::filesystem::path& dir, const ModelOptions& options);
  explicit Model(std::unique_ptr<detail::ModelImpl> impl);
  std::unique_ptr<detail::ModelImpl> impl_;
};

/// Builds the chain described by chain.json (format "ember-chain", version 1) for a
/// model directory; `input_width` is the pipeline's output width. Used by Model::load;
/// public so hosts can build a chain from a file and assemble a model themselves.
/// InvalidArgument naming the stage and field for unknown types or keys, out-of-range
/// values, and outputs that differ between stages.
EMBER_API Result<std::unique_ptr<FallbackChain>> load_chain(const std::filesystem::path& chain_json,
                                                           const std::filesystem::path& model_dir,
                                                           std::size_t input_width, const ModelOptions& options);
/// The same with default options.
EMBER_API Result<std::unique_ptr<FallbackChain>> load_chain(const std::filesystem::path& chain_json,
                                                           const std::filesystem::path& model_dir,
                                                           std::size_t input_width);

}  // namespace ember
