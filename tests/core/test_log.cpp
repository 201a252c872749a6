#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "ember/log.hpp"

TEST_CASE("a default log sink is silent", "[log]") {
  ember::LogSink sink;
  CHECK_FALSE(sink.enabled(ember::LogLevel::kError));
  sink.log(ember::LogLevel::kError, "dropped");  // no callback: nothing happens
}

TEST_CASE("a log sink passes messages at or above its level", "[log]") {
  std::vector<std::string> seen;
  ember::LogSink sink{ember::LogLevel::kInfo, [&](ember::LogLevel level, std::string_view msg) {
                        seen.push_back(std::string(ember::log_level_name(level)) + ":" + std::string(msg));
                      }};
  sink.log(ember::LogLevel::kDebug, "hidden");
  sink.log(ember::LogLevel::kInfo, "loaded");
  sink.log(ember::LogLevel::kError, "failed");
  sink.log(ember::LogLevel::kOff, "never");
  CHECK(seen == std::vector<std::string>{"info:loaded", "error:failed"});
}

TEST_CASE("a throwing log callback does not escape", "[log]") {
  ember::LogSink sink{ember::LogLevel::kDebug,
                      [](ember::LogLevel, std::string_view) { throw std::runtime_error("sink broke"); }};
  CHECK_NOTHROW(sink.log(ember::LogLevel::kWarning, "x"));
}
