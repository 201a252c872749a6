#pragma once

/// Input schema validation: a JSON Schema (draft 2020-12 subset) compiled once into a
/// validator that checks requests and turns them into typed feature rows, with every
/// error reported with its path.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ember/export.hpp"
#include "ember/json.hpp"
#include "ember/status.hpp"
#include "ember/threads.hpp"

namespace ember {

/// What to do with a feature value of the wrong type.
enum class FieldPolicy : std::uint8_t {
  kReject,  ///< an error (default)
  kCoerce,  ///< convert when no information is lost ("3.5" -> 3.5, 1 -> true, 7 -> "7"), else an error
  kFlag,    ///< accept the record, treat the value as missing, and flag the feature
};

/// How a feature reaches the row.
enum class FeatureKind : std::uint8_t {
  kNumber,    ///< JSON number -> float64 (an integral value also as its exact int64)
  kInteger,   ///< JSON integer -> its exact int64, and float64
  kBoolean,   ///< true/false -> 1/0
  kCategory,  ///< a string from a fixed set (enum/const) -> its index in `categories`, and the text
  kText,      ///< any string -> the text
};
EMBER_API std::string_view feature_kind_name(FeatureKind kind) noexcept;

/// One input feature of the model, in row order.
struct FeatureSpec {
  std::string name;     ///< "age"; nested objects join names with '.': "address.city"
  std::string pointer;  ///< JSON Pointer in the record: "/address/city"
  FeatureKind kind = FeatureKind::kNumber;
  bool required = false;                 ///< false: may be absent or null (then missing)
  std::vector<std::string> categories;   ///< kCategory: the allowed strings, in schema order
  std::optional<double> training_min;    ///< from "x-ember-training-range"
  std::optional<double> training_max;
  FieldPolicy policy = FieldPolicy::kReject;
  /// "x-ember-personal": true: personal data, redacted from prediction logs.
  bool personal = false;
};

/// Options for compiling a schema. Defaults are written here.
struct SchemaOptions {
  JsonLimits limits;                  ///< max_string_bytes is enforced during validation
  std::size_t max_errors = 16;        ///< errors collected per record before stopping
  FieldPolicy default_policy = FieldPolicy::kReject;
  std::map<std::string, FieldPolicy, std::less<>> field_policies;  ///< by feature name
};

/// One validation error. to_string(): "/age: 212 is greater than the maximum 120".
struct ValidationError {
  std::string instance_path;  ///< JSON Pointer into the record ("" is the root)
  std::string schema_path;    ///< JSON Pointer into the schema ("/properties/age/maximum")
  std::string keyword;        ///< "maximum", "required", "type", ... or "json" for parse errors
  std::string message;        ///< "212 is greater than the maximum 120"
  [[nodiscard]] EMBER_API std::string to_string() const;
};

/// What validating one record found. Reusable: clear() keeps its capacity.
class EMBER_API ValidationReport {
 public:
  [[nodiscard]] bool ok() const noexcept { return errors_.empty(); }
  [[nodiscard]] const std::vector<ValidationError>& errors() const noexcept { return errors_; }
  /// True when more errors existed than SchemaOptions::max_errors.
  [[nodiscard]] bool truncated() const noexcept { return truncated_; }
  /// Features whose value was outside the training range, or accepted under kFlag.
  [[nodiscard]] const std::vector<std::uint32_t>& flagged() const noexcept { return flagged_; }
  /// OK, or InvalidArgument listing the errors ("2 errors: /age: ...; /plan: ...").
  [[nodiscard]] Status status() const;
  void clear() noexcept;

  /// For the validator.
  bool add_error(ValidationError error, std::size_t cap);
  void add_flag(std::uint32_t feature) { flagged_.push_back(feature); }

 private:
  std::vector<ValidationError> errors_;
  std::vector<std::uint32_t> flagged_;
  bool truncated_ = false;
};

/// Marks a FeatureRow::integers slot whose value is not an exact integer.
inline constexpr std::int64_t kNotInteger = INT64_MIN;

/// `d` as an int64 when it is an integer in int64's range (exactly), else kNotInteger.
inline std::int64_t exact_integer(double d) noexcept {
  // Both bounds are exact doubles; every integral double in [-2^63, 2^63) converts exactly.
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != static_cast<double>(static_cast<std::int64_t>(d))) {
    return kNotInteger;
  }
  return static_cast<std::int64_t>(d);
}

