// The HTML report: one self-contained page, inline SVG, no script, aggregates only.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>

#include "ember/metrics.hpp"
#include "ember/monitor.hpp"

namespace ember {

namespace {

constexpr const char* kRefColor = "#4c78a8";
constexpr const char* kCurColor = "#f58518";
constexpr const char* kPalette[] = {"#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"};

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v, const char* f = "%.4g") {
  if (!std::isfinite(v)) return "&ndash;";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Grouped bars, reference beside current, one group per bin.
std::string histogram_svg(const ColumnDrift& c) {
  const auto& h = c.histogram;
  const std::size_t bins = h.reference.size();
  if (bins == 0) return "<p class=\"muted\">no values</p>";
  const double w = 360, ht = 140, pad = 24;
  double top = 0;
  for (std::size_t i = 0; i < bins; ++i) top = std::max({top, h.reference[i], h.current[i]});
  if (top <= 0) top = 1;
  const double bw = (w - 2 * pad) / static_cast<double>(bins);
  std::string svg = "<svg class=\"plot\" role=\"img\" aria-label=\"" + esc(c.name) + " histogram\" width=\"" + fmt(w, "%.0f") +
                    "\" height=\"" + fmt(ht + 30, "%.0f") + "\" viewBox=\"0 0 " + fmt(w, "%.0f") + " " + fmt(ht + 30, "%.0f") + "\">";
  for (std::size_t i = 0; i < bins; ++i) {
    const double x = pad + bw * static_cast<double>(i);
    const double rh = h.reference[i] / top * ht, ch = h.current[i] / top * ht;
    const std::string label = h.labels.empty() ? fmt(h.edges[i]) + " to " + fmt(h.edges[i + 1]) : esc(h.labels[i]);
    svg += "<rect x=\"" + fmt(x + 1, "%.2f") + "\" y=\"" + fmt(ht - rh + 4, "%.2f") + "\" width=\"" + fmt(bw / 2 - 1, "%.2f") +
           "\" height=\"" + fmt(rh, "%.2f") + "\" fill=\"" + kRefColor + "\"><title>" + label + ": reference " +
           fmt(h.reference[i] * 100, "%.1f") + "%</title></rect>";
    svg += "<rect x=\"" + fmt(x + bw / 2, "%.2f") + "\" y=\"" + fmt(ht - ch + 4, "%.2f") + "\" width=\"" + fmt(bw / 2 - 1, "%.2f") +
           "\" height=\"" + fmt(ch, "%.2f") + "\" fill=\"" + kCurColor + "\"><title>" + label + ": current " +
           fmt(h.current[i] * 100, "%.1f") + "%</title></rect>";
  }
  svg += "<line x1=\"" + fmt(pad, "%.0f") + "\" y1=\"" + fmt(ht + 4, "%.0f") + "\" x2=\"" + fmt(w - pad, "%.0f") + "\" y2=\"" +
         fmt(ht + 4, "%.0f") + "\" stroke=\"#888\"/>";
  if (h.labels.empty()) {
    svg += "<text x=\"" + fmt(pad, "%.0f") + "\" y=\"" + fmt(ht + 20, "%.0f") + "\" class=\"tick\">" + fmt(h.edges.front()) + "</text>";
    svg += "<text x=\"" + fmt(w - pad, "%.0f") + "\" y=\"" + fmt(ht + 20, "%.0f") + "\" class=\"tick\" text-anchor=\"end\">" +
           fmt(h.edges.back()) + "</text>";
  } else {
    for (std::size_t i = 0; i < bins; ++i) {  // each category under its bars, cut to fit
      const std::size_t fit = std::max<std::size_t>(static_cast<std::size_t>(bw / 6), 1);
      const std::string& full = h.labels[i];
      std::size_t cut = std::min(fit, full.size());
      while (cut > 0 && cut < full.size() && (static_cast<unsigned char>(full[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
      const std::string label = full.substr(0, cut);
      svg += "<text x=\"" + fmt(pad + bw * (static_cast<double>(i) + 0.5), "%.2f") + "\" y=\"" + fmt(ht + 20, "%.0f") +
             "\" class=\"tick\" text-anchor=\"middle\">" + esc(label) + "</text>";
    }
  }
  return svg + "</svg>";
}

std::string drift_section(const DriftResult& d) {
  std::string s = "<section><h2>Drift</h2><p>Dataset drift: <b class=\"" + std::string(d.dataset_drift ? "bad" : "good") + "\">" +
                  (d.dataset_drift ? "yes" : "no") + "</b> &mdash; " + std::to_string(d.drifted) + " of " +
                  std::to_string(d.compared) + " features drifted (share " + fmt(d.drifted_share, "%.3f") + ", threshold " +
                  fmt(d.drift_share, "%.2f") + ").</p>";
  s += "<table><thead><tr><th>column</th><th>kind</th><th>test</th><th>statistic</th><th>p-value</th><th>threshold</th>"
       "<th>drift</th><th>PSI</th><th>current rows</th></tr></thead><tbody>";
  for (const auto* list : {&d.features, &d.outputs}) {
    for (const auto& c : *list) {
      s += "<tr><td>" + esc(c.name) + (list == &d.outputs ? " <span class=\"muted\">(output)</span>" : "") + "</td><td>" +
           (c.kind == ColumnKind::kNumerical ? "numerical" : "categorical") + "</td><td>" + esc(c.test) + "</td><td>" +
           fmt(c.statistic) + "</td><td>" + (c.p_value ? fmt(*c.p_value) : "&ndash;") + "</td><td>" + fmt(c.threshold) +
           "</td><td class=\"" + (c.drift ? "bad\">drift" : "good\">no") + "</td><td>" + fmt(c.psi) + "</td><td>" +
           std::to_string(c.current_count) + "</td></tr>";
    }
  }
  s += "</tbody></table><h3>Reference <span class=\"swatch\" style=\"background:" + std::string(kRefColor) +
       "\"></span> and current <span class=\"swatch\" style=\"background:" + kCurColor + "\"></span> distributions</h3><div class=\"grid\">";
  for (const auto* list : {&d.features, &d.outputs}) {
    for (const auto& c : *list) {
      s += "<figure><figcaption>" + esc(c.name) + (c.drift ? " <b class=\"bad\">drift</b>" : "") + "</figcaption>" +
           histogram_svg(c) + "</figure>";
    }
  }
  return s + "</div></section>";
}

std::string latency_section(const std::map<std::string, std::vector<std::uint64_t>>& latency) {
  std::string s = "<section><h2>Latency</h2><div class=\"grid\">";
  const auto bounds = latency_buckets();
  for (const auto& [version, counts] : latency) {
    std::uint64_t total = 0, top = 1;
    for (auto c : counts) {
      total += c;
      top = std::max(top, c);
    }
    const double w = 480, ht = 140, pad = 24;
    const double bw = (w - 2 * pad) / static_cast<double>(counts.size());
    std::string svg = "<svg class=\"plot\" role=\"img\" aria-label=\"latency of version " + esc(version) +
                      "\" width=\"480\" height=\"180\" viewBox=\"0 0 480 180\">";
    for (std::size_t i = 0; i < counts.size(); ++i) {
      const double bh = static_cast<double>(counts[i]) / static_cast<double>(top) * ht;
      const std::string label = i < bounds.size() ? "&le; " + fmt(bounds[i] * 1e6, "%g") + " &micro;s" : "&gt; 10 s";
      svg += "<rect x=\"" + fmt(pad + bw * static_cast<double>(i) + 1, "%.2f") + "\" y=\"" + fmt(ht - bh + 4, "%.2f") +
             "\" width=\"" + fmt(bw - 2, "%.2f") + "\" height=\"" + fmt(bh, "%.2f") + "\" fill=\"" + kRefColor + "\"><title>" +
             label + ": " + std::to_string(counts[i]) + "</title></rect>";
    }
    svg += "<text x=\"24\" y=\"164\" class=\"tick\">1 &micro;s</text><text x=\"456\" y=\"164\" class=\"tick\" "
           "text-anchor=\"end\">10 s</text></svg>";
    s += "<figure><figcaption>version " + esc(version) + " &mdash; " + std::to_string(total) + " requests</figcaption>" + svg +
         "</figure>";
  }
  return s + "</div></section>";
}

std::string served_section(const std::vector<WindowReport>& windows) {
  std::set<std::string> stages;
  for (const auto& w : windows) {
    for (const auto& [name, n] : w.served_by) stages.insert(name);
  }
  std::vector<std::string> names(stages.begin(), stages.end());
  const double w = 640, ht = 160, pad = 30;
  const double bw = (w - 2 * pad) / static_cast<double>(std::max<std::size_t>(windows.size(), 1));
  std::string svg = "<svg class=\"plot\" role=\"img\" aria-label=\"served_by over time\" width=\"640\" height=\"200\" "
                    "viewBox=\"0 0 640 200\">";
  std::string line;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    double y = ht + 4;
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto it = windows[i].served_by.find(names[k]);
      if (it == windows[i].served_by.end()) continue;
      const double share = static_cast<double>(it->second) / static_cast<double>(std::max<std::uint64_t>(windows[i].rows, 1));
      const double bh = share * ht;
      y -= bh;
      svg += "<rect x=\"" + fmt(pad + bw * static_cast<double>(i), "%.2f") + "\" y=\"" + fmt(y, "%.2f") + "\" width=\"" +
             fmt(std::max(bw - 1, 0.5), "%.2f") + "\" height=\"" + fmt(bh, "%.2f") + "\" fill=\"" + kPalette[k % 8] +
             "\"><title>window " + std::to_string(windows[i].index) + ": " + esc(names[k]) + " " +
             fmt(share * 100, "%.1f") + "%</title></rect>";
    }
    line += (line.empty() ? "" : " ") + fmt(pad + bw * (static_cast<double>(i) + 0.5), "%.2f") + "," +
            fmt(ht + 4 - windows[i].fallback_rate * ht, "%.2f");
  }
  if (!line.empty()) svg += "<polyline points=\"" + line + "\" fill=\"none\" stroke=\"#222\" stroke-width=\"2\"><title>fallback rate</title></polyline>";
  svg += "</svg>";
  std::string legend;
  for (std::size_t k = 0; k < names.size(); ++k) {
    legend += "<span class=\"swatch\" style=\"background:" + std::string(kPalette[k % 8]) + "\"></span>" + esc(names[k]) + " ";
  }
  std::string s = "<section><h2>Served by, and fallbacks, over time</h2><p>" + legend +
                  "<span class=\"swatch\" style=\"background:#222\"></span>fallback rate</p>" + svg;
  s += "<table><thead><tr><th>window</th><th>rows</th><th>versions</th><th>mean confidence</th><th>fallback rate</th>"
       "<th>p50 latency</th><th>p95 latency</th><th>alerts raised</th></tr></thead><tbody>";
  for (const auto& win : windows) {
    std::string versions, alerts;
    for (const auto& [v, n] : win.versions) versions += (versions.empty() ? "" : ", ") + esc(v) + " (" + std::to_string(n) + ")";
    for (const auto& a : win.alerts) alerts += (alerts.empty() ? "" : ", ") + esc(a.kind) + (a.subject.empty() ? "" : " " + esc(a.subject));
    s += "<tr><td>" + std::to_string(win.index) + "</td><td>" + std::to_string(win.rows) + "</td><td>" + versions + "</td><td>" +
         fmt(win.mean_confidence, "%.3f") + "</td><td>" + fmt(win.fallback_rate, "%.3f") + "</td><td>" +
         fmt(static_cast<double>(win.latency_p50.count()) / 1e3, "%.1f") + " &micro;s</td><td>" +
         fmt(static_cast<double>(win.latency_p95.count()) / 1e3, "%.1f") + " &micro;s</td><td>" + alerts + "</td></tr>";
  }
  return s + "</tbody></table></section>";
}

std::string outcome_section(const std::vector<OutcomeStats>& outcomes) {
  std::string s = "<section><h2>Outcomes per version</h2><table><thead><tr><th>version</th><th>outcomes joined</th>"
                  "<th>kept</th><th>accuracy</th><th>AUC</th><th>MAE</th></tr></thead><tbody>";
  for (const auto& o : outcomes) {
    s += "<tr><td>" + esc(o.version) + "</td><td>" + std::to_string(o.joined) + "</td><td>" + std::to_string(o.window) +
         "</td><td>" + (o.accuracy ? fmt(*o.accuracy, "%.4f") : "&ndash;") + "</td><td>" + (o.auc ? fmt(*o.auc, "%.4f") : "&ndash;") +
         "</td><td>" + fmt(o.mae, "%.4g") + "</td></tr>";
  }
  return s + "</tbody></table></section>";
}

}  // namespace

std::string render_report(const ReportData& data) {
  const std::string title = data.title.empty() ? "ember report" : data.title;
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) +
      "</title><style>"
      "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}"
      "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}"
      "h3{font-size:15px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;"
      "text-align:left}th{background:#f4f4f4}.bad{color:#c0392b}.good{color:#2e7d32}.muted{color:#888}"
      ".grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:6px}"
      "figcaption{font-weight:600}.tick{font-size:10px;fill:#555}"
      ".swatch{display:inline-block;width:10px;height:10px;margin:0 4px 0 8px;vertical-align:middle}"
      "</style></head><body><h1>" +
      esc(title) + "</h1>";
  if (!data.model.empty()) html += "<p>Model: <b>" + esc(data.model) + "</b></p>";
  if (data.drift) html += drift_section(*data.drift);
  if (!data.latency.empty()) html += latency_section(data.latency);
  if (!data.windows.empty()) html += served_section(data.windows);
  if (!data.outcomes.empty()) html += outcome_section(data.outcomes);
  if (!data.drift && data.latency.empty() && data.windows.empty() && data.outcomes.empty()) {
    html += "<p class=\"muted\">Nothing observed yet.</p>";
  }
  return html + "</body></html>\n";
}

}  // namespace ember
