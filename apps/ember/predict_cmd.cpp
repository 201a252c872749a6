// ember predict: JSON lines through a model (a directory, a bundle, or a registry
// reference): one answer per line, a summary, and optionally the run's metrics.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"
#include "json_tensors.hpp"

namespace ember_cli {

namespace {

using ember::Result;
using ember::Status;
using ember::cli::error_json;

struct PredictArgs {
  std::string model;
  std::string registry;
  std::string registry_key_file;
  std::string metrics_out;
  std::string metrics_format = "prometheus";
  std::string input;
  std::string output;
  std::string device = "auto";
  double budget_ms = -1;
  std::vector<std::string> inject;
  std::uint64_t seed = 0;
  int threads = 0;
  std::size_t max_record_bytes = std::size_t{1} << 20;
  bool verbose = false;
};

std::string row_json(const ember::Tensor& t) {
  std::vector<std::int64_t> shape(t.shape().begin() + 1, t.shape().end());
  auto row = t.reshape(shape);
  return row.ok() ? ember::cli::tensor_to_json_text(*row) : ember::cli::tensor_to_json_text(t);
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int cmd_predict(const PredictArgs& args) {
  ember::ModelOptions options;
  options.device = args.device;
  if (args.threads > 0) {
    if (auto st = ember::set_torch_threads(args.threads); !st.ok()) return fail(st);
  }
  options.schema.limits.max_document_bytes = args.max_record_bytes;
  options.fault_seed = args.seed;
  options.log = stderr_sink(args.verbose);
  if (args.budget_ms >= 0) {
    options.budget = std::chrono::nanoseconds(static_cast<std::int64_t>(args.budget_ms * 1e6));
  }
  if (auto st = add_fault_rules(args.inject, "--inject", options); !st.ok()) return fail(st);
  std::shared_ptr<ember::Metrics> metrics = args.metrics_out.empty() ? nullptr : ember::Metrics::create();
  Result<std::unique_ptr<ember::Model>> model = ember::internal_error("not loaded");
  if (!args.registry.empty() && ember::parse_model_ref(args.model).ok() && !std::filesystem::is_directory(args.model)) {
    ember::RegistryOptions registry_options;
    auto key = ember_cli::read_key_file(args.registry_key_file);
    if (!key.ok()) return fail(key.status());
    registry_options.encryption_key = *key;
    auto registry = ember::Registry::open(args.registry, registry_options);
    if (!registry.ok()) return fail(registry.status());
    if (metrics) {
      auto info = (*registry)->show(args.model);
      if (!info.ok()) return fail(info.status());
      options.name = info->name;
      options.version = std::to_string(info->version);
      options.observers.push_back(metrics->observer(options.name, options.version));
    }
    model = (*registry)->load_model(args.model, options);
  } else {
    if (metrics) {
      options.name = std::filesystem::absolute(args.model).lexically_normal().filename().string();
      if (options.name.empty()) options.name = std::filesystem::absolute(args.model).parent_path().filename().string();
      options.observers.push_back(metrics->observer(options.name, options.version));
    }
    model = ember::Model::load(args.model, options);
  }
  if (!model.ok()) return fail(model.status());
  std::shared_ptr<const ember::Model> watched;
  if (metrics) {
    watched = std::shared_ptr<const ember::Model>(model->get(), [](const ember::Model*) {});  // owned by `model`
    metrics->watch(watched);
  }
  std::ifstream file;
  auto in = open_input(args.input, file);
  if (!in.ok()) return fail(in.status());
  std::ofstream out_file;
  if (!args.output.empty()) {
    out_file.open(args.output, std::ios::binary | std::ios::trunc);
    if (!out_file) return fail(ember::invalid_argument("cannot write '" + args.output + "'"));
  }
  std::ostream& out = args.output.empty() ? std::cout : out_file;

  std::size_t line_no = 0, answered = 0, invalid = 0, failed = 0, flagged = 0, review = 0;
  std::map<std::string, std::size_t, std::less<>> served;
  std::vector<double> latencies;
  ember::Prediction p;
  for (std::string line; std::getline(**in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const Status status = (*model)->predict(line, p);
    latencies.push_back(std::chrono::duration<double, std::micro>(p.latency).count());
    nlohmann::ordered_json rec{{"line", line_no}};
    if (status.code() == ember::StatusCode::kInvalidArgument && !p.validation.ok()) {
      ++invalid;
      rec["valid"] = false;
      rec["errors"] = nlohmann::ordered_json::array();
      for (const auto& e : p.validation.errors()) rec["errors"].push_back(error_json(e));
      out << rec.dump() << "\n";
      continue;
    }
    std::string outputs;
    if (status.ok()) {
      ++answered;
      ++served[std::string(p.served_by)];
      for (const auto& e : p.outputs) {
        outputs += (outputs.empty() ? "{" : ",") + nlohmann::json(e.name).dump() + ":" + row_json(e.tensor);
      }
      outputs += "}";
      rec["served_by"] = p.served_by;
    } else {
      ++failed;
      rec["error"] = status.to_string();
    }
    rec["skipped"] = nlohmann::ordered_json::array();
    for (const auto& s : p.skipped) {
      rec["skipped"].push_back({{"stage", s.stage}, {"code", ember::status_code_name(s.status.code())},
                                {"message", s.status.message()}});
    }
    rec["flagged"] = nlohmann::ordered_json::array();
    for (auto f : p.flagged_features) rec["flagged"].push_back(f);
    flagged += p.flagged_features.empty() ? 0 : 1;
    rec["needs_review"] = p.needs_review_flag();
    review += p.needs_review_flag() ? 1 : 0;
    rec["latency_us"] = std::round(latencies.back() * 10) / 10;
    // "outputs" goes first, written as text so floats keep their shortest exact form.
    std::string text = rec.dump();
    if (!outputs.empty()) text = "{\"line\":" + std::to_string(line_no) + ",\"outputs\":" + outputs + text.substr(text.find(','));
    out << text << "\n";
  }
  out.flush();
  if (!out) return fail(ember::internal_error("cannot write the predictions"));
  if (file.is_open() && file.bad()) return fail(ember::data_loss("error reading '" + args.input + "'"));
  nlohmann::ordered_json summary{{"records", answered + invalid + failed}, {"answered", answered},
                                 {"invalid", invalid},  {"failed", failed},
                                 {"flagged", flagged},  {"needs_review", review}};
  summary["served_by"] = nlohmann::ordered_json::object();
  for (const auto& name : (*model)->chain().stage_names()) summary["served_by"][name] = served[name];
  summary["latency_us"] = {{"p50", std::round(percentile(latencies, 0.5) * 10) / 10},
                           {"p99", std::round(percentile(latencies, 0.99) * 10) / 10}};
  out << nlohmann::ordered_json{{"summary", summary}}.dump() << "\n";
  out.flush();
  std::string per_stage;
  for (const auto& [name, n] : summary["served_by"].items()) {
    per_stage += (per_stage.empty() ? "" : ", ") + name + " " + std::to_string(n.get<std::size_t>());
  }
  std::fprintf(stderr, "ember predict: %zu records: %zu answered (%s), %zu invalid, %zu failed, %zu flagged, "
               "%zu need review\n", answered + invalid + failed, answered, per_stage.c_str(), invalid, failed,
               flagged, review);
  if (metrics) {
    std::ofstream m(args.metrics_out, std::ios::binary | std::ios::trunc);
    const auto format = args.metrics_format == "openmetrics" ? ember::MetricsFormat::kOpenMetrics
                                                             : ember::MetricsFormat::kPrometheus;
    if (!(m << metrics->text(format))) {
      return fail(ember::invalid_argument("cannot write the metrics to '" + args.metrics_out + "'"));
    }
  }
  return invalid == 0 && failed == 0 ? 0 : 1;
}

}  // namespace

void add_predict_command(CLI::App& app, std::function<int()>& run) {
  auto a = std::make_shared<PredictArgs>();
  CLI::App* predict = app.add_subcommand(
      "predict", "Predict for JSON lines with a model directory: schema -> pipeline -> fallback chain.");
  predict->footer(
      "With --registry DIR (or EMBER_REGISTRY), --model may be a reference (churn@production,\n"
      "churn/3): the version is resolved, verified and loaded from the registry.\n"
      "The model directory holds schema.json, pipeline.json (optional), model.pt and\n"
      "chain.json (optional). Each non-blank input line is one record. Each output line is\n"
      "JSON: {line, outputs, served_by, skipped (stage, code, message), flagged, needs_review,\n"
      "latency_us}, or {line, valid: false, errors} for an invalid record, which does not stop\n"
      "the run. The last line is {\"summary\": ...}; a one-line summary also goes to stderr.\n"
      "--inject STAGE=FAULT wraps a stage in the fault injector, FAULT being\n"
      "KIND[:DURATION][,p=P][,first=N][,every=N][,count=N][,min_rows=N] with KIND one of\n"
      "throw, error, hang, slow, nan, oom (e.g. primary=throw,p=0.3 or primary=hang:1s).\n"
      "Exit status: 0 when every record was answered, 1 when any was invalid or unanswered\n"
      "or the command failed, 2 for bad usage.");
  predict->add_option("-m,--model", a->model,
                      "Model or bundle directory; with a registry, a reference such as churn@production")
      ->required();
  predict->add_option("--registry", a->registry, "Registry directory: --model is then NAME/VERSION or NAME@ALIAS")
      ->envname("EMBER_REGISTRY");
  predict->add_option("--metrics-out", a->metrics_out,
                      "Write the run's metrics here when it ends (Prometheus text format 0.0.4)");
  predict->add_option("--metrics-format", a->metrics_format, "Format of --metrics-out")
      ->check(CLI::IsMember({"prometheus", "openmetrics"}))
      ->capture_default_str();
  predict->add_option("--registry-key-file", a->registry_key_file, "Key of an encrypted registry")
      ->envname("EMBER_REGISTRY_KEY_FILE");
  predict->add_option("-i,--input", a->input, "JSON lines file ('-' for standard input)")->required();
  predict->add_option("-o,--output", a->output, "Write the predictions here instead of standard output");
  predict->add_option("--device", a->device, "Device for TorchScript stages that name none")
      ->capture_default_str();
  predict->add_option("--budget-ms", a->budget_ms, "Latency budget per record (overrides chain.json; 0: none)")
      ->check(CLI::Range(0.0, 86400000.0));
  predict->add_option("--inject", a->inject, "Inject faults: STAGE=FAULT (repeatable)");
  predict->add_option("--seed", a->seed, "Seed of the fault injector's draws")->capture_default_str();
  predict->add_option("--threads", a->threads, "LibTorch intra-op threads (0: LibTorch's default)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  predict->add_option("--max-record-bytes", a->max_record_bytes, "Longer records are invalid")
      ->capture_default_str();
  predict->add_flag("-v,--verbose", a->verbose, "Log what ember does to standard error");
  predict->callback([&run, a] { run = [a] { return cmd_predict(*a); }; });
}

}  // namespace ember_cli