/// A validated record as the model's features: one slot per FeatureSpec, in order.
/// Numbers keep their full precision: nothing is rounded before the model's own cast.
struct FeatureRow {
  /// Numbers and integers as float64, booleans as 1/0, categories as their index;
  /// NaN marks a missing value (absent or null optional feature, or flagged).
  std::vector<double> values;
  /// kCategory and kText features: the string ("" for other kinds or when missing).
  std::vector<std::string> text;
  /// Numbers, integers and booleans: the exact value when it is an integer in int64's
  /// range (IDs above 2^53 stay exact here), else kNotInteger. Read only where
  /// `values` is not NaN; unspecified for other kinds. A row built by hand may leave it
  /// empty: then the exact integer of each value is used.
  std::vector<std::int64_t> integers = {};
};

/// A record built in C++ without JSON: set features by name (FeatureSpec::name).
class EMBER_API Record {
 public:
  using Value = std::variant<std::monostate, bool, std::int64_t, double, std::string>;
  Record& set(std::string_view name, double value);
  Record& set(std::string_view name, std::int64_t value);
  Record& set(std::string_view name, int value) { return set(name, static_cast<std::int64_t>(value)); }
  Record& set(std::string_view name, bool value);
  Record& set(std::string_view name, std::string_view value);
  Record& set(std::string_view name, const char* value) { return set(name, std::string_view(value)); }
  Record& set_null(std::string_view name);
  void clear() noexcept { fields_.clear(); }
  [[nodiscard]] const std::vector<std::pair<std::string, Value>>& fields() const noexcept { return fields_; }

 private:
  Record& put(std::string_view name, Value value);
  std::vector<std::pair<std::string, Value>> fields_;
};

/// One value of a record given column by column (a ColumnView of kCells): what the
/// record's JSON would hold there, without the text. A view: `text` must stay valid
/// during the call.
struct Cell {
  enum class Type : std::uint8_t {
    kAbsent,    ///< the record has no such property
    kNull,
    kBool,      ///< `integer` is 1 or 0
    kInteger,   ///< `integer`
    kUnsigned,  ///< `unsigned_integer` (for values above INT64_MAX)
    kNumber,    ///< `number`; NaN is null, an infinity is refused (JSON has neither)
    kString,    ///< `text`, UTF-8
  };
  Type type = Type::kAbsent;
  std::int64_t integer = 0;
  std::uint64_t unsigned_integer = 0;
  double number = 0;
  std::string_view text;
};

/// One property of N records, read in place: a column of a frame, or cells.
struct ColumnView {
  enum class Type : std::uint8_t {
    kFloat64, kFloat32,                  ///< NaN is null (a missing value); an infinity is refused
    kInt64, kInt32, kInt16, kInt8,
    kUInt64, kUInt32, kUInt16, kUInt8,
    kBool,                               ///< one byte, 0 is false
    kCells,                              ///< Cell values (any type, null, absent)
  };
  std::string_view name;  ///< the property: a feature's name (FeatureSpec::name)
  Type type = Type::kFloat64;
  const void* data = nullptr;  ///< the first record's value
  /// Bytes from one record's value to the next (may be negative); 0: packed.
  std::ptrdiff_t stride = 0;
};

/// Record `row`'s value in a column, as validate_batch reads it: a float NaN is null.
EMBER_API Cell cell_at(const ColumnView& column, std::size_t row) noexcept;

/// N records given column by column: record i is the i-th value of every column.
struct Columns {
  std::span<const ColumnView> columns;
  std::size_t rows = 0;
};

/// What validate_batch does with an invalid record.
enum class BatchPolicy : std::uint8_t {
  kSkipInvalid,  ///< leave it out of the matrix and go on (default)
  kFailBatch,    ///< fail the whole batch (every record is still checked and reported)
};

/// How validate_batch works. Defaults are written here.
struct BatchOptions {
  BatchPolicy policy = BatchPolicy::kSkipInvalid;
  /// Parts of the batch validated at once, each with its own parser: the caller's
  /// thread takes one, `executor` the others. 1: the caller's thread only; 0: the
  /// executor's concurrency() + 1. A part is at least 128 records, so small batches use
  /// fewer. Without an executor, or when it refuses a part, the caller's thread does the
  /// work. ember starts no thread of its own. The result is the same as with one part.
  unsigned threads = 1;
  TaskExecutor* executor = nullptr;  ///< not owned; must outlive the call
};

/// N validated records as one contiguous row-major matrix.
struct FeatureBatch {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> values;            ///< rows x cols, as FeatureRow::values
  std::vector<std::int64_t> integers;    ///< rows x cols, as FeatureRow::integers
  std::vector<std::string> text;         ///< rows x cols, as FeatureRow::text
  std::vector<std::size_t> source_index; ///< for each row, its index among the inputs
};

