// pipeline.json: loading (every field checked) and the per-row transform.
#include "ember/pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/files.hpp"

namespace ember {
namespace detail {
namespace {

using Json = nlohmann::json;
constexpr int kFormatVersion = 1;

struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// One elementwise step on one column, with scikit-learn's arithmetic order.
struct Op {
  enum Kind : std::uint8_t {
    kCenterScale,  // (x - a) / b: StandardScaler, RobustScaler, MaxAbsScaler
    kScaleShift,   // x * a + b: MinMaxScaler
    kClip,         // min(max(x, a), b): MinMaxScaler(clip=True), np.clip
    kLog1p,        // log1p(x)
    kSqrt,         // sqrt(x)
  } kind;
  double a;
  double b;
};

// The categories of one encoded column: strings or numbers, plus whether a missing
// value (NaN / None) was itself a category at fit time, and its index.
struct Categories {
  bool numeric = false;
  std::vector<std::string> names;
  std::vector<double> numbers;
  std::vector<std::int64_t> integers;  // each number as an exact integer, or kNotInteger
  std::unordered_map<std::string, int, TextHash, std::equal_to<>> by_name;
  int missing_index = -1;
  std::size_t size() const { return numeric ? numbers.size() + (missing_index >= 0) : names.size() + (missing_index >= 0); }
  // Index of a present value, or -1. An integer value (`exact` is not kNotInteger) is
  // matched exactly, as int64, so IDs above 2^53 never collide.
  int find(double x, std::int64_t exact) const {
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      if (exact != kNotInteger ? integers[i] == exact : numbers[i] == x) return static_cast<int>(i);
    }
    return -1;
  }
  int find(std::string_view s) const {
    auto it = by_name.find(s);
    return it == by_name.end() ? -1 : it->second;
  }
};

enum class Encoder : std::uint8_t { kNone, kOneHot, kOrdinal, kBins };

// Everything that happens to one input column inside one transformer.
struct ColumnPlan {
  std::size_t input = 0;    // index into the row
  bool text = false;        // read row.text (a string column) rather than row.values
  std::string name;
  // imputation of a missing value
  bool impute = false;
  double fill_number = 0.0;
  std::int64_t fill_integer = kNotInteger;  // fill_number exactly, when it is an integer
  std::string fill_text;
  std::vector<Op> ops;  // numeric elementwise steps, in order
  Encoder encoder = Encoder::kNone;
  Categories categories;
  bool ignore_unknown = false;  // one-hot: handle_unknown=ignore (all zeros)
  int drop = -1;                // one-hot: dropped category index
  bool has_unknown_value = false;
  double unknown_value = 0.0;   // ordinal: use_encoded_value
  double encoded_missing = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> inner_edges;  // KBinsDiscretizer: bin_edges[1:-1]
  bool bins_onehot = false;
  std::size_t out = 0;          // first output column
  std::size_t width = 1;
};

std::string where(const std::string& transformer, std::size_t step, const std::string& type) {
  return "pipeline: transformer '" + transformer + "', step " + std::to_string(step) + " (" + type + ")";
}

}  // namespace

struct PipelineImpl {
  std::string json;
  std::vector<std::string> inputs;
  std::vector<bool> input_is_text;
  std::vector<std::string> outputs;
  std::vector<ColumnPlan> columns;
};

namespace {

Result<std::vector<double>> numbers(const Json& step, const char* field, std::size_t width, const std::string& at,
                                    bool nullable = false) {
  if (!step.contains(field)) return invalid_argument(at + ": missing field '" + field + "'");
  const Json& v = step.at(field);
  if (v.is_null() && nullable) return std::vector<double>{};
  if (!v.is_array() || v.size() != width) {
    return invalid_argument(at + ": field '" + field + "' must be an array of " + std::to_string(width) + " numbers");
  }
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number()) return invalid_argument(at + ": field '" + field + "' must hold numbers only");
    out.push_back(x.get<double>());
  }
  return out;
}

// A JSON number as an exact int64 (an integer literal in range, or an integral float),
// else kNotInteger.
std::int64_t exact_json_integer(const Json& v) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<std::int64_t>();
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    return u <= static_cast<std::uint64_t>(INT64_MAX) ? static_cast<std::int64_t>(u) : kNotInteger;
  }
  return exact_integer(v.get<double>());
}

