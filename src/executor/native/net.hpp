#pragma once

// A feed-forward network as a list of operations on one float32 activation of shape
// [rows, width]: what the native path runs (NativeExecutor), what TorchScript models are
// lowered to (executor/torch/lower.cpp), and what net.json holds.

#include <cstdint>
#include <string>
#include <vector>

#include "ember/status.hpp"

namespace ember::detail {

enum class NetOp : std::uint8_t {
  kLinear,     // y = x W^T + b; `weight` holds W^T (in x out, row-major), `bias` out (or empty)
  kRelu,
  kLeakyRelu,  // `alpha`: the slope below 0
  kGelu,       // exact (erf)
  kGeluTanh,   // the tanh approximation
  kTanh,
  kSigmoid,
  kSoftmax,    // over the last dimension
  kLayerNorm,  // `weight` gamma, `bias` beta (either may be empty), `alpha` eps
  kAffine,     // y = x * weight + bias per column (batch norm in eval, folded)
  kSave,       // keep the activation in slot `slot` (0 to kMaxSlots - 1), for a residual add
  kAddSaved,   // y = x + slot `slot` (same width)
};

inline constexpr int kMaxSlots = 64;

struct NetLayer {
  NetOp op = NetOp::kRelu;
  std::int64_t in = 0, out = 0;  // widths before and after
  std::vector<float> weight, bias;
  float alpha = 0;
  int slot = 0;
};

struct NetSpec {
  std::int64_t inputs = 0;
  std::vector<NetLayer> layers;
  bool squeeze = false;  // the output [rows, 1] is returned as [rows]

  [[nodiscard]] std::int64_t outputs() const { return layers.empty() ? inputs : layers.back().out; }
  /// How many saved activations a run keeps: one past the highest slot used.
  [[nodiscard]] int slots() const;
  /// Checks widths, sizes and slots; InvalidArgument naming the layer.
  [[nodiscard]] Status check() const;
  /// "linear 70->64, relu, linear 64->1, sigmoid, squeeze".
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] std::int64_t parameters() const;
  [[nodiscard]] std::int64_t widest() const;
};

/// net.json ("format": "ember-net", version 1) to a checked spec, and back.
Result<NetSpec> parse_net(std::string_view json);
std::string net_to_json(const NetSpec& spec);

/// Runs the network on `rows` rows of `x` (rows x spec.inputs) into `y` (rows x
/// spec.outputs()). `a` and `b` are scratch of rows * spec.widest() floats each, `saved`
/// spec.slots() of the same size. No allocation.
void run_net(const NetSpec& spec, const float* x, std::int64_t rows, float* y, float* a, float* b,
             float* const* saved);

/// y[rows x out] = x[rows x in] * wt[in x out] (+ bias). AVX-512 or AVX2+FMA when the CPU
/// has it.
void linear_forward(const float* x, std::int64_t rows, std::int64_t in, const float* wt, const float* bias,
                    std::int64_t out, float* y);

}  // namespace ember::detail
