// Validation of JSON records (the walk is in walker.hpp), and the schema's public API.
#include <array>
#include <charconv>
#include <cstring>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>

#include "core/files.hpp"
#include "json_internal.hpp"
#include "schema_internal.hpp"
#include "instance.hpp"
#include "validate_internal.hpp"
#include "walker.hpp"

namespace ember {
namespace detail {
namespace {


// Validates one parsed record into `out` (already reset): the fast path first, then,
// if it declines, the general walk that reports everything.
Status validate_record(const SchemaImpl& s, const SimdValue& record, RowOut out, ValidationReport& report) {
  if (s.root_plan->fast && record.type() == JsonType::kObject) {
    Walker quick(s, nullptr, out);
    std::vector<std::uint32_t> flags;  // allocates only when a value is flagged
    if (quick.fast(*s.root_plan, record, flags)) {
      for (auto f : flags) {
        report.add_flag(f);
        s.flag_counts[f].fetch_add(1, std::memory_order_relaxed);
      }
      return {};
    }
    reset_slots(s, out);
  }
  Walker walker(s, &report, out);
  walker.record(record, s.root_plan);
  return report.status();
}

}  // namespace

void clear_row(const SchemaImpl& s, RowOut out) { reset_slots(s, out); }

Status validate_parsed(const SchemaImpl& s, const JsonValue& value, RowOut out, ValidationReport& report) {
  return validate_record(s, SimdValue(JsonAccess::unwrap(value)), out, report);
}

}  // namespace detail

// ---- public API ---------------------------------------------------------------------

std::string_view feature_kind_name(FeatureKind kind) noexcept {
  switch (kind) {
    case FeatureKind::kNumber: return "number";
    case FeatureKind::kInteger: return "integer";
    case FeatureKind::kBoolean: return "boolean";
    case FeatureKind::kCategory: return "category";
    case FeatureKind::kText: return "text";
  }
  return "unknown";
}

std::string ValidationError::to_string() const {
  return (instance_path.empty() ? std::string("/") : instance_path) + ": " + message;
}

bool ValidationReport::add_error(ValidationError error, std::size_t cap) {
  if (errors_.size() >= cap) {
    truncated_ = true;
    return false;
  }
  errors_.push_back(std::move(error));
  if (errors_.size() >= cap) truncated_ = true;
  return true;
}

Status ValidationReport::status() const {
  if (errors_.empty()) return {};
  std::string message;
  if (errors_.size() > 1 || truncated_) {
    message = std::to_string(errors_.size()) + (truncated_ ? "+" : "") + " errors: ";
  }
  for (std::size_t i = 0; i < errors_.size() && i < 5; ++i) {
    if (i) message += "; ";
    message += errors_[i].to_string();
  }
  if (errors_.size() > 5) message += "; ...";
  return invalid_argument(std::move(message));
}

void ValidationReport::clear() noexcept {
  errors_.clear();
  flagged_.clear();
  truncated_ = false;
}

Record& Record::put(std::string_view name, Value value) {
  for (auto& [k, v] : fields_) {
    if (k == name) {
      v = std::move(value);
      return *this;
    }
  }
  fields_.emplace_back(std::string(name), std::move(value));
  return *this;
}
Record& Record::set(std::string_view name, double value) { return put(name, value); }
Record& Record::set(std::string_view name, std::int64_t value) { return put(name, value); }
Record& Record::set(std::string_view name, bool value) { return put(name, value); }
Record& Record::set(std::string_view name, std::string_view value) { return put(name, std::string(value)); }
Record& Record::set_null(std::string_view name) { return put(name, std::monostate{}); }

Schema::Schema(std::shared_ptr<detail::SchemaImpl> impl) : impl_(std::move(impl)) {}

Result<Schema> Schema::compile(std::string_view schema_json, const SchemaOptions& options) {
  auto impl = detail::compile_schema(schema_json, options);
  if (!impl.ok()) return impl.status();
  return Schema(std::move(impl).value());
}

Result<Schema> Schema::load(const std::filesystem::path& path, const SchemaOptions& options) {
  auto text = detail::read_text_file(path, "schema file");
  if (!text.ok()) return text.status();
  auto schema = compile(*text, options);
  if (!schema.ok()) return schema.status().with_context("'" + path.string() + "'");
  return schema;
}

const std::vector<FeatureSpec>& Schema::features() const noexcept { return impl_->features; }
const SchemaOptions& Schema::options() const noexcept { return impl_->options; }

std::int64_t Schema::feature_index(std::string_view name) const noexcept {
  auto it = impl_->feature_by_name.find(name);
  return it == impl_->feature_by_name.end() ? -1 : static_cast<std::int64_t>(it->second);
}

Status Schema::validate(const JsonValue& value, ValidationReport& report) const {
  report.clear();
  if (!value.is_valid()) return invalid_argument("validate: the JsonValue is empty");
  detail::Walker walker(*impl_, &report, {});
  walker.validate(*impl_->root, detail::SimdValue(detail::JsonAccess::unwrap(value)), nullptr);
  return report.status();
}

Status Schema::validate_into(const JsonValue& value, FeatureRow& row, ValidationReport& report) const {
  report.clear();
  const detail::RowOut out = detail::reset_row(*impl_, row);
  if (!value.is_valid()) return invalid_argument("validate_into: the JsonValue is empty");
  return detail::validate_record(*impl_, detail::SimdValue(detail::JsonAccess::unwrap(value)), out, report);
}

Status Schema::validate_into(std::string_view json, JsonParser& parser, FeatureRow& row,
                             ValidationReport& report) const {
  auto value = parser.parse(json);
  if (!value.ok()) {
    report.clear();
    detail::reset_row(*impl_, row);
    report.add_error({"", "", "json", value.status().message()}, impl_->options.max_errors);
    return value.status();
  }
  return validate_into(*value, row, report);
}

std::vector<std::uint64_t> Schema::flag_counts() const {
  std::vector<std::uint64_t> out(impl_->features.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = impl_->flag_counts[i].load(std::memory_order_relaxed);
  return out;
}

}  // namespace ember
