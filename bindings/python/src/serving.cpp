// ember.Deployment for Python: a served name (or directory) with hot-swap and dynamic
// batching; submit() answers through a concurrent.futures.Future, which asyncio awaits
// with asyncio.wrap_future.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.hpp"
#include "convert.hpp"
#include "ember/deployment.hpp"

namespace ember_py {

namespace {

ember::RequestOptions request_options(std::int64_t deadline_us, int priority) {
  if (priority < 0 || priority >= ember::kPriorityLevels) {
    raise(ember::invalid_argument("priority is 0, 1 or 2, not " + std::to_string(priority)));
  }
  if (deadline_us < 0) raise(ember::invalid_argument("a deadline is not negative"));
  ember::RequestOptions o;
  o.deadline = std::chrono::microseconds(deadline_us);
  o.priority = static_cast<std::uint8_t>(priority);
  return o;
}

py::dict counters_dict(const ember::ServingCounters& c) {
  py::dict d;
  d["requests"] = c.requests;
  d["batches"] = c.batches;
  d["batched_rows"] = c.batched_rows;
  d["refused_queue_full"] = c.refused_queue_full;
  d["refused_deadline"] = c.refused_deadline;
  d["timed_out"] = c.timed_out;
  d["queue_time_ns"] = c.queue_time_ns;
  d["max_queue_time_ns"] = c.max_queue_time_ns;
  return d;
}

}  // namespace

void bind_serving(py::module_& m) {
  py::class_<ember::Deployment, std::shared_ptr<ember::Deployment>>(
      m, "Deployment", "A served name (or model directory): hot-swap, dynamic batching, asynchronous answers.")
      .def_static(
          "_create",
          [](py::object registry, const std::string& source, bool batching, std::size_t max_batch_rows,
             std::int64_t max_queue_delay_us, std::int64_t watch_interval_ms, std::vector<std::string> warmup,
             std::shared_ptr<ember::Metrics> metrics, std::shared_ptr<ember::Monitor> monitor) {
            ember::DeploymentOptions o;
            o.metrics = std::move(metrics);
            o.monitor = std::move(monitor);
            o.batching.enabled = batching;
            o.batching.max_batch_rows = max_batch_rows;
            o.batching.max_queue_delay = std::chrono::microseconds(max_queue_delay_us);
            o.watch_interval = std::chrono::milliseconds(watch_interval_ms);
            o.warmup_records = std::move(warmup);
            std::shared_ptr<ember::Registry> reg;
            if (!registry.is_none()) reg = registry.cast<std::shared_ptr<ember::Registry>>();
            ember::Result<std::unique_ptr<ember::Deployment>> d = ember::internal_error("not created");
            {
              GilRelease release;
              d = reg ? ember::Deployment::create(reg, source, o) : ember::Deployment::create(source, o);
            }
            return released_without_gil(std::shared_ptr<ember::Deployment>(value_or_raise(std::move(d))));
          },
          py::arg("registry"), py::arg("source"), py::arg("batching"), py::arg("max_batch_rows"),
          py::arg("max_queue_delay_us"), py::arg("watch_interval_ms"), py::arg("warmup"), py::arg("metrics") = nullptr,
          py::arg("monitor") = nullptr)
      .def(
          "predict",
          [](const ember::Deployment& d, py::handle record, std::int64_t deadline_us, int priority) {
            const std::string_view json = record_text(record);
            const ember::RequestOptions ro = request_options(deadline_us, priority);
            PyPrediction out;
            ember::Status st;
            {
              GilRelease release;
              st = d.predict(json, *out.p, ro);
            }
            if (!st.ok()) raise(st, out.p->validation.ok() ? nullptr : &out.p->validation);
            return out;
          },
          py::arg("record"), py::arg("deadline_us") = 0, py::arg("priority") = 1,
          "Answers one record with the version serving now (through the batcher when batching is on).")
      .def(
          "submit",
          [](const ember::Deployment& d, py::handle record, std::int64_t deadline_us, int priority) {
            std::string json = record_json(record);
            const ember::RequestOptions ro = request_options(deadline_us, priority);
            py::object future = py::module_::import("concurrent.futures").attr("Future")();
            auto held = std::make_shared<Held>(future);
            {
              GilRelease release;
              d.submit(std::move(json), [held](ember::Answer&& answer) {
                if (finalizing()) return;
                py::gil_scoped_acquire gil;
                try {
                  py::handle f(held->object);
                  if (answer.status.ok()) {
                    PyPrediction p;
                    *p.p = std::move(answer.prediction);
                    f.attr("set_result")(py::cast(std::move(p)));
                  } else {
                    const auto* report = answer.prediction.validation.ok() ? nullptr : &answer.prediction.validation;
                    f.attr("set_exception")(exception_of(answer.status, report));
                  }
                } catch (py::error_already_set& e) {
                  e.discard_as_unraisable("ember.Deployment.submit callback");
                }
              }, ro);
            }
            return future;
          },
          py::arg("record"), py::arg("deadline_us") = 0, py::arg("priority") = 1,
          "Submits one record; returns a concurrent.futures.Future of its Prediction (await it with "
          "asyncio.wrap_future). Never blocks beyond validating the record.")
      .def(
          "reload",
          [](ember::Deployment& d) { unlocked([&] { return d.reload(); }); },
          "Resolves the source again and swaps in a new version when it names one.")
      .def(
          "switch_to",
          [](ember::Deployment& d, const std::string& ref) { unlocked([&] { return d.switch_to(ref); }); },
          py::arg("ref"))
      .def("counters", [](const ember::Deployment& d) { return counters_dict(d.counters()); })
      .def_property_readonly("name", &ember::Deployment::name)
      .def_property_readonly("swaps", &ember::Deployment::swaps)
      .def_property_readonly("version", [](const ember::Deployment& d) { return d.current()->version(); },
                             "The version serving now.")
      .def("versions", [](const ember::Deployment& d) {
        py::list out;
        for (const auto& v : d.versions()) {
          py::dict e;
          e["version"] = v.version;
          e["state"] = std::string(ember::version_state_name(v.state));
          e["reason"] = v.reason.ok() ? std::string() : v.reason.to_string();
          out.append(std::move(e));
        }
        return out;
      });
}

}  // namespace ember_py
