#pragma once

// Lowering a TorchScript module to a native network (executor/native/net.hpp).

#include <torch/script.h>

#include "executor/native/net.hpp"

namespace ember::detail {

/// The network `module`'s forward() computes, when it is a feed-forward network of
/// float32 operations the native path has: linear (and matmul by a constant), relu,
/// leaky_relu, gelu, tanh, sigmoid, softmax over the last dimension, layer_norm,
/// batch_norm and dropout in eval, adds of a constant or of an earlier activation
/// (residual), squeeze of a last dimension of 1. Otherwise FailedPrecondition saying
/// what keeps it on LibTorch. `module` must be in eval mode; it is not changed.
Result<NetSpec> lower_module(const torch::jit::Module& module);

}  // namespace ember::detail
