#pragma once

// The walk: a record's values (simdjson DOM, or scalars of a Record or a column) checked
// against the compiled Nodes, collecting errors with their paths and writing features
// into rows. Included by validate.cpp (JSON records) and scalars.cpp (Records, columns).

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "instance.hpp"
#include "schema_internal.hpp"
#include "validate_internal.hpp"

namespace ember::detail {
namespace {  // each including translation unit gets its own

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// ---- the walk -----------------------------------------------------------------------

struct Segment {
  std::string_view text;  // a key, or a ready-made JSON Pointer (raw)
  std::size_t index = 0;
  enum Kind : std::uint8_t { kKey, kIndex, kRaw } kind = kKey;
};

// The instance path while walking: inline for ordinary depths, so a walk allocates
// nothing unless it reports an error.

class PathStack {
 public:
  // Fields are stored one by one: building a Segment and copying it whole costs a
  // store-forwarding stall on every property of every record.
  void push(std::string_view text, std::size_t index, Segment::Kind kind) {
    if (size_ < inline_.size()) {
      Segment& s = inline_[size_];
      s.text = text;
      s.index = index;
      s.kind = kind;
    } else {
      overflow_.push_back({text, index, kind});
    }
    ++size_;
  }
  void pop_back() {
    --size_;
    if (size_ >= inline_.size()) overflow_.pop_back();
  }
  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < size_; ++i) f(i < inline_.size() ? inline_[i] : overflow_[i - inline_.size()]);
  }

 private:
  std::array<Segment, 24> inline_;
  std::vector<Segment> overflow_;
  std::size_t size_ = 0;
};

// Builds the message only when it will be reported: probes (anyOf branches, Optional
// fields) fail often and must not pay for text nobody reads.
#define FAIL(node, keyword, message) (reporting() ? fail((node), (keyword), (message)) : false)

class Walker {
 public:
  Walker(const SchemaImpl& schema, ValidationReport* report, RowOut row)
      : s_(schema), report_(report), row_(row), cap_(schema.options.max_errors),
        max_string_(schema.options.limits.max_string_bytes) {}

  template <typename V>
  bool validate(const Node& node, const V& v, const Plan* plan) {
    if (stopped()) return false;
    const Node& n = node.alias ? *node.alias : node;
    if (n.leaf) return leaf(n, v);
    if (n.nullable_of) return v.type() == JsonType::kNull || validate(*n.nullable_of, v, plan);
    return general(n, v, plan);
  }

  // Everything that is not a plain scalar: kept out of line so the common path above
  // stays small.
  template <typename V>
  [[gnu::noinline]] bool general(const Node& n, const V& v, const Plan* plan) {
    if (n.is_false) return FAIL(n, "false", "no value is allowed here");
    const std::uint8_t bit = type_bit(v);
    if (n.has_type && !(n.types & bit)) {
      return FAIL(n, "type", "expected " + type_names(n.types) + ", got " + describe(v));
    }
    bool ok = true;
    if (n.const_value && !equals_constant(v, *n.const_value)) {
      ok = FAIL(n, "const", describe(v) + " is not the constant " + n.const_value->value.dump());
      if (probing_) return false;
    }
    if (n.has_enum && !in_enum(n, v)) {
      ok = false;
      if (probing_) return false;
    }
    switch (v.type()) {
      case JsonType::kInt64:
      case JsonType::kUint64:
      case JsonType::kDouble: ok = numeric(n, v) && ok; break;
      case JsonType::kString: ok = string(n, v.as_string()) && ok; break;
      case JsonType::kArray: ok = array(n, v) && ok; break;
      case JsonType::kObject: ok = object(n, v, plan) && ok; break;
      default: break;
    }
    if (!ok && probing_) return false;
    if (n.ref) ok = validate(*n.ref, v, plan) && ok;
    for (const Node* sub : n.all_of) {
      if (!ok && probing_) return false;
      ok = validate(*sub, v, plan) && ok;
    }
    if (!n.any_of.empty()) ok = any_of(n, v, plan) && ok;
    if (!n.one_of.empty()) ok = one_of(n, v, plan) && ok;
    if (n.not_node && probe(*n.not_node, v)) ok = FAIL(n, "not", describe(v) + " must not match the schema in not");
    return ok;
  }

