// ember.Registry for Python: the same methods and names as the C++ Registry; versions,
// events and rollouts come back as dicts. The GIL is released during every call.
#include <memory>
#include <string>
#include <utility>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.hpp"
#include "convert.hpp"
#include "ember/registry.hpp"

namespace ember_py {

namespace {

using ember::Registry;

ember::RegistryOptions options(const std::string& key) {
  ember::RegistryOptions o;
  o.encryption_key = key;
  return o;
}

py::dict version_dict(const ember::VersionInfo& v) {
  py::dict d;
  d["name"] = v.name;
  d["version"] = v.version;
  d["digest"] = v.digest;
  d["publisher"] = v.publisher;
  d["note"] = v.note;
  d["created_us"] = v.created_us;
  d["archived"] = v.archived;
  d["bytes"] = v.bytes;
  d["aliases"] = v.aliases;
  py::list approvals;
  for (const auto& a : v.approvals) approvals.append(py::dict(py::arg("actor") = a.actor, py::arg("note") = a.note,
                                                               py::arg("at_us") = a.at_us));
  d["approvals"] = approvals;
  d["signed_by"] = v.signed_by;
  d["tags"] = v.tags;
  py::list files;
  for (const auto& f : v.files) files.append(py::dict(py::arg("path") = f.path, py::arg("role") = f.role,
                                                      py::arg("size") = f.size, py::arg("sha256") = f.sha256));
  d["files"] = files;
  return d;
}

py::dict event_dict(const ember::AliasEvent& e) {
  return py::dict(py::arg("name") = e.name, py::arg("alias") = e.alias, py::arg("from") = e.from,
                  py::arg("to") = e.to, py::arg("actor") = e.actor, py::arg("reason") = e.reason,
                  py::arg("kind") = e.kind, py::arg("at_us") = e.at_us);
}

ember::RolloutCommand command_of(const std::string& name) {
  if (name == "pause") return ember::RolloutCommand::kPause;
  if (name == "resume") return ember::RolloutCommand::kResume;
  if (name == "abort") return ember::RolloutCommand::kAbort;
  if (name == "promote") return ember::RolloutCommand::kPromote;
  raise(ember::invalid_argument("a rollout command is pause, resume, abort or promote, not '" + name + "'"));
}

}  // namespace

py::dict rollout_dict(const ember::RolloutRecord& r) {
  const py::module_ json = py::module_::import("json");
  py::dict d;
  d["id"] = r.id;
  d["name"] = r.name;
  d["alias"] = r.alias;
  d["control"] = r.control;
  d["candidate"] = r.candidate;
  d["plan"] = json.attr("loads")(r.plan);
  d["state"] = r.state;
  d["step"] = r.step;
  d["step_started_us"] = r.step_started_us;
  d["reason"] = r.reason;
  d["status"] = json.attr("loads")(r.status);
  d["actor"] = r.actor;
  d["started_us"] = r.started_us;
  d["updated_us"] = r.updated_us;
  d["revision"] = r.revision;
  return d;
}

void bind_registry(py::module_& m) {
  py::class_<Registry, std::shared_ptr<Registry>>(m, "Registry",
                                                   "A registry directory: versioned bundles, aliases, approvals, "
                                                   "rollouts and a hash-chained audit log.")
      .def_static(
          "init",
          [](const std::filesystem::path& dir, const std::string& key) {
            return std::shared_ptr<Registry>(unlocked([&] { return Registry::init(dir, options(key)); }));
          },
          py::arg("dir"), py::arg("key") = "", "Creates a registry (AlreadyExists when `dir` holds one).")
      .def_static(
          "open",
          [](const std::filesystem::path& dir, const std::string& key) {
            return std::shared_ptr<Registry>(unlocked([&] { return Registry::open(dir, options(key)); }));
          },
          py::arg("dir"), py::arg("key") = "", "Opens a registry (NotFound when `dir` holds none).")
      .def_property_readonly("dir", &Registry::dir)
      .def(
          "publish",
          [](Registry& r, const std::filesystem::path& bundle, const std::string& actor, const std::string& note) {
            return unlocked([&] { return r.publish(bundle, actor, note); });
          },
          py::arg("bundle_dir"), py::arg("actor"), py::arg("note") = "", "Verifies and stores a bundle; its version.")
      .def(
          "resolve",
          [](Registry& r, const std::string& ref) {
            auto b = unlocked([&] { return r.resolve(ref); });
            return py::dict(py::arg("name") = b.name, py::arg("version") = b.version, py::arg("dir") = b.dir,
                            py::arg("digest") = b.manifest.digest);
          },
          py::arg("ref"), "A verified version: name, version, dir (a bundle directory), digest.")
      .def(
          "load_model",
          [](Registry& r, const std::string& ref, const std::string& device, const Watchers& watchers) {
            ember::ModelOptions o;
            o.device = device;
            if (watchers.metrics || watchers.monitor) {
              const auto b = unlocked([&] { return r.resolve(ref); });  // the labels: its name and version
              watchers.add_to(o, b.name, std::to_string(b.version));
            }
            return watchers.watch(unlocked([&] { return r.load_model(ref, o); }));
          },
          py::arg("ref"), py::arg("device") = "auto", py::arg("watchers") = Watchers{}, "Resolves, verifies and loads 'name@alias' or 'name/3'.")
      .def(
          "set_alias",
          [](Registry& r, const std::string& name, const std::string& alias, std::int64_t version,
             std::int64_t expected, const std::string& actor, const std::string& reason) {
            return event_dict(unlocked([&] { return r.set_alias(name, alias, version, expected, actor, reason); }));
          },
          py::arg("name"), py::arg("alias"), py::arg("version"), py::arg("expected") = Registry::kAnyVersion,
          py::arg("actor"), py::arg("reason") = "",
          "Points name@alias at `version` if it holds `expected` (-1: any, 0: unset), else Aborted.")
      .def(
          "rollback",
          [](Registry& r, const std::string& name, const std::string& alias, const std::string& actor,
             const std::string& reason) {
            return event_dict(unlocked([&] { return r.rollback(name, alias, actor, reason); }));
          },
          py::arg("name"), py::arg("alias"), py::arg("actor"), py::arg("reason") = "")
      .def(
          "alias_history",
          [](Registry& r, const std::string& name, const std::string& alias) {
            py::list out;
            for (const auto& e : unlocked([&] { return r.alias_history(name, alias); })) out.append(event_dict(e));
            return out;
          },
          py::arg("name"), py::arg("alias") = "")
      .def(
          "approve",
          [](Registry& r, const std::string& name, std::int64_t version, const std::string& actor,
             const std::string& note) { unlocked([&] { return r.approve(name, version, actor, note); }); },
          py::arg("name"), py::arg("version"), py::arg("actor"), py::arg("note") = "")
      .def(
          "show", [](Registry& r, const std::string& ref) { return version_dict(unlocked([&] { return r.show(ref); })); },
          py::arg("ref"))
      .def(
          "list",
          [](Registry& r, const std::string& name_contains, const std::vector<std::string>& tags, bool archived) {
            py::list out;
            for (const auto& v : unlocked([&] { return r.list(name_contains, tags, archived); })) {
              out.append(version_dict(v));
            }
            return out;
          },
          py::arg("name_contains") = "", py::arg("tags") = std::vector<std::string>{},
          py::arg("include_archived") = false)
      .def(
          "tag",
          [](Registry& r, const std::string& name, std::int64_t version, const std::string& key,
             const std::string& value, const std::string& actor) {
            unlocked([&] { return r.tag(name, version, key, value, actor); });
          },
          py::arg("name"), py::arg("version"), py::arg("key"), py::arg("value"), py::arg("actor"))
      .def(
          "audit",
          [](Registry& r) {
            py::list out;
            for (const auto& e : unlocked([&] { return r.audit(); })) {
              out.append(py::dict(py::arg("seq") = e.seq, py::arg("at_us") = e.at_us, py::arg("actor") = e.actor,
                                  py::arg("event") = e.event, py::arg("subject") = e.subject,
                                  py::arg("detail") = py::module_::import("json").attr("loads")(e.detail)));
            }
            return out;
          })
      .def("verify_audit", [](Registry& r) { unlocked([&] { return r.verify_audit(); }); },
           "DataLoss naming the first entry that was edited, removed or reordered.")
      .def(
          "record_event",
          [](Registry& r, const std::string& actor, const std::string& event, const std::string& subject,
             py::handle detail) {
            const std::string text = detail.is_none() ? std::string("{}") : record_json(detail);
            unlocked([&] { return r.record_event(actor, event, subject, text); });
          },
          py::arg("actor"), py::arg("event"), py::arg("subject") = "", py::arg("detail") = py::none())
      .def(
          "start_rollout",
          [](Registry& r, const std::string& name, const std::string& alias, std::int64_t candidate, py::handle plan,
             const std::string& actor, const std::string& reason) {
            const std::string text = record_json(plan);
            return rollout_dict(unlocked([&] { return r.start_rollout(name, alias, candidate, text, actor, reason); }));
          },
          py::arg("name"), py::arg("alias"), py::arg("candidate"), py::arg("plan"), py::arg("actor"),
          py::arg("reason") = "", "Starts a rollout; `plan` is a dict or JSON text (see docs/rollouts.md).")
      .def(
          "rollout",
          [](Registry& r, const std::string& name, const std::string& alias) {
            return rollout_dict(unlocked([&] { return r.rollout(name, alias); }));
          },
          py::arg("name"), py::arg("alias"))
      .def(
          "rollouts",
          [](Registry& r, const std::string& name) {
            py::list out;
            for (const auto& x : unlocked([&] { return r.rollouts(name); })) out.append(rollout_dict(x));
            return out;
          },
          py::arg("name") = "")
      .def(
          "command_rollout",
          [](Registry& r, const std::string& name, const std::string& alias, const std::string& command,
             const std::string& actor, const std::string& reason) {
            const ember::RolloutCommand c = command_of(command);
            return rollout_dict(unlocked([&] { return r.command_rollout(name, alias, c, actor, reason); }));
          },
          py::arg("name"), py::arg("alias"), py::arg("command"), py::arg("actor"), py::arg("reason") = "",
          "'pause', 'resume', 'abort' or 'promote' the latest rollout of name@alias.")
      .def("__repr__", [](const Registry& r) { return "<ember.Registry '" + r.dir().string() + "'>"; });
}

}  // namespace ember_py