Result<std::string> text_field(const Json& step, const char* field, const std::string& at,
                               std::initializer_list<const char*> allowed) {
  if (!step.contains(field) || !step.at(field).is_string()) {
    return invalid_argument(at + ": field '" + field + "' must be a string");
  }
  const std::string value = step.at(field).get<std::string>();
  for (const char* a : allowed) {
    if (value == a) return value;
  }
  return invalid_argument(at + ": field '" + field + "' has unsupported value '" + value + "'");
}

Status load_categories(const Json& list, ColumnPlan& col, const std::string& at) {
  if (!list.is_array() || list.empty()) return invalid_argument(at + ": categories of '" + col.name + "' must be a non-empty array");
  bool any_number = false, any_string = false;
  for (const auto& c : list) {
    if (c.is_null()) {
      if (col.categories.missing_index >= 0) return invalid_argument(at + ": categories of '" + col.name + "' list null twice");
      col.categories.missing_index = static_cast<int>(any_number ? col.categories.numbers.size() : col.categories.names.size());
      continue;
    }
    if (col.categories.missing_index >= 0) {
      return invalid_argument(at + ": in the categories of '" + col.name + "', null must come last");
    }
    if (c.is_number()) {
      any_number = true;
      col.categories.numbers.push_back(c.get<double>());
      col.categories.integers.push_back(exact_json_integer(c));
    } else if (c.is_string()) {
      any_string = true;
      const auto idx = static_cast<int>(col.categories.names.size());
      if (!col.categories.by_name.emplace(c.get<std::string>(), idx).second) {
        return invalid_argument(at + ": category '" + c.get<std::string>() + "' of '" + col.name + "' is listed twice");
      }
      col.categories.names.push_back(c.get<std::string>());
    } else {
      return invalid_argument(at + ": categories of '" + col.name + "' must be strings or numbers");
    }
  }
  if (any_number && any_string) return invalid_argument(at + ": categories of '" + col.name + "' mix strings and numbers");
  col.categories.numeric = any_number;
  if (col.categories.numeric == col.text && (any_number || any_string)) {
    return invalid_argument(at + ": column '" + col.name + "' is a " + (col.text ? "string" : "number") +
                            " column but its categories are " + (any_number ? "numbers" : "strings"));
  }
  return {};
}

