#pragma once

/// The fallback chain: an ordered list of stages (the model on a GPU, the same model on
/// the CPU, a linear model, a cache of recent answers, a default answer) that answers a
/// request with the first stage that can, within the request's latency budget.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/executor.hpp"
#include "ember/export.hpp"
#include "ember/linear.hpp"
#include "ember/resilience.hpp"
#include "ember/status.hpp"
#include "ember/tensor.hpp"
#include "ember/threads.hpp"

namespace ember {

/// One output every stage of a chain must produce: its name, dtype, and shape per row
/// (the shape without the leading batch dimension; {} for one value per row).
struct OutputSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> row_shape;
  friend bool operator==(const OutputSpec&, const OutputSpec&) = default;
};
/// "output: float32 [rows] ; probs: float32 [rows, 3]".
EMBER_API std::string describe_outputs(const std::vector<OutputSpec>& outputs);

/// A link of the chain. Hosts implement it for their own fallbacks.
class EMBER_API Stage {
 public:
  virtual ~Stage();
  /// Answers for `features`: rows x width float64 (the model's input at full
  /// precision), in host memory, read-only, valid during the call only. Must be safe to
  /// call from many threads at once. Errors are returned as a Status; an exception is
  /// caught by the chain and becomes kInternal (std::bad_alloc: kResourceExhausted).
  [[nodiscard]] virtual Result<NamedTensors> run(const Tensor& features) const = 0;
  /// The same answer written into `out`, which holds whatever the caller's result held
  /// before (a reused Prediction's outputs): a stage may write into those tensors when
  /// their names, dtypes and shapes fit and Tensor::unique() says nobody else holds
  /// them, so that a warm request allocates nothing. On error `out` may be left in any
  /// state. The default calls run() and moves its answer into `out`; ember's linear,
  /// cache and default stages write in place.
  [[nodiscard]] virtual Status run_into(const Tensor& features, NamedTensors& out) const;
  /// What the stage is: "torchscript", "linear", "cache", "default", or the host's own.
  [[nodiscard]] virtual std::string type() const = 0;
  /// The outputs it produces for inputs of `input_width` columns, when known before any
  /// call (the chain checks them against each other when it is built). Empty: unknown.
  [[nodiscard]] virtual Result<std::vector<OutputSpec>> outputs(std::size_t input_width) const;
  /// True when run() returns within microseconds and cannot hang (a cache, a default, a
  /// linear model): the chain runs it on the caller's thread, even past the deadline.
  [[nodiscard]] virtual bool bounded() const { return false; }
  /// Told of every valid answer another stage gave, including answers that arrived
  /// after their deadline. A cache stores them; others ignore them.
  virtual void observe(const Tensor& features, const NamedTensors& outputs) const;
  /// Called when the chain is destroyed while calls of this stage are still running;
  /// a stage that can interrupt its work should (the chain waits for them to end).
  virtual void cancel() const;
};

/// An Executor (e.g. a TorchExecutor) as a stage: its one input is the feature matrix,
/// cast to `input_dtype` (float32 or float64: the dtype the model takes) in a buffer of
/// the stage's own, so a model that writes into its input changes nothing the caller,
/// later stages or the cache see. Its outputs are found by running it on a row of zeros
/// when the chain is built (three times, which also warms it up); a model that fails on
/// that row, or another input dtype, is InvalidArgument.
EMBER_API std::shared_ptr<Stage> make_executor_stage(std::shared_ptr<const Executor> executor,
                                                     DType input_dtype = DType::kFloat32);

/// A linear model as a stage: `output` names which of its methods answers, and
/// `output_name` the name of the answer (the primary model's output name, "output").
/// InvalidArgument when the model has no such output. bounded().
EMBER_API Result<std::shared_ptr<Stage>> make_linear_stage(LinearModel model, LinearOutput output,
                                                           std::string output_name = "output");

