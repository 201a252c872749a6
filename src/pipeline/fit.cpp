// Pipeline::fit: scikit-learn's fit() for the supported steps, column by column, with
// scikit-learn's (and numpy's) arithmetic, producing the same pipeline.json its exporter
// would write.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <charconv>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "ember/pipeline.hpp"

namespace ember {
namespace {

using Json = nlohmann::ordered_json;

// One column's values while fitting: numbers (NaN = missing) or strings.
struct Column {
  std::string name;
  bool text = false;
  std::vector<double> numbers;
  std::vector<std::int64_t> integers;  // each number's exact integer, or kNotInteger
  std::vector<std::string> strings;
  std::vector<bool> missing;  // for strings
};

// The column's present (non-missing) numbers; an error when there are none to fit on.
Result<std::vector<double>> present(const Column& c, const std::string& at) {
  std::vector<double> out;
  for (double x : c.numbers) {
    if (!std::isnan(x)) out.push_back(x);
  }
  if (out.empty()) return invalid_argument(at + ": column '" + c.name + "' has no values to fit on");
  return out;
}

// numpy's lerp, as np.percentile uses it.
double lerp(double a, double b, double t) {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

// np.percentile(sorted, p) with method "linear" (the default).
double percentile_linear(const std::vector<double>& sorted, double p) {
  const double v = (static_cast<double>(sorted.size()) - 1) * (p / 100.0);
  const double k = std::floor(v);
  const auto lo = static_cast<std::size_t>(std::clamp(k, 0.0, static_cast<double>(sorted.size() - 1)));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return lerp(sorted[lo], sorted[hi], v - k);
}

// np.percentile(sorted, p, method="averaged_inverted_cdf").
double percentile_averaged_inverted_cdf(const std::vector<double>& sorted, double p) {
  const double n = static_cast<double>(sorted.size());
  const double v = n * (p / 100.0) - 1;
  const double k = std::floor(v);
  const double g = v - k;
  const auto clampi = [&](double i) {
    return static_cast<std::size_t>(std::clamp(i, 0.0, n - 1));
  };
  return lerp(sorted[clampi(k)], sorted[clampi(k + 1)], g == 0 ? 0.5 : 1.0);
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The most frequent value; ties go to the smallest, as in scikit-learn.
template <typename T>
T most_frequent(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  T best = v.front();
  std::size_t best_count = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j < v.size() && v[j] == v[i]) ++j;
    if (j - i > best_count) {
      best_count = j - i;
      best = v[i];
    }
    i = j;
  }
  return best;
}

double zero_to_one(double scale) { return scale < 10 * DBL_EPSILON ? 1.0 : scale; }

std::string category_name(const Json& c) {
  if (c.is_null()) return "None";
  if (c.is_string()) return c.get<std::string>();
  if (c.is_number_integer()) return c.dump();  // exact, past 2^53 too
  const double x = c.get<double>();
  if (x == std::floor(x) && std::abs(x) < 1e15) return std::to_string(static_cast<long long>(x));
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

Result<Json> get(const Json& step, const char* field, const std::string& at) {
  if (!step.contains(field)) return invalid_argument(at + ": missing option '" + field + "'");
  return step.at(field);
}

// Fits one step on the columns, returns its fitted JSON, and transforms the columns in
// place for the next step. `names` are the columns' output names so far.
Result<Json> fit_step(const Json& spec, std::vector<Column>& cols, std::vector<std::vector<std::string>>& names,
                      const std::string& at) {
  const std::string type = spec.value("type", "");
  Json out{{"type", type}};
  const std::size_t w = cols.size();
  if (type == "passthrough") return out;
  if (type == "simple_imputer") {
    const std::string strategy = spec.value("strategy", "mean");
    Json fill = Json::array();
    for (Column& c : cols) {
      if (c.text) {
        std::string value;
        if (strategy == "constant") {
          value = spec.contains("fill_value") && spec.at("fill_value").is_string() ? spec.at("fill_value").get<std::string>()
                                                                                  : "missing_value";
        } else if (strategy == "most_frequent") {
          std::vector<std::string> seen;
          for (std::size_t i = 0; i < c.strings.size(); ++i) {
            if (!c.missing[i]) seen.push_back(c.strings[i]);
          }
          if (seen.empty()) return invalid_argument(at + ": column '" + c.name + "' has no values to fit on");
          value = most_frequent(seen);
        } else {
          return invalid_argument(at + ": strategy '" + strategy + "' needs numbers; column '" + c.name + "' holds strings");
        }
        for (std::size_t i = 0; i < c.strings.size(); ++i) {
          if (c.missing[i]) {
            c.strings[i] = value;
            c.missing[i] = false;
          }
        }
        fill.push_back(value);
        continue;
      }
      double value;
      if (strategy == "constant") {
        value = spec.contains("fill_value") && spec.at("fill_value").is_number() ? spec.at("fill_value").get<double>() : 0.0;
      } else {
        auto values = present(c, at);
        if (!values.ok()) return values.status();
        const auto& v = *values;
        if (strategy == "mean") {
          double sum = 0;
          for (double x : v) sum += x;
          value = sum / static_cast<double>(v.size());
        } else if (strategy == "median") {
          value = median_of(v);
        } else if (strategy == "most_frequent") {
          value = most_frequent(v);
        } else {
          return invalid_argument(at + ": unknown strategy '" + strategy + "'");
        }
      }
      for (double& x : c.numbers) {
        if (std::isnan(x)) x = value;
      }
      fill.push_back(value);
    }
    out["strategy"] = strategy;
    out["fill"] = fill;
    return out;
  }
  for (const Column& c : cols) {
    if (c.text && type != "one_hot_encoder" && type != "ordinal_encoder") {
      return invalid_argument(at + ": column '" + c.name + "' holds strings; " + type + " needs numbers");
    }
  }
  if (type == "standard_scaler") {
    const bool with_mean = spec.value("with_mean", true), with_std = spec.value("with_std", true);
    Json means = Json::array(), scales = Json::array();
    for (Column& c : cols) {
      auto values = present(c, at);
      if (!values.ok()) return values.status();
      const auto& v = *values;
      const double n = static_cast<double>(v.size());
      double sum = 0;
      for (double x : v) sum += x;
      const double mean = sum / n;
      double ss = 0;
      for (double x : v) ss += (x - mean) * (x - mean);
      const double var = ss / n;
      // scikit-learn's test for a constant feature, on the variance
      const bool constant = var <= n * DBL_EPSILON * var + (n * mean * DBL_EPSILON) * (n * mean * DBL_EPSILON);
      const double scale = constant ? 1.0 : std::sqrt(var);
      means.push_back(mean);
      scales.push_back(scale);
      for (double& x : c.numbers) x = (x - (with_mean ? mean : 0.0)) / (with_std ? scale : 1.0);
    }
    out["mean"] = with_mean ? means : Json(nullptr);
    out["scale"] = with_std ? scales : Json(nullptr);
    return out;
  }
  if (type == "min_max_scaler") {
    auto range = get(spec, "feature_range", at);
    if (!range.ok()) return range.status();
    if (!range->is_array() || range->size() != 2 || !(*range)[0].is_number() || !(*range)[1].is_number() ||
        !((*range)[0].get<double>() < (*range)[1].get<double>())) {
      return invalid_argument(at + ": feature_range must be [low, high] with low < high");
    }
    const double lo = (*range)[0].get<double>(), hi = (*range)[1].get<double>();
    const bool clip = spec.value("clip", false);
    Json scales = Json::array(), mins = Json::array();
    for (Column& c : cols) {
      auto values = present(c, at);
      if (!values.ok()) return values.status();
      const auto& v = *values;
      const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
      const double scale = (hi - lo) / zero_to_one(*mx - *mn);
      const double shift = lo - *mn * scale;
      scales.push_back(scale);
      mins.push_back(shift);
      for (double& x : c.numbers) {
        x = x * scale + shift;
        if (clip) x = std::min(std::max(x, lo), hi);
      }
    }
    out["scale"] = scales;
    out["min"] = mins;
    out["feature_range"] = Json::array({lo, hi});
    out["clip"] = clip;
    return out;
  }
  if (type == "max_abs_scaler") {
    Json scales = Json::array();
    for (Column& c : cols) {
      auto values = present(c, at);
      if (!values.ok()) return values.status();
      const auto& v = *values;
      double m = 0;
      for (double x : v) m = std::max(m, std::abs(x));
      const double scale = zero_to_one(m);
      scales.push_back(scale);
      for (double& x : c.numbers) x /= scale;
    }
    out["scale"] = scales;
    return out;
  }
  if (type == "robust_scaler") {
    const bool centering = spec.value("with_centering", true), scaling = spec.value("with_scaling", true);
    double q_lo = 25, q_hi = 75;
    if (spec.contains("quantile_range")) {
      const Json& q = spec.at("quantile_range");
      if (!q.is_array() || q.size() != 2 || !q[0].is_number() || !q[1].is_number() ||
          !(0 <= q[0].get<double>() && q[0].get<double>() <= q[1].get<double>() && q[1].get<double>() <= 100)) {
        return invalid_argument(at + ": quantile_range must be [low, high] within 0..100");
      }
      q_lo = q[0].get<double>();
      q_hi = q[1].get<double>();
    }
    Json centers = Json::array(), scales = Json::array();
    for (Column& c : cols) {
      auto values = present(c, at);
      if (!values.ok()) return values.status();
      auto& v = *values;
      std::sort(v.begin(), v.end());
      const double center = median_of(v);
      const double scale = zero_to_one(percentile_linear(v, q_hi) - percentile_linear(v, q_lo));
      centers.push_back(center);
      scales.push_back(scale);
      for (double& x : c.numbers) x = (x - (centering ? center : 0.0)) / (scaling ? scale : 1.0);
    }
    out["center"] = centering ? centers : Json(nullptr);
    out["scale"] = scaling ? scales : Json(nullptr);
    return out;
  }
  if (type == "function") {
    const std::string fn = spec.value("name", "");
    if (fn != "log1p" && fn != "sqrt" && fn != "clip") return invalid_argument(at + ": unknown function '" + fn + "'");
    out = spec;
    const double lo = spec.contains("min") && spec.at("min").is_number() ? spec.at("min").get<double>() : -INFINITY;
    const double hi = spec.contains("max") && spec.at("max").is_number() ? spec.at("max").get<double>() : INFINITY;
    for (Column& c : cols) {
      for (double& x : c.numbers) {
        x = fn == "log1p" ? std::log1p(x) : fn == "sqrt" ? std::sqrt(x) : std::min(std::max(x, lo), hi);
      }
    }
    return out;
  }
  if (type == "one_hot_encoder" || type == "ordinal_encoder") {
    Json categories = Json::array(), drop_idx = Json::array();
    const Json drop = spec.contains("drop") ? spec.at("drop") : Json(nullptr);
    if (!drop.is_null() && drop != "first" && drop != "if_binary") {
      return invalid_argument(at + ": drop must be null, \"first\" or \"if_binary\"");
    }
    const Json given = spec.contains("categories") ? spec.at("categories") : Json(nullptr);
    if (!given.is_null() && (!given.is_array() || given.size() != w)) {
      return invalid_argument(at + ": categories must be an array of " + std::to_string(w) + " arrays");
    }
    for (std::size_t k = 0; k < w; ++k) {
      Column& c = cols[k];
      Json cats = Json::array();
      bool any_missing = false;
      if (!given.is_null()) {
        cats = given[k];  // as given (parse() checks them)
      } else if (c.text) {
        std::vector<std::string> v;
        for (std::size_t i = 0; i < c.strings.size(); ++i) {
          if (c.missing[i]) any_missing = true;
          else v.push_back(c.strings[i]);
        }
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        for (auto& s : v) cats.push_back(s);
      } else {
        // Integers that a double cannot hold (IDs past 2^53) are categories as int64, as
        // scikit-learn keeps them in an integer column.
        bool wide = false;
        for (std::size_t i = 0; i < c.numbers.size(); ++i) {
          const std::int64_t n = c.integers[i];
          wide = wide || (!std::isnan(c.numbers[i]) && n != kNotInteger &&
                          n != static_cast<std::int64_t>(static_cast<double>(n)));
        }
        std::vector<double> v;
        std::vector<std::int64_t> ints;
        for (std::size_t i = 0; i < c.numbers.size(); ++i) {
          if (std::isnan(c.numbers[i])) any_missing = true;
          else if (wide && c.integers[i] != kNotInteger) ints.push_back(c.integers[i]);
          else v.push_back(c.numbers[i]);
        }
        if (wide && !v.empty()) {
          return invalid_argument(at + ": column '" + c.name + "' mixes integers past 2^53 with fractions");
        }
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        std::sort(ints.begin(), ints.end());
        ints.erase(std::unique(ints.begin(), ints.end()), ints.end());
        for (double x : v) cats.push_back(x);
        for (std::int64_t x : ints) cats.push_back(x);
      }
      if (any_missing && given.is_null()) cats.push_back(nullptr);
      if (cats.empty()) return invalid_argument(at + ": column '" + c.name + "' has no values to fit on");
      Json d = nullptr;
      if (drop == "first" || (drop == "if_binary" && cats.size() == 2)) d = 0;
      drop_idx.push_back(d);
      if (type == "one_hot_encoder") {
        std::vector<std::string> expanded;
        for (std::size_t i = 0; i < cats.size(); ++i) {
          if (d.is_null() || i != 0) expanded.push_back(names[k].front() + "_" + category_name(cats[i]));
        }
        names[k] = expanded;
      }
      categories.push_back(cats);
    }
    out["categories"] = categories;
    if (type == "one_hot_encoder") {
      out["handle_unknown"] = spec.value("handle_unknown", "error");
      out["drop_idx"] = drop_idx;
    } else {
      out["handle_unknown"] = spec.value("handle_unknown", "error");
      out["unknown_value"] = spec.contains("unknown_value") ? spec.at("unknown_value") : Json(nullptr);
      out["encoded_missing_value"] = spec.contains("encoded_missing_value") ? spec.at("encoded_missing_value") : Json(nullptr);
    }
    return out;
  }
  if (type == "kbins_discretizer") {
    const int n_bins = spec.value("n_bins", 5);
    const std::string strategy = spec.value("strategy", "quantile");
    const std::string encode = spec.value("encode", "onehot");
    if (n_bins < 2) return invalid_argument(at + ": n_bins must be at least 2");
    if (strategy != "uniform" && strategy != "quantile") {
      return invalid_argument(at + ": strategy '" + strategy + "' cannot be fitted (uniform or quantile)");
    }
    Json all_edges = Json::array();
    for (std::size_t k = 0; k < w; ++k) {
      Column& c = cols[k];
      std::vector<double> v = c.numbers;
      for (double x : v) {
        if (std::isnan(x)) return invalid_argument(at + ": column '" + c.name + "' has missing values; impute them first");
      }
      if (v.empty()) return invalid_argument(at + ": column '" + c.name + "' has no values to fit on");
      std::sort(v.begin(), v.end());
      if (v.front() == v.back()) return invalid_argument(at + ": column '" + c.name + "' is constant");
      // np.linspace(start, stop, n_bins + 1), last value exact
      const auto linspace = [&](double start, double stop) {
        std::vector<double> e(static_cast<std::size_t>(n_bins) + 1);
        const double step = (stop - start) / n_bins;
        for (int i = 0; i <= n_bins; ++i) e[static_cast<std::size_t>(i)] = i * step + start;
        e.back() = stop;
        return e;
      };
      std::vector<double> edges;
      if (strategy == "uniform") {
        edges = linspace(v.front(), v.back());
      } else {
        for (double p : linspace(0.0, 100.0)) edges.push_back(percentile_averaged_inverted_cdf(v, p));
      }
      // scikit-learn removes bins narrower than 1e-8
      std::vector<double> kept{edges.front()};
      for (std::size_t i = 1; i < edges.size(); ++i) {
        if (edges[i] - edges[i - 1] > 1e-8) kept.push_back(edges[i]);
      }
      const std::size_t bins = kept.size() - 1;
      for (double& x : c.numbers) {
        x = static_cast<double>(std::upper_bound(kept.begin() + 1, kept.end() - 1, x) - (kept.begin() + 1));
      }
      if (encode != "ordinal") {
        std::vector<std::string> expanded;
        for (std::size_t b = 0; b < bins; ++b) expanded.push_back(names[k].front() + "_" + std::to_string(b) + ".0");  // scikit-learn names bins as floats
        names[k] = expanded;
      }
      all_edges.push_back(kept);
    }
    out["encode"] = encode;
    out["bin_edges"] = all_edges;
    return out;
  }
  return invalid_argument(at + ": unknown step type '" + type + "'");
}

}  // namespace

Result<Pipeline> Pipeline::fit(std::string_view spec_json, const FeatureBatch& rows) try {
  Json spec;
  try {
    spec = Json::parse(spec_json.begin(), spec_json.end());
  } catch (const std::exception&) {
    return invalid_argument("pipeline spec is not valid JSON");
  }
  if (!spec.is_object() || spec.value("format", "") != "ember-pipeline" || !spec.contains("inputs") ||
      !spec.at("inputs").is_array() || !spec.contains("transformers") || !spec.at("transformers").is_array()) {
    return invalid_argument("pipeline spec: needs format \"ember-pipeline\", inputs and transformers");
  }
  const Json& inputs = spec.at("inputs");
  if (rows.cols != inputs.size()) {
    return invalid_argument("the rows have " + std::to_string(rows.cols) + " columns, the spec " +
                            std::to_string(inputs.size()) + " inputs");
  }
  if (rows.rows == 0) return invalid_argument("no rows to fit on");
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].is_object() || !inputs[i].contains("name") || !inputs[i].at("name").is_string()) {
      return invalid_argument("pipeline spec: input " + std::to_string(i) + " needs a name");
    }
    index[inputs[i].at("name").get<std::string>()] = i;
  }
  const auto column = [&](std::size_t i) {
    Column c;
    c.name = inputs[i].at("name").get<std::string>();
    c.text = inputs[i].value("kind", "number") == "string";
    for (std::size_t r = 0; r < rows.rows; ++r) {
      const double v = rows.values[r * rows.cols + i];
      if (c.text) {
        c.missing.push_back(std::isnan(v));
        c.strings.push_back(std::isnan(v) ? std::string() : rows.text[r * rows.cols + i]);
      } else {
        c.numbers.push_back(v);
        c.integers.push_back(rows.integers.size() == rows.values.size() ? rows.integers[r * rows.cols + i]
                                                                       : exact_integer(v));
      }
    }
    return c;
  };
  const bool verbose = spec.value("verbose_feature_names_out", true);
  Json fitted = spec;
  fitted.erase("fit");
  fitted.erase("verbose_feature_names_out");
  Json output_names = Json::array();
  std::vector<bool> used(inputs.size(), false);
  for (auto& t : fitted.at("transformers")) {
    const std::string name = t.value("name", "");
    std::vector<Column> cols;
    std::vector<std::vector<std::string>> names;
    for (const auto& col : t.value("columns", Json::array())) {
      if (!col.is_string() || !index.count(col.get<std::string>())) {
        return invalid_argument("pipeline spec: transformer '" + name + "' names an unknown column " + col.dump());
      }
      const std::size_t i = index.at(col.get<std::string>());
      used[i] = true;
      cols.push_back(column(i));
      names.push_back({cols.back().name});
    }
    Json steps = Json::array();
    std::size_t s = 0;
    for (const auto& step : t.value("steps", Json::array())) {
      const std::string at = "pipeline spec: transformer '" + name + "', step " + std::to_string(s++) + " (" +
                             step.value("type", "?") + ")";
      auto f = fit_step(step, cols, names, at);
      if (!f.ok()) return f.status();
      steps.push_back(*f);
    }
    t["steps"] = steps;
    for (const auto& per_column : names) {
      for (const auto& n : per_column) output_names.push_back(verbose ? name + "__" + n : n);
    }
  }
  if (fitted.value("remainder", "drop") == "passthrough") {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (!used[i]) {
        const std::string n = inputs[i].at("name").get<std::string>();
        output_names.push_back(verbose ? "remainder__" + n : n);
      }
    }
  }
  fitted["output_names"] = output_names;
  return parse(fitted.dump(1));
} catch (const std::exception& e) {
  // nlohmann throws on a value of an unexpected type that a check above missed: it must
  // never leave as an exception.
  return invalid_argument(std::string("pipeline spec: malformed: ") + e.what());
}

}  // namespace ember
