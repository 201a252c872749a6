// ember registry init | publish | import | list | show | resolve | verify | check |
// audit | gc | export (the alias and governance commands are in registry_alias_cmd.cpp)
#include <fstream>
#include <memory>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/registry.hpp"
#include "registry_cmd.hpp"

namespace ember_cli {

using nlohmann::json;

void add_common(CLI::App* cmd, const std::shared_ptr<Common>& c, bool with_json) {
  cmd->add_option("--registry", c->registry, "Registry directory")->envname("EMBER_REGISTRY");
  cmd->add_option("--key-file", c->key_file, "Key of an encrypted registry (64 hex digits)")
      ->envname("EMBER_REGISTRY_KEY_FILE");
  cmd->add_option("--actor", c->actor, "Who does this (default: $EMBER_ACTOR, $USER)");
  if (with_json) cmd->add_flag("--json", c->json, "Print JSON");
  cmd->add_flag("--progress", c->progress, "Show a progress bar even when stderr is not a terminal");
}

ember::Result<std::unique_ptr<ember::Registry>> open_registry(const Common& c) {
  if (c.registry.empty()) {
    return ember::invalid_argument("no registry: pass --registry DIR or set EMBER_REGISTRY");
  }
  ember::RegistryOptions o;
  o.progress = progress_bar("hashing", c.progress);
  auto key = read_key_file(c.key_file);
  if (!key.ok()) return key.status();
  o.encryption_key = *key;
  return ember::Registry::open(c.registry, o);
}

void print(const json& j) { std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str()); }

nlohmann::json version_json(const ember::VersionInfo& v) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : v.files) files.push_back({{"path", f.path}, {"role", f.role}, {"size", f.size}, {"sha256", f.sha256}});
  nlohmann::json approvals = nlohmann::json::array();
  for (const auto& a : v.approvals) approvals.push_back({{"actor", a.actor}, {"note", a.note}, {"at", format_time_us(a.at_us)}});
  return {{"name", v.name},           {"version", v.version},     {"digest", v.digest},
          {"publisher", v.publisher}, {"note", v.note},           {"created_at", format_time_us(v.created_us)},
          {"archived", v.archived},   {"bytes", v.bytes},         {"aliases", v.aliases},
          {"approvals", approvals},   {"signed_by", v.signed_by}, {"tags", v.tags},
          {"files", files}};
}

nlohmann::json event_json(const ember::AliasEvent& e) {
  return {{"name", e.name},   {"alias", e.alias},   {"from", e.from},     {"to", e.to},
          {"actor", e.actor}, {"reason", e.reason}, {"kind", e.kind},     {"at", format_time_us(e.at_us)}};
}

// NAME@ALIAS, split.
ember::Result<std::pair<std::string, std::string>> alias_ref(const std::string& text) {
  auto ref = ember::parse_model_ref(text);
  if (!ref.ok()) return ref.status();
  if (ref->version > 0 || text.find('@') == std::string::npos) {
    return ember::invalid_argument("'" + text + "': expected NAME@ALIAS");
  }
  return std::make_pair(ref->name, ref->alias);
}

std::int64_t parse_version(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v > 0) return v;
  } catch (...) {
  }
  return -1;
}

