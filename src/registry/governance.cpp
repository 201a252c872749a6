// Aliases (compare-and-swap, history, time travel, rollback), approvals, signatures
// and the policy that guards protected aliases.
#include <nlohmann/json.hpp>

#include "bundle/crypto.hpp"
#include "registry/registry_internal.hpp"

namespace ember {

namespace {

std::string alias_subject(std::string_view name, std::string_view alias) {
  return std::string(name) + "@" + std::string(alias);
}

Status check_name(std::string_view name) {
  if (!valid_model_name(name)) return invalid_argument("model name '" + std::string(name) + "' is malformed");
  return {};
}

Status check_alias_change(std::string_view name, std::string_view alias, std::string_view actor) {
  EMBER_RETURN_IF_ERROR(check_name(name));
  EMBER_RETURN_IF_ERROR(detail::check_alias_name(alias));
  return detail::check_actor(actor);
}

}  // namespace

namespace detail {

Result<std::int64_t> alias_target(Db& db, std::string_view name, std::string_view alias) {
  auto st = db.prepare("SELECT version FROM aliases WHERE name = ? AND alias = ?");
  if (!st.ok()) return st.status();
  st->bind(1, name).bind(2, alias);
  auto row = st->step();
  if (!row.ok()) return row.status();
  return *row ? st->int64(0) : std::int64_t{0};
}

Status check_policy(Registry::Impl& impl, std::string_view name, std::string_view alias, std::int64_t version,
                    std::int64_t version_id) {
  auto& db = impl.db;
  auto rule = db.prepare("SELECT approvals FROM protected_aliases WHERE alias = ?");
  if (!rule.ok()) return rule.status();
  rule->bind(1, alias);
  auto row = rule->step();
  if (!row.ok()) return row.status();
  if (!*row) return {};
  const std::int64_t needed = rule->int64(0);
  const std::string subj = detail::subject(name, version);
  auto count = db.prepare(
      "SELECT COUNT(*), (SELECT publisher FROM versions WHERE id = ?1) FROM approvals WHERE version_id = ?1 AND "
      "actor != (SELECT publisher FROM versions WHERE id = ?1)");
  if (!count.ok()) return count.status();
  count->bind(1, version_id);
  auto c = count->step();
  if (!c.ok()) return c.status();
  const std::int64_t have = count->int64(0);
  if (have < needed) {
    return Status(StatusCode::kPermissionDenied,
                  "alias '" + std::string(alias) + "' is protected: it needs " + std::to_string(needed) +
                      " approval(s) by actors other than the publisher ('" + count->text(1) + "'); " + subj + " has " +
                      std::to_string(have));
  }
  auto keys = db.prepare("SELECT COUNT(*) FROM trusted_keys");
  if (!keys.ok()) return keys.status();
  auto k = keys->step();
  if (!k.ok()) return k.status();
  if (keys->int64(0) == 0) return {};
  auto signed_by = db.prepare(
      "SELECT COUNT(*) FROM signatures s JOIN trusted_keys t ON s.key_id = t.key_id AND s.public_key = t.public_key "
      "WHERE s.version_id = ?");
  if (!signed_by.ok()) return signed_by.status();
  signed_by->bind(1, version_id);
  auto sgn = signed_by->step();
  if (!sgn.ok()) return sgn.status();
  if (signed_by->int64(0) == 0) {
    return Status(StatusCode::kPermissionDenied, "alias '" + std::string(alias) +
                                                     "' is protected: it needs a signature by a trusted key, and " +
                                                     subj + " has none");
  }
  return {};
}

Result<AliasEvent> move_alias(Registry::Impl& impl, std::string_view name, std::string_view alias, std::int64_t from,
                              std::int64_t to, std::string_view actor, std::string_view reason, std::string_view kind) {
  auto& db = impl.db;
  if (to == 0) {
    auto del = db.prepare("DELETE FROM aliases WHERE name = ? AND alias = ?");
    if (!del.ok()) return del.status();
    del->bind(1, name).bind(2, alias);
    EMBER_RETURN_IF_ERROR(del->run());
  } else {
    auto set = db.prepare("INSERT OR REPLACE INTO aliases VALUES(?, ?, ?)");
    if (!set.ok()) return set.status();
    set->bind(1, name).bind(2, alias).bind(3, to);
    EMBER_RETURN_IF_ERROR(set->run());
  }
  AliasEvent e{std::string(name), std::string(alias), from, to, std::string(actor), std::string(reason),
               std::string(kind), impl.now_us()};
  auto hist = db.prepare(
      "INSERT INTO alias_history(name, alias, from_version, to_version, actor, reason, kind, at_us) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  if (!hist.ok()) return hist.status();
  hist->bind(1, name).bind(2, alias).bind(3, from).bind(4, to).bind(5, actor).bind(6, reason).bind(7, kind)
      .bind(8, e.at_us);
  EMBER_RETURN_IF_ERROR(hist->run());
  EMBER_RETURN_IF_ERROR(impl.audit_append(
      actor, kind == "set" ? "alias" : kind == "rollback" ? "rollback" : "alias_delete", alias_subject(name, alias),
      detail::detail_json({{"from", std::to_string(from)}, {"to", std::to_string(to)}, {"reason", std::string(reason)}})));
  return e;
}

Result<std::int64_t> aliasable_version_id(Registry::Impl& impl, std::string_view name, std::int64_t version) {
  auto st = impl.db.prepare("SELECT id, archived FROM versions WHERE name = ? AND version = ?");
  if (!st.ok()) return st.status();
  st->bind(1, name).bind(2, version);
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return not_found("model version " + detail::subject(name, version) + " does not exist");
  if (st->int64(1) != 0) {
    return failed_precondition("model version " + detail::subject(name, version) + " is archived; restore it first");
  }
  return st->int64(0);
}

}  // namespace detail

Result<AliasEvent> Registry::set_alias(std::string_view name, std::string_view alias, std::int64_t version,
                                       std::int64_t expected, std::string_view actor, std::string_view reason) {
  EMBER_RETURN_IF_ERROR(check_alias_change(name, alias, actor));
  if (version <= 0) return invalid_argument("a version is a positive integer");
  return impl_->write([&]() -> Result<AliasEvent> {
    auto current = detail::alias_target(impl_->db, name, alias);
    if (!current.ok()) return current.status();
    if (expected != kAnyVersion && *current != expected) {
      return Status(StatusCode::kAborted,
                    "alias " + alias_subject(name, alias) + " holds " +
                        (*current == 0 ? std::string("nothing") : "version " + std::to_string(*current)) +
                        ", not the expected " +
                        (expected == 0 ? std::string("nothing") : "version " + std::to_string(expected)) +
                        "; read it again and retry");
    }
    auto id = detail::aliasable_version_id(*impl_, name, version);
    if (!id.ok()) return id.status();
    EMBER_RETURN_IF_ERROR(detail::check_policy(*impl_, name, alias, version, *id));
    auto e = detail::move_alias(*impl_, name, alias, *current, version, actor, reason, "set");
    if (!e.ok()) return e.status();
    return e;
  });
}

Result<AliasEvent> Registry::rollback(std::string_view name, std::string_view alias, std::string_view actor,
                                      std::string_view reason) {
  EMBER_RETURN_IF_ERROR(check_alias_change(name, alias, actor));
  return impl_->write([&]() -> Result<AliasEvent> {
    auto current = detail::alias_target(impl_->db, name, alias);
    if (!current.ok()) return current.status();
    if (*current == 0) return failed_precondition("alias " + alias_subject(name, alias) + " is not set");
    // The move that set the current target (a rollback's own move is skipped, so repeated
    // rollbacks walk further back).
    auto st = impl_->db.prepare(
        "SELECT from_version FROM alias_history WHERE name = ? AND alias = ? AND to_version = ? AND kind = 'set' "
        "ORDER BY id DESC LIMIT 1");
    if (!st.ok()) return st.status();
    st->bind(1, name).bind(2, alias).bind(3, *current);
    auto row = st->step();
    if (!row.ok()) return row.status();
    const std::int64_t previous = *row ? st->int64(0) : 0;
    if (previous == 0) {
      return failed_precondition("alias " + alias_subject(name, alias) + " has no earlier target than version " +
                                 std::to_string(*current));
    }
    auto id = detail::aliasable_version_id(*impl_, name, previous);
    if (!id.ok()) return id.status().with_context("rollback of " + alias_subject(name, alias));
    EMBER_RETURN_IF_ERROR(detail::check_policy(*impl_, name, alias, previous, *id));
    auto e = detail::move_alias(*impl_, name, alias, *current, previous, actor, reason, "rollback");
    if (!e.ok()) return e.status();
    return e;
  });
}

Result<AliasEvent> Registry::delete_alias(std::string_view name, std::string_view alias, std::string_view actor,
                                          std::string_view reason) {
  EMBER_RETURN_IF_ERROR(check_alias_change(name, alias, actor));
  return impl_->write([&]() -> Result<AliasEvent> {
    auto current = detail::alias_target(impl_->db, name, alias);
    if (!current.ok()) return current.status();
    if (*current == 0) return not_found("alias " + alias_subject(name, alias) + " is not set");
    auto e = detail::move_alias(*impl_, name, alias, *current, 0, actor, reason, "delete");
    if (!e.ok()) return e.status();
    return e;
  });
}

Result<std::vector<AliasEvent>> Registry::alias_history(std::string_view name, std::string_view alias) {
  EMBER_RETURN_IF_ERROR(check_name(name));
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare(
      "SELECT alias, from_version, to_version, actor, reason, kind, at_us FROM alias_history "
      "WHERE name = ?1 AND (?2 = '' OR alias = ?2) ORDER BY id");
  if (!st.ok()) return st.status();
  st->bind(1, name).bind(2, alias);
  std::vector<AliasEvent> out;
  EMBER_RETURN_IF_ERROR(st->each([&] {
    out.push_back(AliasEvent{std::string(name), st->text(0), st->int64(1), st->int64(2), st->text(3), st->text(4),
                             st->text(5), st->int64(6)});
  }));
  return out;
}

Result<std::int64_t> Registry::alias_at(std::string_view name, std::string_view alias,
                                        std::chrono::system_clock::time_point at) {
  EMBER_RETURN_IF_ERROR(check_name(name));
  const std::int64_t at_us = std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare(
      "SELECT to_version FROM alias_history WHERE name = ? AND alias = ? AND at_us <= ? ORDER BY id DESC LIMIT 1");
  if (!st.ok()) return st.status();
  st->bind(1, name).bind(2, alias).bind(3, at_us);
  auto row = st->step();
  if (!row.ok()) return row.status();
  return *row ? st->int64(0) : std::int64_t{0};
}

Status Registry::approve(std::string_view name, std::int64_t version, std::string_view actor, std::string_view note) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  return impl_->write([&]() -> Status {
    auto id = impl_->version_id(name, version);
    if (!id.ok()) return id.status();
    auto st = impl_->db.prepare("INSERT INTO approvals VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING");
    if (!st.ok()) return st.status();
    st->bind(1, *id).bind(2, actor).bind(3, note).bind(4, impl_->now_us());
    EMBER_RETURN_IF_ERROR(st->run());
    if (impl_->db.changes() == 0) {
      return Status(StatusCode::kAlreadyExists, std::string(actor) + " has approved " + detail::subject(name, version) + " already");
    }
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, "approve", detail::subject(name, version),
                                              detail::detail_json({{"note", std::string(note)}})));
    return Status();
  });
}