Status load_step(const Json& step, std::size_t index, const std::string& transformer,
                 std::vector<ColumnPlan*>& cols, bool& encoded) {
  if (!step.is_object() || !step.contains("type") || !step.at("type").is_string()) {
    return invalid_argument("pipeline: transformer '" + transformer + "', step " + std::to_string(index) +
                            ": a step must be an object with a string 'type'");
  }
  const std::string type = step.at("type").get<std::string>();
  const std::string at = where(transformer, index, type);
  if (encoded) return invalid_argument(at + ": no step may follow an encoder");
  const std::size_t w = cols.size();
  if (type == "passthrough") return {};
  if (type == "simple_imputer") {
    auto strategy = text_field(step, "strategy", at, {"mean", "median", "most_frequent", "constant"});
    if (!strategy.ok()) return strategy.status();
    if (!step.contains("fill") || !step.at("fill").is_array() || step.at("fill").size() != w) {
      return invalid_argument(at + ": field 'fill' must be an array of " + std::to_string(w) + " values");
    }
    for (std::size_t i = 0; i < w; ++i) {
      const Json& f = step.at("fill")[i];
      ColumnPlan& c = *cols[i];
      if (c.impute) return invalid_argument(at + ": column '" + c.name + "' is imputed twice");
      if (c.text) {
        if (!f.is_string()) return invalid_argument(at + ": the fill value of string column '" + c.name + "' must be a string");
        c.fill_text = f.get<std::string>();
      } else {
        if (!f.is_number()) return invalid_argument(at + ": the fill value of column '" + c.name + "' must be a number");
        c.fill_number = f.get<double>();
        c.fill_integer = exact_json_integer(f);
      }
      c.impute = true;
    }
    return {};
  }
  const bool scaler = type == "standard_scaler" || type == "min_max_scaler" || type == "max_abs_scaler" ||
                      type == "robust_scaler";
  if (scaler) {
    for (ColumnPlan* c : cols) {
      if (c->text) return invalid_argument(at + ": column '" + c->name + "' holds strings; a scaler needs numbers");
    }
    if (type == "min_max_scaler") {
      auto scale = numbers(step, "scale", w, at);
      if (!scale.ok()) return scale.status();
      auto min = numbers(step, "min", w, at);
      if (!min.ok()) return min.status();
      auto range = numbers(step, "feature_range", 2, at);
      if (!range.ok()) return range.status();
      if (!step.contains("clip") || !step.at("clip").is_boolean()) {
        return invalid_argument(at + ": field 'clip' must be a boolean");
      }
      for (std::size_t i = 0; i < w; ++i) {
        cols[i]->ops.push_back({Op::kScaleShift, (*scale)[i], (*min)[i]});
        if (step.at("clip").get<bool>()) cols[i]->ops.push_back({Op::kClip, (*range)[0], (*range)[1]});
      }
      return {};
    }
    const char* center = type == "standard_scaler" ? "mean" : type == "robust_scaler" ? "center" : nullptr;
    std::vector<double> sub(w, 0.0), div(w, 1.0);
    if (center != nullptr) {
      auto c = numbers(step, center, w, at, /*nullable=*/true);
      if (!c.ok()) return c.status();
      if (!c->empty()) sub = *c;
    }
    auto scale = numbers(step, "scale", w, at, /*nullable=*/type != "max_abs_scaler");
    if (!scale.ok()) return scale.status();
    if (!scale->empty()) div = *scale;
    for (std::size_t i = 0; i < w; ++i) {
      if (!(div[i] > 0)) return invalid_argument(at + ": scale of '" + cols[i]->name + "' must be positive");
      cols[i]->ops.push_back({Op::kCenterScale, sub[i], div[i]});
    }
    return {};
  }
  if (type == "function") {
    auto fn = text_field(step, "name", at, {"log1p", "sqrt", "clip"});
    if (!fn.ok()) return fn.status();
    Op op{*fn == "log1p" ? Op::kLog1p : *fn == "sqrt" ? Op::kSqrt : Op::kClip, 0.0, 0.0};
    if (op.kind == Op::kClip) {
      const auto bound = [&](const char* field, double fallback) -> Result<double> {
        if (!step.contains(field) || step.at(field).is_null()) return fallback;
        if (!step.at(field).is_number()) return invalid_argument(at + ": field '" + std::string(field) + "' must be a number or null");
        return step.at(field).get<double>();
      };
      auto lo = bound("min", -std::numeric_limits<double>::infinity());
      if (!lo.ok()) return lo.status();
      auto hi = bound("max", std::numeric_limits<double>::infinity());
      if (!hi.ok()) return hi.status();
      if (*lo > *hi) return invalid_argument(at + ": 'min' is greater than 'max'");
      op.a = *lo;
      op.b = *hi;
    }
    for (ColumnPlan* c : cols) {
      if (c->text) return invalid_argument(at + ": column '" + c->name + "' holds strings; " + *fn + " needs numbers");
      c->ops.push_back(op);
    }
    return {};
  }
  if (type == "kbins_discretizer") {
    auto encode = text_field(step, "encode", at, {"ordinal", "onehot", "onehot-dense"});
    if (!encode.ok()) return encode.status();
    if (!step.contains("bin_edges") || !step.at("bin_edges").is_array() || step.at("bin_edges").size() != w) {
      return invalid_argument(at + ": field 'bin_edges' must be an array of " + std::to_string(w) + " arrays");
    }
    for (std::size_t i = 0; i < w; ++i) {
      ColumnPlan& c = *cols[i];
      if (c.text) return invalid_argument(at + ": column '" + c.name + "' holds strings; bins need numbers");
      const Json& edges = step.at("bin_edges")[i];
      if (!edges.is_array() || edges.size() < 2) {
        return invalid_argument(at + ": bin_edges of '" + c.name + "' must hold at least 2 numbers");
      }
      std::vector<double> e;
      for (const auto& x : edges) {
        if (!x.is_number()) return invalid_argument(at + ": bin_edges of '" + c.name + "' must hold numbers");
        if (!e.empty() && x.get<double>() < e.back()) {
          return invalid_argument(at + ": bin_edges of '" + c.name + "' must not decrease");
        }
        e.push_back(x.get<double>());
      }
      c.inner_edges.assign(e.begin() + 1, e.end() - 1);
      c.encoder = Encoder::kBins;
      c.bins_onehot = *encode != "ordinal";
      c.width = c.bins_onehot ? e.size() - 1 : 1;
    }
    encoded = true;
    return {};
  }
  if (type == "one_hot_encoder" || type == "ordinal_encoder") {
    if (!step.contains("categories") || !step.at("categories").is_array() || step.at("categories").size() != w) {
      return invalid_argument(at + ": field 'categories' must be an array of " + std::to_string(w) + " arrays");
    }
    for (std::size_t i = 0; i < w; ++i) EMBER_RETURN_IF_ERROR(load_categories(step.at("categories")[i], *cols[i], at));
    if (type == "one_hot_encoder") {
      auto unknown = text_field(step, "handle_unknown", at, {"error", "ignore"});
      if (!unknown.ok()) return unknown.status();
      if (!step.contains("drop_idx") || !step.at("drop_idx").is_array() || step.at("drop_idx").size() != w) {
        return invalid_argument(at + ": field 'drop_idx' must be an array of " + std::to_string(w) + " entries");
      }
      for (std::size_t i = 0; i < w; ++i) {
        ColumnPlan& c = *cols[i];
        c.encoder = Encoder::kOneHot;
        c.ignore_unknown = *unknown == "ignore";
        const Json& d = step.at("drop_idx")[i];
        if (!d.is_null()) {
          if (!d.is_number_integer() || d.get<std::int64_t>() < 0 ||
              d.get<std::size_t>() >= c.categories.size()) {
            return invalid_argument(at + ": drop_idx of '" + c.name + "' is not a category index");
          }
          c.drop = d.get<int>();
        }
        c.width = c.categories.size() - (c.drop >= 0 ? 1 : 0);
      }
    } else {
      auto unknown = text_field(step, "handle_unknown", at, {"error", "use_encoded_value"});
      if (!unknown.ok()) return unknown.status();
      for (ColumnPlan* c : cols) {
        c->encoder = Encoder::kOrdinal;
        if (*unknown == "use_encoded_value") {
          if (!step.contains("unknown_value") || !(step.at("unknown_value").is_number() || step.at("unknown_value").is_null())) {
            return invalid_argument(at + ": field 'unknown_value' must be a number or null");
          }
          c->has_unknown_value = true;
          c->unknown_value = step.at("unknown_value").is_null() ? std::numeric_limits<double>::quiet_NaN()
                                                                : step.at("unknown_value").get<double>();
        }
        if (step.contains("encoded_missing_value") && step.at("encoded_missing_value").is_number()) {
          c->encoded_missing = step.at("encoded_missing_value").get<double>();
        }
      }
    }
    encoded = true;
    return {};
  }
  return invalid_argument(at + ": unknown step type '" + type + "'");
}

}  // namespace
}  // namespace detail