/// A cache of recent answers, keyed by a hash of the model's input row (the validated,
/// preprocessed features; equal rows are compared whole, so a hash collision is a miss).
/// A cache of 2,048 rows or more is split into shards, one per thread stripe: a thread
/// stores into its own (so threads share no lock on the healthy path), and a lookup
/// takes the freshest answer of any shard. Storing never waits for a lock (a row whose
/// shard is busy at that moment is not stored).
struct CacheOptions {
  std::size_t capacity = 10000;                                   ///< rows; the least recently used goes first
  std::chrono::nanoseconds time_to_live = std::chrono::minutes(10); ///< an older answer is not served
};
/// Serves a batch only when every row is cached and fresh; otherwise NotFound. It is
/// filled by observe(). InvalidArgument for a capacity of 0 or above 100 million, or a
/// time-to-live that is not positive. bounded(). `clock` defaults to SteadyClock.
EMBER_API Result<std::shared_ptr<Stage>> make_cache_stage(CacheOptions options, std::shared_ptr<const Clock> clock = {});

/// A constant answer: for each output, the values of one row (repeated for every row).
/// InvalidArgument for no outputs, an empty or repeated name, or non-finite values.
/// Values are float32; a single value answers with shape [rows], several with [rows, n].
struct DefaultOutput {
  std::string name;
  std::vector<float> values;
};
EMBER_API Result<std::shared_ptr<Stage>> make_default_stage(std::vector<DefaultOutput> outputs);

/// A fault to inject into a stage's calls.
enum class FaultKind : std::uint8_t {
  kThrow,        ///< throw std::runtime_error (the chain reports kInternal)
  kError,        ///< return kInternal without calling the stage
  kHang,         ///< block for `duration` (0: until release_hangs() or cancel()), then fail
  kSlow,         ///< wait `duration` on the injector's clock, then answer normally
  kNaN,          ///< answer normally, with every floating-point output value NaN
  kOutOfMemory,  ///< return kResourceExhausted ("out of memory"), like a GPU that is full
};
/// "throw", "error", "hang", "slow", "nan", "oom".
EMBER_API std::string_view fault_kind_name(FaultKind kind) noexcept;

/// Which calls a fault hits. Call numbers start at 0; a call is hit when it is at or past
/// `first_call`, (call - first_call) is a multiple of `every`, the batch has at least
/// `min_rows` rows, fewer than `count` faults of this rule happened, and a draw with
/// `probability` succeeds. The first rule that hits a call decides its fault.
struct FaultRule {
  FaultKind kind = FaultKind::kThrow;
  double probability = 1.0;
  std::uint64_t first_call = 0;
  std::uint64_t every = 1;
  std::uint64_t count = UINT64_MAX;
  std::size_t min_rows = 0;
  std::chrono::nanoseconds duration{0};  ///< kSlow, kHang
};
/// Parses "KIND[:DURATION][,p=P][,first=N][,every=N][,count=N][,min_rows=N]", e.g.
/// "throw,p=0.3", "hang:200ms", "slow:20ms,every=2", "oom,min_rows=64". Durations take
/// ns, us, ms or s. InvalidArgument naming the part that is wrong.
EMBER_API Result<FaultRule> parse_fault_rule(std::string_view text);

/// Wraps a stage and injects faults on a schedule or with a probability (seeded, so
/// runs repeat). For tests and demos. Thread-safe.
class EMBER_API FaultInjector final : public Stage {
 public:
  /// InvalidArgument for a probability outside [0, 1] or `every` of 0. `clock` (default
  /// SteadyClock) is what kSlow waits on.
  static Result<std::shared_ptr<FaultInjector>> wrap(std::shared_ptr<const Stage> inner, std::vector<FaultRule> rules,
                                                     std::shared_ptr<const Clock> clock = {}, std::uint64_t seed = 0);
  ~FaultInjector() override;

