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

/// `relative` (a path from a configuration file) resolved inside `dir`: InvalidArgument
/// for an empty or absolute path, a '..' component, or one that leads out of `dir`
/// through a symbolic link. The file need not exist. `what` names it in messages.
Result<std::filesystem::path> confined_path(const std::filesystem::path& dir, std::string_view relative,
                                            std::string_view what);

/// True when JSON text nests arrays and objects deeper than `max_depth` (strings are
/// skipped): such documents are refused before a recursive parser or printer sees them.
bool json_too_deep(std::string_view text, int max_depth);

}  // namespace ember::detail
