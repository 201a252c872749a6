#include "ember/version.hpp"

namespace ember {

std::string_view version() noexcept { return EMBER_VERSION_STRING; }
bool built_with_torch() noexcept { return EMBER_HAS_TORCH != 0; }
bool built_with_registry() noexcept { return EMBER_HAS_REGISTRY != 0; }

}  // namespace ember
