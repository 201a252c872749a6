#pragma once

// Recorded traffic for `ember rollout replay` and `ember rollout serve`: one JSON object
// per line, {"record": {...}, "key": "...", "outcome": x, "t_ms": t}, all but the
// record optional.

#include <fstream>
#include <optional>
#include <string>

#include "ember/status.hpp"

namespace ember_cli {

struct TrafficLine {
  std::string record;  ///< the record, as JSON text
  std::string key;     ///< the caller's key (default: the line number)
  std::optional<double> outcome;
  std::optional<double> t_ms;
  std::size_t line_no = 0;
};

class TrafficReader {
 public:
  /// NotFound when the file cannot be read.
  ember::Status open(const std::string& path);
  /// The next non-blank line into `out`: true, or false at the end. InvalidArgument
  /// naming the file and line for a line that is not such an object or is over 1 MiB,
  /// DataLoss for a read error.
  ember::Result<bool> next(TrafficLine& out);
  /// Lines read so far that held a request.
  [[nodiscard]] std::size_t requests() const noexcept { return requests_; }

 private:
  std::string path_;
  std::ifstream in_;
  std::size_t line_no_ = 0, requests_ = 0;
};

}  // namespace ember_cli
