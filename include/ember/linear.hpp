#pragma once

/// A linear or logistic regression that needs no LibTorch: the fallback model of choice
/// when the primary fails. Loaded from the JSON that ember.sklearn.export_linear writes
/// for scikit-learn's LinearRegression, Ridge and LogisticRegression.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

namespace detail {
struct LinearImpl;
}

/// Which of scikit-learn's methods a LinearModel evaluates.
enum class LinearOutput : std::uint8_t {
  kPredict,           ///< regression: the targets; classifier: the index of the class
  kPredictProba,      ///< classifier: one probability per class
  kDecisionFunction,  ///< classifier: the scores (one column for a binary classifier)
  kPositiveProba,     ///< binary classifier: the probability of classes()[1]
};
/// "predict", "predict_proba", "decision_function", "positive_proba".
EMBER_API std::string_view linear_output_name(LinearOutput output) noexcept;
/// InvalidArgument for any other name.
EMBER_API Result<LinearOutput> parse_linear_output(std::string_view name);

/// An immutable fitted linear model; copies share it; evaluate() is safe from many
/// threads at once. Arithmetic is in double, as scikit-learn's.
class EMBER_API LinearModel {
 public:
  /// Parses linear.json (format "ember-linear", version 1). InvalidArgument for an unknown
  /// format or estimator, a missing or mistyped field, a non-finite coefficient, or
  /// shapes that disagree (coef rows vs intercept vs classes).
  static Result<LinearModel> parse(std::string_view json);
  /// The same from a file; NotFound when it does not exist.
  static Result<LinearModel> load(const std::filesystem::path& path);

  [[nodiscard]] bool is_classifier() const noexcept;
  /// "LinearRegression", "Ridge" or "LogisticRegression".
  [[nodiscard]] const std::string& estimator() const noexcept;
  [[nodiscard]] std::size_t input_width() const noexcept;
  /// A classifier's class labels, as text ("0", "1", "benign"); empty for a regression.
  [[nodiscard]] const std::vector<std::string>& classes() const noexcept;
  /// Values per row that `output` produces; InvalidArgument when this model has no such
  /// output (predict_proba of a regression, positive_proba of a multi-class model).
  [[nodiscard]] Result<std::size_t> output_width(LinearOutput output) const;

  /// Evaluates `rows` rows of input_width() doubles (row-major) into `out`, which must
  /// hold rows * output_width(output) doubles. InvalidArgument for wrong sizes.
  Status evaluate(std::span<const double> x, std::size_t rows, LinearOutput output, std::span<double> out) const;

 private:
  explicit LinearModel(std::shared_ptr<const detail::LinearImpl> impl);
  std::shared_ptr<const detail::LinearImpl> impl_;
};

}  // namespace ember
