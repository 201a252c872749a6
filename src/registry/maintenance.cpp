// Listing, tags, archive and delete, the audit log, consistency checks, gc and export.
#include <set>
#include <system_error>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "bundle/crypto.hpp"
#include "bundle/manifest_internal.hpp"
#include "core/files.hpp"
#include "registry/registry_internal.hpp"

namespace ember {

namespace fs = std::filesystem;

namespace {

// Fills everything but the name/version/digest row fields from the other tables.
Status fill_version(detail::Db& db, std::int64_t id, VersionInfo& v) {
  auto files = db.prepare("SELECT path, role, size, sha256 FROM files WHERE version_id = ? ORDER BY path");
  if (!files.ok()) return files.status();
  files->bind(1, id);
  EMBER_RETURN_IF_ERROR(files->each([&] {
    v.files.push_back(BundleFile{files->text(0), files->text(1), static_cast<std::uint64_t>(files->int64(2)), files->text(3)});
    v.bytes += v.files.back().size;
  }));
  auto aliases = db.prepare("SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias");
  if (!aliases.ok()) return aliases.status();
  aliases->bind(1, v.name).bind(2, v.version);
  EMBER_RETURN_IF_ERROR(aliases->each([&] {
    v.aliases.push_back(aliases->text(0));
  }));
  auto approvals = db.prepare("SELECT actor, note, at_us FROM approvals WHERE version_id = ? ORDER BY at_us, actor");
  if (!approvals.ok()) return approvals.status();
  approvals->bind(1, id);
  EMBER_RETURN_IF_ERROR(approvals->each([&] {
    v.approvals.push_back(Approval{approvals->text(0), approvals->text(1), approvals->int64(2)});
  }));
  auto sigs = db.prepare("SELECT key_id FROM signatures WHERE version_id = ? ORDER BY key_id");
  if (!sigs.ok()) return sigs.status();
  sigs->bind(1, id);
  EMBER_RETURN_IF_ERROR(sigs->each([&] {
    v.signed_by.push_back(sigs->text(0));
  }));
  auto tags = db.prepare("SELECT key, value FROM tags WHERE version_id = ?");
  if (!tags.ok()) return tags.status();
  tags->bind(1, id);
  EMBER_RETURN_IF_ERROR(tags->each([&] {
    v.tags[tags->text(0)] = tags->text(1);
  }));
  return {};
}

constexpr std::string_view kVersionColumns =
    "SELECT id, name, version, digest, publisher, note, created_us, archived FROM versions ";

VersionInfo version_row(const detail::Stmt& st) {
  VersionInfo v;
  v.name = st.text(1);
  v.version = st.int64(2);
  v.digest = st.text(3);
  v.publisher = st.text(4);
  v.note = st.text(5);
  v.created_us = st.int64(6);
  v.archived = st.int64(7) != 0;
  return v;
}

}  // namespace

Status Registry::tag(std::string_view name, std::int64_t version, std::string_view key, std::string_view value,
                     std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  if (key.empty() || key.size() > 256 || key.find('=') != std::string_view::npos) {
    return invalid_argument("a tag key is 1 to 256 characters without '='");
  }
  if (value.size() > 65536) return invalid_argument("a tag value is at most 65536 characters");
  return impl_->write([&]() -> Status {
    auto id = impl_->version_id(name, version);
    if (!id.ok()) return id.status();
    auto st = value.empty() ? impl_->db.prepare("DELETE FROM tags WHERE version_id = ? AND key = ?")
                            : impl_->db.prepare("INSERT OR REPLACE INTO tags VALUES(?, ?, ?)");
    if (!st.ok()) return st.status();
    st->bind(1, *id).bind(2, key);
    if (!value.empty()) st->bind(3, value);
    EMBER_RETURN_IF_ERROR(st->run());
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, "tag", detail::subject(name, version),
                                              detail::detail_json({{"key", std::string(key)}, {"value", std::string(value)}})));
    return Status();
  });
}

