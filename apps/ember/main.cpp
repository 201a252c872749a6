// ember: the command-line tool. Exit status: 0 success, 1 the command failed (a
// one-line error on stderr), 2 bad usage.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"
#include "json_tensors.hpp"

namespace {

using ember::Result;
using ember::Status;
using ember_cli::fail;
using ember_cli::open_input;
using ember_cli::stderr_sink;
using ember::cli::error_json;

struct RunArgs {
  std::string model;
  std::string input;
  std::string output;
  std::string device = "auto";
  int warmup = 0;
  int threads = 0;
  bool no_optimize = false;
  std::string native = "auto";
  bool reject_non_finite = false;
  std::uint64_t max_input_bytes = 256ull << 20;
  bool verbose = false;
};

struct ValidateArgs {
  std::string schema;
  std::string input;
  std::string format = "text";
  std::string policy = "reject";
  std::size_t max_errors = 16;
  std::size_t max_record_bytes = std::size_t{1} << 20;
};

struct TransformArgs {
  std::string pipeline;
  std::string input;
  std::string output;
  std::string format = "auto";
};

struct InfoArgs {
  std::string model;
  std::string format = "text";
  std::string native_out;
};


Result<std::string> read_text(const std::string& path, std::uint64_t max_bytes) {
  std::string text;
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  } else {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return ember::not_found("input file '" + path + "' does not exist");
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return ember::not_found("cannot read '" + path + "': " + ec.message());
    if (size > max_bytes) {
      return ember::invalid_argument("input file '" + path + "' is " + std::to_string(size) +
                                     " bytes, over the limit of " + std::to_string(max_bytes) +
                                     " (--max-input-bytes)");
    }
    std::ifstream f(path, std::ios::binary);
    if (!f) return ember::not_found("cannot open '" + path + "'");
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  if (text.size() > max_bytes) {
    return ember::invalid_argument("input is over the limit of " + std::to_string(max_bytes) + " bytes");
  }
  return text;
}

Result<nlohmann::json> parse_json(const std::string& text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return ember::invalid_argument(source + " is not valid JSON (byte " + std::to_string(e.byte) + "): " +
                                   std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  }
}

std::string human_bytes(std::uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) return std::to_string(bytes) + " B";
  if (bytes < (1u << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// The outputs as one JSON object, to standard output or --output.
int write_outputs(const RunArgs& args, const ember::Result<ember::NamedTensors>& outputs) {
  if (!outputs.ok()) return fail(outputs.status());
  std::string out = "{";
  for (std::size_t i = 0; i < outputs->size(); ++i) {
    out += i ? ",\n " : "";
    out += nlohmann::json((*outputs)[i].name).dump() + ": " + ember::cli::tensor_to_json_text((*outputs)[i].tensor);
  }
  out += "}\n";
  if (args.output.empty()) {
    std::cout << out;
    std::cout.flush();
    if (!std::cout) return fail(ember::internal_error("cannot write to standard output"));
  } else {
    std::ofstream f(args.output, std::ios::binary);
    f << out;
    f.close();
    if (!f) return fail(ember::invalid_argument("cannot write '" + args.output + "'"));
  }
  return 0;
}

// An AOTInductor package (.pt2): what it was compiled for, and its inputs.
int info_aoti(const InfoArgs& args) {
  if (!args.native_out.empty()) return fail(ember::invalid_argument("--native-out takes a TorchScript file"));
  auto loaded = ember::AotiExecutor::load(args.model);
  if (!loaded.ok()) return fail(loaded.status());
  const ember::ModelInfo& info = (*loaded)->info();
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& spec : (*loaded)->input_specs()) {
    inputs.push_back({{"dtype", ember::dtype_name(spec.dtype)}, {"shape", spec.shape}});
  }
  if (args.format == "json") {
    nlohmann::json doc = {{"model", args.model}, {"size_bytes", info.size_bytes}, {"engine", info.engine},
                          {"engine_reason", info.engine_reason}, {"inputs", inputs},
                          {"metadata", (*loaded)->metadata()}};
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  std::cout << "model:       " << args.model << " (AOTInductor package)\n"
            << "size:        " << human_bytes(info.size_bytes) << " (" << info.size_bytes << " bytes)\n"
            << "runs on:     " << info.engine_reason << "\n"
            << "inputs:\n";
  for (const auto& spec : (*loaded)->input_specs()) {
    std::cout << "  " << ember::dtype_name(spec.dtype) << " " << ember::shape_to_string(spec.shape) << "\n";
  }
  std::cout << "metadata:\n";
  for (const auto& [k, v] : (*loaded)->metadata()) std::cout << "  " << k << ": " << v << "\n";
  return 0;
}

bool is_package(const std::string& path) { return std::filesystem::path(path).extension() == ".pt2"; }

int cmd_info(const InfoArgs& args) {
  if (is_package(args.model)) return info_aoti(args);
  ember::ExecutorOptions options;
  options.device = "cpu";
  options.optimize = false;  // describe the module as saved
  auto loaded = ember::TorchExecutor::load(args.model, options);
  if (!loaded.ok()) return fail(loaded.status());
  const ember::ModelInfo& info = (*loaded)->info();
  if (!args.native_out.empty()) {
    auto net = (*loaded)->native_json();
    if (!net.ok()) return fail(net.status());
    std::ofstream f(args.native_out, std::ios::binary);
    f << *net << "\n";
    f.close();
    if (!f) return fail(ember::internal_error("cannot write '" + args.native_out + "'"));
  }
  if (args.format == "json") {
    nlohmann::json doc;
    doc["model"] = args.model;
    doc["size_bytes"] = info.size_bytes;
    doc["parameter_count"] = info.parameter_count;
    doc["parameter_bytes"] = info.parameter_bytes;
    doc["engine"] = info.engine;
    doc["engine_reason"] = info.engine_reason;
    doc["methods"] = nlohmann::json::array();
    for (const auto& m : info.methods) {
      nlohmann::json args_json = nlohmann::json::array();
      for (const auto& a : m.arguments) args_json.push_back({{"name", a.name}, {"type", a.type}});
      doc["methods"].push_back({{"name", m.name}, {"arguments", args_json}, {"returns", m.return_type},
                                {"schema", m.schema}});
    }
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  std::cout << "model:       " << args.model << "\n"
            << "size:        " << human_bytes(info.size_bytes) << " (" << info.size_bytes << " bytes)\n"
            << "parameters:  " << info.parameter_count << " (" << human_bytes(static_cast<std::uint64_t>(info.parameter_bytes))
            << ")\n"
            << "inputs:\n";
  for (const auto& a : info.methods.front().arguments) std::cout << "  " << a.name << ": " << a.type << "\n";
  std::cout << "returns:     " << info.methods.front().return_type << "\n"
            << "runs on:     " << (info.engine == "native" ? "ember's native kernels: " : "LibTorch: ")
            << info.engine_reason << "\n"
            << "methods:\n";
  for (const auto& m : info.methods) std::cout << "  " << m.schema << "\n";
  return 0;
}

int cmd_run(const RunArgs& args) {
  auto text = read_text(args.input, args.max_input_bytes);
  if (!text.ok()) return fail(text.status());
  auto doc = parse_json(*text, args.input == "-" ? "standard input" : "'" + args.input + "'");
  if (!doc.ok()) return fail(doc.status());
  bool positional = false;
  auto inputs = ember::cli::inputs_from_json(*doc, positional);
  if (!inputs.ok()) return fail(inputs.status().with_context("input"));

  ember::ExecutorOptions options;
  options.device = args.device;
  options.optimize = !args.no_optimize;
  if (auto native = ember::parse_native_path(args.native); native.ok()) options.native = *native;
  if (args.threads > 0) {
    if (auto st = ember::set_torch_threads(args.threads); !st.ok()) return fail(st);
  }
  options.non_finite_inputs = args.reject_non_finite ? ember::NonFinitePolicy::kReject
                                                     : ember::NonFinitePolicy::kPassThrough;
  options.log = stderr_sink(args.verbose);
  if (is_package(args.model)) {
    if (!positional) return fail(ember::invalid_argument("an AOTInductor package takes positional inputs (a JSON array)"));
    auto package = ember::AotiExecutor::load(args.model, options);
    if (!package.ok()) return fail(package.status());
    std::vector<ember::Tensor> ordered;
    for (const auto& entry : *inputs) ordered.push_back(entry.tensor);
    return write_outputs(args, (*package)->run(ordered));
  }
  auto loaded = ember::TorchExecutor::load(args.model, options);
  if (!loaded.ok()) return fail(loaded.status());
  const ember::TorchExecutor& exec = **loaded;

  std::vector<ember::Tensor> ordered;
  if (positional) {
    ordered.push_back((*inputs)[0].tensor);
  } else {
    for (const auto& name : exec.input_names()) {
      if (const ember::Tensor* t = inputs->find(name)) ordered.push_back(*t);
    }
  }
  // Warm-up with the request itself, then the measured call.
  for (int i = 0; i < args.warmup; ++i) {
    auto warm = positional ? exec.run(ordered) : exec.run_named(*inputs);
    if (!warm.ok()) return fail(warm.status());
  }
  return write_outputs(args, positional ? exec.run(ordered) : exec.run_named(*inputs));
}

// Standard input for "-", else the file (opened into `file`).

int cmd_validate(const ValidateArgs& args) {
  ember::SchemaOptions options;
  options.max_errors = args.max_errors;
  options.limits.max_document_bytes = args.max_record_bytes;
  options.default_policy = args.policy == "coerce" ? ember::FieldPolicy::kCoerce
                           : args.policy == "flag" ? ember::FieldPolicy::kFlag
                                                   : ember::FieldPolicy::kReject;
  auto schema = ember::Schema::load(args.schema, options);
  if (!schema.ok()) return fail(schema.status());
  std::ifstream file;
  auto in = open_input(args.input, file);
  if (!in.ok()) return fail(in.status());
  const bool json = args.format == "json";
  ember::JsonParser parser(options.limits);
  ember::FeatureRow row;
  ember::ValidationReport report;
  std::size_t line_no = 0, valid = 0, invalid = 0, flagged = 0;
  const auto& features = schema->features();
  for (std::string line; std::getline(**in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are not records
    auto value = parser.parse(line);
    if (!value.ok()) {
      report.clear();
      report.add_error({"", "", "json", value.status().message()}, options.max_errors);
    } else if (value->type() == ember::JsonType::kObject) {
      (void)schema->validate_into(*value, row, report);
    } else {
      (void)schema->validate(*value, report);
    }
    if (report.ok()) {
      ++valid;
      if (!report.flagged().empty()) ++flagged;
    } else {
      ++invalid;
    }
    if (json) {
      if (report.ok() && report.flagged().empty()) continue;
      nlohmann::ordered_json out{{"line", line_no}, {"valid", report.ok()}};
      out["errors"] = nlohmann::ordered_json::array();
      for (const auto& e : report.errors()) out["errors"].push_back(error_json(e));
      if (report.truncated()) out["truncated"] = true;
      out["flagged"] = nlohmann::ordered_json::array();
      for (auto f : report.flagged()) out["flagged"].push_back(features[f].name);
      std::cout << out.dump() << "\n";
      continue;
    }
    for (const auto& e : report.errors()) std::cout << "line " << line_no << ": " << e.to_string() << "\n";
    if (report.truncated()) std::cout << "line " << line_no << ": (more errors not shown)\n";
    if (report.ok() && !report.flagged().empty()) {
      std::cout << "line " << line_no << ": flagged:";
      for (auto f : report.flagged()) std::cout << " " << features[f].name;
      std::cout << "\n";
    }
  }
  if (file.is_open() && file.bad()) return fail(ember::data_loss("error reading '" + args.input + "'"));
  const std::size_t total = valid + invalid;
  if (json) {
    std::cout << nlohmann::ordered_json{{"summary", {{"records", total}, {"valid", valid}, {"invalid", invalid},
                                             {"flagged", flagged}}}}.dump()
              << "\n";
  } else {
    std::cout << total << " records: " << valid << " valid, " << invalid << " invalid, " << flagged << " flagged\n";
  }
  std::cout.flush();
  return invalid == 0 ? 0 : 1;
}

// One row of a tensor whose first dimension is 1, as JSON text.
// One CSV record (RFC 4180: quoted fields, "" inside quotes). False when a quote is
// left open at the end of the line.
bool split_csv(const std::string& line, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return !quoted;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

int cmd_transform(const TransformArgs& args) {
  auto pipeline = ember::Pipeline::load(args.pipeline);
  if (!pipeline.ok()) return fail(pipeline.status());
  std::string format = args.format;
  if (format == "auto") {
    const auto ext = std::filesystem::path(args.input).extension().string();
    if (ext == ".csv") format = "csv";
    else if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") format = "jsonl";
    else return fail(ember::invalid_argument("cannot tell the input format of '" + args.input + "'; use --format"));
  }
  std::ifstream file;
  auto in = open_input(args.input, file);
  if (!in.ok()) return fail(in.status());
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  if (!args.output.empty()) {
    out_file.open(args.output, std::ios::binary);
    if (!out_file) return fail(ember::invalid_argument("cannot write '" + args.output + "'"));
    out = &out_file;
  }
  const auto& inputs = pipeline->input_names();
  // Written once the input is known to be readable, so a failed command prints nothing.
  bool header_written = false;
  const auto write_header = [&] {
    if (header_written) return;
    header_written = true;
    for (std::size_t i = 0; i < pipeline->output_names().size(); ++i) {
      *out << (i ? "," : "") << csv_field(pipeline->output_names()[i]);
    }
    *out << "\n";
  };

  ember::FeatureRow row;
  row.values.resize(inputs.size());
  row.text.resize(inputs.size());
  row.integers.resize(inputs.size());
  std::vector<double> result(pipeline->output_width());
  std::vector<std::string> fields;
  std::vector<std::size_t> csv_column;  // input index -> CSV field index
  std::size_t line_no = 0, written = 0, failed = 0;
  const auto set_cell = [&](std::size_t i, std::string_view text, bool is_null) -> ember::Status {
    row.text[i].clear();
    if (is_null) {
      row.values[i] = std::numeric_limits<double>::quiet_NaN();
      return {};
    }
    if (pipeline->input_is_string(i)) {
      row.text[i].assign(text);
      row.values[i] = 0.0;
      return {};
    }
    // An integer keeps its exact value (IDs past 2^53), as validation keeps it.
    std::int64_t n = 0;
    const auto as_int = std::from_chars(text.data(), text.data() + text.size(), n);
    const bool integer = as_int.ec == std::errc() && as_int.ptr == text.data() + text.size();
    double v = 0;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size()) {
      return ember::invalid_argument("column '" + inputs[i] + "': expected a number, got \"" + std::string(text) + "\"");
    }
    row.values[i] = v;
    row.integers[i] = integer ? n : ember::exact_integer(v);
    return {};
  };
  for (std::string line; std::getline(**in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ember::Status status;
    if (format == "csv") {
      if (!split_csv(line, fields)) {
        status = ember::invalid_argument("unterminated quote");
      } else if (csv_column.empty()) {  // the header
        for (const auto& name : inputs) {
          auto it = std::find(fields.begin(), fields.end(), name);
          if (it == fields.end()) return fail(ember::invalid_argument("the CSV header has no column '" + name + "'"));
          csv_column.push_back(static_cast<std::size_t>(it - fields.begin()));
        }
        continue;
      } else {
        for (std::size_t i = 0; i < inputs.size() && status.ok(); ++i) {
          const std::size_t f = csv_column[i];
          if (f >= fields.size()) status = ember::invalid_argument("column '" + inputs[i] + "' is missing from the line");
          else status = set_cell(i, fields[f], fields[f].empty());
        }
      }
    } else {
      const auto doc = nlohmann::json::parse(line, nullptr, false);
      if (doc.is_discarded() || !doc.is_object()) {
        status = ember::invalid_argument("not a JSON object");
      } else {
        for (std::size_t i = 0; i < inputs.size() && status.ok(); ++i) {
          const auto it = doc.find(inputs[i]);
          if (it == doc.end() || it->is_null()) status = set_cell(i, "", true);
          else if (it->is_string()) status = set_cell(i, it->get_ref<const std::string&>(), false);
          else if (it->is_number()) status = set_cell(i, it->dump(), false);
          else status = ember::invalid_argument("column '" + inputs[i] + "': expected a number or a string, got " + it->dump());
        }
      }
    }
    if (status.ok()) status = pipeline->transform(row, result);
    if (!status.ok()) {
      ++failed;
      std::fprintf(stderr, "ember: line %zu: %s\n", line_no, status.message().c_str());
      continue;
    }
    write_header();
    for (std::size_t j = 0; j < result.size(); ++j) {
      char buf[32];
      const auto res = std::to_chars(buf, buf + sizeof buf, result[j]);
      if (j) *out << ',';
      out->write(buf, res.ptr - buf);
    }
    *out << "\n";
    ++written;
  }
  write_header();
  out->flush();
  if (!*out) return fail(ember::internal_error("cannot write the output"));
  std::fprintf(stderr, "ember: %zu rows transformed, %zu failed\n", written, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ember: run TorchScript models in-process, with validation, preprocessing and fallbacks."};
  app.set_version_flag("--version", std::string("ember ") + std::string(ember::version()));
  app.require_subcommand(1);

  InfoArgs info_args;
  CLI::App* info = app.add_subcommand("info", "Describe a TorchScript model: methods, inputs, parameters, size.");
  info->add_option("model", info_args.model, "Path to the TorchScript file (.pt)")->required();
  info->add_option("--format", info_args.format, "Output format")->check(CLI::IsMember({"text", "json"}));
  info->add_option("--native-out", info_args.native_out,
                   "Write the native network (net.json) the model lowers to; fails, saying why, when it does not");

  RunArgs run_args;
  CLI::App* run = app.add_subcommand("run", "Run a TorchScript model on inputs from a JSON file; print outputs as JSON.");
  run->footer(
      "Input JSON: nested arrays (one input, float32; booleans give bool), an object of\n"
      "named inputs {\"x\": [[...]], \"y\": [...]}, and for other dtypes\n"
      "{\"dtype\": \"int64\", \"data\": [...]}. Output: {\"name\": nested arrays, ...}; NaN and\n"
      "infinities are written as the strings \"NaN\", \"Infinity\", \"-Infinity\".");
  run->add_option("model", run_args.model, "Path to the TorchScript file (.pt)")->required();
  run->add_option("-i,--input", run_args.input, "JSON file with the inputs ('-' for standard input)")->required();
  run->add_option("-o,--output", run_args.output, "Write the outputs here instead of standard output");
  run->add_option("--device", run_args.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  run->add_option("--warmup", run_args.warmup, "Warm-up runs before the measured one")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  run->add_option("--threads", run_args.threads, "LibTorch intra-op threads (0: LibTorch's default)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  run->add_flag("--no-optimize", run_args.no_optimize, "Do not freeze and optimize the module");
  run->add_option("--native", run_args.native,
                  "Run small feed-forward networks on ember's kernels: auto, off (always LibTorch), require")
      ->check(CLI::IsMember({"auto", "off", "require"}))
      ->capture_default_str();
  run->add_flag("--reject-non-finite", run_args.reject_non_finite, "Fail on NaN or Inf in the inputs");
  run->add_option("--max-input-bytes", run_args.max_input_bytes, "Refuse larger input files")->capture_default_str();
  run->add_flag("-v,--verbose", run_args.verbose, "Log what ember does to standard error");

  ValidateArgs validate_args;
  CLI::App* validate = app.add_subcommand(
      "validate", "Validate JSON lines against a JSON Schema; print each error with its path and a summary.");
  validate->footer(
      "Each non-blank line of the input is one JSON document of any type; the schema decides\n"
      "what is valid. Objects are also checked against the training ranges the schema carries\n"
      "(x-ember-training-range) and flagged when outside them. Exit status: 0 when every\n"
      "record is valid, 1 when any is invalid or the command fails, 2 for bad usage.");
  validate->add_option("-s,--schema", validate_args.schema, "JSON Schema file")->required();
  validate->add_option("-i,--input", validate_args.input, "JSON lines file ('-' for standard input)")->required();
  validate->add_option("--format", validate_args.format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  validate->add_option("--policy", validate_args.policy, "Wrong-typed feature values: reject, coerce or flag")
      ->check(CLI::IsMember({"reject", "coerce", "flag"}))
      ->capture_default_str();
  validate->add_option("--max-errors", validate_args.max_errors, "Errors reported per record")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  validate->add_option("--max-record-bytes", validate_args.max_record_bytes, "Longer records are invalid")
      ->capture_default_str();


  TransformArgs transform_args;
  CLI::App* transform = app.add_subcommand(
      "transform", "Apply a pipeline.json to rows (JSON lines or CSV) and write the output matrix as CSV.");
  transform->footer(
      "Rows: JSON lines of {\"feature\": value} objects, or CSV with a header naming the\n"
      "pipeline's inputs; an absent, null or empty value is missing. The output is CSV with\n"
      "the output feature names as header. A bad row is reported on standard error with its\n"
      "line and column, and skipped. Exit status: 0 when every row was transformed, 1 when\n"
      "any failed or the command failed, 2 for bad usage.");
  transform->add_option("-p,--pipeline", transform_args.pipeline, "pipeline.json")->required();
  transform->add_option("-i,--input", transform_args.input, "rows: .jsonl or .csv ('-' for standard input)")
      ->required();
  transform->add_option("-o,--output", transform_args.output, "Write the CSV here instead of standard output");
  transform->add_option("--format", transform_args.format, "Input format")
      ->check(CLI::IsMember({"auto", "jsonl", "csv"}))
      ->capture_default_str();

  std::function<int()> command;
  ember_cli::add_bundle_commands(app, command);
  ember_cli::add_registry_commands(app, command);
  ember_cli::add_serve_commands(app, command);
  ember_cli::add_predict_command(app, command);
  ember_cli::add_score_command(app, command);
  ember_cli::add_drift_commands(app, command);
  ember_cli::add_report_command(app, command);
  ember_cli::add_rollout_commands(app, command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ember: usage error: %s\nRun 'ember --help' for usage.\n", e.what());
    return 2;
  }
  if (command) return command();
  if (info->parsed()) return cmd_info(info_args);
  if (run->parsed()) return cmd_run(run_args);
  if (validate->parsed()) return cmd_validate(validate_args);
  if (transform->parsed()) return cmd_transform(transform_args);
  return 2;
}
