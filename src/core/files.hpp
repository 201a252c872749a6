#pragma once

// Reading small configuration files (schema.json, pipeline.json, chain.json, ...).

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "ember/status.hpp"

namespace ember::detail {

/// The whole file as text. NotFound when `path` is not a regular file, InvalidArgument
/// when it is larger than `max_bytes`, DataLoss when reading fails. `what` names the
/// file in messages ("schema file").
Result<std::string> read_text_file(const std::filesystem::path& path, std::string_view what,
                                   std::size_t max_bytes = std::size_t{64} << 20);

}  // namespace ember::detail
