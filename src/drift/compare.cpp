// Comparing current data with reference statistics: the test Evidently would choose,
// its verdict, PSI beside it, and histograms for reports.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "drift/sort.hpp"
#include "threads/parallel.hpp"
#include "ember/drift.hpp"

namespace ember {

namespace {

constexpr std::string_view kOtherLabel = "(other)";

// How many reference values lie below x (or at or below it, `inclusive`): exact from
// the values or the distinct counts, interpolated along the quantile function otherwise.
double ref_below(const ColumnReference& ref, double x, bool inclusive) {
  if (!ref.values.empty()) {
    const auto it = inclusive ? std::upper_bound(ref.values.begin(), ref.values.end(), x)
                              : std::lower_bound(ref.values.begin(), ref.values.end(), x);
    return static_cast<double>(it - ref.values.begin());
  }
  if (!ref.distinct.empty()) {
    double n = 0;
    for (const auto& [v, c] : ref.distinct) {
      if (v < x || (inclusive && v == x)) n += static_cast<double>(c);
    }
    return n;
  }
  const auto& q = ref.quantiles;
  if (q.empty() || x < q.front() || (!inclusive && x == q.front())) return 0;
  if (x > q.back() || (inclusive && x == q.back())) return static_cast<double>(ref.count);
  const auto hi = static_cast<std::size_t>(std::upper_bound(q.begin(), q.end(), x) - q.begin());
  const std::size_t lo = hi - 1;
  const double frac = q[hi] > q[lo] ? (x - q[lo]) / (q[hi] - q[lo]) : 0.0;
  const double u = (static_cast<double>(lo) + frac) / static_cast<double>(q.size() - 1);
  return u * static_cast<double>(ref.count);
}

// W1 between the reference's piecewise-linear quantile function and the empirical one
// of `cur` (sorted): the integral over u of |Q_ref(u) - Q_cur(u)|, segment by segment.
double wasserstein_from_quantiles(const std::vector<double>& q, const std::vector<double>& cur) {
  const double k = static_cast<double>(q.size() - 1), m = static_cast<double>(cur.size());
  const auto qref = [&](double u) {
    const double pos = u * k;
    const auto lo = std::min(static_cast<std::size_t>(pos), q.size() - 2);
    return q[lo] + (pos - static_cast<double>(lo)) * (q[lo + 1] - q[lo]);
  };
  double total = 0, u0 = 0;
  std::size_t i = 1, j = 1;  // next knot of each side
  while (u0 < 1.0) {
    const double ui = static_cast<double>(i) / k, uj = static_cast<double>(j) / m;
    const double u1 = std::min(ui, uj);
    const double c = cur[j - 1];
    const double a = qref(u0) - c, b = qref(u1) - c;
    const double w = u1 - u0;
    if ((a >= 0) == (b >= 0)) total += (std::fabs(a) + std::fabs(b)) / 2 * w;
    else total += (a * a + b * b) / (2 * (std::fabs(a) + std::fabs(b))) * w;
    if (ui <= u1 && i < q.size() - 1) ++i;
    if (uj <= u1 && j < cur.size()) ++j;
    if (u1 >= 1.0) break;
    u0 = u1;
  }
  return total;
}

// The reference as a sorted sample: its values, or (when only quantiles were kept)
// `count` points of its quantile function, at most 10,000.
std::vector<double> ref_sample(const ColumnReference& ref) {
  if (!ref.values.empty()) return ref.values;
  std::vector<double> out;
  if (!ref.distinct.empty()) {
    for (const auto& [v, c] : ref.distinct) out.insert(out.end(), c, v);
    return out;
  }
  const std::size_t n = std::min<std::uint64_t>(ref.count, 10000);
  const auto& q = ref.quantiles;
  for (std::size_t i = 0; i < n; ++i) {
    const double pos = (static_cast<double>(i) + 0.5) / static_cast<double>(n) * static_cast<double>(q.size() - 1);
    const auto lo = std::min(static_cast<std::size_t>(pos), q.size() - 2);
    out.push_back(q[lo] + (pos - static_cast<double>(lo)) * (q[lo + 1] - q[lo]));
  }
  return out;
}

// Evidently's feel_zeroes: empty bins get a tenth of a thousandth of a percent (or a
// millionth of the smallest share when that is smaller still).
void fill_zeroes(std::vector<double>& p) {
  double min_nonzero = std::numeric_limits<double>::infinity();
  for (double v : p) {
    if (v != 0) min_nonzero = std::min(min_nonzero, v);
  }
  if (!std::isfinite(min_nonzero)) return;
  const double fill = min_nonzero <= 0.0001 ? min_nonzero / 1e6 : 0.0001;
  for (double& v : p) {
    if (v == 0) v = fill;
  }
}

double psi(std::vector<double> r, std::vector<double> c) {
  fill_zeroes(r);
  fill_zeroes(c);
  double sum = 0;
  for (std::size_t i = 0; i < r.size(); ++i) sum += (r[i] - c[i]) * std::log(r[i] / c[i]);
  return sum;
}

// Shares of each side per key, keys the union of both sides' values.
struct KeyShares {
  std::vector<std::string> labels;
  std::vector<double> ref_counts, cur_counts;
};

bool p_drifts(std::string_view test, double p, double threshold) {
  return test == "ks" ? p <= threshold : p < threshold;  // as Evidently writes each test
}

double p_threshold(std::string_view test, const DriftThresholds& t) {
  if (test == "ks") return t.ks;
  if (test == "chi_square") return t.chi_square;
  return t.z;
}

// chi-square, z or Jensen-Shannon on counts per key (Evidently's rules for few values).
void compare_keys(ColumnDrift& out, const KeyShares& keys, double n_ref, double n_cur, bool small_reference) {
  const std::size_t k = keys.labels.size();
  std::vector<double> rp(k), cp(k);
  for (std::size_t i = 0; i < k; ++i) {
    rp[i] = keys.ref_counts[i] / n_ref;
    cp[i] = keys.cur_counts[i] / n_cur;
  }
  if (small_reference && k > 2) {
    std::vector<double> expected(k);
    for (std::size_t i = 0; i < k; ++i) expected[i] = keys.ref_counts[i] * (n_cur / n_ref);
    const auto r = chi_square(keys.cur_counts, expected);
    out.test = "chi_square";
    out.statistic = r.statistic;
    out.p_value = r.p_value;
  } else if (small_reference) {
    out.test = "z";
    if (k <= 1) {  // one value on both sides
      out.statistic = 0;
      out.p_value = 1.0;
    } else {
      // Share of rows that are not the first key (sorted), on each side.
      const std::size_t first =
          static_cast<std::size_t>(std::min_element(keys.labels.begin(), keys.labels.end()) - keys.labels.begin());
      const double p1 = 1.0 - keys.ref_counts[first] / n_ref, p2 = 1.0 - keys.cur_counts[first] / n_cur;
      const double pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur);
      const double z = (p1 - p2) / std::sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur));
      out.statistic = z;
      out.p_value = 2 * (1 - 0.5 * std::erfc(-std::fabs(z) / std::sqrt(2.0)));
    }
  } else {
    out.test = "jensen_shannon";
    out.statistic = jensen_shannon(rp, cp);
  }
  out.psi = psi(rp, cp);
}

