// ember registry alias | rollback | history | approve | archive | delete | sign | tag |
// policy
#include <memory>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/registry.hpp"
#include "registry_cmd.hpp"

namespace ember_cli {

using nlohmann::json;

void add_registry_alias_commands(CLI::App* reg, std::function<int()>& run) {
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
        auto k = read_signing_key(*key);
        if (!k.ok()) return fail(k.status());
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
          auto key = read_key_file(*trust);
          if (!key.ok()) return fail(key.status());
          if (auto st = (*r)->trust_key(*key, actor); !st.ok()) return fail(st.with_context("'" + *trust + "'"));
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
  }}

}  // namespace ember_cli
