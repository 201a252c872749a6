// ember.RolloutController for Python: serves name@alias and the registry's rollout of
// it (see docs/rollouts.md). predict() returns the prediction and the arm that gave it;
// events reach a Python callable (with the GIL, from the thread that caused them).
#include <chrono>
#include <memory>
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "convert.hpp"
#include "ember/rollout_controller.hpp"

namespace ember_py {

namespace {

py::object status_object(const ember::RolloutStatus& s) {
  return py::module_::import("json").attr("loads")(ember::rollout_status_to_json(s));
}

py::dict event_dict(const ember::RolloutEvent& e) {
  return py::dict(py::arg("subject") = e.subject, py::arg("rollout") = e.rollout, py::arg("candidate") = e.candidate,
                  py::arg("kind") = e.kind, py::arg("status") = status_object(e.status));
}

using Command = ember::Status (ember::RolloutController::*)(std::string_view, std::string_view);

}  // namespace

void bind_rollout(py::module_& m) {
  py::class_<ember::RolloutController, std::shared_ptr<ember::RolloutController>> c(
      m, "RolloutController",
      "Serves name@alias and, while the registry holds a rollout of it, splits traffic between the control and "
      "the candidate, judges the candidate and acts (steps, promotion, pause, abort).");
  c.def_static(
      "create",
      [](std::shared_ptr<ember::Registry> registry, const std::string& ref, std::int64_t watch_interval_ms,
         const std::string& actor, py::object on_event, std::size_t compare_queue,
         std::shared_ptr<ember::Metrics> metrics, std::shared_ptr<ember::Monitor> monitor) {
        ember::RolloutControllerOptions o;
        o.watch_interval = std::chrono::milliseconds(watch_interval_ms);
        o.actor = actor;
        o.compare_queue = compare_queue;
        o.deployment.metrics = std::move(metrics);
        o.deployment.monitor = std::move(monitor);
        o.on_event = python_callback<ember::RolloutEvent>(on_event, "ember.RolloutController on_event", event_dict);
        auto created = unlocked([&] { return ember::RolloutController::create(std::move(registry), ref, o); });
        return released_without_gil(std::shared_ptr<ember::RolloutController>(std::move(created)));
      },
      py::arg("registry"), py::arg("ref"), py::arg("watch_interval_ms") = 0, py::arg("actor") = "rollout-controller",
      py::arg("on_event") = py::none(), py::arg("compare_queue") = 1024, py::arg("metrics") = nullptr,
      py::arg("monitor") = nullptr,
      "Serves `ref` ('churn@production') from `registry`, resuming its rollout when one is running. on_event(dict) "
      "is told of started, step, paused, resumed, promoted, aborted and error events.");
  c.def(
      "predict",
      [](const ember::RolloutController& rc, py::handle record, const std::string& key) {
        const std::string_view json = record_text(record);
        PyPrediction out;
        std::string arm;
        ember::Status st;
        {
          GilRelease release;
          st = rc.predict(json, key, *out.p, &arm);
        }
        if (!st.ok()) raise(st, out.p->validation.ok() ? nullptr : &out.p->validation);
        return py::make_tuple(std::move(out), arm);
      },
      py::arg("record"), py::arg("key"),
      "Answers with the arm `key` falls in (sticky): returns (prediction, 'control' or 'candidate').");
  c.def(
      "record_outcome",
      [](const ember::RolloutController& rc, const PyPrediction& p, double outcome) {
        GilRelease release;
        rc.record_outcome(*p.p, outcome);
      },
      py::arg("prediction"), py::arg("outcome"), "Ground truth for an answer predict() gave.");
  c.def("sync", [](ember::RolloutController& rc) { unlocked([&] { return rc.sync(); }); },
        "Reads the registry: new rollouts, other processes' commands, time-held steps.");
  const auto command = [&c](const char* name, Command f, const char* doc) {
    c.def(
        name,
        [f](ember::RolloutController& rc, const std::string& actor, const std::string& reason) {
          unlocked([&] { return (rc.*f)(actor, reason); });
        },
        py::arg("actor"), py::arg("reason") = "", doc);
  };
  command("pause", &ember::RolloutController::pause, "Holds the step (written to the registry, audited).");
  command("resume", &ember::RolloutController::resume, "Goes on from the held step.");
  command("abort", &ember::RolloutController::abort, "Takes every request off the candidate at once.");
  command("promote", &ember::RolloutController::promote, "Moves the alias to the candidate.");
  c.def("status", [](const ember::RolloutController& rc) { return status_object(rc.status()); },
        "The analysis: state, step, weight, reason, checks, per-arm counters.");
  c.def("record", [](const ember::RolloutController& rc) { return rollout_dict(rc.record()); },
        "The rollout as the registry keeps it (id 0: none).");
  c.def_property_readonly("has_rollout", &ember::RolloutController::has_rollout);
  c.def_property_readonly("candidate_weight", &ember::RolloutController::candidate_weight);
  c.def(
      "wait_idle",
      [](const ember::RolloutController& rc, std::int64_t timeout_ms) {
        GilRelease release;
        return rc.wait_idle(std::chrono::milliseconds(timeout_ms));
      },
      py::arg("timeout_ms") = 10000, "Waits for decisions' writes and the control's copies (False on timeout).");
}

}  // namespace ember_py
