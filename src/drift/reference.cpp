// Reference statistics: computed from a table, written as reference.json, parsed back
// with every field checked.
#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "threads/parallel.hpp"
#include "drift/sort.hpp"
#include "ember/drift.hpp"

namespace ember {

using json = nlohmann::json;

namespace {

constexpr std::string_view kFormat = "ember-reference";
constexpr int kFormatVersion = 1;

std::string_view kind_name(ColumnKind kind) { return kind == ColumnKind::kNumerical ? "numerical" : "categorical"; }

}  // namespace

std::optional<ColumnKind> column_kind(FeatureKind kind) noexcept {
  switch (kind) {
    case FeatureKind::kNumber:
    case FeatureKind::kInteger:
      return ColumnKind::kNumerical;
    case FeatureKind::kBoolean:
    case FeatureKind::kCategory:
      return ColumnKind::kCategorical;
    case FeatureKind::kText:
      return std::nullopt;
  }
  return std::nullopt;
}

const Column* Table::find(std::string_view name) const noexcept {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const ColumnReference* ReferenceStats::find(std::string_view name) const noexcept {
  for (const auto& c : features) {
    if (c.name == name) return &c;
  }
  for (const auto& c : outputs) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::uint64_t ColumnReference::distinct_count() const noexcept {
  if (kind == ColumnKind::kCategorical) return categories.size() + (other > 0 ? 1 : 0);
  if (!distinct.empty()) return distinct.size();
  if (!values.empty()) {
    std::uint64_t n = 1;
    for (std::size_t i = 1; i < values.size(); ++i) n += values[i] != values[i - 1];
    return n;
  }
  return count == 0 ? 0 : std::numeric_limits<std::uint64_t>::max();  // many: more than kept
}

ColumnReference describe_column(const Column& column, const ReferenceOptions& options) {
  ColumnReference ref;
  ref.name = column.name;
  ref.kind = column.kind;
  if (column.kind == ColumnKind::kCategorical) {
    std::unordered_map<std::string, std::uint64_t> counts;
    for (const auto& label : column.labels) {
      if (label) ++counts[*label];
      else ++ref.missing;
    }
    std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      ref.count += sorted[i].second;
      if (i < options.max_categories) ref.categories.push_back(std::move(sorted[i]));
      else ref.other += sorted[i].second;
    }
    return ref;
  }
  std::vector<double> v = detail::finite_sorted(column.numbers, ref.missing);
  ref.count = v.size();
  if (v.empty()) return ref;
  double sum = 0;
  for (double x : v) sum += x;
  ref.mean = sum / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - ref.mean) * (x - ref.mean);
  ref.std = std::sqrt(ss / static_cast<double>(v.size()));
  ref.min = v.front();
  ref.max = v.back();
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j < v.size() && v[j] == v[i]) ++j;
    if (ref.distinct.size() == options.max_distinct_numbers) {
      ref.distinct.clear();
      break;
    }
    ref.distinct.emplace_back(v[i], j - i);
    i = j;
  }
  if (v.size() <= options.exact_rows) {
    ref.values = std::move(v);
  } else {
    const std::size_t k = std::max<std::size_t>(options.quantiles, 2);
    ref.quantiles.resize(k);
    for (std::size_t q = 0; q < k; ++q) {
      const double pos = static_cast<double>(q) / static_cast<double>(k - 1) * static_cast<double>(v.size() - 1);
      const auto lo = static_cast<std::size_t>(pos);
      const double frac = pos - static_cast<double>(lo);
      ref.quantiles[q] = lo + 1 < v.size() ? v[lo] + frac * (v[lo + 1] - v[lo]) : v[lo];
    }
    ref.quantiles.front() = v.front();
    ref.quantiles.back() = v.back();
  }
  return ref;
}

ReferenceStats describe_table(const Table& features, const Table& outputs, const ReferenceOptions& options) {
  ReferenceStats stats;
  stats.rows = features.rows;
  stats.features.resize(features.columns.size());
  stats.outputs.resize(outputs.columns.size());
  const std::size_t nf = features.columns.size();
  detail::for_each_item(options.executor, nf + outputs.columns.size(), [&](std::size_t i) {
    if (i < nf) stats.features[i] = describe_column(features.columns[i], options);
    else stats.outputs[i - nf] = describe_column(outputs.columns[i - nf], options);
  });
  return stats;
}