void judge(ColumnDrift& out, const DriftOptions& options) {
  const auto& t = options.thresholds;
  if (out.test == "none") return;
  if (out.p_value) {
    out.threshold = p_threshold(out.test, t);
    out.drift = p_drifts(out.test, *out.p_value, out.threshold);
  } else {
    out.threshold = out.test == "wasserstein" ? t.wasserstein : t.jensen_shannon;
    out.drift = out.statistic >= out.threshold;
  }
  out.psi_drift = out.psi >= t.psi;
}

Result<ColumnDrift> compare_numerical(const ColumnReference& ref, const Column& current, const DriftOptions& options) {
  ColumnDrift out;
  out.name = ref.name;
  out.kind = ColumnKind::kNumerical;
  out.reference_count = ref.count;
  const std::vector<double> cur = detail::finite_sorted(current.numbers, out.current_missing);
  out.current_count = cur.size();
  out.test = "none";
  if (cur.empty() || ref.count == 0) return out;
  const double n_ref = static_cast<double>(ref.count), n_cur = static_cast<double>(cur.size());

  // Distinct values on both sides together, exact while the reference's are known:
  // the reference's (at most 20) merged with the runs of the sorted current values.
  std::vector<std::pair<double, std::pair<double, double>>> keyed;  // value -> (ref count, cur count)
  const bool ref_few = ref.distinct_count() <= 20;
  if (ref_few) {
    std::vector<std::pair<double, double>> refd;
    if (!ref.distinct.empty()) {
      for (const auto& [v, c] : ref.distinct) refd.emplace_back(v, static_cast<double>(c));
    } else {
      for (double v : ref.values) {
        if (refd.empty() || refd.back().first != v) refd.emplace_back(v, 0.0);
        refd.back().second += 1;
      }
    }
    std::size_t k = 0;
    for (std::size_t i = 0; i < cur.size();) {
      std::size_t j = i;
      while (j < cur.size() && cur[j] == cur[i]) ++j;
      for (; k < refd.size() && refd[k].first < cur[i]; ++k) keyed.push_back({refd[k].first, {refd[k].second, 0.0}});
      const double rc = k < refd.size() && refd[k].first == cur[i] ? refd[k++].second : 0.0;
      keyed.push_back({cur[i], {rc, static_cast<double>(j - i)}});
      i = j;
    }
    for (; k < refd.size(); ++k) keyed.push_back({refd[k].first, {refd[k].second, 0.0}});
  }
  const std::size_t n_values = ref_few ? keyed.size() : std::numeric_limits<std::size_t>::max();
  const bool small_reference = ref.count <= 1000;
  KeyShares keys;
  if (ref_few) {
    for (const auto& [v, counts] : keyed) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      keys.labels.emplace_back(buf);
      keys.ref_counts.push_back(counts.first);
      keys.cur_counts.push_back(counts.second);
    }
  }
  if (n_values <= 5) {
    compare_keys(out, keys, n_ref, n_cur, small_reference);
  } else {
    if (small_reference) {
      const auto sample = ref_sample(ref);
      const auto r = ks_2samp(sample, cur);
      out.test = "ks";
      out.statistic = r.statistic;
      out.p_value = r.p_value;
    } else {
      const double w = ref.quantiles.empty() ? wasserstein_1(ref_sample(ref), cur)
                                             : wasserstein_from_quantiles(ref.quantiles, cur);
      out.test = "wasserstein";
      out.statistic = w / std::max(ref.std, 0.001);
    }
    // PSI: by value while the reference has at most 20 of them, else Sturges bins over both.
    if (ref_few) {
      std::vector<double> rp, cp;
      for (std::size_t i = 0; i < keys.labels.size(); ++i) {
        rp.push_back(keys.ref_counts[i] / n_ref);
        cp.push_back(keys.cur_counts[i] / n_cur);
      }
      out.psi = psi(rp, cp);
    } else {
      const double lo = std::min(ref.min, cur.front()), hi = std::max(ref.max, cur.back());
      const double total = n_ref + n_cur;
      std::size_t bins = 1;
      if (hi > lo) {
        const double width = (hi - lo) / (std::log2(total) + 1.0);
        bins = static_cast<std::size_t>(std::ceil((hi - lo) / width));
      }
      const double first = hi > lo ? lo : lo - 0.5, last = hi > lo ? hi : hi + 0.5;
      std::vector<double> edges(bins + 1);
      for (std::size_t b = 0; b < bins; ++b) edges[b] = first + static_cast<double>(b) * ((last - first) / static_cast<double>(bins));
      edges[bins] = last;
      std::vector<double> rp(bins), cp(bins);
      for (std::size_t b = 0; b < bins; ++b) {
        const bool last_bin = b + 1 == bins;
        rp[b] = (ref_below(ref, edges[b + 1], last_bin) - ref_below(ref, edges[b], false)) / n_ref;
        const auto ce = last_bin ? std::upper_bound(cur.begin(), cur.end(), edges[b + 1])
                                 : std::lower_bound(cur.begin(), cur.end(), edges[b + 1]);
        const auto cb = std::lower_bound(cur.begin(), cur.end(), edges[b]);
        cp[b] = static_cast<double>(ce - cb) / n_cur;
      }
      out.psi = psi(rp, cp);
    }
  }
  judge(out, options);

  // Histogram for reports: equal bins over both sides' range.
  const double lo = std::min(ref.min, cur.front()), hi = std::max(ref.max, cur.back());
  const std::size_t bins = std::max<std::size_t>(options.report_bins, 1);
  auto& h = out.histogram;
  const double first = hi > lo ? lo : lo - 0.5, last = hi > lo ? hi : hi + 0.5;
  for (std::size_t b = 0; b <= bins; ++b) h.edges.push_back(first + (last - first) * static_cast<double>(b) / static_cast<double>(bins));
  for (std::size_t b = 0; b < bins; ++b) {
    const bool last_bin = b + 1 == bins;
    h.reference.push_back((ref_below(ref, h.edges[b + 1], last_bin) - ref_below(ref, h.edges[b], false)) / n_ref);
    const auto ce = last_bin ? std::upper_bound(cur.begin(), cur.end(), h.edges[b + 1])
                             : std::lower_bound(cur.begin(), cur.end(), h.edges[b + 1]);
    h.current.push_back(static_cast<double>(ce - std::lower_bound(cur.begin(), cur.end(), h.edges[b])) / n_cur);
  }
  return out;
}