  // The common case: a scalar with a type and simple checks.
  template <typename V>
  [[gnu::always_inline]] bool leaf(const Node& n, const V& v) {
    const JsonType t = v.type();
    bool ok = true;
    switch (t) {
      case JsonType::kInt64:
      case JsonType::kUint64:
      case JsonType::kDouble:
        if (!(n.types & kNumberBit) && !((n.types & kIntegerBit) && is_integral(v))) break;
        if (n.numeric_checks) ok = numeric(n, v);
        if (n.has_enum) ok = in_enum(n, v) && ok;
        return ok;
      case JsonType::kString:
        if (!(n.types & kStringBit)) break;
        if (n.string_checks || v.as_string().size() > max_string_) ok = string(n, v.as_string());
        if (n.has_enum) ok = in_enum(n, v) && ok;
        return ok;
      case JsonType::kBool:
        if (!(n.types & kBoolBit)) break;
        return !n.has_enum || in_enum(n, v);
      case JsonType::kNull:
        if (!(n.types & kNullBit)) break;
        return !n.has_enum || in_enum(n, v);
      default: break;
    }
    return FAIL(n, "type", "expected " + type_names(n.types) + ", got " + describe(v));
  }

  template <typename V>
  bool in_enum(const Node& n, const V& v) {
    if (!n.string_enum.empty() && v.type() == JsonType::kString) {
      const std::string_view s = v.as_string();
      for (const auto& e : n.string_enum) {
        if (e.size() == s.size() && std::memcmp(e.data(), s.data(), s.size()) == 0) return true;
      }
    } else {
      for (const auto& c : n.enum_values) {
        if (equals_constant(v, c)) return true;
      }
    }
    if (!reporting()) return false;
    std::string allowed;
    for (std::size_t i = 0; i < n.enum_values.size() && i < 10; ++i) {
      allowed += (i ? ", " : "") + n.enum_values[i].value.dump();
    }
    if (n.enum_values.size() > 10) allowed += ", ...";
    return fail(n, "enum", describe(v) + " is not one of " + allowed);
  }

  // Validates a feature's value and writes it into the row, applying the policy.
  template <typename V>
  bool feature(std::size_t f, const Node& node, const V& v) {
    const FeatureSpec& spec = s_.features[f];
    if (spec.policy == FieldPolicy::kReject) {
      const Node& n = node.alias ? *node.alias : node;
      if (n.leaf && !stopped()) {  // the common case, without the general walk's overhead
        const bool ok = leaf(n, v);
        write(f, v);
        return ok;
      }
    }
    if (spec.policy == FieldPolicy::kReject || probe(node, v)) {
      const bool ok = spec.policy == FieldPolicy::kReject ? validate(node, v, nullptr) : true;
      write(f, v);
      return ok;
    }
    if (spec.policy == FieldPolicy::kCoerce) {
      if (auto coerced = coerce(spec.kind, v)) {
        const ScalarValue cv(*coerced);
        const bool ok = validate(node, cv, nullptr);
        write(f, cv);
        return ok;
      }
      return validate(node, v, nullptr);
    }
    flag(f);  // kFlag: accepted as missing
    return true;
  }

  template <typename V>
  bool record(const V& v, const Plan* plan) {
    if (v.type() != JsonType::kObject) return FAIL(*s_.root, "type", "a record must be a JSON object, got " + describe(v));
    return validate(*s_.root, v, plan);
  }