Result<std::vector<VersionInfo>> Registry::list(std::string_view name_contains, const std::vector<std::string>& tags,
                                                bool include_archived) {
  std::vector<std::pair<std::string, std::string>> wanted;
  for (const auto& t : tags) {
    const auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0) return invalid_argument("tag filter '" + t + "': expected KEY=VALUE");
    wanted.emplace_back(t.substr(0, eq), t.substr(eq + 1));
  }
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare(std::string(kVersionColumns) +
                              "WHERE instr(name, ?) > 0 AND (? OR archived = 0) ORDER BY name, version");
  if (!st.ok()) return st.status();
  st->bind(1, name_contains).bind(2, std::int64_t{include_archived ? 1 : 0});
  std::vector<VersionInfo> out;
  EMBER_RETURN_IF_ERROR(st->each([&] {
    VersionInfo v = version_row(*st);
    const Status filled = fill_version(impl_->db, st->int64(0), v);
    if (!filled.ok()) return filled;
    bool match = true;
    for (const auto& [k, val] : wanted) {
      const auto it = v.tags.find(k);
      if (it == v.tags.end() || it->second != val) match = false;
    }
    if (match) out.push_back(std::move(v));
    return Status();
  }));
  return out;
}

Result<VersionInfo> Registry::show(std::string_view ref_text) {
  auto ref = parse_model_ref(ref_text);
  if (!ref.ok()) return ref.status();
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto version = impl_->version_of(*ref);
  if (!version.ok()) return version.status();
  auto st = impl_->db.prepare(std::string(kVersionColumns) + "WHERE name = ? AND version = ?");
  if (!st.ok()) return st.status();
  st->bind(1, ref->name).bind(2, *version);
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return not_found("model version " + detail::subject(ref->name, *version) + " does not exist");
  VersionInfo v = version_row(*st);
  EMBER_RETURN_IF_ERROR(fill_version(impl_->db, st->int64(0), v));
  return v;
}

Status Registry::archive(std::string_view name, std::int64_t version, bool archived, std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  return impl_->write([&]() -> Status {
    auto id = impl_->version_id(name, version);
    if (!id.ok()) return id.status();
    auto st = impl_->db.prepare("UPDATE versions SET archived = ? WHERE id = ?");
    if (!st.ok()) return st.status();
    st->bind(1, std::int64_t{archived ? 1 : 0}).bind(2, *id);
    EMBER_RETURN_IF_ERROR(st->run());
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, archived ? "archive" : "restore", detail::subject(name, version), "{}"));
    return Status();
  });
}

Status Registry::remove(std::string_view name, std::int64_t version, std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  return impl_->write([&]() -> Status {
    auto id = impl_->version_id(name, version);
    if (!id.ok()) return id.status();
    auto used = impl_->db.prepare("SELECT group_concat(alias, ', ') FROM aliases WHERE name = ? AND version = ?");
    if (!used.ok()) return used.status();
    used->bind(1, name).bind(2, version);
    auto row = used->step();
    if (!row.ok()) return row.status();
    if (!used->is_null(0)) {
      return failed_precondition("model version " + detail::subject(name, version) + " is the target of alias(es) " +
                                 used->text(0) + "; move them first");
    }
    auto rolling = impl_->db.prepare(
        "SELECT id, alias FROM rollouts WHERE name = ?1 AND (control = ?2 OR candidate = ?2) AND state IN "
        "('running', 'paused') LIMIT 1");
    if (!rolling.ok()) return rolling.status();
    rolling->bind(1, name).bind(2, version);
    auto active = rolling->step();
    if (!active.ok()) return active.status();
    if (*active) {
      return failed_precondition("model version " + detail::subject(name, version) + " is in rollout " +
                                 std::to_string(rolling->int64(0)) + " of " + std::string(name) + "@" +
                                 rolling->text(1) + "; promote or abort it first");
    }
    auto st = impl_->db.prepare("DELETE FROM versions WHERE id = ?");
    if (!st.ok()) return st.status();
    st->bind(1, *id);
    EMBER_RETURN_IF_ERROR(st->run());
    EMBER_RETURN_IF_ERROR(impl_->audit_append(actor, "delete", detail::subject(name, version), "{}"));
    impl_->verified.erase(std::make_pair(std::string(name), version));
    return {};
  });
}