namespace {

using detail::ColumnPlan;
using detail::Encoder;

// One row's cells: a view of a FeatureRow or of one row of a FeatureBatch.
struct Cells {
  const double* values;
  const std::int64_t* integers;  // nullptr: derive them from `values`
  const std::string* text;
};

std::string cell_text(Cells row, const ColumnPlan& c) {
  if (c.text) return "'" + row.text[c.input] + "'";
  char buf[32];
  if (row.integers != nullptr && row.integers[c.input] != kNotInteger) return std::to_string(row.integers[c.input]);
  std::snprintf(buf, sizeof buf, "%.17g", row.values[c.input]);
  return buf;
}

// The elementwise steps of a numeric column, with scikit-learn's arithmetic order.
double apply_ops(const ColumnPlan& c, double x) {
  for (const detail::Op& op : c.ops) {
    switch (op.kind) {
      case detail::Op::kCenterScale: x = (x - op.a) / op.b; break;
      case detail::Op::kScaleShift: x = x * op.a + op.b; break;
      case detail::Op::kClip: x = std::min(std::max(x, op.a), op.b); break;
      case detail::Op::kLog1p: x = std::log1p(x); break;
      case detail::Op::kSqrt: x = std::sqrt(x); break;
    }
  }
  return x;
}

Status transform_column(const ColumnPlan& c, Cells row, double* out) {
  const double raw = row.values[c.input];
  bool missing = std::isnan(raw);
  double x = raw;
  std::int64_t exact = kNotInteger;
  std::string_view s;
  if (c.text && !missing) s = row.text[c.input];
  if (!missing && !c.text && c.encoder != Encoder::kNone) {
    exact = row.integers != nullptr ? row.integers[c.input] : exact_integer(x);
  }
  if (missing && c.impute) {
    missing = false;
    if (c.text) {
      s = c.fill_text;
    } else {
      x = c.fill_number;
      exact = c.fill_integer;
    }
  }
  if (c.encoder == Encoder::kNone) {
    if (missing) return invalid_argument("column '" + c.name + "': missing value, and no imputer covers it");
    out[0] = apply_ops(c, x);
    return {};
  }
  if (c.encoder == Encoder::kBins) {
    if (missing) return invalid_argument("column '" + c.name + "': missing value, and no imputer covers it");
    x = apply_ops(c, x);
    // np.searchsorted(bin_edges[1:-1], x, side="right"), as scikit-learn does
    const auto bin = static_cast<std::size_t>(
        std::upper_bound(c.inner_edges.begin(), c.inner_edges.end(), x) - c.inner_edges.begin());
    if (!c.bins_onehot) {
      out[0] = static_cast<double>(bin);
    } else {
      std::fill(out, out + c.width, 0.0);
      out[bin] = 1.0;
    }
    return {};
  }
  int idx;
  if (missing) idx = c.categories.missing_index;
  else idx = c.text ? c.categories.find(s) : c.categories.find(x, exact);
  if (c.encoder == Encoder::kOrdinal) {
    if (idx >= 0 && idx != c.categories.missing_index) {
      out[0] = static_cast<double>(idx);
    } else if (missing) {
      out[0] = c.encoded_missing;
    } else if (c.has_unknown_value) {
      out[0] = c.unknown_value;
    } else {
      return invalid_argument("column '" + c.name + "': unknown category " + cell_text(row, c));
    }
    return {};
  }
  std::fill(out, out + c.width, 0.0);
  if (idx < 0) {
    if (c.ignore_unknown) return {};
    return invalid_argument("column '" + c.name + "': " +
                            (missing ? std::string("missing value, and no imputer covers it")
                                     : "unknown category " + cell_text(row, c)));
  }
  if (idx == c.drop) return {};
  out[idx - (c.drop >= 0 && idx > c.drop ? 1 : 0)] = 1.0;
  return {};
}

}  // namespace

