// ember registry init | publish | list | show | resolve | alias | history | approve |
// rollback | tag | verify | check | audit | gc | export | import | sign | policy |
// archive | delete
#include <fstream>
#include <iostream>
#include <memory>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/registry.hpp"

namespace ember_cli {

namespace {

using nlohmann::json;

struct Common {
  std::string registry;
  std::string key_file;
  std::string actor;
  bool json = false;
  bool progress = false;
};

ember::Result<std::unique_ptr<ember::Registry>> open_registry(const Common& c) {
  if (c.registry.empty()) {
    return ember::invalid_argument("no registry: pass --registry DIR or set EMBER_REGISTRY");
  }
  ember::RegistryOptions o;
  o.progress = progress_bar("hashing", c.progress);
  auto key = read_registry_key(c.key_file);
  if (!key.ok()) return key.status();
  o.encryption_key = *key;
  return ember::Registry::open(c.registry, o);
}

void print(const json& j) { std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str()); }

json version_json(const ember::VersionInfo& v) {
  json files = json::array();
  for (const auto& f : v.files) files.push_back({{"path", f.path}, {"role", f.role}, {"size", f.size}, {"sha256", f.sha256}});
  json approvals = json::array();
  for (const auto& a : v.approvals) approvals.push_back({{"actor", a.actor}, {"note", a.note}, {"at", format_time_us(a.at_us)}});
  return {{"name", v.name},           {"version", v.version},     {"digest", v.digest},
          {"publisher", v.publisher}, {"note", v.note},           {"created_at", format_time_us(v.created_us)},
          {"archived", v.archived},   {"bytes", v.bytes},         {"aliases", v.aliases},
          {"approvals", approvals},   {"signed_by", v.signed_by}, {"tags", v.tags},
          {"files", files}};
}

json event_json(const ember::AliasEvent& e) {
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

}  // namespace

void add_registry_commands(CLI::App& app, std::function<int()>& run) {
  CLI::App* reg = app.add_subcommand("registry", "A versioned model registry in a directory (SQLite + content-addressed files).");
  reg->require_subcommand(1);
  reg->footer(
      "References: NAME/VERSION (churn/3), NAME@ALIAS (churn@production), NAME@latest or NAME.\n"
      "--registry may be given as EMBER_REGISTRY; the actor as --actor, EMBER_ACTOR or USER.\n"
      "Exit status: 0 success, 1 the command failed or found a problem, 2 bad usage.");

  auto add_common = [](CLI::App* cmd, const std::shared_ptr<Common>& c, bool with_json) {
    cmd->add_option("--registry", c->registry, "Registry directory")->envname("EMBER_REGISTRY");
    cmd->add_option("--key-file", c->key_file, "Key of an encrypted registry (64 hex digits)")
        ->envname("EMBER_REGISTRY_KEY_FILE");
    cmd->add_option("--actor", c->actor, "Who does this (default: $EMBER_ACTOR, $USER)");
    if (with_json) cmd->add_flag("--json", c->json, "Print JSON");
    cmd->add_flag("--progress", c->progress, "Show a progress bar even when stderr is not a terminal");
  };

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
          auto key = read_registry_key(*encrypt);
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
  // alias
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto version = std::make_shared<std::string>();
    auto expect = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    auto remove = std::make_shared<bool>(false);
    CLI::App* cmd = reg->add_subcommand("alias", "Point NAME@ALIAS at a version (compare-and-swap with --expect).");
    cmd->footer(
        "Without --expect the alias moves from whatever it holds (read and swapped in one\n"
        "transaction). --expect N (or 'none') refuses the move unless the alias holds N.\n"
        "A protected alias needs approvals (and a trusted signature when keys are trusted).");
    add_common(cmd, c, true);
    cmd->add_option("ref", *ref, "NAME@ALIAS")->required();
    cmd->add_option("version", *version, "The version it should point at");
    cmd->add_option("--expect", *expect, "The version it must hold now ('none': unset)");
    cmd->add_option("--reason", *reason, "Why (kept in the alias's history)");
    cmd->add_flag("--delete", *remove, "Remove the alias instead");
    cmd->callback([&run, c, ref, version, expect, reason, remove] {
      run = [c, ref, version, expect, reason, remove] {
        auto ar = alias_ref(*ref);
        if (!ar.ok()) return fail(ar.status());
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        ember::Result<ember::AliasEvent> e = ember::internal_error("unset");
        if (*remove) {
          e = (*r)->delete_alias(ar->first, ar->second, actor_or_default(c->actor), *reason);
        } else {
          const std::int64_t v = parse_version(*version);
          if (v <= 0) return fail(ember::invalid_argument("VERSION must be a positive integer, got '" + *version + "'"));
          std::int64_t expected = ember::Registry::kAnyVersion;
          if (expect->empty()) {
            expected = ember::Registry::kAnyVersion;
          } else if (*expect == "none") {
            expected = ember::Registry::kUnset;
          } else if ((expected = parse_version(*expect)) <= 0) {
            return fail(ember::invalid_argument("--expect must be a version or 'none', got '" + *expect + "'"));
          }
          e = (*r)->set_alias(ar->first, ar->second, v, expected, actor_or_default(c->actor), *reason);
        }
        if (!e.ok()) return fail(e.status());
        if (c->json) print(event_json(*e));
        else std::printf("%s@%s: %lld -> %lld\n", e->name.c_str(), e->alias.c_str(), static_cast<long long>(e->from),
                         static_cast<long long>(e->to));
        return 0;
      };
    });
  }
  // rollback
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("rollback", "Move NAME@ALIAS back to the version it held before.");
    add_common(cmd, c, true);
    cmd->add_option("ref", *ref, "NAME@ALIAS")->required();
    cmd->add_option("--reason", *reason, "Why");
    cmd->callback([&run, c, ref, reason] {
      run = [c, ref, reason] {
        auto ar = alias_ref(*ref);
        if (!ar.ok()) return fail(ar.status());
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto e = (*r)->rollback(ar->first, ar->second, actor_or_default(c->actor), *reason);
        if (!e.ok()) return fail(e.status());
        if (c->json) print(event_json(*e));
        else std::printf("%s@%s rolled back: %lld -> %lld\n", e->name.c_str(), e->alias.c_str(),
                         static_cast<long long>(e->from), static_cast<long long>(e->to));
        return 0;
      };
    });
  }
  // history
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto at = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("history", "Every move of an alias (or of all aliases of a name); --at: the target at a time.");
    add_common(cmd, c, true);
    cmd->add_option("ref", *ref, "NAME@ALIAS or NAME")->required();
    cmd->add_option("--at", *at, "Print only the version the alias pointed to at this time (RFC 3339 or Unix seconds)");
    cmd->callback([&run, c, ref, at] {
      run = [c, ref, at] {
        std::string name = *ref, alias;
        if (const auto p = ref->find('@'); p != std::string::npos) {
          name = ref->substr(0, p);
          alias = ref->substr(p + 1);
        }
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        if (!at->empty()) {
          if (alias.empty()) return fail(ember::invalid_argument("--at needs NAME@ALIAS"));
          auto t = parse_time_us(*at);
          if (!t.ok()) return fail(t.status());
          auto v = (*r)->alias_at(name, alias, std::chrono::system_clock::time_point(std::chrono::microseconds(*t)));
          if (!v.ok()) return fail(v.status());
          if (c->json) print({{"name", name}, {"alias", alias}, {"at", format_time_us(*t)}, {"version", *v}});
          else std::printf("%lld\n", static_cast<long long>(*v));
          return 0;
        }
        auto h = (*r)->alias_history(name, alias);
        if (!h.ok()) return fail(h.status());
        if (c->json) {
          json out = json::array();
          for (const auto& e : *h) out.push_back(event_json(e));
          print(out);
          return 0;
        }
        for (const auto& e : *h) {
          std::printf("%s  %s@%s  %lld -> %lld  %-8s by %s%s%s\n", format_time_us(e.at_us).c_str(), e.name.c_str(),
                      e.alias.c_str(), static_cast<long long>(e.from), static_cast<long long>(e.to), e.kind.c_str(),
                      e.actor.c_str(), e.reason.empty() ? "" : ": ", e.reason.c_str());
        }
        return 0;
      };
    });
  }
  // approve, archive, delete, sign, tag: commands on one version
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto note = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("approve", "Record your approval of a version.");
    add_common(cmd, c, false);
    cmd->add_option("ref", *ref, "NAME/VERSION (or an alias, resolved now)")->required();
    cmd->add_option("--note", *note, "What was checked");
    cmd->callback([&run, c, ref, note] {
      run = [c, ref, note] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto v = (*r)->show(*ref);
        if (!v.ok()) return fail(v.status());
        const std::string actor = actor_or_default(c->actor);
        if (auto st = (*r)->approve(v->name, v->version, actor, *note); !st.ok()) return fail(st);
        std::printf("%s approved %s/%lld\n", actor.c_str(), v->name.c_str(), static_cast<long long>(v->version));
        return 0;
      };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto restore = std::make_shared<bool>(false);
    CLI::App* cmd = reg->add_subcommand("archive", "Archive a version (not @latest, cannot be aliased); --restore undoes it.");
    add_common(cmd, c, false);
    cmd->add_option("ref", *ref, "NAME/VERSION")->required();
    cmd->add_flag("--restore", *restore, "Restore an archived version");
    cmd->callback([&run, c, ref, restore] {
      run = [c, ref, restore] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto v = (*r)->show(*ref);
        if (!v.ok()) return fail(v.status());
        if (auto st = (*r)->archive(v->name, v->version, !*restore, actor_or_default(c->actor)); !st.ok()) return fail(st);
        std::printf("%s/%lld %s\n", v->name.c_str(), static_cast<long long>(v->version), *restore ? "restored" : "archived");
        return 0;
      };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("delete", "Delete a version's record (not while an alias points at it); gc frees its files.");
    add_common(cmd, c, false);
    cmd->add_option("ref", *ref, "NAME/VERSION")->required();
    cmd->callback([&run, c, ref] {
      run = [c, ref] {
        auto parsed = ember::parse_model_ref(*ref);
        if (!parsed.ok()) return fail(parsed.status());
        if (parsed->version <= 0) return fail(ember::invalid_argument("delete needs NAME/VERSION, not an alias"));
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        if (auto st = (*r)->remove(parsed->name, parsed->version, actor_or_default(c->actor)); !st.ok()) return fail(st);
        std::printf("%s deleted; run 'ember registry gc' to free its files\n", ref->c_str());
        return 0;
      };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("sign", "Sign a version's manifest digest with an Ed25519 key.");
    add_common(cmd, c, false);
    cmd->add_option("ref", *ref, "NAME/VERSION")->required();
    cmd->add_option("--key", *key, "Secret key file (from 'ember bundle keygen')")->required();
    cmd->callback([&run, c, ref, key] {
      run = [c, ref, key] {
        std::ifstream f(*key);
        std::string secret;
        if (!f || !std::getline(f, secret)) return fail(ember::not_found("key file '" + *key + "' cannot be read"));
        auto k = ember::signing_key_from_secret(secret);
        if (!k.ok()) return fail(k.status().with_context("key file '" + *key + "'"));
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto v = (*r)->show(*ref);
        if (!v.ok()) return fail(v.status());
        auto sig = ember::sign_digest(v->digest, *k);
        if (!sig.ok()) return fail(sig.status());
        if (auto st = (*r)->add_signature(v->name, v->version, *sig, actor_or_default(c->actor)); !st.ok()) return fail(st);
        std::printf("%s/%lld signed with key %s\n", v->name.c_str(), static_cast<long long>(v->version), sig->key_id.c_str());
        return 0;
      };
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto ref = std::make_shared<std::string>();
    auto tags = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = reg->add_subcommand("tag", "Set tags KEY=VALUE on a version (KEY= removes one).");
    add_common(cmd, c, false);
    cmd->add_option("ref", *ref, "NAME/VERSION")->required();
    cmd->add_option("tags", *tags, "KEY=VALUE ...")->required();
    cmd->callback([&run, c, ref, tags] {
      run = [c, ref, tags] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        auto v = (*r)->show(*ref);
        if (!v.ok()) return fail(v.status());
        for (const auto& t : *tags) {
          const auto eq = t.find('=');
          if (eq == std::string::npos) return fail(ember::invalid_argument("tag '" + t + "': expected KEY=VALUE"));
          if (auto st = (*r)->tag(v->name, v->version, t.substr(0, eq), t.substr(eq + 1), actor_or_default(c->actor)); !st.ok()) {
            return fail(st);
          }
        }
        std::printf("%s/%lld tagged\n", v->name.c_str(), static_cast<long long>(v->version));
        return 0;
      };
    });
  }
  // policy
  {
    auto c = std::make_shared<Common>();
    auto protect = std::make_shared<std::string>();
    auto approvals = std::make_shared<int>(1);
    auto unprotect = std::make_shared<std::string>();
    auto trust = std::make_shared<std::string>();
    CLI::App* cmd = reg->add_subcommand("policy", "Protect aliases and trust signing keys; without options, print the policy.");
    add_common(cmd, c, true);
    cmd->add_option("--protect", *protect, "Protect this alias (for every name)");
    cmd->add_option("--approvals", *approvals, "Approvals by others than the publisher that --protect requires")
        ->check(CLI::Range(0, 100))
        ->capture_default_str();
    cmd->add_option("--unprotect", *unprotect, "Remove an alias's protection");
    cmd->add_option("--trust-key", *trust, "Trust the Ed25519 public key in this file (from 'ember bundle keygen')");
    cmd->callback([&run, c, protect, approvals, unprotect, trust] {
      run = [c, protect, approvals, unprotect, trust] {
        auto r = open_registry(*c);
        if (!r.ok()) return fail(r.status());
        const std::string actor = actor_or_default(c->actor);
        if (!protect->empty()) {
          if (auto st = (*r)->protect_alias(*protect, *approvals, actor); !st.ok()) return fail(st);
        }
        if (!unprotect->empty()) {
          if (auto st = (*r)->protect_alias(*unprotect, -1, actor); !st.ok()) return fail(st);
        }
        if (!trust->empty()) {
          std::ifstream f(*trust);
          std::string key;
          if (!f || !std::getline(f, key)) return fail(ember::not_found("key file '" + *trust + "' cannot be read"));
          if (auto st = (*r)->trust_key(key, actor); !st.ok()) return fail(st.with_context("'" + *trust + "'"));
        }
        auto rules = (*r)->protected_aliases();
        auto keys = (*r)->trusted_keys();
        if (!rules.ok()) return fail(rules.status());
        if (!keys.ok()) return fail(keys.status());
        if (c->json) {
          print({{"protected", *rules}, {"trusted_keys", *keys}});
        } else {
          for (const auto& [alias, n] : *rules) {
            std::printf("protected: %s needs %d approval(s)%s\n", alias.c_str(), n,
                        keys->empty() ? "" : " and a trusted signature");
          }
          for (const auto& k : *keys) std::printf("trusted key: %s\n", k.c_str());
          if (rules->empty() && keys->empty()) std::printf("no alias is protected and no key is trusted\n");
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
}

}  // namespace ember_cli