Result<ColumnDrift> compare_categorical(const ColumnReference& ref, const Column& current, const DriftOptions& options) {
  ColumnDrift out;
  out.name = ref.name;
  out.kind = ColumnKind::kCategorical;
  out.reference_count = ref.count;
  std::unordered_map<std::string_view, double> cur_counts;
  for (const auto& label : current.labels) {
    if (label) cur_counts[*label] += 1;
    else ++out.current_missing;
  }
  const double n_cur = static_cast<double>(current.labels.size() - out.current_missing);
  out.current_count = current.labels.size() - out.current_missing;
  out.test = "none";
  if (n_cur == 0 || ref.count == 0) return out;
  const double n_ref = static_cast<double>(ref.count);
  // Keys: the reference's categories, then current labels it lacks (pooled with the
  // reference's own rest when it kept only its most frequent categories).
  std::map<std::string, std::pair<double, double>, std::less<>> keyed;
  for (const auto& [label, c] : ref.categories) keyed[label].first = static_cast<double>(c);
  for (const auto& [label, c] : cur_counts) {
    if (ref.other > 0 && !keyed.contains(label)) keyed[std::string(kOtherLabel)].second += c;
    else keyed[std::string(label)].second += c;
  }
  if (ref.other > 0) keyed[std::string(kOtherLabel)].first += static_cast<double>(ref.other);
  KeyShares keys;
  for (const auto& [label, counts] : keyed) {
    keys.labels.push_back(label);
    keys.ref_counts.push_back(counts.first);
    keys.cur_counts.push_back(counts.second);
  }
  compare_keys(out, keys, n_ref, n_cur, ref.count <= 1000);
  judge(out, options);
  // Histogram: the 20 most common labels of both sides, the rest as "(other)".
  std::vector<std::size_t> order(keys.labels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double ta = keys.ref_counts[a] / n_ref + keys.cur_counts[a] / n_cur;
    const double tb = keys.ref_counts[b] / n_ref + keys.cur_counts[b] / n_cur;
    return ta != tb ? ta > tb : keys.labels[a] < keys.labels[b];
  });
  auto& h = out.histogram;
  double rest_r = 0, rest_c = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const double r = keys.ref_counts[order[i]] / n_ref, c = keys.cur_counts[order[i]] / n_cur;
    if (i < options.report_bins) {
      h.labels.push_back(keys.labels[order[i]]);
      h.reference.push_back(r);
      h.current.push_back(c);
    } else {
      rest_r += r;
      rest_c += c;
    }
  }
  if (order.size() > options.report_bins) {
    h.labels.emplace_back(kOtherLabel);
    h.reference.push_back(rest_r);
    h.current.push_back(rest_c);
  }
  return out;
}

}  // namespace

