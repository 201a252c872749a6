#pragma once

/// The native path: small feed-forward networks (Linear, ReLU, LeakyReLU, GELU, Tanh,
/// Sigmoid, Softmax, LayerNorm, BatchNorm and Dropout in eval, residual adds) run by
/// ember's own kernels, without LibTorch and without allocating per call beyond the
/// output. TorchExecutor lowers TorchScript models to it when it can
/// (ExecutorOptions::native); NativeExecutor runs a network from net.json, also in a
/// build without LibTorch (`ember info --native-out` or `TorchExecutor::native_json`
/// writes one).

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ember/executor.hpp"

namespace ember {

namespace detail {
struct NetSpec;
}

class EMBER_API NativeExecutor final : public Executor {
 public:
  /// Loads net.json ("format": "ember-net"). NotFound: no such file. InvalidArgument:
  /// malformed, an unknown op, widths that do not chain, a weight of the wrong size, a
  /// non-finite number (naming the layer).
  static Result<std::unique_ptr<NativeExecutor>> load(const std::filesystem::path& path);
  static Result<std::unique_ptr<NativeExecutor>> parse(std::string_view json);
  /// From a lowered network (TorchExecutor's).
  static Result<std::unique_ptr<NativeExecutor>> from_spec(std::shared_ptr<const detail::NetSpec> spec);
  ~NativeExecutor() override;

  /// One input, float32, shape [rows, inputs()] on the CPU. The output "output" is
  /// [rows, outputs()] float32 (or [rows] when the network squeezes its last dimension).
  /// InvalidArgument for anything else. Safe from many threads at once.
  [[nodiscard]] Result<NamedTensors> run(std::span<const Tensor> inputs) const override;
  [[nodiscard]] std::string name() const override { return "native"; }

  [[nodiscard]] std::int64_t inputs() const noexcept;
  [[nodiscard]] std::int64_t outputs() const noexcept;
  [[nodiscard]] std::int64_t parameter_count() const noexcept;
  /// "linear 70->64, relu, linear 64->64, relu, linear 64->1, sigmoid, squeeze".
  [[nodiscard]] std::string describe() const;
  /// net.json of this network.
  [[nodiscard]] std::string to_json() const;

 private:
  explicit NativeExecutor(std::shared_ptr<const detail::NetSpec> spec);
  std::shared_ptr<const detail::NetSpec> spec_;
};

}  // namespace ember
