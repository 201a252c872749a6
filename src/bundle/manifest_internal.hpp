#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ember/bundle.hpp"
#include "ember/status.hpp"

namespace ember::detail {

/// A manifest path: relative, '/'-separated, no '.', '..' or empty parts, no '\\', ':'
/// or control characters, not manifest.json. InvalidArgument naming `field` otherwise.
Status check_bundle_path(std::string_view path, std::string_view field);

/// The manifest's text with its "signatures" replaced; every other field is kept as it
/// was written, so the digest does not change.
Result<std::string> with_signatures(std::string_view manifest_text, const std::vector<BundleSignature>& signatures);

}  // namespace ember::detail
