#include "traffic_lines.hpp"

#include <nlohmann/json.hpp>

namespace ember_cli {

ember::Status TrafficReader::open(const std::string& path) {
  path_ = path;
  in_.open(path, std::ios::binary);
  if (!in_) return ember::not_found("cannot read the traffic '" + path + "'");
  return {};
}

ember::Result<bool> TrafficReader::next(TrafficLine& out) {
  for (std::string line; std::getline(in_, line);) {
    ++line_no_;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path_ + ":" + std::to_string(line_no_) + ": ";
    if (line.size() > (std::size_t{1} << 20)) return ember::invalid_argument(where + "line longer than 1 MiB");
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("record") || !j["record"].is_object()) {
      return ember::invalid_argument(where + "expected {\"record\": {...}, \"key\": ..., \"outcome\": ..., \"t_ms\": ...}");
    }
    out.line_no = line_no_;
    out.record = j["record"].dump();
    out.key = std::to_string(line_no_);
    if (auto k = j.find("key"); k != j.end() && !k->is_null()) out.key = k->is_string() ? k->get<std::string>() : k->dump();
    out.outcome.reset();
    if (auto o = j.find("outcome"); o != j.end() && o->is_number()) out.outcome = o->get<double>();
    out.t_ms.reset();
    if (auto t = j.find("t_ms"); t != j.end() && t->is_number()) out.t_ms = t->get<double>();
    ++requests_;
    return true;
  }
  if (in_.bad()) return ember::data_loss("error reading '" + path_ + "'");
  return false;
}

}  // namespace ember_cli
