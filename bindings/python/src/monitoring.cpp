// Monitoring from Python: Metrics (Prometheus text), reference statistics, tables,
// drift results (ember.compare), the Monitor observer and HTML reports. The same names
// as in C++; results are read-only objects, alerts and windows come back as dicts.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.hpp"
#include "convert.hpp"
#include "ember/drift.hpp"
#include "ember/metrics.hpp"
#include "ember/monitor.hpp"

namespace ember_py {

namespace {

using ember::ColumnKind;

std::string kind_name(ColumnKind kind) { return kind == ColumnKind::kNumerical ? "numerical" : "categorical"; }

double seconds(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e9; }

py::dict alert_dict(const ember::Alert& a) {
  return py::dict(py::arg("kind") = a.kind, py::arg("model") = a.model, py::arg("subject") = a.subject,
                  py::arg("value") = a.value, py::arg("threshold") = a.threshold,
                  py::arg("since_s") = seconds(a.since), py::arg("persistent") = a.persistent);
}

py::dict outcome_dict(const ember::OutcomeStats& o) {
  return py::dict(py::arg("version") = o.version, py::arg("joined") = o.joined, py::arg("window") = o.window,
                  py::arg("accuracy") = o.accuracy, py::arg("auc") = o.auc, py::arg("mae") = o.mae);
}

py::dict window_dict(const ember::WindowReport& w) {
  py::list alerts;
  for (const auto& a : w.alerts) alerts.append(alert_dict(a));
  return py::dict(py::arg("index") = w.index, py::arg("rows") = w.rows, py::arg("start_s") = seconds(w.start),
                  py::arg("end_s") = seconds(w.end), py::arg("drift") = w.drift,
                  py::arg("mean_confidence") = w.mean_confidence, py::arg("fallback_rate") = w.fallback_rate,
                  py::arg("latency_p50_s") = seconds(w.latency_p50), py::arg("latency_p95_s") = seconds(w.latency_p95),
                  py::arg("served_by") = w.served_by, py::arg("versions") = w.versions, py::arg("alerts") = alerts);
}

// The columns of `frame` (a DataFrame or a dict of columns) that `reference` knows, of
// the kinds it gives them: numbers as read_table reads them (what does not parse is
// missing), categories labelled as ember.reference labels a training frame.
ember::Table table_from_frame(py::handle frame, const ember::ReferenceStats& reference) {
  const py::module_ np = py::module_::import("numpy");
  ember::Table table;
  bool first = true;
  const auto add = [&](const ember::ColumnReference& ref) {
    if (!py::cast<bool>(frame.attr("__contains__")(ref.name))) return;
    py::object values = frame.attr("__getitem__")(ref.name);
    ember::Column c;
    c.name = ref.name;
    c.kind = ref.kind;
    if (ref.kind == ColumnKind::kNumerical) {
      // to_numeric(errors="coerce"): what does not parse is missing, as read_table does
      const py::object numbers = py::module_::import("pandas").attr("to_numeric")(
          np.attr("asarray")(values, py::arg("dtype") = "object").attr("ravel")(), py::arg("errors") = "coerce");
      const auto a = np.attr("asarray")(numbers, py::arg("dtype") = "float64").cast<py::array_t<double>>();
      c.numbers.assign(a.data(), a.data() + a.size());
    } else {
      // Labelled as the reference's own statistics were (ember.reference, from a frame).
      const py::object label_of = py::module_::import("ember.reference").attr("_label");
      const py::list list = np.attr("asarray")(values, py::arg("dtype") = "object").attr("tolist")();
      for (auto v : list) {
        const py::object label = label_of(v);
        c.labels.push_back(label.is_none() ? std::nullopt : std::optional<std::string>(label.cast<std::string>()));
      }
    }
    const std::size_t n = c.size();
    if (!first && n != table.rows) {
      raise(ember::invalid_argument("column '" + ref.name + "' has " + std::to_string(n) + " values where others have " +
                                    std::to_string(table.rows)));
    }
    first = false;
    table.rows = n;
    table.columns.push_back(std::move(c));
  };
  for (const auto& f : reference.features) add(f);
  for (const auto& f : reference.outputs) add(f);
  if (table.columns.empty()) raise(ember::invalid_argument("the frame has none of the reference's columns"));
  return table;
}

ember::Table as_table(py::handle current, const ember::ReferenceStats& reference) {
  if (py::isinstance<ember::Table>(current)) return current.cast<ember::Table>();
  return table_from_frame(current, reference);
}

template <typename T>
std::optional<T> optional_of(const py::object& o) {
  if (o.is_none()) return std::nullopt;
  return o.cast<T>();
}

}  // namespace

void bind_monitoring(py::module_& m) {
  py::class_<ember::Schema>(m, "Schema", "A compiled request schema (JSON Schema, pydantic's subset).")
      .def_static("load", [](const std::filesystem::path& p) { return value_or_raise(ember::Schema::load(p)); },
                  py::arg("path"))
      .def_static("compile", [](const std::string& text) { return value_or_raise(ember::Schema::compile(text)); },
                  py::arg("text"))
      .def_property_readonly("features", [](const ember::Schema& s) {
        std::vector<std::string> names;
        for (const auto& f : s.features()) names.push_back(f.name);
        return names;
      })
      .def("accepts_columns", &ember::Schema::accepts_columns,
           "True when batches are read column by column (see docs/python.md).");

  py::class_<ember::Metrics, std::shared_ptr<ember::Metrics>>(
      m, "Metrics", "Prometheus metrics of models and deployments; serve text() on the host's own endpoint.")
      .def(py::init(&ember::Metrics::create))
      .def(
          "text",
          [](const ember::Metrics& metrics, const std::string& format) {
            if (format != "prometheus" && format != "openmetrics") {
              raise(ember::invalid_argument("format is 'prometheus' or 'openmetrics', not '" + format + "'"));
            }
            return metrics.text(format == "openmetrics" ? ember::MetricsFormat::kOpenMetrics
                                                         : ember::MetricsFormat::kPrometheus);
          },
          py::arg("format") = "prometheus", "The text exposition format (0.0.4) or OpenMetrics 1.0.")
      .def(
          "watch", [](ember::Metrics& metrics, const std::shared_ptr<ember::Model>& model) { metrics.watch(model); },
          py::arg("model"), "Also report the model's stage counters and breaker states.");

  py::class_<ember::ReferenceStats>(m, "ReferenceStats", "Reference statistics (a bundle's reference.json).")
      .def_readonly("rows", &ember::ReferenceStats::rows)
      .def_property_readonly("features", [](const ember::ReferenceStats& r) {
        std::vector<std::string> names;
        for (const auto& c : r.features) names.push_back(c.name);
        return names;
      })
      .def_property_readonly("outputs", [](const ember::ReferenceStats& r) {
        std::vector<std::string> names;
        for (const auto& c : r.outputs) names.push_back(c.name);
        return names;
      })
      .def("to_json", [](const ember::ReferenceStats& r) { return ember::reference_to_json(r); });
  m.def(
      "load_reference",
      [](const std::filesystem::path& p) { return unlocked([&] { return ember::load_reference(p); }); },
      py::arg("path"), "Reads reference.json (NotFound, or InvalidArgument naming the field).");
  m.def(
      "parse_reference", [](const std::string& text) { return unlocked([&] { return ember::parse_reference(text); }); },
      py::arg("text"));

  py::class_<ember::Table>(m, "Table", "Columns to compare with a reference.")
      .def_static("from_frame", &table_from_frame, py::arg("frame"), py::arg("reference"),
                  "The columns of a DataFrame (or dict of columns) that the reference knows, of its kinds.")
      .def_readonly("rows", &ember::Table::rows)
      .def_property_readonly("columns", [](const ember::Table& t) {
        std::vector<std::string> names;
        for (const auto& c : t.columns) names.push_back(c.name);
        return names;
      });
  m.def(
      "read_table",
      [](const std::filesystem::path& p, const ember::Schema& schema) {
        return unlocked([&] { return ember::read_table(p, schema); });
      },
      py::arg("path"), py::arg("schema"), "A CSV or JSON lines file's comparable features.");

  py::class_<ember::ColumnDrift>(m, "ColumnDrift", "One column's comparison with its reference.")
      .def_readonly("name", &ember::ColumnDrift::name)
      .def_property_readonly("kind", [](const ember::ColumnDrift& c) { return kind_name(c.kind); })
      .def_readonly("test", &ember::ColumnDrift::test)
      .def_readonly("statistic", &ember::ColumnDrift::statistic)
      .def_readonly("p_value", &ember::ColumnDrift::p_value)
      .def_readonly("threshold", &ember::ColumnDrift::threshold)
      .def_readonly("drift", &ember::ColumnDrift::drift)
      .def_readonly("psi", &ember::ColumnDrift::psi)
      .def_readonly("psi_drift", &ember::ColumnDrift::psi_drift)
      .def_readonly("reference_count", &ember::ColumnDrift::reference_count)
      .def_readonly("current_count", &ember::ColumnDrift::current_count)
      .def_readonly("current_missing", &ember::ColumnDrift::current_missing)
      .def("__repr__", [](const ember::ColumnDrift& c) {
        return "<ember.ColumnDrift " + c.name + " " + c.test + (c.drift ? " drift>" : " no drift>");
      });

  py::class_<ember::DriftResult>(m, "DriftResult", "Drift of every compared column, and of the dataset.")
      .def_readonly("features", &ember::DriftResult::features)
      .def_readonly("outputs", &ember::DriftResult::outputs)
      .def_readonly("compared", &ember::DriftResult::compared)
      .def_readonly("drift_share", &ember::DriftResult::drift_share)
      .def_readonly("drifted", &ember::DriftResult::drifted)
      .def_readonly("drifted_share", &ember::DriftResult::drifted_share)
      .def_readonly("dataset_drift", &ember::DriftResult::dataset_drift)
      .def_readonly("prediction_drift", &ember::DriftResult::prediction_drift)
      .def(
          "to_json", [](const ember::DriftResult& r, bool histograms) { return ember::drift_to_json(r, histograms); },
          py::arg("histograms") = false, "The JSON `ember drift --json` prints.");

  m.def(
      "compare",
      [](const ember::ReferenceStats& reference, py::handle current, double drift_share, bool bonferroni,
         std::size_t report_bins) {
        const ember::Table table = as_table(current, reference);
        ember::DriftOptions o;
        o.drift_share = drift_share;
        o.bonferroni = bonferroni;
        o.report_bins = report_bins;
        return unlocked([&] { return ember::compare(reference, table, o); });
      },
      py::arg("reference"), py::arg("current"), py::arg("drift_share") = 0.5, py::arg("bonferroni") = false,
      py::arg("report_bins") = 20,
      "Compares `current` (a Table, DataFrame or dict of columns) with the reference: Evidently's tests and "
      "thresholds.");

  m.def(
      "render_report",
      [](const std::string& title, const std::string& model, std::optional<ember::DriftResult> drift) {
        ember::ReportData data;
        data.title = title;
        data.model = model;
        data.drift = std::move(drift);
        GilRelease release;
        return ember::render_report(data);
      },
      py::arg("title") = "", py::arg("model") = "", py::arg("drift") = py::none(),
      "One self-contained HTML page (inline SVG, no script).");

  py::class_<ember::Monitor, std::shared_ptr<ember::Monitor>>(
      m, "Monitor", "Watches a model's requests: drift per window, alerts, outcomes, a prediction log, a report.")
      .def_static(
          "_create",
          [](const ember::Schema& schema, const std::string& model, std::optional<ember::ReferenceStats> reference,
             std::size_t window_rows, std::int64_t window_time_ms, double drift_share, bool bonferroni,
             std::optional<double> min_confidence, std::optional<double> max_fallback_rate,
             std::optional<double> max_latency_p95_ms, std::optional<double> min_accuracy,
             std::optional<double> min_auc, std::optional<double> max_mae, std::size_t min_outcomes,
             bool outcomes, std::int64_t outcome_ttl_s, const std::string& log_path, double sample_rate,
             std::shared_ptr<ember::Registry> registry, py::object on_alert, std::int64_t retrain_after_s,
             const std::string& retrain_command) {
            ember::MonitorOptions o;
            o.model = model;
            o.reference = std::move(reference);
            o.window_rows = window_rows;
            o.window_time = std::chrono::milliseconds(window_time_ms);
            o.drift.drift_share = drift_share;
            o.drift.bonferroni = bonferroni;
            o.alerts.min_confidence = min_confidence;
            o.alerts.max_fallback_rate = max_fallback_rate;
            if (max_latency_p95_ms) {
              o.alerts.max_latency_p95 = std::chrono::nanoseconds(static_cast<std::int64_t>(*max_latency_p95_ms * 1e6));
            }
            o.alerts.min_accuracy = min_accuracy;
            o.alerts.min_auc = min_auc;
            o.alerts.max_mae = max_mae;
            o.alerts.min_outcomes = min_outcomes;
            o.outcomes.enabled = outcomes;
            o.outcomes.ttl = std::chrono::seconds(outcome_ttl_s);
            o.log.path = log_path;
            o.log.sample_rate = sample_rate;
            o.registry = std::move(registry);
            o.on_alert = python_callback<ember::Alert>(on_alert, "ember.Monitor on_alert", alert_dict);
            o.retrain_after = std::chrono::seconds(retrain_after_s);
            o.retrain_command = retrain_command;
            return released_without_gil(unlocked([&] { return ember::Monitor::create(schema, std::move(o)); }));
          },
          py::arg("schema"), py::arg("model"), py::arg("reference"), py::arg("window_rows"),
          py::arg("window_time_ms"), py::arg("drift_share"), py::arg("bonferroni"), py::arg("min_confidence"),
          py::arg("max_fallback_rate"), py::arg("max_latency_p95_ms"), py::arg("min_accuracy"), py::arg("min_auc"),
          py::arg("max_mae"), py::arg("min_outcomes"), py::arg("outcomes"), py::arg("outcome_ttl_s"),
          py::arg("log_path"), py::arg("sample_rate"), py::arg("registry"), py::arg("on_alert"),
          py::arg("retrain_after_s"), py::arg("retrain_command"))
      .def(
          "record_outcome",
          [](ember::Monitor& mon, std::uint64_t request_id, double outcome) {
            unlocked([&] { return mon.record_outcome(request_id, outcome); });
          },
          py::arg("request_id"), py::arg("outcome"), "Joins ground truth to the prediction of `request_id`.")
      .def("flush", [](ember::Monitor& mon) { unlocked([&] { return mon.flush(); }); },
           "Closes the window now and evaluates it; flushes the prediction log.")
      .def("poll", [](ember::Monitor& mon) {
        GilRelease release;
        mon.poll();
      })
      .def("windows", [](const ember::Monitor& mon) {
        py::list out;
        for (const auto& w : mon.windows()) out.append(window_dict(w));
        return out;
      })
      .def("outcomes", [](const ember::Monitor& mon) {
        py::list out;
        for (const auto& o : mon.outcomes()) out.append(outcome_dict(o));
        return out;
      })
      .def("active_alerts", [](const ember::Monitor& mon) {
        py::list out;
        for (const auto& a : mon.active_alerts()) out.append(alert_dict(a));
        return out;
      })
      .def("counters", [](const ember::Monitor& mon) {
        const auto c = mon.counters();
        return py::dict(py::arg("requests") = c.requests, py::arg("windows") = c.windows,
                        py::arg("outcomes_joined") = c.outcomes_joined, py::arg("outcomes_unknown") = c.outcomes_unknown,
                        py::arg("predictions_expired") = c.predictions_expired, py::arg("logged") = c.logged,
                        py::arg("log_errors") = c.log_errors);
      })
      .def(
          "report_html",
          [](const ember::Monitor& mon, const std::string& title) {
            GilRelease release;
            return mon.report_html(title);
          },
          py::arg("title") = "", "What this monitor has seen, as one self-contained HTML page.");
}

}  // namespace ember_py
