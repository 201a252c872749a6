#pragma once

// What the TorchScript and AOTInductor executors share (see common.cpp).

#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "ember/log.hpp"
#include "ember/status.hpp"

namespace ember::detail {

/// LibTorch's multi-line messages as the one line that says what went wrong.
std::string one_line(std::string_view what);
std::string message_of(const c10::Error& e);

/// Routes LibTorch's warnings on this thread to `sink` while alive.
class SinkWarningHandler final : public c10::WarningHandler {
 public:
  explicit SinkWarningHandler(const LogSink* sink) : sink_(sink) {}
  void process(const c10::Warning& warning) override;

 private:
  const LogSink* sink_;
};

class WarningScope {
 public:
  explicit WarningScope(const LogSink* sink) : handler_(sink), guard_(&handler_) {}

 private:
  SinkWarningHandler handler_;
  c10::WarningUtils::WarningHandlerGuard guard_;
};

/// A zip archive in memory, by its first bytes and end-of-central-directory record:
/// "not a `kind`" (InvalidArgument) or truncated (DataLoss) before LibTorch sees it.
Status check_archive(std::span<const std::byte> archive, const std::string& what, std::string_view kind);

/// The same for a file (`label`: "model file", "package"): NotFound when missing or
/// unreadable, InvalidArgument for a directory; its size when it looks whole.
Result<std::uint64_t> check_archive_file(const std::filesystem::path& path, const std::string& what,
                                         std::string_view label, std::string_view kind);

/// The exception being handled, as a Status with `context` (ResourceExhausted for out of
/// memory, Internal otherwise). Call inside a catch block.
Status status_from_current_exception(const std::string& context);

}  // namespace ember::detail