Status Registry::record_event(std::string_view actor, std::string_view event, std::string_view subject,
                              std::string_view detail) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  if (event.empty() || event.size() > 64) return invalid_argument("an event name is 1 to 64 characters");
  if (subject.size() > 1024 || detail.size() > 65536) return invalid_argument("the event's subject or detail is too long");
  const auto parsed = nlohmann::json::parse(detail.empty() ? std::string_view("{}") : detail, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return invalid_argument("an event's detail must be a JSON object");
  return impl_->write([&]() -> Status {
    return impl_->audit_append(actor, event, subject, detail.empty() ? std::string_view("{}") : detail);
  });
}

Result<std::vector<AuditEntry>> Registry::audit() {
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare("SELECT seq, at_us, actor, event, subject, detail, hash FROM audit ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<AuditEntry> out;
  EMBER_RETURN_IF_ERROR(st->each([&] {
    out.push_back(AuditEntry{st->int64(0), st->int64(1), st->text(2), st->text(3), st->text(4), st->text(5), st->text(6)});
  }));
  return out;
}

namespace {

Status verify_chain(detail::Db& db, std::size_t* count) {
  auto st = db.prepare("SELECT seq, at_us, actor, event, subject, detail, prev_hash, hash FROM audit ORDER BY seq");
  if (!st.ok()) return st.status();
  std::string prev(64, '0');
  std::int64_t expected = 1;
  for (;; ++expected) {
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::int64_t seq = st->int64(0);
    if (seq != expected) {
      return data_loss("audit log: entry " + std::to_string(expected) + " is missing (the next is " + std::to_string(seq) + ")");
    }
    if (st->text(6) != prev) return data_loss("audit log: entry " + std::to_string(seq) + " does not follow entry " + std::to_string(seq - 1));
    const std::string hash = detail::audit_hash(prev, seq, st->int64(1), st->text(2), st->text(3), st->text(4), st->text(5));
    if (hash != st->text(7)) return data_loss("audit log: entry " + std::to_string(seq) + " was changed after it was written");
    prev = hash;
  }
  auto head = db.prepare("SELECT value FROM meta WHERE key = 'audit_head'");
  if (!head.ok()) return head.status();
  auto row = head->step();
  if (!row.ok()) return row.status();
  const std::string want = std::to_string(expected - 1) + ":" + prev;
  if (expected > 1 && (!*row || head->text(0) != want)) {
    return data_loss("audit log: its last entries were removed (the log ends at entry " + std::to_string(expected - 1) +
                     ", the recorded head is " + (*row ? head->text(0) : std::string("absent")) + ")");
  }
  if (count != nullptr) *count = static_cast<std::size_t>(expected - 1);
  return {};
}

}  // namespace

Status Registry::verify_audit() {
  std::lock_guard<std::mutex> guard(impl_->mu);
  return verify_chain(impl_->db, nullptr);
}

Result<CheckReport> Registry::check(bool deep) {
  CheckReport report;
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto& db = impl_->db;
  {
    auto integrity = db.prepare("PRAGMA integrity_check");
    if (!integrity.ok()) return integrity.status();
    EMBER_RETURN_IF_ERROR(integrity->each([&] {
      if (integrity->text(0) != "ok") report.problems.push_back("database: " + integrity->text(0));
    }));
  }
  auto versions = db.prepare("SELECT id, name, version, digest, manifest, file_count FROM versions ORDER BY id");
  if (!versions.ok()) return versions.status();
  auto files = db.prepare("SELECT path, size, sha256 FROM files WHERE version_id = ? ORDER BY path");
  if (!files.ok()) return files.status();
  std::set<std::string> blobs;
  std::uint64_t total = 0;
  std::vector<std::pair<std::string, std::uint64_t>> to_hash;
  EMBER_RETURN_IF_ERROR(versions->each([&] {
    ++report.versions;
    const std::string subj = detail::subject(versions->text(1), versions->int64(2));
    auto manifest = parse_manifest(versions->text(4), impl_->options.limits);
    if (!manifest.ok()) {
      report.problems.push_back(subj + ": stored manifest: " + manifest.status().message());
      return Status();
    }
    if (manifest->digest != versions->text(3)) report.problems.push_back(subj + ": the manifest does not match its digest");
    if (static_cast<std::int64_t>(manifest->files.size()) != versions->int64(5)) {
      report.problems.push_back(subj + ": the manifest lists a different number of files than were recorded");
    }
    files->bind(1, versions->int64(0));
    std::size_t n = 0;
    const Status walked = files->each([&] {
      ++n;
      const std::string sha = files->text(2);
      const auto size = static_cast<std::uint64_t>(files->int64(1));
      const fs::path blob = detail::blob_path(impl_->dir, sha);
      struct stat st {};
      if (::lstat(blob.c_str(), &st) != 0) {
        report.problems.push_back(subj + ": file '" + files->text(0) + "': its blob " + sha.substr(0, 16) + "... is missing");
      } else if (static_cast<std::uint64_t>(st.st_size) != impl_->blob_size(size)) {
        report.problems.push_back(subj + ": file '" + files->text(0) + "': its blob has the wrong size");
      } else if (blobs.insert(sha).second) {
        to_hash.emplace_back(sha, size);
        total += size;
      }
    });
    if (!walked.ok()) return walked;
    if (n != manifest->files.size()) report.problems.push_back(subj + ": incomplete: " + std::to_string(n) + " of " +
                                                               std::to_string(manifest->files.size()) + " files recorded");
    return Status();
  }));
  report.blobs = blobs.size();
  if (deep) {
    detail::ProgressCounter progress(impl_->options.progress, total);
    for (const auto& [sha, size] : to_hash) {
      const auto blob = detail::blob_path(impl_->dir, sha);
      auto got = impl_->encrypted ? detail::decrypt_copy(blob, nullptr, impl_->key.data(), sha, progress)
                                  : detail::hash_and_copy(blob, nullptr, size, progress);
      if (!got.ok() || *got != sha) report.problems.push_back("blob " + sha.substr(0, 16) + "...: its content does not match its name");
    }
  }
  auto dangling = db.prepare(
      "SELECT a.name, a.alias, a.version FROM aliases a LEFT JOIN versions v ON v.name = a.name AND v.version = a.version "
      "WHERE v.id IS NULL");
  if (!dangling.ok()) return dangling.status();
  EMBER_RETURN_IF_ERROR(dangling->each([&] {
    report.problems.push_back("alias " + dangling->text(0) + "@" + dangling->text(1) + " points at missing version " +
                              std::to_string(dangling->int64(2)));
  }));
  const Status chain = verify_chain(db, &report.audit_entries);
  if (!chain.ok()) report.problems.push_back(chain.message());
  std::error_code ec;
  for (fs::directory_iterator it(impl_->dir / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    ++report.leftover_temporary_files;
  }
  return report;
}

Result<GcReport> Registry::gc(std::string_view actor) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  GcReport report;
  // Exclusive: no publisher is between storing a blob and committing its version, and
  // no resolve is linking a checkout, in any process.
  auto lock = detail::RegistryLock::take(impl_->dir, true);
  if (!lock.ok()) return lock.status();
  std::lock_guard<std::mutex> guard(impl_->mu);
  std::set<std::string, std::less<>> referenced;
  std::set<std::string, std::less<>> live_checkouts;
  {
    auto st = impl_->db.prepare("SELECT DISTINCT sha256 FROM files");
    if (!st.ok()) return st.status();
    EMBER_RETURN_IF_ERROR(st->each([&] {
      referenced.insert(st->text(0));
    }));
    auto v = impl_->db.prepare("SELECT name, version, digest FROM versions");
    if (!v.ok()) return v.status();
    EMBER_RETURN_IF_ERROR(v->each([&] {
      live_checkouts.insert(v->text(0) + "/" + std::to_string(v->int64(1)) + "-" + v->text(2).substr(0, 16));
    }));
  }
  std::error_code ec;
  for (fs::recursive_directory_iterator it(impl_->dir / "blobs" / "sha256", ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (referenced.find(name) != referenced.end()) continue;
    const auto size = it->file_size(ec);
    if (fs::remove(it->path(), ec)) {
      ++report.blobs_removed;
      report.bytes_removed += size;
    }
  }
  for (fs::directory_iterator model(impl_->dir / "checkouts", ec), end; !ec && model != end; model.increment(ec)) {
    std::error_code ec2;
    for (fs::directory_iterator co(model->path(), ec2), end2; !ec2 && co != end2; co.increment(ec2)) {
      const std::string key = model->path().filename().string() + "/" + co->path().filename().string();
      if (live_checkouts.find(key) != live_checkouts.end()) continue;
      std::error_code ec3;
      if (fs::remove_all(co->path(), ec3) > 0) ++report.checkouts_removed;
    }
  }
  for (fs::directory_iterator it(impl_->dir / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (fs::remove_all(it->path(), ec2) > 0) ++report.temporary_removed;
  }
  detail::WriteTxn txn(impl_->db);
  EMBER_RETURN_IF_ERROR(txn.begin());
  EMBER_RETURN_IF_ERROR(impl_->audit_append(
      actor, "gc", "registry",
      detail::detail_json({{"blobs_removed", std::to_string(report.blobs_removed)},
                           {"bytes_removed", std::to_string(report.bytes_removed)},
                           {"checkouts_removed", std::to_string(report.checkouts_removed)}})));
  EMBER_RETURN_IF_ERROR(txn.commit());
  return report;
}

Result<Manifest> Registry::export_bundle(std::string_view ref, const fs::path& out) {
  auto resolved = resolve(ref);
  if (!resolved.ok()) return resolved.status();
  std::error_code ec;
  if (fs::exists(out, ec) && (!fs::is_directory(out, ec) || !fs::is_empty(out, ec))) {
    return Status(StatusCode::kAlreadyExists, "'" + out.string() + "' exists and is not an empty directory");
  }
  fs::create_directories(out, ec);
  if (ec) return data_loss("'" + out.string() + "' cannot be created: " + ec.message());
  std::uint64_t total = 0;
  for (const auto& f : resolved->manifest.files) total += f.size;
  detail::ProgressCounter progress(impl_->options.progress, total);
  for (const auto& f : resolved->manifest.files) {
    const fs::path to = out / f.path;
    fs::create_directories(to.parent_path(), ec);
    auto sha = detail::hash_and_copy(resolved->dir / f.path, &to, f.size, progress);
    if (!sha.ok()) return sha.status();
    if (*sha != f.sha256) return data_loss("'" + f.path + "' changed while it was exported");
  }
  auto text = detail::read_text_file(resolved->dir / "manifest.json", "manifest");
  if (!text.ok()) return text.status();
  // Signatures added after publishing travel with the bundle (they do not change the digest).
  std::vector<BundleSignature> signatures;
  {
    std::lock_guard<std::mutex> guard(impl_->mu);
    auto id = impl_->version_id(resolved->name, resolved->version);
    if (!id.ok()) return id.status();
    auto st = impl_->db.prepare("SELECT key_id, public_key, signature FROM signatures WHERE version_id = ? ORDER BY key_id");
    if (!st.ok()) return st.status();
    st->bind(1, *id);
    EMBER_RETURN_IF_ERROR(st->each([&] { signatures.push_back({st->text(0), st->text(1), st->text(2)}); }));
  }
  auto signed_text = detail::with_signatures(*text, signatures);
  if (!signed_text.ok()) return signed_text.status();
  EMBER_RETURN_IF_ERROR(detail::write_file_atomically(out / "manifest.json", *signed_text));
  auto written = parse_manifest(*signed_text, impl_->options.limits);
  if (!written.ok()) return written.status();
  if (written->digest != resolved->manifest.digest) return internal_error("export changed the manifest's digest");
  return written;
}

}  // namespace ember