  [[nodiscard]] Result<NamedTensors> run(const Tensor& features) const override;
  [[nodiscard]] std::string type() const override;
  [[nodiscard]] Result<std::vector<OutputSpec>> outputs(std::size_t input_width) const override;
  [[nodiscard]] bool bounded() const override;
  void observe(const Tensor& features, const NamedTensors& outputs) const override;
  void cancel() const override;

  /// Ends every hang now and from now on.
  void release_hangs() const;
  /// Faults injected so far, and calls seen.
  [[nodiscard]] std::uint64_t injected() const noexcept;
  [[nodiscard]] std::uint64_t calls() const noexcept;

 private:
  struct State;
  FaultInjector(std::shared_ptr<const Stage> inner, std::vector<FaultRule> rules, std::shared_ptr<const Clock> clock,
                std::uint64_t seed);
  std::shared_ptr<const Stage> inner_;
  std::shared_ptr<const Clock> clock_;
  std::unique_ptr<State> state_;
};

/// What a stage does when it reports out of memory (kResourceExhausted).
enum class OutOfMemoryPolicy : std::uint8_t {
  kNextStage,   ///< fall through to the next stage (e.g. the same model on the CPU)
  kSplitBatch,  ///< retry the same stage on halves of the batch, down to single rows
};

/// One link of a chain, as configured.
struct ChainStage {
  std::string name;                    ///< unique in the chain ("primary", "cpu", "linear")
  std::shared_ptr<const Stage> stage;
  /// The stage's circuit breaker; nullopt for none. Bounded stages (cache, default,
  /// linear) usually go without one.
  std::optional<CircuitBreakerConfig> breaker = CircuitBreakerConfig{};
  OutOfMemoryPolicy on_out_of_memory = OutOfMemoryPolicy::kNextStage;
};

/// For classifiers: answers whose top probability is under `threshold` are still served
/// but flagged needs_review, and counted.
struct ConfidencePolicy {
  std::string output = "output";  ///< a float output: P(positive) per row (one value) or class probabilities
  double threshold = 0.5;         ///< in (0, 1]
};

/// How a chain is built. Defaults are written here.
struct ChainOptions {
  std::vector<ChainStage> stages;
  /// Columns of the feature matrix every stage receives (the pipeline's output width).
  std::size_t input_width = 0;
  /// The outputs every answer must have. Empty: those of the first stage that knows its
  /// outputs (see Stage::outputs), which every other stage that knows must match.
  std::vector<OutputSpec> outputs;
  /// Default latency budget per request; 0: none (stages run on the caller's thread and
  /// are never abandoned). With a budget, unbounded stages run on worker threads.
  std::chrono::nanoseconds budget{0};
  /// The bulkhead: at most this many calls that missed their deadline may still be
  /// running; past that, unbounded stages are skipped (kResourceExhausted).
  std::size_t max_abandoned = 4;
  /// Where budgeted calls of unbounded stages run (and finish, when they miss their
  /// deadline). Null: the chain makes a small ThreadPool of its own when it has a
  /// budget (one thread, up to max_abandoned + 4). Share one between chains to bound
  /// the process's threads.
  std::shared_ptr<TaskExecutor> executor;
  std::optional<ConfidencePolicy> confidence;
  /// Drives breakers, slow-call timing and the fault injector; default SteadyClock.
  /// Deadlines always use the real steady clock.
  std::shared_ptr<const Clock> clock;
  /// Called on every breaker state change, with the stage's name.
  CircuitBreaker::Listener on_breaker_change;
};

/// Per call: overrides ChainOptions::budget when set (0: no budget; a budget too large
/// to add to the clock, such as nanoseconds::max(), is no limit).
struct RunOptions {
  std::optional<std::chrono::nanoseconds> budget;
};