namespace {

json column_json(const ColumnReference& c) {
  json j = {{"name", c.name}, {"kind", kind_name(c.kind)}, {"count", c.count}, {"missing", c.missing}};
  if (c.kind == ColumnKind::kCategorical) {
    json cats = json::array();
    for (const auto& [label, n] : c.categories) cats.push_back(json::array({label, n}));
    j["categories"] = std::move(cats);
    j["other"] = c.other;
    return j;
  }
  if (c.count == 0) return j;
  j["mean"] = c.mean;
  j["std"] = c.std;
  j["min"] = c.min;
  j["max"] = c.max;
  if (!c.values.empty()) j["values"] = c.values;
  if (!c.quantiles.empty()) j["quantiles"] = c.quantiles;
  if (!c.distinct.empty()) {
    json d = json::array();
    for (const auto& [v, n] : c.distinct) d.push_back(json::array({v, n}));
    j["distinct"] = std::move(d);
  }
  return j;
}

Status bad(const std::string& field, std::string_view what) {
  return invalid_argument("reference.json: '" + field + "' " + std::string(what));
}

Result<std::uint64_t> get_count(const json& j, const char* key, const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end()) return bad(field + "." + key, "is missing");
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<std::int64_t>() >= 0)) {
    return bad(field + "." + key, "must be a non-negative integer");
  }
  return it->get<std::uint64_t>();
}

Result<double> get_number(const json& j, const char* key, const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end()) return bad(field + "." + key, "is missing");
  if (!it->is_number() || !std::isfinite(it->get<double>())) return bad(field + "." + key, "must be a finite number");
  return it->get<double>();
}

Result<std::vector<double>> get_sorted(const json& j, const char* key, const std::string& field) {
  std::vector<double> out;
  const auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_array()) return bad(field + "." + key, "must be an array of numbers");
  out.reserve(it->size());
  for (const auto& v : *it) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) return bad(field + "." + key, "must hold finite numbers only");
    if (!out.empty() && v.get<double>() < out.back()) return bad(field + "." + key, "must be in ascending order");
    out.push_back(v.get<double>());
  }
  return out;
}

