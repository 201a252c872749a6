#pragma once

/// Preprocessing: the fitted transforms of a scikit-learn Pipeline / ColumnTransformer,
/// loaded from pipeline.json, turning a validated feature row into the model's input
/// exactly as scikit-learn's transform() does: in float64, with integer categories
/// matched as exact int64. Only the model itself casts (to the dtype it takes).

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/schema.hpp"
#include "ember/status.hpp"

namespace ember {

namespace detail {
struct PipelineImpl;
}

/// A loaded preprocessing pipeline. Immutable; copies share it; transform() may be called
/// from many threads at once and allocates nothing.
///
/// Supported steps (with scikit-learn's semantics): SimpleImputer (mean, median,
/// most_frequent, constant), StandardScaler, MinMaxScaler (feature_range, clip),
/// MaxAbsScaler, RobustScaler, OneHotEncoder (handle_unknown error or ignore; drop first
/// or if_binary; string or integer categories), OrdinalEncoder (handle_unknown error or
/// use_encoded_value), and passthrough/drop, composed as a ColumnTransformer whose
/// transformers are chains of steps. In a chain, encoders come last.
class EMBER_API Pipeline {
 public:
  /// Parses pipeline.json. InvalidArgument naming the transformer, step and field for
  /// anything inconsistent: unknown format or version, unknown step, a missing or
  /// mistyped parameter, widths that disagree, categories of mixed types.
  static Result<Pipeline> parse(std::string_view json);
  /// The same from a file; NotFound when it does not exist.
  static Result<Pipeline> load(const std::filesystem::path& path);

  /// Fits a pipeline on rows, as scikit-learn's fit() does, from a spec: the layout of
  /// pipeline.json with each step's options instead of fitted values (what
  /// ember.sklearn.export_spec writes). Rows are laid out as the spec's inputs.
  /// InvalidArgument for a bad spec, a column with nothing to fit on (all missing), a
  /// KBinsDiscretizer on missing values or on a constant column, or strategy kmeans.
  static Result<Pipeline> fit(std::string_view spec_json, const FeatureBatch& rows);

  /// The pipeline as pipeline.json text (what parse() reads).
  [[nodiscard]] const std::string& to_json() const noexcept;

  /// The input columns, in the order transform() reads them from a FeatureRow.
  [[nodiscard]] const std::vector<std::string>& input_names() const noexcept;
  /// Whether input i holds strings (read from FeatureRow::text) rather than numbers.
  [[nodiscard]] bool input_is_string(std::size_t i) const noexcept;
  /// The output columns (scikit-learn's get_feature_names_out()).
  [[nodiscard]] const std::vector<std::string>& output_names() const noexcept;
  [[nodiscard]] std::size_t output_width() const noexcept;

  /// OK when the schema's features are this pipeline's inputs, by name and in order;
  /// else InvalidArgument naming the first difference.
  [[nodiscard]] Status check_inputs(const Schema& schema) const;

  /// Transforms one row (its slots in input_names() order) into `out`, which must hold
  /// output_width() values. Integer categories are matched with row.integers when it
  /// has a slot per value (else with the exact integer that each value holds). InvalidArgument, naming the column and the value, for a row
  /// of the wrong width, a missing value no imputer covers, an unknown category under
  /// handle_unknown=error, or a string where a number is expected.
  Status transform(const FeatureRow& row, std::span<double> out) const;

  /// Transforms every row of a batch into `out` (rows x output_width(), row-major).
  /// Stops at the first bad row, naming it.
  Status transform_batch(const FeatureBatch& batch, std::span<double> out) const;

 private:
  explicit Pipeline(std::shared_ptr<const detail::PipelineImpl> impl);
  std::shared_ptr<const detail::PipelineImpl> impl_;
};

}  // namespace ember