/// Per-record outcome of a batch.
struct BatchReport {
  std::size_t valid = 0;
  std::size_t invalid = 0;
  std::size_t flagged = 0;  ///< valid records with at least one flag
  /// Reports of the invalid or flagged records, with their index among the inputs.
  std::vector<std::pair<std::size_t, ValidationReport>> records;
};

namespace detail {
struct SchemaImpl;
}

/// A compiled schema. Immutable after compile(); copies share it; every method is
/// safe to call from many threads at once (each thread brings its own JsonParser).
///
/// The schema's top level must be an object schema with `properties`: they define the
/// features, in the order the schema lists them. Scalar properties (number, integer,
/// boolean, string) are features; a nested object's scalar properties are features
/// named "outer.inner"; arrays and properties that mix types are validated but are not
/// features.
class EMBER_API Schema {
 public:
  /// Compiles a schema document. InvalidArgument for malformed JSON, a keyword outside
  /// the supported subset (named with its path), a bad value for a keyword, an
  /// unsupported or unresolvable $ref, a pattern RE2 cannot compile, or a cycle of
  /// $refs that never reaches the record's content.
  static Result<Schema> compile(std::string_view schema_json, const SchemaOptions& options = {});
  /// The same, from a file. NotFound when it does not exist.
  static Result<Schema> load(const std::filesystem::path& path, const SchemaOptions& options = {});

  [[nodiscard]] const std::vector<FeatureSpec>& features() const noexcept;
  [[nodiscard]] const SchemaOptions& options() const noexcept;
  /// The index of the feature called `name`, or -1.
  [[nodiscard]] std::int64_t feature_index(std::string_view name) const noexcept;

  /// Validates any JSON value against the schema. OK, or InvalidArgument (details in
  /// `report`, which is cleared first).
  Status validate(const JsonValue& value, ValidationReport& report) const;

  /// Validates one record (a JSON object) and writes its features into `row` (resized
  /// to features().size(); no allocation once warm, except for long strings).
  Status validate_into(const JsonValue& value, FeatureRow& row, ValidationReport& report) const;
  /// The same from JSON text, parsed with `parser`.
  Status validate_into(std::string_view json, JsonParser& parser, FeatureRow& row, ValidationReport& report) const;
  /// The same from a typed record. Names are feature names; an unknown name is an error
  /// when the schema forbids additional properties, and ignored otherwise.
  Status validate_into(const Record& record, FeatureRow& row, ValidationReport& report) const;

  /// Validates N JSON records into one matrix, reporting every bad record (not just the
  /// first). OK, or InvalidArgument under kFailBatch when any record is invalid.
  Status validate_batch(std::span<const std::string_view> records, JsonParser& parser, FeatureBatch& batch,
                        BatchReport& report, BatchPolicy policy = BatchPolicy::kSkipInvalid) const;
  /// The same with options, e.g. several threads for large batches. The other threads'
  /// parsers take `parser`'s limits.
  Status validate_batch(std::span<const std::string_view> records, JsonParser& parser, FeatureBatch& batch,
                        BatchReport& report, const BatchOptions& options) const;

  /// True when records given column by column are checked exactly as their JSON text
  /// would be: every property the schema describes is a scalar feature (no nested
  /// objects, arrays or combinators), and what it requires are features. Otherwise
  /// validate_batch(Columns) says FailedPrecondition: give such records as JSON.
  [[nodiscard]] bool accepts_columns() const noexcept;
  /// Validates N records given column by column into one matrix, with the same answers,
  /// errors and flags as validate_batch of their JSON texts: numeric columns are read in
  /// place, a float NaN is null, a column that names no feature is an unknown property.
  /// InvalidArgument for a malformed ColumnView (no data, an unknown type, a name twice);
  /// FailedPrecondition unless accepts_columns().
  Status validate_batch(const Columns& columns, FeatureBatch& batch, BatchReport& report,
                        const BatchOptions& options = {}) const;

  /// How often each feature was flagged since compile (for monitoring), by feature index.
  [[nodiscard]] std::vector<std::uint64_t> flag_counts() const;

 private:
  explicit Schema(std::shared_ptr<detail::SchemaImpl> impl);
  std::shared_ptr<detail::SchemaImpl> impl_;
};

/// What makes `to` refuse or misread records that `from` accepts, one sentence each
/// (empty: `to` is compatible): a feature that is gone, a feature `to` requires and `from`
/// did not, a narrower kind (number -> integer, text -> category, any change to or from
/// boolean), a category that is gone, a stricter field policy. Ranges, patterns and lengths
/// are not compared: check them with records (a model gate's golden records).
[[nodiscard]] EMBER_API std::vector<std::string> breaking_changes(const Schema& from, const Schema& to);

}  // namespace ember
