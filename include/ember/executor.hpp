#pragma once

/// Executors run a model on tensors. TorchExecutor runs a TorchScript module through
/// LibTorch; tests and hosts may implement Executor for their own engines or fakes.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/log.hpp"
#include "ember/status.hpp"
#include "ember/tensor.hpp"

namespace ember {

/// Anything that maps input tensors to named output tensors.
class EMBER_API Executor {
 public:
  virtual ~Executor();

  /// Runs the model on positional inputs. Implementations must be safe to call from
  /// many threads at once.
  [[nodiscard]] virtual Result<NamedTensors> run(std::span<const Tensor> inputs) const = 0;

  /// A short name for logs and errors ("torchscript:cpu", ...).
  [[nodiscard]] virtual std::string name() const = 0;
};

/// What happens to NaN or +-Inf in a floating-point input.
enum class NonFinitePolicy : std::uint8_t {
  kPassThrough,  ///< hand them to the model unchanged (default)
  kReject,       ///< fail the call with InvalidArgument naming the input
};

/// The expected dtype and shape of one input; -1 in `shape` means any size.
struct InputSpec {
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> shape;
};

/// Whether TorchExecutor runs a module on ember's own kernels (native.hpp).
enum class NativePath : std::uint8_t {
  kAuto,     ///< when the module lowers to a native network and runs on the CPU (default)
  kOff,      ///< always LibTorch
  kRequire,  ///< fail the load (FailedPrecondition, with the reason) when it does not lower
};

/// "auto", "off", "require".
EMBER_API std::string_view native_path_name(NativePath path) noexcept;
/// The reverse; InvalidArgument for anything else.
EMBER_API Result<NativePath> parse_native_path(std::string_view text);

/// How TorchExecutor loads and runs a module. Defaults are written here.
struct ExecutorOptions {
  /// "cpu", "cuda", "cuda:N", or "auto" (CUDA device 0 when CUDA is available, else CPU).
  std::string device = "auto";
  /// Freeze the module and apply torch::jit::optimize_for_inference. When the module
  /// does not allow it, ember logs a warning and runs the module unfrozen.
  bool optimize = true;
  /// Calls made at load time with `example_inputs`, so the first real call does not
  /// pay for the JIT's profiling and optimisation. Needs example_inputs when > 0.
  int warmup_runs = 0;
  /// Inputs for warm-up (positional). When `input_specs` is empty they also define
  /// the expected inputs: same dtype and rank, every size but the first fixed.
  std::vector<Tensor> example_inputs;
  /// The expected inputs, positional. Empty: taken from example_inputs, or unchecked
  /// (then a mismatch is reported by the model itself, as kInternal).
  std::vector<InputSpec> input_specs;
  NonFinitePolicy non_finite_inputs = NonFinitePolicy::kPassThrough;
  /// Copy outputs that live on a GPU back to host memory before returning them.
  bool outputs_to_host = true;
  /// Small feed-forward networks (Linear, activations, norms, residual adds) run on
  /// ember's kernels: outputs equal LibTorch's within 1e-6 relative, at a fraction of the
  /// time. ModelInfo::engine says which path a module took, and why.
  NativePath native = NativePath::kAuto;
  LogSink log;
};

/// One argument of a method, as the TorchScript schema declares it.
struct ArgumentInfo {
  std::string name;
  std::string type;  ///< TorchScript type, e.g. "Tensor", "Optional[Tensor]", "int"
};

/// One method of a module.
struct MethodInfo {
  std::string name;
  std::vector<ArgumentInfo> arguments;  ///< without `self`
  std::string return_type;
  std::string schema;  ///< the full signature, e.g. "forward(Tensor x) -> Tensor"
};

/// What TorchExecutor learned about a module when loading it.
struct ModelInfo {
  std::vector<MethodInfo> methods;  ///< forward first, then the other public methods by name
  std::int64_t parameter_count = 0; ///< elements over all parameters, counted before freezing
  std::int64_t parameter_bytes = 0;
  std::uint64_t size_bytes = 0;     ///< size of the archive (file or bytes) loaded
  std::string device;               ///< the device it runs on, "cpu" or "cuda:N"
  bool optimized = false;           ///< frozen and optimized for inference
  std::string engine = "libtorch";  ///< "native" (ember's kernels) or "libtorch"
  /// For "native", the network ("linear 70->64, relu, ..."); for "libtorch", what kept
  /// the module from the native path (or that it was turned off).
  std::string engine_reason;
};

namespace detail {
class TorchExecutorImpl;
}

/// Runs a TorchScript module's forward() with LibTorch, under torch::InferenceMode.
///
/// Thread safety: run() may be called from many threads at once on one executor.
/// Errors: every LibTorch exception is caught and returned as a Status; nothing throws.
class EMBER_API TorchExecutor final : public Executor {
 public:
  /// Loads a module saved with torch.jit.save / ScriptModule.save.
  /// NotFound: no such file. InvalidArgument: empty, not a TorchScript archive, or a
  /// bad option. DataLoss: a truncated or corrupt archive. FailedPrecondition: CUDA
  /// asked for where there is none. Any error from warm-up is returned too.
  static Result<std::unique_ptr<TorchExecutor>> load(const std::filesystem::path& path,
                                                    const ExecutorOptions& options = {});
  /// The same, from the bytes of an archive in memory (read during the call only).
  static Result<std::unique_ptr<TorchExecutor>> load_from_memory(std::span<const std::byte> archive,
                                                                const ExecutorOptions& options = {});

