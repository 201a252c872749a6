// What the TorchScript and AOTInductor executors share: LibTorch's errors and warnings
// as ember's, and the zip check of their archives.
#include "executor/torch/common.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <new>
#include <vector>

#include <torch/csrc/jit/runtime/jit_exception.h>

namespace ember::detail {

// Turns LibTorch's multi-line messages (TorchScript tracebacks, C++ frames) into
// the one line that says what went wrong: the last non-empty line.
std::string one_line(std::string_view what) {
  std::string_view best;
  std::size_t pos = 0;
  while (pos <= what.size()) {
    std::size_t end = what.find('\n', pos);
    if (end == std::string_view::npos) end = what.size();
    std::string_view line = what.substr(pos, end - pos);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    if (!line.empty()) best = line;
    pos = end + 1;
  }
  constexpr std::size_t kMax = 400;
  std::string out(best.substr(0, kMax));
  if (best.size() > kMax) out += "...";
  return out.empty() ? std::string("(no message)") : out;
}

std::string message_of(const c10::Error& e) { return one_line(e.what_without_backtrace()); }

void SinkWarningHandler::process(const c10::Warning& warning) {
  if (sink_ != nullptr && sink_->enabled(LogLevel::kWarning)) {
    sink_->log(LogLevel::kWarning, "libtorch: " + one_line(warning.msg()));
  }
}

namespace {

// A zip's end-of-central-directory record is 22 bytes plus a comment of up to 65535.
constexpr std::size_t kEocdSize = 22;
constexpr std::size_t kZipTailBytes = 65535 + kEocdSize;

// TorchScript archives and AOTInductor packages are zip files. Checking the first bytes
// and the end-of-central-directory record tells "not an archive" from "truncated archive"
// before LibTorch sees it. `tail` is the last (up to) kZipTailBytes of the archive.
Status check_zip_ends(std::span<const std::byte> head, std::span<const std::byte> tail, std::uint64_t size,
                      const std::string& what, std::string_view kind) {
  if (size == 0) return invalid_argument(what + " is empty");
  constexpr std::array<unsigned char, 4> kLocalHeader = {'P', 'K', 3, 4};
  if (head.size() < 4 || std::memcmp(head.data(), kLocalHeader.data(), 4) != 0) {
    return invalid_argument(what + " is not a " + std::string(kind) + " (no zip header)");
  }
  // The end-of-central-directory record: signature PK\5\6, 22 bytes plus a comment
  // whose length is its last field; it must end exactly at the end of the file.
  if (tail.size() >= kEocdSize) {
    for (std::size_t i = tail.size() - kEocdSize + 1; i-- > 0;) {
      const auto* p = reinterpret_cast<const unsigned char*>(tail.data()) + i;
      if (p[0] == 'P' && p[1] == 'K' && p[2] == 5 && p[3] == 6) {
        const std::size_t comment = static_cast<std::size_t>(p[20]) | (static_cast<std::size_t>(p[21]) << 8);
        if (i + kEocdSize + comment == tail.size()) return {};
      }
    }
  }
  return data_loss(what + " is truncated or corrupt (no end of central directory; " + std::to_string(size) +
                   " bytes)");
}

}  // namespace

Status check_archive(std::span<const std::byte> archive, const std::string& what, std::string_view kind) {
  return check_zip_ends(archive.first(std::min<std::size_t>(archive.size(), 4)),
                        archive.last(std::min(archive.size(), kZipTailBytes)), archive.size(), what, kind);
}

Result<std::uint64_t> check_archive_file(const std::filesystem::path& path, const std::string& what,
                                         std::string_view label, std::string_view kind) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return not_found(std::string(label) + " " + what + " does not exist");
  if (std::filesystem::is_directory(status)) return invalid_argument(std::string(label) + " path " + what + " is a directory");
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return not_found("cannot read the size of " + what + ": " + ec.message());
  std::ifstream file(path, std::ios::binary);
  if (!file) return not_found("cannot open " + what);
  std::array<std::byte, 4> head{};
  file.read(reinterpret_cast<char*>(head.data()), head.size());
  const auto head_len = static_cast<std::size_t>(file.gcount());
  const std::uint64_t tail_len = std::min<std::uint64_t>(size, kZipTailBytes);
  std::vector<std::byte> tail(static_cast<std::size_t>(tail_len));
  file.clear();
  file.seekg(static_cast<std::streamoff>(size - tail_len));
  file.read(reinterpret_cast<char*>(tail.data()), static_cast<std::streamsize>(tail.size()));
  if (!file) return data_loss("cannot read " + what);
  EMBER_RETURN_IF_ERROR(check_zip_ends(std::span(head.data(), head_len), tail, size, what, kind));
  return size;
}

Status status_from_current_exception(const std::string& context) {
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    return resource_exhausted(context + ": out of memory: " + message_of(e));
  } catch (const c10::Error& e) {
    std::string msg = message_of(e);
    if (msg.find("out of memory") != std::string::npos) return resource_exhausted(context + ": " + msg);
    return internal_error(context + ": " + msg);
  } catch (const torch::jit::JITException& e) {
    return internal_error(context + ": the model raised: " + one_line(e.what()));
  } catch (const std::bad_alloc&) {
    return resource_exhausted(context + ": out of host memory");
  } catch (const std::exception& e) {
    std::string msg = one_line(e.what());
    if (msg.find("out of memory") != std::string::npos) return resource_exhausted(context + ": " + msg);
    return internal_error(context + ": " + msg);
  } catch (...) {
    return internal_error(context + ": unknown exception");
  }
}

}  // namespace ember::detail
