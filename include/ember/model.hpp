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

namespace ember {

/// How Model::load builds a model. Defaults are written here.
struct ModelOptions {
  SchemaOptions schema;
  /// Device of the TorchScript stages that do not name one, and of the default chain:
  /// "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N".
  std::string device = "auto";
  /// LibTorch's intra-op threads (process-wide; 0 leaves it as it is).
  int intra_op_threads = 0;
  /// Overrides chain.json's budget when set (0: no budget).
  std::optional<std::chrono::nanoseconds> budget;
  /// Faults to inject, by stage name (for demos and tests; see FaultInjector).
  std::map<std::string, std::vector<FaultRule>, std::less<>> inject;
  std::uint64_t fault_seed = 0;
  /// Drives breakers, cache expiry and injected slowness; default SteadyClock.
  std::shared_ptr<const Clock> clock;
  CircuitBreaker::Listener on_breaker_change;
  LogSink log;
};

/// Per request.
struct PredictOptions {
  /// Overrides the model's latency budget when set (0: no budget).
  std::optional<std::chrono::nanoseconds> budget;
};

/// The answer to one record: the chain's result (outputs, served_by, skipped stages,
/// needs_review rows) plus what validation found.
struct Prediction : ChainResult {
  /// Errors (when predict failed with kInvalidArgument) and flags of the record.
  ValidationReport validation;
  /// Features flagged by validation: outside their training range, or accepted under
  /// FieldPolicy::kFlag (names valid as long as the model).
  std::vector<std::string_view> flagged_features;
  [[nodiscard]] bool needs_review_flag() const noexcept { return !needs_review.empty(); }
  std::chrono::nanoseconds latency{0};
};

/// The answer to a batch of records: one output row per valid record.
struct BatchPrediction : ChainResult {
  /// For each output row, the index of its record among the inputs.
  std::vector<std::size_t> source_index;
  /// Per-record validation: counts, and the reports of invalid and flagged records.
  BatchReport validation;
  std::chrono::nanoseconds latency{0};
};

/// Counters since the model was built. Monitoring reads them.
struct ModelCounters {
  std::uint64_t requests = 0;      ///< records received (a batch counts each record)
  std::uint64_t invalid = 0;       ///< records refused by validation or preprocessing
  std::uint64_t flagged = 0;       ///< valid records with at least one flagged feature
  std::uint64_t needs_review = 0;  ///< rows served under the confidence threshold
  std::uint64_t failed = 0;        ///< valid requests no stage could answer
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
  ///                  as float32, are the model's input)
  ///   model.pt       the TorchScript model (needed by the default chain and by stages
  ///                  of type "torchscript" without a "path")
  ///   chain.json     the fallback chain (optional: without it, the TorchScript model on
  ///                  the best device, then on the CPU when that device is a GPU)
  /// The pipeline's inputs must be the schema's features, and the model must accept the
  /// pipeline's output width: checked here by running every model stage once on a row
  /// of zeros. NotFound for a missing required file; InvalidArgument for bad
  /// configuration, naming the file and field; any stage's load error.
  static Result<std::unique_ptr<Model>> load(const std::filesystem::path& dir, const ModelOptions& options);
  /// The same with default options.
  static Result<std::unique_ptr<Model>> load(const std::filesystem::path& dir);

  /// A model assembled in code. `pipeline` may be empty (then the schema's features are
  /// the input). InvalidArgument when the parts do not fit together.
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

  /// Predicts for N JSON records in one pass through the chain. Invalid records are
  /// reported in prediction.validation and left out; InvalidArgument when none is valid.
  Status predict_batch(std::span<const std::string_view> records, BatchPrediction& prediction,
                       const PredictOptions& options = {}) const;

  [[nodiscard]] const Schema& schema() const noexcept;
  /// nullptr when the model has no pipeline.
  [[nodiscard]] const Pipeline* pipeline() const noexcept;
  [[nodiscard]] const FallbackChain& chain() const noexcept;
  [[nodiscard]] ModelCounters counters() const;

 private:
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
                                                           std::size_t input_width, const ModelOptions& options = {});

}  // namespace ember