  ~TorchExecutor() override;
  TorchExecutor(const TorchExecutor&) = delete;
  TorchExecutor& operator=(const TorchExecutor&) = delete;

  /// Runs forward() on positional inputs. Host inputs are passed to LibTorch without a
  /// copy (and copied to the device when the module runs on a GPU).
  ///
  /// Outputs: a Tensor is named "output"; a tuple or list is flattened to "0", "1", ...;
  /// a dict of str keys to its keys; nested containers join names with "."
  /// ("0.logits"); int, float and bool become 0-dim int64, float64 and bool tensors.
  ///
  /// InvalidArgument: wrong number of inputs, an undefined input, a dtype or shape
  /// that does not match the input specs, a non-finite value under kReject.
  /// ResourceExhausted: out of memory. Internal: the model failed (it raised, or an
  /// operator rejected the input) or returned something that is not tensors.
  [[nodiscard]] Result<NamedTensors> run(std::span<const Tensor> inputs) const override;

  /// Runs forward() with inputs matched by argument name; every argument needs one.
  [[nodiscard]] Result<NamedTensors> run_named(const NamedTensors& inputs) const;

  [[nodiscard]] std::string name() const override;
  [[nodiscard]] const ModelInfo& info() const noexcept;
  /// The names of forward()'s arguments, in order.
  [[nodiscard]] std::vector<std::string> input_names() const;
  /// The input specs in force (given, inferred from example inputs, or empty).
  [[nodiscard]] const std::vector<InputSpec>& input_specs() const noexcept;
  /// net.json of the native network this module lowered to (also when ExecutorOptions::
  /// native is kOff); FailedPrecondition with the reason when it does not lower.
  [[nodiscard]] Result<std::string> native_json() const;

 private:
  explicit TorchExecutor(std::unique_ptr<detail::TorchExecutorImpl> impl);
  std::unique_ptr<detail::TorchExecutorImpl> impl_;
};

namespace detail {
class AotiExecutorImpl;
}

/// Runs an AOTInductor package (.pt2, from torch._inductor.aoti_compile_and_package, or
/// ember.export_bundle(format="aoti")) with LibTorch's package loader: the model compiled
/// ahead of time to a shared library for this CPU and this LibTorch.
///
/// Thread safety: run() may be called from many threads at once.
class EMBER_API AotiExecutor final : public Executor {
 public:
  /// NotFound: no such file. InvalidArgument: empty, not a zip, not an AOTInductor
  /// package, or one that does not say its inputs (ember's exporter writes them into
  /// the package's metadata; or give ExecutorOptions::input_specs). DataLoss: truncated
  /// or corrupt. FailedPrecondition: compiled for another device, for CPU features this
  /// CPU lacks, or with another torch than this LibTorch (the package would crash, so
  /// it is refused instead). Options: device ("cpu" or "auto"), input_specs,
  /// non_finite_inputs, log; the others do not apply.
  static Result<std::unique_ptr<AotiExecutor>> load(const std::filesystem::path& path,
                                                   const ExecutorOptions& options = {});
  ~AotiExecutor() override;
  AotiExecutor(const AotiExecutor&) = delete;
  AotiExecutor& operator=(const AotiExecutor&) = delete;

  /// Outputs: one is "output", several "0", "1", ... InvalidArgument: wrong number of
  /// inputs, dtype, rank, width, more rows than the package was compiled for, or a
  /// non-finite value under kReject. Internal: the model failed.
  [[nodiscard]] Result<NamedTensors> run(std::span<const Tensor> inputs) const override;
  [[nodiscard]] std::string name() const override { return "aoti:cpu"; }
  /// size_bytes, device, engine "aoti", engine_reason (what it was compiled for).
  [[nodiscard]] const ModelInfo& info() const noexcept;
  [[nodiscard]] const std::vector<InputSpec>& input_specs() const noexcept;
  /// The package's metadata (AOTI_CPU_ISA, ember.torch, ...).
  [[nodiscard]] std::map<std::string, std::string> metadata() const;

 private:
  explicit AotiExecutor(std::unique_ptr<detail::AotiExecutorImpl> impl);
  std::unique_ptr<detail::AotiExecutorImpl> impl_;
};

/// Whether this build of LibTorch can use CUDA, and how many devices it sees.
EMBER_API bool cuda_available() noexcept;
EMBER_API int cuda_device_count() noexcept;

}  // namespace ember
