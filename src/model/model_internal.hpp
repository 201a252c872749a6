#pragma once

// Building a chain for Model::load: from chain.json or the default, then with the
// model's options (budget override, clock, fault injection) applied.

#include <filesystem>
#include <memory>
#include <string_view>

#include "ember/model.hpp"

namespace ember::detail {

Result<std::shared_ptr<Stage>> torchscript_stage(const std::filesystem::path& path, const std::string& device,
                                                 std::size_t input_width, const ModelOptions& options, DType dtype,
                                                 NativePath native);
/// The TorchScript model on the best device, then on the CPU when that is a GPU.
Result<ChainOptions> default_chain(const std::filesystem::path& model_dir, std::size_t input_width,
                                   const ModelOptions& options);
Result<ChainOptions> parse_chain(std::string_view text, const std::filesystem::path& model_dir,
                                 std::size_t input_width, const ModelOptions& options);
/// Applies `options` to a parsed chain and builds it.
Result<std::unique_ptr<FallbackChain>> finish_chain(ChainOptions chain, const ModelOptions& options);

}  // namespace ember::detail
