#pragma once

/// Logging: ember never writes to stdout or stderr by itself. A host that wants
/// ember's messages passes a LogSink in the options of the object it creates; the
/// default sink is silent. There is no global logger.

#include <functional>
#include <string_view>

#include "ember/export.hpp"

namespace ember {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

/// "debug", "info", "warning", "error", "off".
EMBER_API std::string_view log_level_name(LogLevel level) noexcept;

/// Where messages go: every message at `level` or above is passed to `callback`.
/// The callback may be invoked from any thread that calls into the object holding
/// the sink, possibly concurrently; it must be thread-safe. Anything it throws is swallowed.
struct LogSink {
  LogLevel level = LogLevel::kOff;
  std::function<void(LogLevel, std::string_view)> callback;

  [[nodiscard]] bool enabled(LogLevel at) const noexcept {
    return callback && at != LogLevel::kOff && at >= level;
  }
  void log(LogLevel at, std::string_view message) const {
    if (!enabled(at)) return;
    try {
      callback(at, message);
    } catch (...) {  // a throwing sink must not break the call that logged
    }
  }
};

}  // namespace ember