Result<ColumnDrift> compare_column(const ColumnReference& reference, const Column& current, const DriftOptions& options) {
  if (reference.kind != current.kind) {
    return invalid_argument("column '" + reference.name + "' is " +
                            (reference.kind == ColumnKind::kNumerical ? "numerical" : "categorical") +
                            " in the reference but not in the current data");
  }
  return reference.kind == ColumnKind::kNumerical ? compare_numerical(reference, current, options)
                                                  : compare_categorical(reference, current, options);
}

Result<DriftResult> compare(const ReferenceStats& reference, const Table& current, const DriftOptions& options) {
  DriftResult result;
  result.drift_share = options.drift_share;
  struct Pair {
    const ColumnReference* ref;
    const Column* col;
    bool output;
  };
  std::vector<Pair> pairs;
  for (const auto& [refs, output] : {std::pair{&reference.features, false}, {&reference.outputs, true}}) {
    for (const auto& ref : *refs) {
      if (const Column* col = current.find(ref.name)) pairs.push_back({&ref, col, output});
    }
  }
  std::vector<std::optional<Result<ColumnDrift>>> done(pairs.size());
  detail::for_each_item(options.executor, pairs.size(), [&](std::size_t i) {
    try {
      done[i].emplace(compare_column(*pairs[i].ref, *pairs[i].col, options));
    } catch (const std::bad_alloc&) {
      done[i].emplace(resource_exhausted("drift: out of memory comparing '" + pairs[i].ref->name + "'"));
    }
  });
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (!done[i]->ok()) return done[i]->status();
    (pairs[i].output ? result.outputs : result.features).push_back(std::move(**done[i]));
  }
  if (result.features.empty() && result.outputs.empty()) {
    return invalid_argument("the current data has none of the reference's columns");
  }
  if (options.bonferroni) {
    for (auto* list : {&result.features, &result.outputs}) {
      std::size_t tests = 0;
      for (const auto& c : *list) tests += c.p_value.has_value();
      for (auto& c : *list) {
        if (!c.p_value || tests == 0) continue;
        c.threshold = p_threshold(c.test, options.thresholds) / static_cast<double>(tests);
        c.drift = p_drifts(c.test, *c.p_value, c.threshold);
      }
    }
  }
  for (const auto& c : result.features) {
    if (c.test == "none") continue;
    ++result.compared;
    result.drifted += c.drift;
  }
  for (const auto& c : result.outputs) result.prediction_drift = result.prediction_drift || c.drift;
  result.drifted_share = result.compared ? static_cast<double>(result.drifted) / static_cast<double>(result.compared) : 0.0;
  result.dataset_drift = result.compared > 0 && result.drifted_share >= options.drift_share;
  return result;
}