  // The fast path for a record that is valid, in one flat pass: no messages, flags kept
  // in `deferred` until the whole record has passed. False means "take the general
  // walk", which then finds and reports whatever is wrong (or flags what is unusual).
  bool fast(const Plan& plan, const SimdValue& v, std::vector<std::uint32_t>& deferred) {
    const Node& n = *plan.object_node;
    const std::size_t np = n.properties.size();
    std::uint64_t seen = 0;
    std::size_t hint = 0;
    for (auto field : v.obj()) {
      const std::string_view key = field.key;
      std::size_t idx;
      if (hint < np && same_key(n.properties[hint], key)) {
        idx = hint;
      } else {
        auto it = n.property_index.find(key);
        if (it == n.property_index.end()) return false;
        idx = it->second;
      }
      hint = idx + 1;
      const std::uint64_t bit = std::uint64_t{1} << idx;
      if (seen & bit) return false;
      seen |= bit;
      const Plan::Field& f = plan.fields[idx];
      const SimdValue value(field.value);
      if (f.nested != nullptr) {
        if (value.type() != JsonType::kObject || !fast(*f.nested, value, deferred)) return false;
        continue;
      }
      if (f.nullable && value.type() == JsonType::kNull) continue;
      if (!leaf(*f.leaf, value)) return false;
      if (f.feature >= 0) write(static_cast<std::size_t>(f.feature), value, &deferred);
    }
    return (seen & n.required_mask) == n.required_mask;
  }

  bool required_missing(const Node& n, const std::string& name) {
    return FAIL(n, "required", "missing required property " + quote_text(name));
  }
  bool not_allowed(const Node& n, std::string_view key) {
    return FAIL(n, "additionalProperties", "property " + quote_text(key) + " is not allowed");
  }

  void push_raw(std::string_view pointer) { path_.push(pointer, 0, Segment::kRaw); }
  void push_key(std::string_view key) { path_.push(key, 0, Segment::kKey); }
  void pop() { path_.pop_back(); }
  bool stopped() const { return report_ != nullptr && report_->truncated() && !probing_; }

 private:
  template <typename V>
  bool probe(const Node& n, const V& v) {
    ++probing_;
    const bool ok = validate(n, v, nullptr);
    --probing_;
    return ok;
  }

  bool reporting() const noexcept { return probing_ == 0 && report_ != nullptr; }

  bool fail(const Node& n, const char* keyword, std::string message) {
    if (!reporting()) return false;
    ValidationError e;
    path_.for_each([&e](const Segment& seg) {
      if (seg.kind == Segment::kRaw) {
        e.instance_path += seg.text;
        return;
      }
      e.instance_path += '/';
      if (seg.kind == Segment::kIndex) {
        e.instance_path += std::to_string(seg.index);
      } else {
        for (char c : seg.text) {
          if (c == '~') e.instance_path += "~0";
          else if (c == '/') e.instance_path += "~1";
          else e.instance_path += c;
        }
      }
    });
    e.schema_path = n.path + "/" + keyword;
    e.keyword = keyword;
    e.message = std::move(message);
    report_->add_error(std::move(e), cap_);
    return false;
  }

  template <typename V>
  bool numeric(const Node& n, const V& v) {
    const double x = v.as_double();
    bool ok = true;
    if (n.minimum && x < *n.minimum) {
      ok = FAIL(n, "minimum", number_text(x) + " is less than the minimum " + number_text(*n.minimum));
    }
    if (n.maximum && x > *n.maximum) {
      ok = FAIL(n, "maximum", number_text(x) + " is greater than the maximum " + number_text(*n.maximum));
    }
    if (n.exclusive_minimum && !(x > *n.exclusive_minimum)) {
      ok = FAIL(n, "exclusiveMinimum", number_text(x) + " is not greater than " + number_text(*n.exclusive_minimum));
    }
    if (n.exclusive_maximum && !(x < *n.exclusive_maximum)) {
      ok = FAIL(n, "exclusiveMaximum", number_text(x) + " is not less than " + number_text(*n.exclusive_maximum));
    }
    if (n.multiple_of) {
      const double q = x / *n.multiple_of;
      if (!std::isfinite(q) || std::abs(q - std::round(q)) > 1e-9 * std::max(1.0, std::abs(q))) {
        ok = FAIL(n, "multipleOf", number_text(x) + " is not a multiple of " + number_text(*n.multiple_of));
      }
    }
    return ok;
  }

