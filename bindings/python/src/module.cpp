// ember._ember: the C++ library for Python. Models and predictions here; the registry in
// registry.cpp. Every call that does work (loading, predicting, registry I/O) releases
// the GIL, so Python threads predict in parallel as C++ threads do.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.hpp"
#include "columns.hpp"
#include "convert.hpp"
#include "ember/model.hpp"
#include "ember/version.hpp"

namespace ember_py {

namespace {

py::dict outputs_dict(const ember::NamedTensors& outputs) {
  py::dict d;
  for (const auto& e : outputs) d[py::str(e.name)] = tensor_array(e.tensor);
  return d;
}

py::list skipped_list(const std::vector<ember::SkippedStage>& skipped) {
  py::list out;
  for (const auto& s : skipped) {
    py::dict d;
    d["stage"] = s.stage;
    d["code"] = std::string(ember::status_code_name(s.status.code()));
    d["message"] = s.status.message();
    out.append(std::move(d));
  }
  return out;
}

struct PyBatchPrediction {
  std::shared_ptr<ember::BatchPrediction> p = std::make_shared<ember::BatchPrediction>();
  std::size_t records = 0;
};

ember::ModelOptions model_options(const std::string& device, bool verify) {
  ember::ModelOptions o;
  o.device = device;
  o.verify_bundle = verify;
  return o;
}

// The Prediction this thread's last answer left behind (see PyPrediction).
thread_local std::shared_ptr<ember::Prediction> spare_prediction;

}  // namespace

PyPrediction::PyPrediction()
    : p(spare_prediction != nullptr ? std::move(spare_prediction) : std::make_shared<ember::Prediction>()) {}

PyPrediction::~PyPrediction() {
  if (p != nullptr && p.use_count() == 1 && spare_prediction == nullptr) spare_prediction = std::move(p);
}

void Watchers::add_to(ember::ModelOptions& options, const std::string& name, const std::string& version) const {
  if (metrics) options.observers.push_back(metrics->observer(name, version));
  if (monitor) options.observers.push_back(monitor);
}

std::shared_ptr<ember::Model> Watchers::watch(std::unique_ptr<ember::Model> model) const {
  std::shared_ptr<ember::Model> shared(std::move(model));
  if (metrics) metrics->watch(shared);
  return shared;
}

void bind_model(py::module_& m) {
  py::class_<Watchers>(m, "_Watchers")
      .def(py::init([](std::shared_ptr<ember::Metrics> metrics, std::shared_ptr<ember::Monitor> monitor) {
             return Watchers{std::move(metrics), std::move(monitor)};
           }),
           py::arg("metrics") = nullptr, py::arg("monitor") = nullptr);
  py::class_<PyPrediction>(m, "Prediction", "The answer to one record. Arrays share ember's memory (read-only).")
      .def_property_readonly("outputs", [](const PyPrediction& self) { return outputs_dict(self.p->outputs); },
                             "Each output as a numpy array, rows first (one row).")
      .def_property_readonly("served_by", [](const PyPrediction& self) { return self.p->served_by; })
      .def_property_readonly("skipped", [](const PyPrediction& self) { return skipped_list(self.p->skipped); },
                             "Stages passed over: dicts with stage, code, message.")
      .def_property_readonly("flagged", [](const PyPrediction& self) { return self.p->flagged_features; },
                             "Features outside their training range.")
      .def_property_readonly("needs_review", [](const PyPrediction& self) { return self.p->needs_review_flag(); })
      .def_property_readonly("latency_us",
                             [](const PyPrediction& self) { return static_cast<double>(self.p->latency.count()) / 1e3; })
      .def_property_readonly("model_name", [](const PyPrediction& self) { return self.p->model_name; })
      .def_property_readonly("model_version", [](const PyPrediction& self) { return self.p->model_version; })
      .def_property_readonly("request_id", [](const PyPrediction& self) { return self.p->request_id; })
      .def(
          "value", [](const PyPrediction& self, const std::string& name, std::size_t index) {
            return value_or_raise(self.p->value(name, index));
          },
          py::arg("name") = "output", py::arg("index") = 0, "Element `index` of output `name` as a float.")
      .def("__repr__", [](const PyPrediction& self) {
        return "<ember.Prediction served_by='" + self.p->served_by + "' outputs=" +
               std::to_string(self.p->outputs.size()) + ">";
      });

  py::class_<PyBatchPrediction>(m, "BatchPrediction",
                                "The answer to a batch: one output row per valid record (source_index says whose).")
      .def_property_readonly("outputs", [](const PyBatchPrediction& self) { return outputs_dict(self.p->outputs); })
      .def_property_readonly("source_index",
                             [](const PyBatchPrediction& self) {
                               py::array_t<std::int64_t> a(static_cast<py::ssize_t>(self.p->source_index.size()));
                               auto* d = a.mutable_data();
                               for (std::size_t i = 0; i < self.p->source_index.size(); ++i) {
                                 d[i] = static_cast<std::int64_t>(self.p->source_index[i]);
                               }
                               return a;
                             })
      .def_property_readonly("records", [](const PyBatchPrediction& self) { return self.records; })
      .def_property_readonly("valid", [](const PyBatchPrediction& self) { return self.p->validation.valid; })
      .def_property_readonly("invalid", [](const PyBatchPrediction& self) {
        py::dict out;  // record index -> its errors
        for (const auto& [index, report] : self.p->validation.records) {
          if (!report.ok()) out[py::int_(index)] = errors_list(report);
        }
        return out;
      }, "Invalid records: their index among the inputs -> their errors.")
      .def_property_readonly("served_by", [](const PyBatchPrediction& self) {
        py::list out;
        for (const auto& r : self.p->rows) out.append(r.served_by);
        return out;
      }, "Per output row, the stage that answered it.")
      .def_property_readonly("row_errors", [](const PyBatchPrediction& self) {
        py::dict out;  // output row -> "Code: message"
        for (std::size_t i = 0; i < self.p->rows.size(); ++i) {
          if (!self.p->rows[i].status.ok()) out[py::int_(i)] = self.p->rows[i].status.to_string();
        }
        return out;
      }, "Output rows no stage could answer: row -> 'Code: message' (their outputs are NaN).")
      .def_property_readonly("failed_rows", [](const PyBatchPrediction& self) { return self.p->failed_rows; })
      .def_property_readonly("latency_us", [](const PyBatchPrediction& self) {
        return static_cast<double>(self.p->latency.count()) / 1e3;
      })
      .def("__len__", [](const PyBatchPrediction& self) { return self.p->source_index.size(); });

  py::class_<ember::Model, std::shared_ptr<ember::Model>>(m, "Model", "One version of a model, loaded.")
      .def_static(
          "_load_dir",
          [](const std::filesystem::path& path, const std::string& device, bool verify, const std::string& name,
             const Watchers& watchers) {
            ember::ModelOptions options = model_options(device, verify);
            options.name = name;
            watchers.add_to(options, name.empty() ? path.filename().string() : name, "");
            return watchers.watch(unlocked([&] { return ember::Model::load(path, options); }));
          },
          py::arg("path"), py::arg("device"), py::arg("verify"), py::arg("name"), py::arg("watchers"))
      .def_property_readonly("schema", &ember::Model::schema, "The request schema (ember.Schema).")
      .def(
          "predict",
          [](const ember::Model& model, py::handle record) {
            const std::string_view json = record_text(record);
            PyPrediction out;
            ember::Status st;
            {
              GilRelease release;
              st = model.predict(json, *out.p);
            }
            if (!st.ok()) raise(st, out.p->validation.ok() ? nullptr : &out.p->validation);
            return out;
          },
          py::arg("record"),
          "Predicts for one record: a dict, a JSON string or a pandas row. InvalidArgument (a ValueError) "
          "with .errors when validation refuses it; the chain's error when no stage answers.")
      .def(
          "predict_batch",
          [](const ember::Model& model, py::handle records, unsigned threads, std::size_t block_rows, bool strict) {
            // Column by column when the schema allows it and the values are scalars;
            // else as JSON text, one record at a time.
            std::optional<ColumnBatch> columns = columns_of(records);
            std::vector<std::string> texts;
            if (!columns) {
              texts = records_json(records);
            } else if (!model.schema().accepts_columns()) {
              texts = records_json(*columns);
              columns.reset();
            }
            const std::vector<std::string_view> views(texts.begin(), texts.end());
            PyBatchPrediction out;
            out.records = columns ? columns->rows : texts.size();
            ember::PredictOptions po;
            po.threads = threads == 0 ? 1 : threads;
            po.block_rows = block_rows;
            ember::Status st;
            {
              GilRelease release;
              st = columns ? model.predict_batch(columns->columns(), *out.p, po) : model.predict_batch(views, *out.p, po);
            }
            const bool none_valid = st.code() == ember::StatusCode::kInvalidArgument && out.p->validation.valid == 0;
            if (!st.ok() && !(none_valid && !strict)) {
              // None valid: the first invalid record's errors go with the exception.
              const ember::ValidationReport* first = nullptr;
              for (const auto& r : out.p->validation.records) {
                if (!r.second.ok()) {
                  first = &r.second;
                  break;
                }
              }
              raise(st, first);
            }
            return out;
          },
          py::arg("records"), py::arg("threads") = 1, py::arg("block_rows") = 0, py::arg("strict") = true,
          "Predicts for a list of records, a pandas DataFrame or a dict of columns. Invalid records are "
          "left out and reported (.invalid); InvalidArgument when none is valid (strict=False: the answer, "
          "with every record in .invalid). block_rows > 0 runs the model on blocks of exactly that many rows, "
          "so that a row's answer does not depend on the rows batched with it.")
      .def_property_readonly("outputs", [](const ember::Model& model) {
        py::list out;
        for (const auto& spec : model.chain().outputs()) {
          py::dict d;
          d["name"] = spec.name;
          d["dtype"] = std::string(ember::dtype_name(spec.dtype));
          d["row_shape"] = spec.row_shape;
          out.append(d);
        }
        return out;
      }, "What every answer holds: dicts with name, dtype and row_shape (the shape of one row's value).")
      .def_property_readonly("name", &ember::Model::name)
      .def_property_readonly("version", &ember::Model::version)
      .def_property_readonly("input_width", &ember::Model::input_width)
      .def_property_readonly("features", [](const ember::Model& model) {
        std::vector<std::string> names;
        for (const auto& f : model.schema().features()) names.push_back(f.name);
        return names;
      })
      .def_property_readonly("stages", [](const ember::Model& model) { return model.chain().stage_names(); })
      .def("__repr__", [](const ember::Model& model) {
        return "<ember.Model name='" + model.name() + "' version='" + model.version() + "'>";
      });
}

}  // namespace ember_py

PYBIND11_MODULE(_ember, m) {
  m.doc() = "ember's C++ library: models, predictions and the registry (see the ember package)";
  m.attr("__version__") = std::string(ember::version());
  ember_py::bind_model(m);
  ember_py::bind_registry(m);
  ember_py::bind_serving(m);
  ember_py::bind_monitoring(m);
  ember_py::bind_rollout(m);
  m.def(
      "lower_to_native",
      [](const std::filesystem::path& path) {
        return ember_py::unlocked([&]() -> ember::Result<std::string> {
          ember::ExecutorOptions options;
          options.device = "cpu";
          options.optimize = false;
          auto loaded = ember::TorchExecutor::load(path, options);
          if (!loaded.ok()) return loaded.status();
          return (*loaded)->native_json();
        });
      },
      pybind11::arg("path"),
      "net.json of the native network a TorchScript file lowers to (FailedPrecondition, saying why, when it "
      "does not).");
}