Pipeline::Pipeline(std::shared_ptr<const detail::PipelineImpl> impl) : impl_(std::move(impl)) {}

Result<Pipeline> Pipeline::parse(std::string_view text) try {
  detail::Json doc;
  try {
    doc = detail::Json::parse(text.begin(), text.end());
  } catch (const std::exception&) {
    return invalid_argument("pipeline is not valid JSON");
  }
  if (!doc.is_object() || doc.value("format", "") != "ember-pipeline") {
    return invalid_argument("pipeline: not an ember pipeline (\"format\" must be \"ember-pipeline\")");
  }
  if (!doc.contains("version") || !doc.at("version").is_number_integer() ||
      doc.at("version").get<int>() != detail::kFormatVersion) {
    return invalid_argument("pipeline: unsupported format version (this ember reads version " +
                            std::to_string(detail::kFormatVersion) + ")");
  }
  auto impl = std::make_shared<detail::PipelineImpl>();
  impl->json = std::string(text);
  if (!doc.contains("inputs") || !doc.at("inputs").is_array() || doc.at("inputs").empty()) {
    return invalid_argument("pipeline: 'inputs' must be a non-empty array");
  }
  std::unordered_map<std::string, std::size_t> input_index;
  for (const auto& in : doc.at("inputs")) {
    if (!in.is_object() || !in.contains("name") || !in.at("name").is_string()) {
      return invalid_argument("pipeline: each input must be {\"name\": ..., \"kind\": \"number\" or \"string\"}");
    }
    const std::string name = in.at("name").get<std::string>();
    const std::string kind = in.value("kind", "");
    if (kind != "number" && kind != "string") return invalid_argument("pipeline: input '" + name + "' has no valid kind");
    if (!input_index.emplace(name, impl->inputs.size()).second) {
      return invalid_argument("pipeline: input '" + name + "' is listed twice");
    }
    impl->inputs.push_back(name);
    impl->input_is_text.push_back(kind == "string");
  }
  if (!doc.contains("transformers") || !doc.at("transformers").is_array()) {
    return invalid_argument("pipeline: 'transformers' must be an array");
  }
  std::vector<bool> used(impl->inputs.size(), false);
  std::size_t out = 0;
  for (const auto& t : doc.at("transformers")) {
    if (!t.is_object() || !t.contains("name") || !t.at("name").is_string() || !t.contains("columns") ||
        !t.at("columns").is_array() || !t.contains("steps") || !t.at("steps").is_array()) {
      return invalid_argument("pipeline: each transformer needs 'name', 'columns' and 'steps'");
    }
    const std::string name = t.at("name").get<std::string>();
    const std::size_t first = impl->columns.size();
    for (const auto& col : t.at("columns")) {
      if (!col.is_string() || !input_index.count(col.get<std::string>())) {
        return invalid_argument("pipeline: transformer '" + name + "' names an unknown column " + col.dump());
      }
      ColumnPlan c;
      c.name = col.get<std::string>();
      c.input = input_index.at(c.name);
      c.text = impl->input_is_text[c.input];
      used[c.input] = true;
      impl->columns.push_back(std::move(c));
    }
    std::vector<ColumnPlan*> cols;
    for (std::size_t i = first; i < impl->columns.size(); ++i) cols.push_back(&impl->columns[i]);
    if (cols.empty()) return invalid_argument("pipeline: transformer '" + name + "' has no columns");
    bool encoded = false;
    for (std::size_t s = 0; s < t.at("steps").size(); ++s) {
      EMBER_RETURN_IF_ERROR(detail::load_step(t.at("steps")[s], s, name, cols, encoded));
    }
    for (ColumnPlan* c : cols) {
      if (c->text && c->encoder == Encoder::kNone) {
        return invalid_argument("pipeline: transformer '" + name + "': string column '" + c->name +
                                "' must end in an encoder");
      }
    }
  }
  const std::string remainder = doc.value("remainder", "drop");
  if (remainder != "drop" && remainder != "passthrough") {
    return invalid_argument("pipeline: 'remainder' must be \"drop\" or \"passthrough\"");
  }
  if (remainder == "passthrough") {
    for (std::size_t i = 0; i < impl->inputs.size(); ++i) {
      if (used[i]) continue;
      if (impl->input_is_text[i]) {
        return invalid_argument("pipeline: remainder passthrough of string column '" + impl->inputs[i] + "'");
      }
      ColumnPlan c;
      c.name = impl->inputs[i];
      c.input = i;
      impl->columns.push_back(std::move(c));
    }
  }
  for (ColumnPlan& c : impl->columns) {
    c.out = out;
    out += c.width;
  }
  if (!doc.contains("output_names") || !doc.at("output_names").is_array()) {
    return invalid_argument("pipeline: 'output_names' must be an array");
  }
  for (const auto& n : doc.at("output_names")) {
    if (!n.is_string()) return invalid_argument("pipeline: 'output_names' must hold strings");
    impl->outputs.push_back(n.get<std::string>());
  }
  if (impl->outputs.size() != out) {
    return invalid_argument("pipeline: the steps produce " + std::to_string(out) + " columns but 'output_names' lists " +
                            std::to_string(impl->outputs.size()));
  }
  return Pipeline(std::move(impl));
} catch (const std::exception& e) {
  // nlohmann throws on a value of an unexpected type that a check above missed: it must
  // never leave as an exception.
  return invalid_argument(std::string("pipeline: malformed: ") + e.what());
}

