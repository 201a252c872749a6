#include "ember/version.hpp"

namespace ember {

std::string_view version() noexcept { return EMBER_VERSION_STRING; }

}  // namespace ember
