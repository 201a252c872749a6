#include "ember/executor.hpp"

#include <string>

namespace ember {

Executor::~Executor() = default;

std::string_view native_path_name(NativePath path) noexcept {
  switch (path) {
    case NativePath::kAuto: return "auto";
    case NativePath::kOff: return "off";
    case NativePath::kRequire: return "require";
  }
  return "auto";
}

Result<NativePath> parse_native_path(std::string_view text) {
  for (NativePath p : {NativePath::kAuto, NativePath::kOff, NativePath::kRequire}) {
    if (text == native_path_name(p)) return p;
  }
  return invalid_argument("'native' must be \"auto\", \"off\" or \"require\", not \"" + std::string(text) + "\"");
}

}  // namespace ember
