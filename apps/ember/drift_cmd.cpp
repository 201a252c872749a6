// ember reference / ember drift: reference statistics from training data, and the drift
// of current data against them (Evidently's default tests).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "cli_common.hpp"
#include "ember/ember.hpp"

namespace ember_cli {

namespace {

using ember::Result;
using ember::Status;

struct ReferenceArgs {
  std::string schema;
  std::string model;
  std::string data;
  std::string out;
};

struct DriftArgs {
  std::string schema;
  std::string bundle;
  std::string reference;
  std::string current;
  bool json = false;
  bool histograms = false;
  bool bonferroni = false;
  double drift_share = 0.5;
};

// The record of row `r` of `table` for Model::predict: missing values are left out.
ember::Record record_of_row(const ember::Table& table, const ember::Schema& schema, std::size_t r) {
  ember::Record record;
  for (const auto& c : table.columns) {
    const auto idx = schema.feature_index(c.name);
    const auto kind = schema.features()[static_cast<std::size_t>(idx)].kind;
    if (c.kind == ember::ColumnKind::kNumerical) {
      const double v = c.numbers[r];
      if (std::isnan(v)) continue;
      const std::int64_t i = ember::exact_integer(v);
      if (kind == ember::FeatureKind::kInteger && i != ember::kNotInteger) record.set(c.name, i);
      else record.set(c.name, v);
    } else if (c.labels[r]) {
      if (kind == ember::FeatureKind::kBoolean) record.set(c.name, *c.labels[r] == "true");
      else record.set(c.name, std::string_view(*c.labels[r]));
    }
  }
  return record;
}

// The model's outputs on every row, one column per output element ("output" or
// "output[1]"); rows the model refuses are missing.
Result<ember::Table> predict_outputs(const ember::Model& model, const ember::Table& features) {
  ember::Table outputs;
  outputs.rows = features.rows;
  ember::Prediction p;
  const ember::Progress bar = progress_bar("predicting", false);
  for (std::size_t r = 0; r < features.rows; ++r) {
    const Status st = model.predict(record_of_row(features, model.schema(), r), p);
    if (outputs.columns.empty() && st.ok()) {
      for (const auto& e : p.outputs) {
        const auto n = e.tensor.numel();
        for (std::int64_t k = 0; k < n; ++k) {
          outputs.columns.push_back({n == 1 ? e.name : e.name + "[" + std::to_string(k) + "]", ember::ColumnKind::kNumerical,
                                     std::vector<double>(r, std::nan("")), {}});
        }
      }
    }
    std::size_t col = 0;
    for (const auto& e : p.outputs) {
      for (std::int64_t k = 0; k < e.tensor.numel() && col < outputs.columns.size(); ++k, ++col) {
        auto v = p.value(e.name, static_cast<std::size_t>(k));
        outputs.columns[col].numbers.push_back(st.ok() && v.ok() ? *v : std::nan(""));
      }
    }
    for (; col < outputs.columns.size(); ++col) outputs.columns[col].numbers.push_back(std::nan(""));
    if (bar && r % 4096 == 0) bar(r, features.rows);
  }
  return outputs;
}

int cmd_reference(const ReferenceArgs& args) {
  if (args.schema.empty() == args.model.empty()) {
    std::fprintf(stderr, "ember: usage error: give --schema or --model (not both)\n");
    return 2;
  }
  std::unique_ptr<ember::Model> model;
  Result<ember::Schema> schema = ember::internal_error("not loaded");
  if (!args.model.empty()) {
    auto m = ember::Model::load(args.model);
    if (!m.ok()) return fail(m.status());
    model = std::move(*m);
    schema = model->schema();
  } else {
    schema = ember::Schema::load(args.schema);
    if (!schema.ok()) return fail(schema.status());
  }
  auto table = ember::read_table(args.data, *schema);
  if (!table.ok()) return fail(table.status());
  ember::Table outputs;
  if (model) {
    auto o = predict_outputs(*model, *table);
    if (!o.ok()) return fail(o.status());
    outputs = std::move(*o);
  }
  const auto stats = ember::describe_table(*table, outputs);
  const std::string text = ember::reference_to_json(stats);
  if (args.out.empty() || args.out == "-") {
    std::cout << text;
    return std::cout ? 0 : 1;
  }
  if (auto st = write_file_atomically(args.out, text); !st.ok()) return fail(st);
  std::fprintf(stderr, "ember reference: %zu rows, %zu features, %zu outputs -> %s\n", table->rows,
               stats.features.size(), stats.outputs.size(), args.out.c_str());
  return 0;
}

}  // namespace

std::shared_ptr<ember::ThreadPool> drift_pool() {
  // Columns are compared on every core: the caller's thread and one pool thread per other core.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (cores < 2) return nullptr;
  ember::ThreadPoolOptions po;
  po.threads = cores - 1;
  po.max_threads = cores - 1;
  auto pool = ember::ThreadPool::create(po);
  return pool.ok() ? *pool : nullptr;
}

Result<DriftInputs> load_drift_inputs(const std::string& schema_path, const std::string& bundle,
                                      const std::string& reference, const std::string& current) {
  DriftInputs in;
  std::string schema_file = schema_path;
  if (schema_file.empty() && !bundle.empty()) schema_file = (std::filesystem::path(bundle) / "schema.json").string();
  Result<ember::Schema> schema = ember::internal_error("no schema");
  if (!schema_file.empty()) {
    schema = ember::Schema::load(schema_file);
  } else {
    // No schema: the columns and their kinds come from the data itself.
    if (reference.empty()) return ember::invalid_argument("give --reference (or --bundle)");
    const std::filesystem::path files[] = {reference, current};
    schema = ember::infer_schema(files);
  }
  if (!schema.ok()) return schema.status();
  if (!bundle.empty()) {
    if (!reference.empty()) return ember::invalid_argument("give --reference or --bundle, not both");
    auto manifest = ember::verify_bundle(bundle);
    if (!manifest.ok()) return manifest.status();
    const auto* file = manifest->find_role("reference");
    if (file == nullptr) return ember::not_found("bundle '" + bundle + "' carries no reference statistics");
    auto stats = ember::load_reference(std::filesystem::path(bundle) / file->path);
    if (!stats.ok()) return stats.status();
    in.reference = std::move(*stats);
  } else {
    if (reference.empty()) return ember::invalid_argument("give --reference (or --bundle)");
    auto table = ember::read_table(reference, *schema);
    if (!table.ok()) return table.status().with_context("--reference");
    // The rows are at hand: keep every value, so that every test is exact.
    ember::ReferenceOptions exact;
    exact.exact_rows = table->rows;
    auto pool = drift_pool();
    exact.executor = pool.get();
    in.reference = ember::describe_table(*table, ember::Table{}, exact);
    // A reference.json given as data reads as one row of nothing: say so, not "no drift".
    if (std::none_of(in.reference.features.begin(), in.reference.features.end(),
                     [](const ember::ColumnReference& c) { return c.count > 0; })) {
      return ember::invalid_argument("--reference " + reference + ": no value of any feature in " +
                                     std::to_string(table->rows) +
                                     " rows (reference statistics, reference.json, come with --bundle)");
    }
  }
  auto cur = ember::read_table(current, *schema);
  if (!cur.ok()) return cur.status().with_context("--current");
  in.current = std::move(*cur);
  return in;
}

namespace {

int cmd_drift(const DriftArgs& args) {
  auto in = load_drift_inputs(args.schema, args.bundle, args.reference, args.current);
  if (!in.ok()) return fail(in.status());
  ember::DriftOptions options;
  options.drift_share = args.drift_share;
  options.bonferroni = args.bonferroni;
  auto pool = drift_pool();
  options.executor = pool.get();
  auto result = ember::compare(in->reference, in->current, options);
  if (!result.ok()) return fail(result.status());
  if (args.json) {
    std::cout << ember::drift_to_json(*result, args.histograms);
    return std::cout ? 0 : 1;
  }
  std::printf("%-24s %-15s %12s %12s %10s  %s\n", "feature", "test", "statistic", "p-value", "threshold", "drift");
  for (const auto* list : {&result->features, &result->outputs}) {
    for (const auto& c : *list) {
      char p[32] = "-";
      if (c.p_value) std::snprintf(p, sizeof p, "%.4g", *c.p_value);
      std::printf("%-24s %-15s %12.4g %12s %10.4g  %s\n", c.name.c_str(), c.test.c_str(), c.statistic, p, c.threshold,
                  c.drift ? "DRIFT" : "-");
    }
  }
  std::printf("dataset drift: %s (%zu of %zu features drifted, share %.3f, threshold %.3f)\n",
              result->dataset_drift ? "yes" : "no", result->drifted, result->compared, result->drifted_share,
              result->drift_share);
  return 0;
}

}  // namespace

void add_drift_commands(CLI::App& app, std::function<int()>& run) {
  auto ref_args = std::make_shared<ReferenceArgs>();
  CLI::App* ref = app.add_subcommand("reference", "Compute reference statistics of training data (reference.json).");
  ref->footer(
      "Per feature of the schema: count, missing, mean, std, min, max and the values (up to\n"
      "1000) or 1001 quantiles; category frequencies. With --model, the model answers every\n"
      "row and its outputs' distribution is recorded too (prediction drift).\n"
      "  ember reference --model models/churn --data train.csv --out models/churn/reference.json");
  ref->add_option("--schema", ref_args->schema, "The request schema (schema.json)");
  ref->add_option("--model", ref_args->model, "A model directory or bundle: its schema, and its outputs on the data");
  ref->add_option("--data", ref_args->data, "Training data: .csv (header row) or .jsonl")->required();
  ref->add_option("-o,--out", ref_args->out, "Write reference.json here (default: standard output)");
  ref->callback([&run, ref_args] { run = [ref_args] { return cmd_reference(*ref_args); }; });

  auto drift_args = std::make_shared<DriftArgs>();
  CLI::App* drift = app.add_subcommand("drift", "Compare current data with reference data (Evidently's default tests).");
  drift->footer(
      "Per feature: Kolmogorov-Smirnov, chi-square or z-test (reference of 1000 rows or fewer),\n"
      "Wasserstein (normed) or Jensen-Shannon (more), chosen as Evidently chooses, plus PSI.\n"
      "Exit status 0 whether or not the data drifted; 1 for unreadable input; 2 for bad usage.\n"
      "  ember drift --schema schema.json --reference train.csv --current today.jsonl --json\n"
      "  ember drift --bundle bundles/churn --current today.jsonl --json");
  drift->add_option("--schema", drift_args->schema,
                    "The request schema (default: the bundle's, or columns and kinds read from the data)");
  drift->add_option("--bundle", drift_args->bundle, "Take the reference statistics (and schema) from this bundle");
  drift->add_option("--reference", drift_args->reference, "Reference data: .csv or .jsonl");
  drift->add_option("--current", drift_args->current, "Current data: .csv or .jsonl")->required();
  drift->add_flag("--json", drift_args->json, "Print JSON: per feature test, statistic, p_value, threshold, drift");
  drift->add_flag("--histograms", drift_args->histograms, "With --json: add each feature's histograms");
  drift->add_flag("--bonferroni", drift_args->bonferroni, "Divide p-value thresholds by the number of tests");
  drift->add_option("--drift-share", drift_args->drift_share, "Share of drifted features that makes dataset drift")
      ->check(CLI::Range(0.0, 1.0));
  drift->callback([&run, drift_args] {
    run = [drift_args] {
      if (drift_args->bundle.empty() == drift_args->reference.empty()) {
        std::fprintf(stderr, "ember: usage error: give --reference or --bundle (one of them)\n");
        return 2;
      }
      return cmd_drift(*drift_args);
    };
  });
}

}  // namespace ember_cli
