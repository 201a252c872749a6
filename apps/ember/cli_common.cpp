#include "cli_common.hpp"

#include "ember/fallback.hpp"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>

#include <unistd.h>

namespace ember_cli {

int fail(const ember::Status& status) {
  std::fprintf(stderr, "ember: error: %s\n", status.to_string().c_str());
  return 1;
}

ember::Progress progress_bar(std::string label, bool force) {
  if (!force && ::isatty(STDERR_FILENO) == 0) return {};
  return [label = std::move(label), start = std::chrono::steady_clock::now()](std::uint64_t done, std::uint64_t total) {
    if (total < (std::uint64_t{16} << 20)) return;
    const double frac = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double mbs = secs > 0 ? static_cast<double>(done) / (1 << 20) / secs : 0.0;
    std::fprintf(stderr, "\r%s [%.*s%*s] %5.1f%%  %.0f/%.0f MiB  %.0f MiB/s", label.c_str(), filled,
                 "##############################", width - filled, "", frac * 100.0,
                 static_cast<double>(done) / (1 << 20), static_cast<double>(total) / (1 << 20), mbs);
    if (done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

std::string format_time_us(std::int64_t us) {
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(((us % 1000000) + 1000000) % 1000000));
  return out;
}

ember::Result<std::int64_t> parse_time_us(const std::string& text) {
  static const std::regex unix_re(R"(^-?[0-9]{1,12}(\.[0-9]{1,6})?$)");
  if (std::regex_match(text, unix_re)) return static_cast<std::int64_t>(std::stod(text) * 1e6);
  static const std::regex rfc(
      R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.([0-9]{1,6}))?(Z|([+-])([0-9]{2}):([0-9]{2}))$)");
  std::smatch m;
  if (!std::regex_match(text, m, rfc)) {
    return ember::invalid_argument("time '" + text + "': expected RFC 3339 (2026-12-03T08:00:00Z) or Unix seconds");
  }
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return ember::invalid_argument("time '" + text + "' is out of range");
  }
  std::int64_t us = static_cast<std::int64_t>(timegm(&tm)) * 1000000;
  if (m[8].matched) {
    std::string frac = m[8];
    frac.resize(6, '0');
    us += std::stoll(frac);
  }
  if (m[10].matched) {
    const std::int64_t off = (std::stoll(m[11]) * 60 + std::stoll(m[12])) * 60 * 1000000;
    us -= m[10] == "+" ? off : -off;
  }
  return us;
}

ember::Result<std::string> read_key_file(const std::string& path) {
  if (path.empty()) return std::string();
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return ember::not_found("key file '" + path + "' cannot be read");
  char buf[130] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string key(buf, n);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.size() != 64) return ember::invalid_argument("key file '" + path + "' must hold 64 hex digits");
  return key;
}

ember::LogSink stderr_sink(bool verbose) {
  if (!verbose) return {};
  return {ember::LogLevel::kInfo, [](ember::LogLevel level, std::string_view message) {
            std::fprintf(stderr, "ember: %s: %.*s\n", std::string(ember::log_level_name(level)).c_str(),
                         static_cast<int>(message.size()), message.data());
          }};
}

ember::Result<std::istream*> open_input(const std::string& path, std::ifstream& file) {
  if (path == "-") return &std::cin;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return ember::not_found("input file '" + path + "' does not exist");
  file.open(path, std::ios::binary);
  if (!file) return ember::not_found("cannot open '" + path + "'");
  return static_cast<std::istream*>(&file);
}

ember::Result<ember::SigningKey> read_signing_key(const std::string& path) {
  auto secret = read_key_file(path);
  if (!secret.ok()) return secret.status();
  auto key = ember::signing_key_from_secret(*secret);
  if (!key.ok()) return key.status().with_context("key file '" + path + "'");
  return key;
}

std::string actor_or_default(const std::string& actor) {
  if (!actor.empty()) return actor;
  for (const char* var : {"EMBER_ACTOR", "USER", "LOGNAME"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  }
  return "unknown";
}

ember::Status write_file_atomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!(f << text) || !f.flush()) return ember::invalid_argument("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return ember::invalid_argument("cannot write '" + path + "': " + ec.message());
  }
  return {};
}

ember::Status add_fault_rules(const std::vector<std::string>& specs, std::string_view option, ember::ModelOptions& options) {
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return ember::invalid_argument(std::string(option) + " '" + spec + "': expected STAGE=FAULT, e.g. primary=throw,p=0.3");
    }
    auto rule = ember::parse_fault_rule(std::string_view(spec).substr(eq + 1));
    if (!rule.ok()) return rule.status().with_context(option);
    options.inject[spec.substr(0, eq)].push_back(*rule);
  }
  return {};
}

ember::Result<std::unique_ptr<ember::Model>> load_model_or_ref(const std::string& what, const std::string& registry_dir,
                                                               const std::string& key_file,
                                                               std::shared_ptr<ember::Registry>& registry,
                                                               const ember::ModelOptions& options) {
  if (std::filesystem::is_directory(what)) return ember::Model::load(what, options);
  if (registry_dir.empty()) {
    return ember::not_found("'" + what + "' is not a directory (give --registry to load it as a reference)");
  }
  if (!registry) {
    ember::RegistryOptions ro;
    auto key = read_key_file(key_file);
    if (!key.ok()) return key.status();
    ro.encryption_key = *key;
    auto r = ember::Registry::open(registry_dir, ro);
    if (!r.ok()) return r.status();
    registry = std::move(*r);
  }
  return registry->load_model(what, options);
}

}  // namespace ember_cli
