// libFuzzer target for the configuration loaders: the first byte picks one, the rest is
// its input. Each must answer with a Status and never crash, hang or leak.
//   0: LinearModel::parse (then evaluate on a row of ones)
//   1: Pipeline::parse (then transform a row of missing values)
//   2: parse_fault_rule
//   3: parse_manifest (then written out and parsed again: it must still parse)
//   4: parse_model_ref
//   5: parse_reference (then written out and parsed again, and compared with a small
//      table of current data)
//   6: parse_rollout_plan (then written out and parsed again, and run on a few requests)
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ember/bundle.hpp"
#include "ember/drift.hpp"
#include "ember/fallback.hpp"
#include "ember/linear.hpp"
#include "ember/pipeline.hpp"
#include "ember/registry.hpp"
#include "ember/rollout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0: {
      auto model = ember::LinearModel::parse(text);
      if (!model.ok() || model->input_width() > 4096) break;
      std::vector<double> x(model->input_width(), 1.0);
      for (auto out : {ember::LinearOutput::kPredict, ember::LinearOutput::kPredictProba,
                       ember::LinearOutput::kDecisionFunction, ember::LinearOutput::kPositiveProba}) {
        auto width = model->output_width(out);
        if (!width.ok()) continue;
        std::vector<double> y(*width);
        (void)model->evaluate(x, 1, out, y);
      }
      break;
    }
    case 1: {
      auto pipeline = ember::Pipeline::parse(text);
      if (!pipeline.ok() || pipeline->output_width() > 65536) break;
      ember::FeatureRow row;
      row.values.assign(pipeline->input_names().size(), __builtin_nan(""));
      row.text.assign(pipeline->input_names().size(), "");
      std::vector<double> out(pipeline->output_width());
      (void)pipeline->transform(row, out);
      break;
    }
    case 2: (void)ember::parse_fault_rule(text); break;
    case 3: {
      auto manifest = ember::parse_manifest(text);
      if (!manifest.ok()) break;
      if (!ember::parse_manifest(ember::manifest_to_json(*manifest)).ok()) __builtin_trap();
      break;
    }
    case 4: (void)ember::parse_model_ref(text); break;
    case 6: {
      auto plan = ember::parse_rollout_plan(text);
      if (!plan.ok()) break;
      if (!ember::parse_rollout_plan(ember::rollout_plan_to_json(*plan)).ok()) __builtin_trap();
      ember::CanaryAnalysis analysis(*plan, std::chrono::nanoseconds(0));
      for (int i = 0; i < 64; ++i) {
        ember::RolloutObservation o;
        o.candidate = i % 2 == 0;
        o.failed = i % 7 == 0;
        o.output = i / 64.0;
        o.control_output = 0.5;
        o.outcome = i % 3 == 0 ? 1.0 : 0.0;
        o.latency = std::chrono::microseconds(i);
        analysis.observe(o, std::chrono::seconds(i));
      }
      break;
    }
    default: {
      auto stats = ember::parse_reference(text);
      if (!stats.ok()) break;
      if (!ember::parse_reference(ember::reference_to_json(*stats)).ok()) __builtin_trap();
      ember::Table current;
      current.rows = 5;
      for (const auto* list : {&stats->features, &stats->outputs}) {
        for (const auto& c : *list) {
          if (c.kind == ember::ColumnKind::kNumerical) {
            current.columns.push_back({c.name, c.kind, {0.0, 1.0, -2.5, 1e300, __builtin_nan("")}, {}});
          } else {
            current.columns.push_back({c.name, c.kind, {}, {"a", "b", std::nullopt, "a", "zz"}});
          }
        }
      }
      (void)ember::compare(*stats, current);
      break;
    }
  }
  return 0;
}