Result<ColumnReference> parse_column(const json& j, const std::string& field) {
  if (!j.is_object()) return bad(field, "must be an object");
  ColumnReference c;
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    return bad(field + ".name", "must be a non-empty string");
  }
  c.name = name->get<std::string>();
  const auto kind = j.find("kind");
  if (kind == j.end() || !kind->is_string()) return bad(field + ".kind", "must be \"numerical\" or \"categorical\"");
  if (*kind == "numerical") c.kind = ColumnKind::kNumerical;
  else if (*kind == "categorical") c.kind = ColumnKind::kCategorical;
  else return bad(field + ".kind", "must be \"numerical\" or \"categorical\"");
  auto count = get_count(j, "count", field);
  if (!count.ok()) return count.status();
  c.count = *count;
  auto missing = get_count(j, "missing", field);
  if (!missing.ok()) return missing.status();
  c.missing = *missing;
  if (c.kind == ColumnKind::kCategorical) {
    const auto cats = j.find("categories");
    if (cats == j.end() || !cats->is_array()) return bad(field + ".categories", "must be an array of [label, count]");
    std::set<std::string> seen;
    std::uint64_t total = 0;
    for (const auto& e : *cats) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number_unsigned()) {
        return bad(field + ".categories", "must hold [label, count] pairs");
      }
      if (!seen.insert(e[0].get<std::string>()).second) return bad(field + ".categories", "repeats a label");
      c.categories.emplace_back(e[0].get<std::string>(), e[1].get<std::uint64_t>());
      total += c.categories.back().second;
    }
    auto other = get_count(j, "other", field);
    if (!other.ok()) return other.status();
    c.other = *other;
    if (total + c.other != c.count) return bad(field + ".categories", "do not add up to count");
    return c;
  }
  if (c.count == 0) return c;
  for (auto [key, dst] : {std::pair{"mean", &c.mean}, {"std", &c.std}, {"min", &c.min}, {"max", &c.max}}) {
    auto v = get_number(j, key, field);
    if (!v.ok()) return v.status();
    *dst = *v;
  }
  if (c.std < 0 || c.min > c.max) return bad(field, "has a negative std or min above max");
  auto values = get_sorted(j, "values", field);
  if (!values.ok()) return values.status();
  c.values = std::move(*values);
  auto quantiles = get_sorted(j, "quantiles", field);
  if (!quantiles.ok()) return quantiles.status();
  c.quantiles = std::move(*quantiles);
  if (c.values.empty() == c.quantiles.empty()) return bad(field, "must have either 'values' or 'quantiles'");
  if (!c.values.empty() && c.values.size() != c.count) return bad(field + ".values", "must hold count values");
  if (!c.quantiles.empty() && c.quantiles.size() < 2) return bad(field + ".quantiles", "must hold at least 2 points");
  const auto& ends = c.values.empty() ? c.quantiles : c.values;
  if (ends.front() != c.min || ends.back() != c.max) return bad(field, "min and max disagree with its values");
  const auto d = j.find("distinct");
  if (d != j.end()) {
    if (!d->is_array()) return bad(field + ".distinct", "must be an array of [value, count]");
    std::uint64_t total = 0;
    for (const auto& e : *d) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number() || !std::isfinite(e[0].get<double>()) ||
          !e[1].is_number_unsigned() || e[1].get<std::uint64_t>() == 0) {
        return bad(field + ".distinct", "must hold [value, count] pairs");
      }
      if (!c.distinct.empty() && e[0].get<double>() <= c.distinct.back().first) {
        return bad(field + ".distinct", "must be in ascending order without repeats");
      }
      c.distinct.emplace_back(e[0].get<double>(), e[1].get<std::uint64_t>());
      total += c.distinct.back().second;
    }
    if (total != c.count) return bad(field + ".distinct", "does not add up to count");
  }
  return c;
}

}  // namespace

std::string reference_to_json(const ReferenceStats& stats) {
  json j = {{"format", kFormat}, {"format_version", kFormatVersion}, {"rows", stats.rows}};
  j["features"] = json::array();
  for (const auto& c : stats.features) j["features"].push_back(column_json(c));
  j["outputs"] = json::array();
  for (const auto& c : stats.outputs) j["outputs"].push_back(column_json(c));
  return j.dump() + "\n";
}

Result<ReferenceStats> parse_reference(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) return invalid_argument("reference.json is larger than " + std::to_string(max_bytes) + " bytes");
  if (detail::json_too_deep(text, 16)) return invalid_argument("reference.json nests deeper than 16 levels");
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return invalid_argument("reference.json is not valid JSON");
  if (!j.is_object()) return invalid_argument("reference.json must be a JSON object");
  if (j.value("format", json()) != kFormat) return bad("format", "must be \"ember-reference\"");
  if (j.value("format_version", json()) != kFormatVersion) return bad("format_version", "must be 1");
  ReferenceStats stats;
  auto rows = get_count(j, "rows", "reference");
  if (!rows.ok()) return rows.status();
  stats.rows = *rows;
  std::set<std::string> names;
  for (auto [key, dst] : {std::pair{"features", &stats.features}, {"outputs", &stats.outputs}}) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_array()) return bad(key, "must be an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto c = parse_column((*it)[i], std::string(key) + "[" + std::to_string(i) + "]");
      if (!c.ok()) return c.status();
      if (!names.insert(c->name).second) return bad(std::string(key) + "[" + std::to_string(i) + "].name", "repeats a name");
      if (c->count + c->missing > stats.rows) return bad(std::string(key) + "[" + std::to_string(i) + "]", "counts more values than rows");
      dst->push_back(std::move(*c));
    }
  }
  return stats;
}

Result<ReferenceStats> load_reference(const std::filesystem::path& path) {
  auto text = detail::read_text_file(path, "reference file", std::size_t{256} << 20);
  if (!text.ok()) return text.status();
  return parse_reference(*text);
}

}  // namespace ember
