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

}  // namespace ember::detail
