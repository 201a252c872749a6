// ember report: one self-contained HTML page with the drift of current data against
// the reference, and (from a predictions file) latency, served_by, fallbacks and outcomes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember_cli {

namespace {

using ember::Result;
using ember::Status;

struct ReportArgs {
  std::string schema;
  std::string bundle;
  std::string reference;
  std::string current;
  std::string predictions;
  std::string out;
  std::string title;
  std::size_t windows = 20;
};

// One line of `ember predict` output or of a prediction log.
struct PredictionLine {
  std::string version;
  double latency_us = NAN;
  std::string served_by;
  bool fallback = false;
  double output = NAN;
  double outcome = NAN;
};

Result<std::vector<PredictionLine>> read_predictions(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ember::not_found("cannot read '" + path + "'");
  std::vector<PredictionLine> out;
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.size() > (std::size_t{1} << 20)) {
      return ember::invalid_argument(path + ":" + std::to_string(line_no) + ": line longer than 1 MiB");
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return ember::invalid_argument(path + ":" + std::to_string(line_no) + ": not a JSON object");
    }
    if (j.contains("summary")) continue;  // ember predict's last line
    PredictionLine p;
    if (auto it = j.find("version"); it != j.end() && it->is_string()) p.version = it->get<std::string>();
    if (auto it = j.find("latency_us"); it != j.end() && it->is_number()) p.latency_us = it->get<double>();
    if (auto it = j.find("served_by"); it != j.end() && it->is_string()) p.served_by = it->get<std::string>();
    if (auto it = j.find("skipped"); it != j.end() && it->is_array()) p.fallback = !it->empty();
    if (auto it = j.find("outcome"); it != j.end() && it->is_number()) p.outcome = it->get<double>();
    if (auto it = j.find("outputs"); it != j.end() && it->is_object() && !it->empty()) {
      const auto& first = it->contains("output") ? (*it)["output"] : it->begin().value();
      const nlohmann::json* v = &first;
      while (v->is_array() && !v->empty()) v = &(*v)[0];
      if (v->is_number()) p.output = v->get<double>();
    }
    if (p.served_by.empty()) continue;  // refused: nothing was served
    out.push_back(std::move(p));
  }
  return out;
}

void add_predictions(ember::ReportData& data, const std::vector<PredictionLine>& lines, std::size_t windows) {
  const auto bounds = ember::latency_buckets();
  std::map<std::string, std::vector<std::pair<double, double>>> outcomes;
  for (const auto& p : lines) {
    const std::string version = p.version.empty() ? "(none)" : p.version;
    auto& h = data.latency[version];
    if (h.empty()) h.assign(bounds.size() + 1, 0);
    if (!std::isnan(p.latency_us)) {
      ++h[static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), p.latency_us * 1e-6) - bounds.begin())];
    }
    if (!std::isnan(p.outcome) && !std::isnan(p.output)) outcomes[version].emplace_back(p.output, p.outcome);
  }
  const std::size_t n = std::max<std::size_t>(windows, 1);
  const std::size_t per = std::max<std::size_t>((lines.size() + n - 1) / n, 1);
  for (std::size_t start = 0; start < lines.size(); start += per) {
    ember::WindowReport w;
    w.index = start / per;
    const std::size_t end = std::min(lines.size(), start + per);
    w.rows = end - start;
    std::vector<double> latency;
    double conf = 0, conf_n = 0, fallbacks = 0;
    for (std::size_t i = start; i < end; ++i) {
      const auto& p = lines[i];
      ++w.served_by[p.served_by];
      ++w.versions[p.version.empty() ? "(none)" : p.version];
      fallbacks += p.fallback;
      if (!std::isnan(p.latency_us)) latency.push_back(p.latency_us);
      if (p.output >= 0 && p.output <= 1) {
        conf += std::max(p.output, 1 - p.output);
        ++conf_n;
      }
    }
    w.fallback_rate = fallbacks / static_cast<double>(w.rows);
    w.mean_confidence = conf_n > 0 ? conf / conf_n : NAN;
    if (!latency.empty()) {
      std::sort(latency.begin(), latency.end());
      const auto at = [&](double q) {
        return std::chrono::nanoseconds(static_cast<std::int64_t>(latency[static_cast<std::size_t>(q * static_cast<double>(latency.size() - 1))] * 1e3));
      };
      w.latency_p50 = at(0.5);
      w.latency_p95 = at(0.95);
    }
    data.windows.push_back(std::move(w));
  }
  for (const auto& [version, pairs] : outcomes) data.outcomes.push_back(ember::outcome_stats(version, pairs));
}

int cmd_report(const ReportArgs& args) {
  ember::ReportData data;
  data.title = args.title.empty() ? "ember report" : args.title;
  if (!args.bundle.empty()) {
    auto manifest = ember::verify_bundle(args.bundle);
    if (!manifest.ok()) return fail(manifest.status());
    data.model = manifest->name;
  }
  auto in = load_drift_inputs(args.schema, args.bundle, args.reference, args.current);
  if (!in.ok()) return fail(in.status());
  auto pool = drift_pool();
  ember::DriftOptions options;
  options.executor = pool.get();
  auto drift = ember::compare(in->reference, in->current, options);
  if (!drift.ok()) return fail(drift.status());
  data.drift = std::move(*drift);
  if (!args.predictions.empty()) {
    auto lines = read_predictions(args.predictions);
    if (!lines.ok()) return fail(lines.status());
    add_predictions(data, *lines, args.windows);
  }
  const std::string html = ember::render_report(data);
  if (auto st = write_file_atomically(args.out, html); !st.ok()) return fail(st);
  std::fprintf(stderr, "ember report: %zu of %zu features drifted%s -> %s (%zu bytes)\n", data.drift->drifted,
               data.drift->compared, data.drift->dataset_drift ? " (dataset drift)" : "", args.out.c_str(), html.size());
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* report = app.add_subcommand("report", "Write one self-contained HTML report: drift, latency, served_by, outcomes.");
  report->footer(
      "The page has no script and loads nothing: inline SVG plots of each feature's reference\n"
      "and current distributions, the drift table, and from --predictions (the output of\n"
      "'ember predict', or a prediction log; an \"outcome\" field joins ground truth) latency\n"
      "histograms per version, served_by and fallbacks over time, and outcomes per version.\n"
      "It holds aggregates only, never rows, so it stays small however large the data.\n"
      "  ember report --reference train.csv --current today.jsonl --predictions preds.jsonl --out report.html");
  report->add_option("--schema", args->schema, "The request schema (default: the bundle's, or read from the data)");
  report->add_option("--bundle", args->bundle, "Take the reference statistics (and schema) from this bundle");
  report->add_option("--reference", args->reference, "Reference data: .csv or .jsonl");
  report->add_option("--current", args->current, "Current data: .csv or .jsonl")->required();
  report->add_option("--predictions", args->predictions, "Predictions: JSON lines from 'ember predict' or a prediction log");
  report->add_option("-o,--out", args->out, "The HTML file to write")->required();
  report->add_option("--title", args->title, "The page's title");
  report->add_option("--windows", args->windows, "Time steps the predictions are split into")->check(CLI::Range(1, 1000));
  report->callback([&run, args] {
    run = [args] {
      if (args->bundle.empty() == args->reference.empty()) {
        std::fprintf(stderr, "ember: usage error: give --reference or --bundle (one of them)\n");
        return 2;
      }
      return cmd_report(*args);
    };
  });
}

}  // namespace ember_cli