/// A stage the chain went past, and why: kUnavailable (breaker open), kDeadlineExceeded,
/// kResourceExhausted (out of memory, or the bulkhead is full), kOutOfRange (NaN or Inf
/// in an output), kInternal (the stage failed, threw, or answered with the wrong
/// outputs), kNotFound (a cache miss), or whatever code the stage returned.
struct SkippedStage {
  std::string stage;  ///< the stage's name
  Status status;
};

/// The answer of a chain. It owns everything it says: it stays valid after the chain
/// (and the Model) that wrote it are gone. Reusing one reuses its memory.
struct ChainResult {
  NamedTensors outputs;        ///< the chain's outputs, rows first
  std::string served_by;       ///< the stage that answered
  std::vector<SkippedStage> skipped;
  /// Rows whose top probability was under the confidence threshold.
  std::vector<std::uint32_t> needs_review;
};

/// Counters of one stage since the chain was built. Monitoring reads them.
struct StageCounters {
  std::string name;
  std::string type;
  std::uint64_t calls = 0;         ///< calls made (not counting those the breaker refused)
  std::uint64_t served = 0;        ///< answers the chain returned
  std::uint64_t failures = 0;      ///< errors, exceptions, bad outputs (not timeouts)
  std::uint64_t timeouts = 0;      ///< calls that missed the deadline
  std::uint64_t slow_calls = 0;    ///< calls at least as long as the breaker's slow-call duration
  std::uint64_t not_permitted = 0; ///< requests the breaker refused
  std::uint64_t rejected_by_bulkhead = 0;
  std::uint64_t fallbacks = 0;     ///< requests that went past this stage to a later one
  std::optional<BreakerMetrics> breaker;
};

namespace detail {
struct ChainImpl;
}

/// An immutable chain of stages. run() is safe from many threads at once.
/// Destroying the chain cancels (Stage::cancel) and then waits for abandoned calls.
class EMBER_API FallbackChain {
 public:
  /// InvalidArgument for no stages, an empty or repeated name, a null stage, a bad
  /// breaker or confidence config, an input width of 0, or stages whose outputs differ
  /// (names, dtypes, values per row), naming the stage. A stage whose outputs() fails
  /// (e.g. the model rejects a row of that width) fails the build with its error.
  /// ResourceExhausted when the chain needs its own thread pool and none can start.
  static Result<std::unique_ptr<FallbackChain>> create(ChainOptions options);
  ~FallbackChain();
  FallbackChain(const FallbackChain&) = delete;
  FallbackChain& operator=(const FallbackChain&) = delete;

  /// Answers for `features` (rows x input_width float64, host). The stages are tried in
  /// order; what triggers the next one: an error, an exception, out of memory (unless
  /// the batch is split), NaN or Inf in an output, outputs of the wrong names or shape,
  /// the deadline, an open breaker. When every stage fails the last error is returned,
  /// with every stage's reason in its message. InvalidArgument for a malformed input;
  /// ResourceExhausted when memory runs out. Never throws.
  Status run(const Tensor& features, ChainResult& result, const RunOptions& options = {}) const;

  /// The outputs every answer has.
  [[nodiscard]] const std::vector<OutputSpec>& outputs() const noexcept;
  [[nodiscard]] std::size_t input_width() const noexcept;
  [[nodiscard]] std::vector<std::string> stage_names() const;
  /// The breaker of a stage (for manual transitions), or nullptr.
  [[nodiscard]] CircuitBreaker* breaker(std::string_view stage) const noexcept;
  [[nodiscard]] std::vector<StageCounters> counters() const;
  /// Requests answered with needs_review rows, since the chain was built.
  [[nodiscard]] std::uint64_t needs_review_count() const noexcept;
  /// Calls past their deadline still running now.
  [[nodiscard]] std::size_t abandoned_in_flight() const noexcept;

 private:
  explicit FallbackChain(std::unique_ptr<detail::ChainImpl> impl);
  Status run_unguarded(const Tensor& features, ChainResult& result, const RunOptions& options) const;
  std::unique_ptr<detail::ChainImpl> impl_;
};

}  // namespace ember