Result<Pipeline> Pipeline::load(const std::filesystem::path& path) {
  auto text = detail::read_text_file(path, "pipeline file");
  if (!text.ok()) return text.status();
  auto p = parse(*text);
  if (!p.ok()) return p.status().with_context("'" + path.string() + "'");
  return p;
}

const std::vector<std::string>& Pipeline::input_names() const noexcept { return impl_->inputs; }
const std::string& Pipeline::to_json() const noexcept { return impl_->json; }
const std::vector<std::string>& Pipeline::output_names() const noexcept { return impl_->outputs; }
bool Pipeline::input_is_string(std::size_t i) const noexcept {
  return i < impl_->input_is_text.size() && impl_->input_is_text[i];
}
std::size_t Pipeline::output_width() const noexcept { return impl_->outputs.size(); }

Status Pipeline::check_inputs(const Schema& schema) const {
  const auto& features = schema.features();
  for (std::size_t i = 0; i < impl_->inputs.size(); ++i) {
    if (i >= features.size()) return invalid_argument("the schema has no feature for pipeline input '" + impl_->inputs[i] + "'");
    if (features[i].name != impl_->inputs[i]) {
      return invalid_argument("pipeline input " + std::to_string(i) + " is '" + impl_->inputs[i] +
                              "' but schema feature " + std::to_string(i) + " is '" + features[i].name + "'");
    }
    const bool text = features[i].kind == FeatureKind::kCategory || features[i].kind == FeatureKind::kText;
    if (text != impl_->input_is_text[i]) {
      return invalid_argument("pipeline input '" + impl_->inputs[i] + "' is a " +
                              (impl_->input_is_text[i] ? "string" : "number") + " but the schema says otherwise");
    }
  }
  if (features.size() != impl_->inputs.size()) {
    return invalid_argument("the schema has " + std::to_string(features.size()) + " features, the pipeline " +
                            std::to_string(impl_->inputs.size()) + " inputs");
  }
  return {};
}