  bool string(const Node& n, std::string_view s) {
    if (s.size() > max_string_) {
      return FAIL(n, "maxLength", "string of " + std::to_string(s.size()) + " bytes is over the limit of " +
                                      std::to_string(max_string_) + " bytes");
    }
    bool ok = true;
    if (n.min_length || n.max_length) {
      const std::size_t len = utf8_length(s);
      if (n.min_length && len < *n.min_length) {
        ok = FAIL(n, "minLength", quote_text(s) + " is shorter than " + std::to_string(*n.min_length) + " characters");
      }
      if (n.max_length && len > *n.max_length) {
        ok = FAIL(n, "maxLength", quote_text(s) + " is longer than " + std::to_string(*n.max_length) + " characters");
      }
    }
    if (n.pattern && !re2::RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *n.pattern)) {
      ok = FAIL(n, "pattern", quote_text(s) + " does not match the pattern " + quote_text(n.pattern->pattern()));
    }
    return ok;
  }

  template <typename V>
  bool array(const Node& n, const V& v) {
    bool ok = true;
    if (n.min_items || n.max_items) {
      const std::size_t size = v.array_size();
      if (n.min_items && size < *n.min_items) {
        ok = FAIL(n, "minItems", "array of " + std::to_string(size) + " items has fewer than " +
                                     std::to_string(*n.min_items));
      }
      if (n.max_items && size > *n.max_items) {
        ok = FAIL(n, "maxItems", "array of " + std::to_string(size) + " items has more than " +
                                     std::to_string(*n.max_items));
      }
    }
    if (!n.prefix_items.empty() || n.items) {
      v.for_items([&](std::size_t i, const auto& item) {
        const Node* sub = i < n.prefix_items.size() ? n.prefix_items[i] : n.items;
        if (sub == nullptr) return true;
        path_.push({}, i, Segment::kIndex);
        ok = validate(*sub, item, nullptr) && ok;
        path_.pop_back();
        return ok || !(probing_ || stopped());
      });
    }
    if (n.unique_items) {
      std::map<std::string, std::size_t> seen;
      v.for_items([&](std::size_t i, const auto& item) {
        std::string text;
        item.canonical(text);
        auto [it, fresh] = seen.emplace(std::move(text), i);
        if (!fresh) {
          ok = FAIL(n, "uniqueItems", "items " + std::to_string(it->second) + " and " + std::to_string(i) + " are equal");
          return false;
        }
        return true;
      });
    }
    return ok;
  }

  template <typename V>
  bool object(const Node& n, const V& v, const Plan* plan) {
    const bool apply = plan != nullptr && plan->object_node == &n && row_.values != nullptr;
    const std::size_t np = n.properties.size();
    std::array<std::uint64_t, 4> seen_small{};
    std::vector<std::uint64_t> seen_large;
    std::uint64_t* seen = seen_small.data();
    if (np > 256) {
      seen_large.assign((np + 63) / 64, 0);
      seen = seen_large.data();
    }
    std::vector<std::string_view> others;  // keys outside `properties`: rare, so allocated lazily
    bool ok = true;
    std::size_t hint = 0;
    v.for_fields([&](std::string_view key, const auto& value) {
      if (key.size() > max_string_) {
        ok = FAIL(n, "propertyNames", "key of " + std::to_string(key.size()) + " bytes is over the limit of " +
                                          std::to_string(max_string_) + " bytes");
        return !(probing_ || stopped());
      }
      std::size_t idx = np;
      if (hint < np && same_key(n.properties[hint], key)) {
        idx = hint;
      } else if (np != 0) {
        if (auto it = n.property_index.find(key); it != n.property_index.end()) idx = it->second;
      }
      path_.push(key, 0, Segment::kKey);
      if (idx < np) {
        hint = idx + 1;
        if (seen[idx / 64] & (std::uint64_t{1} << (idx % 64))) {
          ok = FAIL(n, "json", "duplicate key " + quote_text(key));
        } else {
          seen[idx / 64] |= std::uint64_t{1} << (idx % 64);
          const Node& sub = *n.properties[idx].node;
          if (apply && plan->fields[idx].feature >= 0) {
            ok = feature(static_cast<std::size_t>(plan->fields[idx].feature), sub, value) && ok;
          } else {
            ok = validate(sub, value, apply ? plan->fields[idx].nested : nullptr) && ok;
          }
        }
      } else {
        if (std::find(others.begin(), others.end(), key) != others.end()) {
          ok = FAIL(n, "json", "duplicate key " + quote_text(key));
        } else {
          others.push_back(key);
          if (n.additional == Additional::kDeny) {
            ok = not_allowed(n, key);
          } else if (n.additional == Additional::kSchema) {
            ok = validate(*n.additional_node, value, nullptr) && ok;
          }
        }
      }
      path_.pop_back();
      return ok || !(probing_ || stopped());
    });
    if (!ok && probing_) return false;
    if (np <= 64 && n.required_all_known && (seen[0] & n.required_mask) == n.required_mask) return ok;
    for (std::size_t r = 0; r < n.required.size(); ++r) {
      const std::size_t idx = n.required_index[r];
      const bool present = idx != std::string::npos
                               ? ((seen[idx / 64] >> (idx % 64)) & 1) != 0
                               : std::find(others.begin(), others.end(), n.required[r]) != others.end();
      if (!present) ok = required_missing(n, n.required[r]);
    }
    return ok;
  }

  template <typename V>
  bool any_of(const Node& n, const V& v, const Plan* plan) {
    for (const Node* b : n.any_of) {
      if (probe(*b, v)) {
        if (plan != nullptr) validate(*b, v, plan);  // again, to write nested features
        return true;
      }
    }
    // One branch of the right type (Optional[T] is anyOf [T, null]): its errors say most.
    const Node* only = nullptr;
    int candidates = 0;
    const std::uint8_t bit = type_bit(v);
    for (const Node* b : n.any_of) {
      const Node* t = b->ref && !b->has_type ? b->ref : b;
      if (!t->has_type || (t->types & bit)) {
        only = b;
        ++candidates;
      }
    }
    if (candidates == 1 && !probing_) return validate(*only, v, plan);
    return FAIL(n, "anyOf", describe(v) + " does not match any of the " + std::to_string(n.any_of.size()) +
                                " schemas in anyOf");
  }

  template <typename V>
  bool one_of(const Node& n, const V& v, const Plan* plan) {
    std::size_t matches = 0;
    const Node* match = nullptr;
    for (const Node* b : n.one_of) {
      if (probe(*b, v)) {
        ++matches;
        match = b;
      }
    }
    if (matches == 1) {
      if (plan != nullptr) validate(*match, v, plan);
      return true;
    }
    return FAIL(n, "oneOf", describe(v) + " matches " + std::to_string(matches) + " of the " +
                                std::to_string(n.one_of.size()) + " schemas in oneOf (exactly one must match)");
  }

  template <typename V>
  static std::optional<Record::Value> coerce(FeatureKind kind, const V& v) {
    const JsonType t = v.type();
    switch (kind) {
      case FeatureKind::kNumber:
      case FeatureKind::kInteger: {
        if (t != JsonType::kString) return std::nullopt;
        const std::string_view s = v.as_string();
        double d = 0;
        const auto res = std::from_chars(s.data(), s.data() + s.size(), d);
        if (res.ec != std::errc() || res.ptr != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
        if (kind == FeatureKind::kInteger) {
          if (d != std::floor(d) || std::abs(d) > 9.0e15) return std::nullopt;
          return Record::Value(static_cast<std::int64_t>(d));
        }
        return Record::Value(d);
      }
      case FeatureKind::kBoolean:
        if (is_number(v) && (v.as_double() == 0.0 || v.as_double() == 1.0)) return Record::Value(v.as_double() == 1.0);
        if (t == JsonType::kString && (v.as_string() == "true" || v.as_string() == "false")) {
          return Record::Value(v.as_string() == "true");
        }
        return std::nullopt;
      case FeatureKind::kCategory:
      case FeatureKind::kText:
        if (t == JsonType::kInt64 || t == JsonType::kUint64 || (t == JsonType::kDouble && is_integral(v))) {
          std::string text;
          append_canonical_number(text, v.as_double());
          return Record::Value(std::move(text));
        }
        if (t == JsonType::kBool) return Record::Value(std::string(v.as_bool() ? "true" : "false"));
        return std::nullopt;
    }
    return std::nullopt;
  }

  // A value accepted but worth a look: outside the training range, or (kFlag) of the
  // wrong type, in which case it also becomes missing.
  void note_flag(std::size_t f) {
    if (report_ != nullptr) report_->add_flag(static_cast<std::uint32_t>(f));
    s_.flag_counts[f].fetch_add(1, std::memory_order_relaxed);
  }
  void flag(std::size_t f) {
    if (row_.values != nullptr) row_.values[f] = kMissing;
    note_flag(f);
  }

  template <typename V>
  void write(std::size_t f, const V& v, std::vector<std::uint32_t>* deferred = nullptr) {
    if (row_.values == nullptr) return;
    const FeatureSpec& spec = s_.features[f];
    double& slot = row_.values[f];
    const JsonType t = v.type();
    switch (spec.kind) {
      case FeatureKind::kNumber:
      case FeatureKind::kInteger:
        if (is_number(v)) {
          const double x = v.as_double();
          slot = x;
          row_.integers[f] = v.as_exact_integer();
          if ((spec.training_min && x < *spec.training_min) || (spec.training_max && x > *spec.training_max)) {
            if (deferred != nullptr) deferred->push_back(static_cast<std::uint32_t>(f));
            else note_flag(f);
          }
        }
        return;
      case FeatureKind::kBoolean:
        if (t == JsonType::kBool) {
          slot = v.as_bool() ? 1.0 : 0.0;
          row_.integers[f] = v.as_bool() ? 1 : 0;
        }
        return;
      case FeatureKind::kCategory:
        if (t == JsonType::kString) {
          const std::string_view s = v.as_string();
          for (std::size_t i = 0; i < spec.categories.size(); ++i) {
            if (spec.categories[i] == s) {
              slot = static_cast<double>(i);
              break;
            }
          }
          row_.text[f].assign(s.data(), s.size());
        }
        return;
      case FeatureKind::kText:
        if (t == JsonType::kString) {
          const std::string_view s = v.as_string();
          slot = 0.0;
          row_.text[f].assign(s.data(), s.size());
        }
        return;
    }
  }

  const SchemaImpl& s_;
  ValidationReport* report_;
  RowOut row_;
  std::size_t cap_;
  std::size_t max_string_;
  int probing_ = 0;
  PathStack path_;
};

void reset_slots(const SchemaImpl& s, RowOut out) {
  std::fill_n(out.values, s.features.size(), kMissing);
  for (std::size_t i = 0; i < s.features.size(); ++i) out.text[i].clear();
}

RowOut reset_row(const SchemaImpl& s, FeatureRow& row) {
  const std::size_t n = s.features.size();
  row.values.resize(n);
  row.integers.resize(n);
  row.text.resize(n);
  const RowOut out{row.values.data(), row.integers.data(), row.text.data()};
  reset_slots(s, out);
  return out;
}

#undef FAIL

}  // namespace
}  // namespace ember::detail
