#pragma once

// What batch validation (batch.cpp) needs of the record walk (validate.cpp).

#include <cstdint>
#include <span>
#include <string>

#include "ember/json.hpp"
#include "ember/schema.hpp"
#include "schema_internal.hpp"

namespace ember::detail {

// Where a walk writes features: one row's slots, in a FeatureRow or a FeatureBatch.
struct RowOut {
  double* values = nullptr;
  std::int64_t* integers = nullptr;
  std::string* text = nullptr;
};

/// Marks every slot of `out` missing.
void clear_row(const SchemaImpl& s, RowOut out);

/// Validates a parsed record into `out` (cleared first by the caller): OK, or
/// InvalidArgument with the errors in `report`.
Status validate_parsed(const SchemaImpl& s, const JsonValue& value, RowOut out, ValidationReport& report);

/// Bytes of one value of a column of `type` (0 for a type that is not one).
std::size_t column_type_size(ColumnView::Type type) noexcept;

/// A column of a batch resolved against the schema.
struct ColumnIn {
  ColumnView view;
  std::int64_t feature = -1;  // the feature it fills, or -1 (an unknown property)
};

/// Validates record `row` of `columns` into `out` (cleared first by the caller): OK, or
/// InvalidArgument with the errors in `report`.
Status validate_columns_row(const SchemaImpl& s, std::span<const ColumnIn> columns, std::size_t row, RowOut out,
                            ValidationReport& report);

}  // namespace ember::detail