void add_registry_commands(CLI::App& app, std::function<int()>& run) {
  CLI::App* reg = app.add_subcommand("registry", "A versioned model registry in a directory (SQLite + content-addressed files).");
  reg->require_subcommand(1);
  reg->footer(
      "References: NAME/VERSION (churn/3), NAME@ALIAS (churn@production), NAME@latest or NAME.\n"
      "--registry may be given as EMBER_REGISTRY; the actor as --actor, EMBER_ACTOR or USER.\n"
      "Exit status: 0 success, 1 the command failed or found a problem, 2 bad usage.");

  // init
  {
    auto dir = std::make_shared<std::string>();
    auto encrypt = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("init", "Create a registry in DIR.");
    cmd->footer("--encrypt KEY_FILE stores every file encrypted (AES-256-GCM) with the key in KEY_FILE,\n"
                "which is made (mode 0600, 64 hex digits) when it does not exist. Keep it safe: without\n"
                "it the registry cannot be read. Later commands take it as --key-file.");
    cmd->add_option("dir", *dir, "Registry directory")->required();
    cmd->add_option("--encrypt", *encrypt, "Encrypt the registry's files with the key in this file");
    cmd->callback([&run, dir, encrypt] {
      run = [dir, encrypt] {
        ember::RegistryOptions o;
        if (!encrypt->empty()) {
          if (!std::filesystem::exists(*encrypt)) {
            auto k = ember::generate_signing_key();  // 32 random bytes from the CSPRNG
            if (!k.ok()) return fail(k.status());
            const mode_t old = ::umask(077);
            std::ofstream f(*encrypt, std::ios::trunc);
            ::umask(old);
            if (!(f << k->secret << "\n")) return fail(ember::invalid_argument("cannot write '" + *encrypt + "'"));
            std::fprintf(stderr, "made a new key in %s\n", encrypt->c_str());
          }
          auto key = read_key_file(*encrypt);
          if (!key.ok()) return fail(key.status());
          o.encryption_key = *key;
        }
        auto r = ember::Registry::init(*dir, o);
        if (!r.ok()) return fail(r.status());
        std::printf("registry created in %s%s\n", dir->c_str(), encrypt->empty() ? "" : " (encrypted)");
        return 0;
      };
    });
  }
  // publish and import
  for (const bool import : {false, true}) {
    auto c = std::make_shared<Common>();
    auto bundles = std::make_shared<std::vector<std::string>>();
    auto note = std::make_shared<std::string>();
    CLI::App* cmd = import ? reg->add_subcommand("import", "Publish bundles exported from another registry, in order.")
                           : reg->add_subcommand("publish", "Verify a bundle and store it as the next version of its name.");
    add_common(cmd, c, false);
    if (import) {
      cmd->add_option("bundle_dirs", *bundles, "Bundle directories")->required();
    } else {
      cmd->add_option("bundle_dir", *bundles, "Bundle directory")->required()->expected(1);
      cmd->footer("Prints the new version number on its last line.");
    }
    cmd->add_option("--note", *note, "Why this version exists");
    cmd->callback([&run, c, bundles, note, import] {
      run = [c, bundles, note, import] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        for (const auto& b : *bundles) {
          auto v = (*r)->publish(b, actor_or_default(c->actor), import && note->empty() ? "imported from " + b : *note);
          if (!v.ok()) return fail(v.status());
          std::fprintf(stderr, "published %s as version %lld\n", b.c_str(), static_cast<long long>(*v));
          std::printf("%lld\n", static_cast<long long>(*v));
        }
        return 0;
      };
    });
  }
  // list
  {
    auto c = std::make_shared<Common>();
    auto name = std::make_shared<std::string>();
    auto tags = std::make_shared<std::vector<std::string>>();
    auto all = std::make_shared<bool>(false);
    CLI::App* cmd = reg->add_subcommand("list", "List versions (search by name and tags).");
    add_common(cmd, c, true);
    cmd->add_option("--name", *name, "Names containing this text");
    cmd->add_option("--tag", *tags, "Only versions tagged KEY=VALUE (repeatable)");
    cmd->add_flag("--all", *all, "Include archived versions");
    cmd->callback([&run, c, name, tags, all] {
      run = [c, name, tags, all] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto vs = (*r)->list(*name, *tags, *all);
        if (!vs.ok()) return fail(vs.status());
        if (c->json) {
          json out = json::array();
          for (const auto& v : *vs) out.push_back(version_json(v));
          print(out);
          return 0;
        }
        std::printf("%-24s %7s  %-20s %-12s %-24s %s\n", "NAME", "VERSION", "CREATED", "PUBLISHER", "ALIASES", "APPROVALS");
        for (const auto& v : *vs) {
          std::string aliases;
          for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ",") + a;
          std::printf("%-24s %7lld  %-20s %-12s %-24s %zu%s\n", v.name.c_str(), static_cast<long long>(v.version),
                      format_time_us(v.created_us).substr(0, 19).c_str(), v.publisher.c_str(), aliases.c_str(),
                      v.approvals.size(), v.archived ? "  (archived)" : "");
        }
        return 0;
      };
    });
  }
  // show, resolve, verify
  for (const std::string verb : {"show", "resolve", "verify"}) {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    const char* help = verb == "show"      ? "Describe a version: files, aliases, approvals, signatures, tags, lineage."
                       : verb == "resolve" ? "Resolve a reference to a verified bundle directory (printed on the last line)."
                                           : "Hash every file of a version against its manifest.";
    CLI::App* cmd = reg->add_subcommand(verb, help);
    add_common(cmd, c, true);
    cmd->add_option("ref", *ref, "NAME/VERSION, NAME@ALIAS or NAME@latest")->required();
    cmd->callback([&run, c, ref, verb] {
      run = [c, ref, verb] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        if (verb == "show") {
          auto v = (*r)->show(*ref);
          if (!v.ok()) return fail(v.status());
          json j = version_json(*v);
          auto resolved = (*r)->resolve(*ref);
          if (resolved.ok()) {
            const auto& l = resolved->manifest.lineage;
            j["description"] = resolved->manifest.description;
            j["lineage"] = {{"code", {{"commit", l.code.commit}, {"repository", l.code.repository}, {"dirty", l.code.dirty}}},
                            {"environment", l.environment},
                            {"metrics", l.metrics},
                            {"parent_version", l.parent_version},
                            {"hyperparameters", json::parse(l.hyperparameters, nullptr, false)}};
            json data = json::array();
            for (const auto& d : l.data) {
              data.push_back({{"uri", d.uri}, {"sha256", d.sha256}, {"rows", d.rows ? json(*d.rows) : json()}});
            }
            j["lineage"]["data"] = data;
          } else {
            j["verification"] = resolved.status().to_string();
          }
          print(j);
          return resolved.ok() ? 0 : 1;
        }
        auto resolved = (*r)->resolve(*ref);
        if (!resolved.ok()) return fail(resolved.status());
        if (c->json) {
          print({{"name", resolved->name}, {"version", resolved->version}, {"dir", resolved->dir.string()},
                 {"digest", resolved->manifest.digest}, {"ok", true}});
        } else if (verb == "verify") {
          std::printf("ok: %s/%lld, %zu files match their SHA-256, digest %s\n", resolved->name.c_str(),
                      static_cast<long long>(resolved->version), resolved->manifest.files.size(),
                      resolved->manifest.digest.c_str());
        } else {
          std::printf("%s/%lld\n%s\n", resolved->name.c_str(), static_cast<long long>(resolved->version),
                      resolved->dir.c_str());
        }
        return 0;
      };
    });
  }
  // check
  {
    auto c = std::make_shared<Common>();
    auto deep = std::make_shared<bool>(false);
    CLI::App* cmd = reg->add_subcommand("check", "Check the registry is consistent; exit 1 with the problems when not.");
    cmd->footer("Every version complete, every file's blob present and of its size (and its SHA-256 with\n"
                "--deep), every alias on an existing version, the audit chain intact, the database sound.");
    add_common(cmd, c, true);
    cmd->add_flag("--deep", *deep, "Hash every blob too");
    cmd->callback([&run, c, deep] {
      run = [c, deep] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto rep = (*r)->check(*deep);
        if (!rep.ok()) return fail(rep.status());
        if (c->json) {
          print({{"ok", rep->ok()}, {"problems", rep->problems}, {"versions", rep->versions}, {"blobs", rep->blobs},
                 {"audit_entries", rep->audit_entries}, {"leftover_temporary_files", rep->leftover_temporary_files}});
        } else {
          for (const auto& p : rep->problems) std::printf("problem: %s\n", p.c_str());
          std::printf("%s: %zu versions, %zu blobs, %zu audit entries, %zu leftover temporary files\n",
                      rep->ok() ? "consistent" : "INCONSISTENT", rep->versions, rep->blobs, rep->audit_entries,
                      rep->leftover_temporary_files);
        }
        return rep->ok() ? 0 : 1;
      };
    });
  }
  // audit
  {
    auto c = std::make_shared<Common>();
    auto verify = std::make_shared<bool>(false);
    CLI::App* cmd = reg->add_subcommand("audit", "Print the audit log; --verify checks its hash chain.");
    add_common(cmd, c, true);
    cmd->add_flag("--verify", *verify, "Check that no entry was edited, removed or reordered");
    cmd->callback([&run, c, verify] {
      run = [c, verify] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        if (*verify) {
          if (auto st = (*r)->verify_audit(); !st.ok()) return fail(st);
          auto entries = (*r)->audit();
          if (!entries.ok()) return fail(entries.status());
          std::printf("audit chain intact: %zu entries\n", entries->size());
          return 0;
        }
        auto entries = (*r)->audit();
        if (!entries.ok()) return fail(entries.status());
        if (c->json) {
          json out = json::array();
          for (const auto& e : *entries) {
            out.push_back({{"seq", e.seq}, {"at", format_time_us(e.at_us)}, {"actor", e.actor}, {"event", e.event},
                           {"subject", e.subject}, {"detail", json::parse(e.detail, nullptr, false)}, {"hash", e.hash}});
          }
          print(out);
          return 0;
        }
        for (const auto& e : *entries) {
          std::printf("%6lld  %s  %-14s %-24s by %s  %s\n", static_cast<long long>(e.seq), format_time_us(e.at_us).c_str(),
                      e.event.c_str(), e.subject.c_str(), e.actor.c_str(), e.detail.c_str());
        }
        return 0;
      };
    });
  }
  // gc
  {
    auto c = std::make_shared<Common>();
    CLI::App* cmd = reg->add_subcommand("gc", "Remove files no version references (waits for publishers in progress).");
    add_common(cmd, c, true);
    cmd->callback([&run, c] {
      run = [c] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto rep = (*r)->gc(actor_or_default(c->actor));
        if (!rep.ok()) return fail(rep.status());
        if (c->json) {
          print({{"blobs_removed", rep->blobs_removed}, {"bytes_removed", rep->bytes_removed},
                 {"checkouts_removed", rep->checkouts_removed}, {"temporary_removed", rep->temporary_removed}});
        } else {
          std::printf("removed %zu blobs (%llu bytes), %zu checkouts, %zu temporary files\n", rep->blobs_removed,
                      static_cast<unsigned long long>(rep->bytes_removed), rep->checkouts_removed, rep->temporary_removed);
        }
        return 0;
      };
    });
  }
  // export
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("export", "Write a version as a bundle directory (same manifest and digest).");
    add_common(cmd, c, false);
    cmd->add_option("ref", *ref, "NAME/VERSION or NAME@ALIAS")->required();
    cmd->add_option("--out", *out, "Bundle directory to write (absent or empty)")->required();
    cmd->callback([&run, c, ref, out] {
      run = [c, ref, out] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto m = (*r)->export_bundle(*ref, *out);
        if (!m.ok()) return fail(m.status());
        std::printf("%s\n", out->c_str());
        return 0;
      };
    });
  }
  add_registry_alias_commands(reg, run);
}

}  // namespace ember_cli
