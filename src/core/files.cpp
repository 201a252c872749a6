#include "core/files.hpp"

#include <fstream>
#include <iterator>
#include <system_error>

namespace ember::detail {

Result<std::string> read_text_file(const std::filesystem::path& path, std::string_view what, std::size_t max_bytes) {
  const std::string name = std::string(what) + " '" + path.string() + "'";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return not_found(name + " does not exist");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return data_loss(name + ": " + ec.message());
  if (size > max_bytes) {
    return invalid_argument(name + " is " + std::to_string(size) + " bytes, more than the limit of " +
                            std::to_string(max_bytes));
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return data_loss(name + " cannot be opened");
  std::string text(static_cast<std::size_t>(size), '\0');
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (static_cast<std::size_t>(f.gcount()) != text.size()) return data_loss(name + " could not be read whole");
  return text;
}

Result<std::filesystem::path> confined_path(const std::filesystem::path& dir, std::string_view relative,
                                            std::string_view what) {
  namespace fs = std::filesystem;
  const std::string name = std::string(what) + " '" + std::string(relative) + "'";
  if (relative.empty()) return invalid_argument(std::string(what) + ": the path is empty");
  if (relative.find('\0') != std::string_view::npos) return invalid_argument(name + " holds a NUL byte");
  const fs::path rel(relative);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
    return invalid_argument(name + " is absolute; paths are relative to the model directory");
  }
  for (const auto& part : rel) {
    if (part == "..") return invalid_argument(name + " leaves the model directory ('..')");
  }
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(dir, ec);
  if (ec) return invalid_argument(std::string(what) + ": the directory '" + dir.string() + "' cannot be resolved");
  const fs::path full = fs::weakly_canonical(dir / rel, ec);
  if (ec) return invalid_argument(name + " cannot be resolved: " + ec.message());
  // Symbolic links resolved: the file must still be below the directory.
  auto b = base.begin();
  auto f = full.begin();
  for (; b != base.end(); ++b, ++f) {
    if (*b == "" && std::next(b) == base.end()) break;  // a trailing separator
    if (f == full.end() || *f != *b) return invalid_argument(name + " leads out of the model directory");
  }
  return dir / rel;
}

bool json_too_deep(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

}  // namespace ember::detail
