// Records without JSON text: a Record built in C++, and records given column by column
// (a frame's columns, read in place). Both are checked value by value against the
// features' schemas, as their JSON would be (see Schema::accepts_columns for when that
// is exact).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "validate_internal.hpp"
#include "walker.hpp"

namespace ember {
namespace detail {
namespace {

// Which features a record set: bits on the stack for the usual widths, so that a warm
// call allocates nothing.
class Present {
 public:
  explicit Present(std::size_t features) {
    if (features > 64 * small_.size()) {
      large_.assign((features + 63) / 64, 0);
      bits_ = large_.data();
    }
  }
  void set(std::size_t f) noexcept { bits_[f / 64] |= std::uint64_t{1} << (f % 64); }
  [[nodiscard]] bool has(std::size_t f) const noexcept { return ((bits_[f / 64] >> (f % 64)) & 1U) != 0; }

 private:
  std::array<std::uint64_t, 4> small_{};
  std::vector<std::uint64_t> large_;
  std::uint64_t* bits_ = small_.data();
};

// Checks a record given as scalars: `for_each(visit)` calls visit(feature, name, value)
// for each property the record has (feature -1: not a feature), in order, and stops
// when visit returns false. (The values are handed down, not returned up: a value
// returned in a struct was written field by field and read back whole, a store-to-load
// stall on every property.)
template <typename ForEach>
Status validate_fields(const SchemaImpl& s, ForEach&& for_each, RowOut out, ValidationReport& report) {
  Walker walker(s, &report, out);
  Present present(s.features.size());
  for_each([&](std::int64_t feature, std::string_view name, const ScalarValue& v) {
    if (feature < 0) {
      if (s.root_additional == Additional::kDeny) {
        walker.push_key(name);
        walker.not_allowed(*s.root, name);
        walker.pop();
      }
      return !walker.stopped();
    }
    const auto f = static_cast<std::size_t>(feature);
    present.set(f);
    const std::string& pointer = s.features[f].pointer;
    walker.push_raw(pointer);
    if (v.type() == JsonType::kString && !valid_utf8(v.as_string())) {
      report.add_error({pointer, "", "json", "invalid UTF-8 in string"}, s.options.max_errors);
    } else if (v.type() == JsonType::kDouble && std::isinf(v.as_double())) {
      report.add_error({pointer, "", "json", "an infinity is not a JSON number"}, s.options.max_errors);
    } else {
      walker.feature(f, *s.feature_nodes[f], v);
    }
    walker.pop();
    return !walker.stopped();
  });
  for (std::size_t f = 0; f < s.features.size(); ++f) {
    if (!present.has(f) && s.features[f].required) walker.required_missing(*s.root, s.features[f].name);
  }
  return report.status();
}

template <typename T>
T read(const void* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

Status validate_columns_row(const SchemaImpl& s, std::span<const ColumnIn> columns, std::size_t row, RowOut out,
                            ValidationReport& report) {
  return validate_fields(s, [&](auto&& visit) {
    for (const ColumnIn& c : columns) {
      const Cell cell = ember::cell_at(c.view, row);
      if (cell.type != Cell::Type::kAbsent && !visit(c.feature, c.view.name, ScalarValue(cell))) return;
    }
  }, out, report);
}

}  // namespace detail

std::size_t detail::column_type_size(ColumnView::Type type) noexcept {
  using T = ColumnView::Type;
  switch (type) {
    case T::kFloat64: case T::kInt64: case T::kUInt64: return 8;
    case T::kFloat32: case T::kInt32: case T::kUInt32: return 4;
    case T::kInt16: case T::kUInt16: return 2;
    case T::kInt8: case T::kUInt8: case T::kBool: return 1;
    case T::kCells: return sizeof(Cell);
  }
  return 0;
}

Cell cell_at(const ColumnView& c, std::size_t row) noexcept {
  const std::ptrdiff_t stride = c.stride != 0 ? c.stride : static_cast<std::ptrdiff_t>(detail::column_type_size(c.type));
  const auto* p = static_cast<const char*>(c.data) + static_cast<std::ptrdiff_t>(row) * stride;
  Cell cell;
  const auto number = [&cell](double d) {
    cell.type = std::isnan(d) ? Cell::Type::kNull : Cell::Type::kNumber;
    cell.number = d;
  };
  const auto integer = [&cell](std::int64_t i) {
    cell.type = Cell::Type::kInteger;
    cell.integer = i;
  };
  using T = ColumnView::Type;
  switch (c.type) {
    case T::kFloat64: number(detail::read<double>(p)); break;
    case T::kFloat32: number(detail::read<float>(p)); break;
    case T::kInt64: integer(detail::read<std::int64_t>(p)); break;
    case T::kInt32: integer(detail::read<std::int32_t>(p)); break;
    case T::kInt16: integer(detail::read<std::int16_t>(p)); break;
    case T::kInt8: integer(detail::read<std::int8_t>(p)); break;
    case T::kUInt64: {
      const auto u = detail::read<std::uint64_t>(p);
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) {
        integer(static_cast<std::int64_t>(u));
      } else {
        cell.type = Cell::Type::kUnsigned;
        cell.unsigned_integer = u;
      }
      break;
    }
    case T::kUInt32: integer(detail::read<std::uint32_t>(p)); break;
    case T::kUInt16: integer(detail::read<std::uint16_t>(p)); break;
    case T::kUInt8: integer(detail::read<std::uint8_t>(p)); break;
    case T::kBool:
      cell.type = Cell::Type::kBool;
      cell.integer = *p != 0 ? 1 : 0;
      break;
    case T::kCells:
      cell = detail::read<Cell>(p);
      if (cell.type == Cell::Type::kNumber && std::isnan(cell.number)) cell.type = Cell::Type::kNull;
      break;
  }
  return cell;
}

Status Schema::validate_into(const Record& record, FeatureRow& row, ValidationReport& report) const {
  report.clear();
  const auto& s = *impl_;
  return detail::validate_fields(s, [&](auto&& visit) {
    for (const auto& [name, value] : record.fields()) {
      const auto it = s.feature_by_name.find(name);
      const std::int64_t f = it == s.feature_by_name.end() ? -1 : static_cast<std::int64_t>(it->second);
      if (!visit(f, name, detail::ScalarValue(value))) return;
    }
  }, detail::reset_row(s, row), report);
}

bool Schema::accepts_columns() const noexcept {
  // The record's own schema checks only which properties there are (required ones,
  // unknown ones allowed or not), and each property is a scalar feature: then checking
  // each present value against its feature's schema is the whole check.
  const detail::Plan& plan = *impl_->root_plan;
  const detail::Node& n = *plan.object_node;
  if (n.ref || !n.all_of.empty() || !n.any_of.empty() || !n.one_of.empty() || n.not_node || n.const_value ||
      n.has_enum || n.additional == detail::Additional::kSchema || (n.has_type && n.types != detail::kObjectBit)) {
    return false;
  }
  const bool all_features = std::all_of(plan.fields.begin(), plan.fields.end(), [](const detail::Plan::Field& f) {
    return f.nested == nullptr && f.feature >= 0;
  });
  return all_features && std::all_of(n.required.begin(), n.required.end(), [this](const std::string& name) {
    return impl_->feature_by_name.count(name) != 0;
  });
}

}  // namespace ember