Status Registry::add_signature(std::string_view name, std::int64_t version, const BundleSignature& signature,
                               std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  return impl_->write([&]() -> Status {
    auto st = impl_->db.prepare("SELECT id, digest FROM versions WHERE name = ? AND version = ?");
    if (!st.ok()) return st.status();
    st->bind(1, name).bind(2, version);
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (!*row) return not_found("model version " + detail::subject(name, version) + " does not exist");
    const std::int64_t id = st->int64(0);
    const std::string digest = st->text(1);
    EMBER_RETURN_IF_ERROR(verify_signature(digest, signature));
    auto ins = impl_->db.prepare("INSERT OR REPLACE INTO signatures VALUES(?, ?, ?, ?)");
    if (!ins.ok()) return ins.status();
    ins->bind(1, id).bind(2, signature.key_id).bind(3, signature.public_key).bind(4, signature.signature);
    EMBER_RETURN_IF_ERROR(ins->run());
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, "sign", detail::subject(name, version),
                                              detail::detail_json({{"key_id", signature.key_id}, {"digest", digest}})));
    return Status();
  });
}

Status Registry::trust_key(std::string_view public_key_hex, std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  unsigned char raw[32];
  if (!detail::from_hex(public_key_hex, raw, 32)) return invalid_argument("a public key is 64 hex digits");
  std::string key(public_key_hex);
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string id = detail::key_id(key);
  return impl_->write([&]() -> Status {
    auto st = impl_->db.prepare("INSERT OR REPLACE INTO trusted_keys VALUES(?, ?, ?, ?)");
    if (!st.ok()) return st.status();
    st->bind(1, id).bind(2, key).bind(3, actor).bind(4, impl_->now_us());
    EMBER_RETURN_IF_ERROR(st->run());
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, "trust_key", id, detail::detail_json({{"public_key", key}})));
    return Status();
  });
}