Status Pipeline::transform(const FeatureRow& row, std::span<double> out) const {
  const auto& impl = *impl_;
  if (row.values.size() != impl.inputs.size() || row.text.size() != impl.inputs.size()) {
    return invalid_argument("row has " + std::to_string(row.values.size()) + " columns, the pipeline takes " +
                            std::to_string(impl.inputs.size()));
  }
  if (out.size() != impl.outputs.size()) {
    return invalid_argument("output buffer holds " + std::to_string(out.size()) + " values, the pipeline writes " +
                            std::to_string(impl.outputs.size()));
  }
  const Cells cells{row.values.data(), row.integers.size() == row.values.size() ? row.integers.data() : nullptr,
                    row.text.data()};
  for (const ColumnPlan& c : impl.columns) {
    EMBER_RETURN_IF_ERROR(transform_column(c, cells, out.data() + c.out));
  }
  return {};
}

Status Pipeline::transform_batch(const FeatureBatch& batch, std::span<double> out) const {
  const std::size_t width = output_width();
  if (batch.cols != impl_->inputs.size()) {
    return invalid_argument("batch has " + std::to_string(batch.cols) + " columns, the pipeline takes " +
                            std::to_string(impl_->inputs.size()));
  }
  if (out.size() != batch.rows * width) return invalid_argument("output buffer is not rows x output_width()");
  if (batch.values.size() < batch.rows * batch.cols || batch.text.size() < batch.rows * batch.cols) {
    return invalid_argument("batch holds fewer cells than rows x cols");
  }
  const bool exact = batch.integers.size() >= batch.rows * batch.cols;
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const Cells cells{batch.values.data() + r * batch.cols, exact ? batch.integers.data() + r * batch.cols : nullptr,
                      batch.text.data() + r * batch.cols};
    for (const ColumnPlan& c : impl_->columns) {
      Status s = transform_column(c, cells, out.data() + r * width + c.out);
      if (!s.ok()) return s.with_context("row " + std::to_string(r));
    }
  }
  return {};
}

}  // namespace ember
