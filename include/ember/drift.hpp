#pragma once

/// Drift: reference statistics of a model's training data (what a bundle carries as
/// reference.json), tables of feature values read from CSV or JSON lines, and the
/// comparison of current data with the reference by the tests Evidently applies by
/// default, chosen by the same rules and judged by the same thresholds:
///
///   reference rows <= 1000: numbers with more than 5 distinct values (reference and
///     current together): Kolmogorov-Smirnov (p-value < 0.05 drifts, scipy's exact
///     two-sample distribution up to 10,000 rows a side); otherwise, and for
///     categories, chi-square (> 2 distinct) or the two-proportion z-test (p < 0.05);
///   more reference rows: Wasserstein distance normed by the reference's standard
///     deviation (>= 0.1 drifts) for numbers with more than 5 distinct values,
///     Jensen-Shannon distance (>= 0.1) otherwise.
///
/// Missing values (and infinities) are left out first. PSI (>= 0.1) is computed beside
/// every test. The dataset drifts when the share of drifted features reaches
/// DriftOptions::drift_share (0.5).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/schema.hpp"
#include "ember/status.hpp"
#include "ember/threads.hpp"

namespace ember {

/// How a column is compared: numbers by their distribution, categories by frequency.
enum class ColumnKind : std::uint8_t { kNumerical, kCategorical };

/// The column kind of a schema feature: numbers and integers are numerical; categories
/// and booleans categorical; text is not compared (nullopt).
EMBER_API std::optional<ColumnKind> column_kind(FeatureKind kind) noexcept;

/// Values of one column. Numerical: `numbers` (NaN = missing). Categorical: `labels`
/// (nullopt = missing).
struct Column {
  std::string name;
  ColumnKind kind = ColumnKind::kNumerical;
  std::vector<double> numbers;
  std::vector<std::optional<std::string>> labels;
  [[nodiscard]] std::size_t size() const noexcept { return kind == ColumnKind::kNumerical ? numbers.size() : labels.size(); }
};

/// A table of columns of equal length.
struct Table {
  std::vector<Column> columns;
  std::size_t rows = 0;
  /// The column called `name`, or null.
  [[nodiscard]] EMBER_API const Column* find(std::string_view name) const noexcept;
};

/// Limits on what read_table accepts.
struct TableLimits {
  std::uint64_t max_bytes = std::uint64_t{4} << 30;  ///< the whole file
  std::size_t max_line_bytes = std::size_t{1} << 20;
  std::size_t max_rows = std::size_t{100} << 20;
};

/// Reads the schema's comparable features (see column_kind) from a CSV file with a
/// header (names as FeatureSpec::name) or JSON lines (values at FeatureSpec::pointer),
/// by extension (.csv, .tsv: CSV; anything else: JSON lines). Values are not validated:
/// drift is measured on what arrives. Absent, null and empty values are missing; a
/// number that does not parse is missing too. Booleans become the labels "true" and
/// "false"; numbers in a categorical column become their JSON text. NotFound when the
/// file cannot be read; InvalidArgument naming the line for a malformed line, a CSV
/// header that lacks a feature, or a file beyond `limits`.
EMBER_API Result<Table> read_table(const std::filesystem::path& path, const Schema& schema, const TableLimits& limits = {});

/// A schema for table files that come without one: the columns of a CSV header, or the
/// top-level keys of JSON lines (those with scalar values), in first-seen order. A
/// column whose every non-empty value is a number (a JSON number) is a number, one of
/// JSON booleans a boolean, any other a category of the values seen (a column with
/// more than `max_categories` distinct values is left out). Every file is scanned.
/// Errors as read_table; InvalidArgument when no column is left.
EMBER_API Result<Schema> infer_schema(std::span<const std::filesystem::path> paths, const TableLimits& limits = {},
                                      std::size_t max_categories = 10000);

/// Statistics of one column of the reference data.
struct ColumnReference {
  std::string name;
  ColumnKind kind = ColumnKind::kNumerical;
  std::uint64_t count = 0;    ///< non-missing values
  std::uint64_t missing = 0;  ///< missing (and, for numbers, infinite) values
  // Numerical:
  double mean = 0, std = 0, min = 0, max = 0;  ///< std: population (ddof = 0), as numpy
  /// Every value, ascending, when count <= ReferenceOptions::exact_rows (exact tests).
  std::vector<double> values;
  /// Otherwise the quantile function at ReferenceOptions::quantiles evenly spaced
  /// probabilities from 0 to 1 (linear interpolation, as numpy's default).
  std::vector<double> quantiles;
  /// Distinct values and their counts, ascending, when there are at most
  /// ReferenceOptions::max_distinct_numbers of them (empty otherwise).
  std::vector<std::pair<double, std::uint64_t>> distinct;
  // Categorical (and numerical columns with few distinct values, as text):
  /// Each category and its count, most frequent first; at most
  /// ReferenceOptions::max_categories, the rest counted in `other`.
  std::vector<std::pair<std::string, std::uint64_t>> categories;
  std::uint64_t other = 0;
  /// Distinct values (numerical: exact up to max_distinct_numbers, then that + 1).
  [[nodiscard]] EMBER_API std::uint64_t distinct_count() const noexcept;
};

/// Reference statistics: the model's input features and its outputs.
struct ReferenceStats {
  std::uint64_t rows = 0;
  std::vector<ColumnReference> features;
  std::vector<ColumnReference> outputs;
  /// The column called `name` among features (or outputs), or null.
  [[nodiscard]] EMBER_API const ColumnReference* find(std::string_view name) const noexcept;
};

struct ReferenceOptions {
  /// Keep every value of a numerical column up to this many (exact KS, exact bins).
  std::size_t exact_rows = 1000;
  /// Points of the stored quantile function beyond that (Wasserstein, bins).
  std::size_t quantiles = 1001;
  std::size_t max_distinct_numbers = 20;
  std::size_t max_categories = 1000;
  /// Columns are described in parallel on this executor and the caller's thread (not
  /// owned; null: the caller's thread only).
  TaskExecutor* executor = nullptr;
};

/// Statistics of one column.
EMBER_API ColumnReference describe_column(const Column& column, const ReferenceOptions& options = {});
/// Statistics of every column of `features` (and of `outputs`, which may be empty).
EMBER_API ReferenceStats describe_table(const Table& features, const Table& outputs, const ReferenceOptions& options = {});

/// reference.json: {"format": "ember-reference", "format_version": 1, ...}.
EMBER_API std::string reference_to_json(const ReferenceStats& stats);
/// Parses reference.json. InvalidArgument naming the field for anything malformed:
/// wrong format or version, missing or mistyped fields, unsorted values or quantiles,
/// counts that do not add up, more than `max_bytes`.
EMBER_API Result<ReferenceStats> parse_reference(std::string_view json, std::size_t max_bytes = std::size_t{256} << 20);
/// Reads and parses a file (NotFound when absent).
EMBER_API Result<ReferenceStats> load_reference(const std::filesystem::path& path);

/// Thresholds, as Evidently's defaults. A p-value test drifts below its threshold, a
/// distance at or above it.
struct DriftThresholds {
  double ks = 0.05;
  double chi_square = 0.05;
  double z = 0.05;
  double wasserstein = 0.1;
  double jensen_shannon = 0.1;
  double psi = 0.1;
};

struct DriftOptions {
  DriftThresholds thresholds;
  /// The dataset drifts when at least this share of the compared columns drifts.
  double drift_share = 0.5;
  /// Bonferroni correction (as alibi-detect): p-value thresholds are divided by the
  /// number of columns compared by a p-value test.
  bool bonferroni = false;
  /// Bins of the histograms kept for reports (numerical columns).
  std::size_t report_bins = 20;
  /// Columns are compared in parallel on this executor and the caller's thread (not
  /// owned; null: the caller's thread only). The result is the same.
  TaskExecutor* executor = nullptr;
};

/// Fractions of the reference and of the current data per bin (or per category), for a
/// report. Numerical: bins of equal width from `edges[0]` to `edges.back()`.
struct DriftHistogram {
  std::vector<double> edges;        ///< bins + 1 edges (numerical)
  std::vector<std::string> labels;  ///< one per bin (categorical)
  std::vector<double> reference;
  std::vector<double> current;
};

/// One column's comparison.
struct ColumnDrift {
  std::string name;
  ColumnKind kind = ColumnKind::kNumerical;
  /// "ks", "chi_square", "z", "wasserstein", "jensen_shannon"; "none" when a side has no values.
  std::string test;
  double statistic = 0;  ///< KS: D; chi-square: X^2; z: z; distances: the distance
  std::optional<double> p_value;
  double threshold = 0;  ///< after any correction
  bool drift = false;
  double psi = 0;
  bool psi_drift = false;
  std::uint64_t reference_count = 0, current_count = 0, current_missing = 0;
  DriftHistogram histogram;
};

struct DriftResult {
  std::vector<ColumnDrift> features;
  std::vector<ColumnDrift> outputs;  ///< prediction drift
  std::size_t compared = 0;          ///< features with values on both sides
  double drift_share = 0.5;          ///< DriftOptions::drift_share
  std::size_t drifted = 0;
  double drifted_share = 0;
  bool dataset_drift = false;
  bool prediction_drift = false;  ///< any output drifted
};

/// Compares one column with its reference. InvalidArgument when the kinds differ.
EMBER_API Result<ColumnDrift> compare_column(const ColumnReference& reference, const Column& current,
                                             const DriftOptions& options = {});
/// Compares every column of `current` that the reference knows (features, then outputs:
/// columns named like an output) and judges the dataset. Columns the reference lacks are
/// ignored; InvalidArgument when none is shared.
EMBER_API Result<DriftResult> compare(const ReferenceStats& reference, const Table& current,
                                      const DriftOptions& options = {});
/// DriftResult as JSON: {"features": {name: {"test", "statistic", "p_value", "threshold",
/// "drift", "psi", ...}}, "dataset_drift", "drifted_share", ...}.
EMBER_API std::string drift_to_json(const DriftResult& result, bool histograms = false);

// --- the tests, on plain samples (no missing values) --------------------------------

/// Two-sample Kolmogorov-Smirnov, two-sided, as scipy.stats.ks_2samp(method="auto"):
/// the exact distribution when both samples have at most 10,000 values, else the exact
/// one-sample distribution at n = m*n/(m+n). Samples must be sorted ascending.
struct TestResult {
  double statistic = 0;
  double p_value = 1;
};
EMBER_API TestResult ks_2samp(std::span<const double> sorted_a, std::span<const double> sorted_b);
/// Pearson's chi-square goodness of fit (scipy.stats.chisquare): degrees of freedom
/// k - 1.
EMBER_API TestResult chi_square(std::span<const double> observed, std::span<const double> expected);
/// The upper tail of the chi-square distribution with `dof` degrees of freedom.
EMBER_API double chi_square_sf(double x, double dof);
/// W1 between two sorted samples (scipy.stats.wasserstein_distance).
EMBER_API double wasserstein_1(std::span<const double> sorted_a, std::span<const double> sorted_b);
/// Jensen-Shannon distance (natural log) of two frequency vectors (normalised here).
EMBER_API double jensen_shannon(std::span<const double> p, std::span<const double> q);

}  // namespace ember