namespace {

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json column_drift_json(const ColumnDrift& c, bool histograms) {
  nlohmann::json j = {{"kind", c.kind == ColumnKind::kNumerical ? "numerical" : "categorical"},
                      {"test", c.test},
                      {"statistic", number_or_null(c.statistic)},
                      {"p_value", c.p_value ? number_or_null(*c.p_value) : nlohmann::json()},
                      {"threshold", c.threshold},
                      {"drift", c.drift},
                      {"psi", number_or_null(c.psi)},
                      {"psi_drift", c.psi_drift},
                      {"reference_count", c.reference_count},
                      {"current_count", c.current_count},
                      {"current_missing", c.current_missing}};
  if (histograms) {
    nlohmann::json h = {{"reference", c.histogram.reference}, {"current", c.histogram.current}};
    if (c.kind == ColumnKind::kNumerical) h["edges"] = c.histogram.edges;
    else h["labels"] = c.histogram.labels;
    j["histogram"] = std::move(h);
  }
  return j;
}

}  // namespace

std::string drift_to_json(const DriftResult& result, bool histograms) {
  nlohmann::ordered_json j;
  j["dataset_drift"] = result.dataset_drift;
  j["drifted_share"] = result.drifted_share;
  j["drift_share"] = result.drift_share;
  j["compared"] = result.compared;
  j["drifted"] = result.drifted;
  j["prediction_drift"] = result.prediction_drift;
  nlohmann::ordered_json features = nlohmann::ordered_json::object();
  for (const auto& c : result.features) features[c.name] = column_drift_json(c, histograms);
  j["features"] = std::move(features);
  nlohmann::ordered_json outputs = nlohmann::ordered_json::object();
  for (const auto& c : result.outputs) outputs[c.name] = column_drift_json(c, histograms);
  j["outputs"] = std::move(outputs);
  return j.dump(2) + "\n";
}

}  // namespace ember
