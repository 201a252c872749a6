// The prediction log: one JSON line per logged request, personal fields redacted,
// written in blocks and rotated by size.
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "monitor/monitor_internal.hpp"

namespace ember::detail {

namespace {

constexpr std::size_t kFlushBytes = 64 << 10;
constexpr std::string_view kRedacted = "[redacted]";

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

nlohmann::ordered_json number(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); }

}  // namespace

PredictionLog::PredictionLog(const PredictionLogOptions& options, const Schema& schema, std::string model)
    : options_(options), schema_(schema), model_(std::move(model)) {
  const double r = options.sample_rate;
  sample_below_ = r >= 1 ? UINT64_MAX : static_cast<std::uint64_t>(r * 18446744073709551615.0);
}

PredictionLog::~PredictionLog() {
  std::lock_guard lock(mu_);
  (void)write_locked();
  if (file_) std::fclose(file_);
}

Result<std::unique_ptr<PredictionLog>> PredictionLog::open(const PredictionLogOptions& options, const Schema& schema,
                                                           std::string model) {
  std::unique_ptr<PredictionLog> log(new PredictionLog(options, schema, std::move(model)));
  log->file_ = std::fopen(options.path.c_str(), "ab");
  if (log->file_ == nullptr) {
    return invalid_argument("prediction log: cannot open '" + options.path.string() + "': " + std::strerror(errno));
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(options.path, ec);
  log->file_bytes_ = ec ? 0 : size;
  return log;
}

void PredictionLog::consider(const RequestEvent& e) {
  const bool invalid = e.status.code() == StatusCode::kInvalidArgument;
  const bool flagged = e.validation != nullptr && !e.validation->flagged().empty();
  const bool sampled = sample_below_ == UINT64_MAX || (sample_below_ > 0 && mix(e.request_id) < sample_below_);
  if (e.batch_features != nullptr || e.batch_validation != nullptr) {
    if (e.batch_validation == nullptr || e.batch_validation->records.empty()) return;
  } else if (!invalid && !flagged && !sampled) {
    return;
  }
  const auto& specs = schema_.features();
  std::string lines;
  const auto one = [&](const ValidationReport* report, const FeatureRow* row, std::string_view reason,
                       std::optional<std::size_t> index) {
    nlohmann::ordered_json j;
    j["time"] = utc_now();
    j["request_id"] = e.request_id;
    if (index) j["record"] = *index;
    j["model"] = model_.empty() ? std::string(e.model_name) : model_;
    j["version"] = std::string(e.model_version);
    j["reason"] = reason;
    j["status"] = e.status.ok() ? "ok" : std::string(status_code_name(e.status.code()));
    if (row != nullptr && e.status.ok()) {
      nlohmann::ordered_json features = nlohmann::ordered_json::object();
      for (std::size_t i = 0; i < specs.size() && i < row->values.size(); ++i) {
        const auto& s = specs[i];
        if (s.personal) {
          features[s.name] = kRedacted;
        } else if (std::isnan(row->values[i])) {
          features[s.name] = nullptr;
        } else if (s.kind == FeatureKind::kCategory || s.kind == FeatureKind::kText) {
          features[s.name] = i < row->text.size() ? row->text[i] : std::string();
        } else if (s.kind == FeatureKind::kBoolean) {
          features[s.name] = row->values[i] != 0;
        } else {
          features[s.name] = number(row->values[i]);
        }
      }
      j["features"] = std::move(features);
    }
    if (e.result != nullptr && e.status.ok() && !index) {
      nlohmann::ordered_json outputs = nlohmann::ordered_json::object();
      for (const auto& entry : e.result->outputs) {
        nlohmann::ordered_json values = nlohmann::ordered_json::array();
        for (std::int64_t k = 0; k < entry.tensor.numel() && k < 64; ++k) {
          auto v = entry.tensor.at(static_cast<std::size_t>(k));
          values.push_back(v.ok() ? number(*v) : nlohmann::ordered_json());
        }
        outputs[entry.name] = std::move(values);
      }
      j["outputs"] = std::move(outputs);
      j["served_by"] = e.result->served_by;
      nlohmann::ordered_json skipped = nlohmann::ordered_json::array();
      for (const auto& s : e.result->skipped) skipped.push_back(s.stage);
      j["skipped"] = std::move(skipped);
    }
    if (report != nullptr) {
      nlohmann::ordered_json fl = nlohmann::ordered_json::array();
      for (auto f : report->flagged()) fl.push_back(f < specs.size() ? specs[f].name : std::to_string(f));
      j["flagged"] = std::move(fl);
      nlohmann::ordered_json errors = nlohmann::ordered_json::array();
      for (const auto& err : report->errors()) {
        // Error messages may quote the value: a personal field's message is redacted.
        bool personal = false;
        for (const auto& s : specs) personal = personal || (s.personal && err.instance_path == s.pointer);
        errors.push_back(personal ? err.instance_path + ": " + std::string(kRedacted) : err.to_string());
      }
      j["errors"] = std::move(errors);
    }
    j["latency_us"] = std::round(static_cast<double>(e.latency.count()) / 100.0) / 10.0;
    lines += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    lines += '\n';
  };
  if (e.batch_validation != nullptr) {
    for (const auto& [index, report] : e.batch_validation->records) {
      one(&report, nullptr, report.ok() ? "flagged" : "invalid", index);
    }
  } else {
    one(e.validation, e.features, invalid ? "invalid" : flagged ? "flagged" : "sampled", std::nullopt);
  }
  std::lock_guard lock(mu_);
  buffer_ += lines;
  logged_.fetch_add(1, std::memory_order_relaxed);
  if (buffer_.size() >= kFlushBytes) (void)write_locked();
}

Status PredictionLog::flush() {
  std::lock_guard lock(mu_);
  return write_locked();
}

Status PredictionLog::rotate_locked() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  const std::string base = options_.path.string();
  std::error_code ec;
  if (options_.max_files == 0) {
    std::filesystem::remove(options_.path, ec);
  } else {
    std::filesystem::remove(base + "." + std::to_string(options_.max_files), ec);
    for (std::size_t i = options_.max_files; i > 1; --i) {
      std::filesystem::rename(base + "." + std::to_string(i - 1), base + "." + std::to_string(i), ec);
    }
    std::filesystem::rename(options_.path, base + ".1", ec);
  }
  file_ = std::fopen(options_.path.c_str(), "ab");
  file_bytes_ = 0;
  if (file_ == nullptr) return data_loss("prediction log: cannot reopen '" + base + "': " + std::strerror(errno));
  return {};
}

Status PredictionLog::write_locked() {
  if (buffer_.empty()) return {};
  if (file_bytes_ > 0 && file_bytes_ + buffer_.size() > options_.max_file_bytes) {
    if (auto st = rotate_locked(); !st.ok()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      buffer_.clear();
      return st;
    }
  }
  if (file_ == nullptr) {
    buffer_.clear();
    errors_.fetch_add(1, std::memory_order_relaxed);
    return data_loss("prediction log: not open");
  }
  const std::size_t n = std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
  const bool ok = n == buffer_.size() && std::fflush(file_) == 0;
  file_bytes_ += n;
  buffer_.clear();
  if (!ok) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return data_loss("prediction log: writing '" + options_.path.string() + "' failed");
  }
  return {};
}

}  // namespace ember::detail
