// libFuzzer target for the configuration loaders: the first byte picks one, the rest is
// its input. Each must answer with a Status and never crash, hang or leak.
//   0: LinearModel::parse (then evaluate on a row of ones)
//   1: Pipeline::parse (then transform a row of missing values)
//   2: parse_fault_rule
//   3: parse_manifest (then written out and parsed again: it must still parse)
//   4: parse_model_ref
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ember/bundle.hpp"
#include "ember/fallback.hpp"
#include "ember/linear.hpp"
#include "ember/pipeline.hpp"
#include "ember/registry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
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
    default: (void)ember::parse_model_ref(text); break;
  }
  return 0;
}