Status Registry::protect_alias(std::string_view alias, int approvals, std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_alias_name(alias));
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  if (approvals > 100) return invalid_argument("at most 100 approvals can be required");
  return impl_->write([&]() -> Status {
    auto st = approvals < 0 ? impl_->db.prepare("DELETE FROM protected_aliases WHERE alias = ?")
                            : impl_->db.prepare("INSERT OR REPLACE INTO protected_aliases VALUES(?, ?)");
    if (!st.ok()) return st.status();
    st->bind(1, alias);
    if (approvals >= 0) st->bind(2, std::int64_t{approvals});
    EMBER_RETURN_IF_ERROR(st->run());
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, "policy", std::string(alias),
                                              detail::detail_json({{"approvals", std::to_string(approvals)}})));
    return Status();
  });
}

Result<std::map<std::string, int>> Registry::protected_aliases() {
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare("SELECT alias, approvals FROM protected_aliases ORDER BY alias");
  if (!st.ok()) return st.status();
  std::map<std::string, int> out;
  EMBER_RETURN_IF_ERROR(st->each([&] {
    out[st->text(0)] = static_cast<int>(st->int64(1));
  }));
  return out;
}

Result<std::vector<std::string>> Registry::trusted_keys() {
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare("SELECT public_key FROM trusted_keys ORDER BY key_id");
  if (!st.ok()) return st.status();
  std::vector<std::string> out;
  EMBER_RETURN_IF_ERROR(st->each([&] {
    out.push_back(st->text(0));
  }));
  return out;
}

}  // namespace ember
