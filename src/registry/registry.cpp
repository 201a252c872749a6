// The registry: opening, publishing (blobs first, then one transaction), resolving
// (a verified checkout per version, hashed once per Registry and stat-checked after).
// Blobs and checkouts on disk are in store.cpp.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include <unistd.h>


#include "bundle/crypto.hpp"
#include "core/files.hpp"
#include "registry/registry_internal.hpp"

namespace ember {

namespace fs = std::filesystem;

namespace {

constexpr int kFormat = 1;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models(name TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL REFERENCES models(name), version INTEGER NOT NULL,
  digest TEXT NOT NULL, manifest TEXT NOT NULL, publisher TEXT NOT NULL, note TEXT NOT NULL,
  created_us INTEGER NOT NULL, archived INTEGER NOT NULL DEFAULT 0, file_count INTEGER NOT NULL,
  UNIQUE(name, version));
CREATE TABLE IF NOT EXISTS files(
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE, path TEXT NOT NULL,
  role TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(version_id, path));
CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
CREATE TABLE IF NOT EXISTS aliases(
  name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY(name, alias));
CREATE TABLE IF NOT EXISTS alias_history(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, alias TEXT NOT NULL, from_version INTEGER NOT NULL,
  to_version INTEGER NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL, kind TEXT NOT NULL,
  at_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alias_history_by_alias ON alias_history(name, alias, id);
CREATE TABLE IF NOT EXISTS approvals(
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE, actor TEXT NOT NULL,
  note TEXT NOT NULL, at_us INTEGER NOT NULL, PRIMARY KEY(version_id, actor));
CREATE TABLE IF NOT EXISTS signatures(
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE, key_id TEXT NOT NULL,
  public_key TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY(version_id, key_id));
CREATE TABLE IF NOT EXISTS trusted_keys(
  key_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, added_by TEXT NOT NULL, at_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS protected_aliases(alias TEXT PRIMARY KEY, approvals INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tags(
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE, key TEXT NOT NULL,
  value TEXT NOT NULL, PRIMARY KEY(version_id, key));
CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, actor TEXT NOT NULL, event TEXT NOT NULL,
  subject TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, alias TEXT NOT NULL, control INTEGER NOT NULL,
  candidate INTEGER NOT NULL, plan TEXT NOT NULL, state TEXT NOT NULL, step INTEGER NOT NULL,
  step_started_us INTEGER NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL, actor TEXT NOT NULL,
  started_us INTEGER NOT NULL, updated_us INTEGER NOT NULL, revision INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS rollouts_by_alias ON rollouts(name, alias, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

Result<std::unique_ptr<Registry::Impl>> open_impl(const fs::path& dir, const RegistryOptions& options, bool create) {
  EMBER_RETURN_IF_ERROR(detail::Db::available());
  auto impl = std::make_unique<Registry::Impl>();
  impl->dir = dir;
  impl->options = options;
  if (!options.encryption_key.empty()) {
    if (!detail::from_hex(options.encryption_key, impl->key.data(), impl->key.size())) {
      return invalid_argument("the registry's encryption key must be 64 hex digits (256 bits)");
    }
    impl->encrypted = true;
  }
  const std::string key_check =
      impl->encrypted ? sha256_hex("ember-registry-key-check:" + detail::to_hex(impl->key.data(), impl->key.size()))
                      : std::string();
  const fs::path db_path = dir / "registry.db";
  std::error_code ec;
  if (create) {
    fs::create_directories(dir, ec);
    if (ec) return data_loss("registry '" + dir.string() + "' cannot be created: " + ec.message());
    if (fs::exists(db_path, ec)) {
      return Status(StatusCode::kAlreadyExists, "'" + dir.string() + "' holds a registry already");
    }
    for (const char* sub : {"blobs/sha256", "checkouts", "tmp"}) {
      fs::create_directories(dir / sub, ec);
      if (ec) return data_loss("'" + (dir / sub).string() + "' cannot be created: " + ec.message());
    }
  } else if (!fs::is_regular_file(db_path, ec)) {
    return not_found("'" + dir.string() + "' holds no registry (no registry.db); create one with 'ember registry init'");
  }
  const int busy = static_cast<int>(std::clamp<std::int64_t>(options.busy_timeout.count(), 0, 3600000));
  auto db = detail::Db::open(db_path.string(), create, busy);
  if (!db.ok()) return db.status();
  impl->db = std::move(*db);
  if (create) {
    detail::WriteTxn txn(impl->db);
    EMBER_RETURN_IF_ERROR(txn.begin());
    EMBER_RETURN_IF_ERROR(impl->db.exec(kSchema));
    EMBER_RETURN_IF_ERROR(impl->db.exec("INSERT OR IGNORE INTO meta VALUES('format', '" + std::to_string(kFormat) + "')"));
    if (impl->encrypted) {
      EMBER_RETURN_IF_ERROR(impl->db.exec("INSERT INTO meta VALUES('encryption', 'aes-256-gcm')"));
      EMBER_RETURN_IF_ERROR(impl->db.exec("INSERT INTO meta VALUES('key_check', '" + key_check + "')"));
    }
    EMBER_RETURN_IF_ERROR(impl->audit_append("ember", "init", dir.filename().string(), "{}"));
    EMBER_RETURN_IF_ERROR(txn.commit());
    EMBER_RETURN_IF_ERROR(detail::fsync_dir(dir));
  } else {
    auto st = impl->db.prepare("SELECT value FROM meta WHERE key = 'format'");
    if (!st.ok()) return data_loss("'" + db_path.string() + "' is not an ember registry: " + st.status().message());
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (!*row) return data_loss("'" + db_path.string() + "' has no format record");
    const std::string format = st->text(0);
    if (format != std::to_string(kFormat)) {
      return failed_precondition("registry format " + format + " is not one this ember reads (" +
                                 std::to_string(kFormat) + ")");
    }
    auto check = impl->db.prepare("SELECT value FROM meta WHERE key = 'key_check'");
    if (!check.ok()) return check.status();
    auto has = check->step();
    if (!has.ok()) return has.status();
    if (*has && !impl->encrypted) {
      return failed_precondition("registry '" + dir.string() + "' is encrypted: supply its key");
    }
    if (!*has && impl->encrypted) {
      return invalid_argument("registry '" + dir.string() + "' is not encrypted, but a key was given");
    }
    if (*has && check->text(0) != key_check) {
      return Status(StatusCode::kPermissionDenied, "the key given is not registry '" + dir.string() + "''s key");
    }
    // Registries made before rollouts were kept gain the table (same format: older
    // readers ignore it).
    bool present = false;
    {
      auto table = impl->db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollouts'");
      if (!table.ok()) return table.status();
      auto found = table->step();
      if (!found.ok()) return found.status();
      present = *found;
    }
    if (!present) {
      detail::WriteTxn txn(impl->db);
      EMBER_RETURN_IF_ERROR(txn.begin());
      EMBER_RETURN_IF_ERROR(impl->db.exec(kSchema));
      EMBER_RETURN_IF_ERROR(txn.commit());
    }
  }
  return impl;
}

}  // namespace


Result<ModelRef> parse_model_ref(std::string_view ref) {
  ModelRef out;
  const auto at = ref.find('@');
  const auto slash = ref.find('/');
  if (at != std::string_view::npos && slash != std::string_view::npos) {
    return invalid_argument("model reference '" + std::string(ref) + "': use NAME/VERSION or NAME@ALIAS, not both");
  }
  const auto cut = std::min(at, slash);
  out.name = std::string(ref.substr(0, cut));
  if (!valid_model_name(out.name)) {
    return invalid_argument("model reference '" + std::string(ref) +
                            "': expected NAME, NAME/VERSION or NAME@ALIAS (NAME of letters, digits, '.', '_', '-')");
  }
  if (slash != std::string_view::npos) {
    const auto num = ref.substr(slash + 1);
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || p != num.data() + num.size() || v <= 0) {
      return invalid_argument("model reference '" + std::string(ref) + "': the version must be a positive integer");
    }
    out.version = v;
  } else if (at != std::string_view::npos) {
    out.alias = std::string(ref.substr(at + 1));
    if (!valid_model_name(out.alias)) {
      return invalid_argument("model reference '" + std::string(ref) + "': malformed alias");
    }
  } else {
    out.alias = "latest";
  }
  return out;
}

// --- Impl ------------------------------------------------------------------------------

std::int64_t Registry::Impl::now_us() const {
  const auto t = options.now ? options.now() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

Status Registry::Impl::audit_append(std::string_view actor, std::string_view event, std::string_view subj,
                                    std::string_view detail) {
  auto head = db.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  if (!head.ok()) return head.status();
  auto row = head->step();
  if (!row.ok()) return row.status();
  std::int64_t seq = 1;
  std::string prev(64, '0');
  if (*row) {
    seq = head->int64(0) + 1;
    prev = head->text(1);
  }
  const std::int64_t at = now_us();
  const std::string hash = detail::audit_hash(prev, seq, at, actor, event, subj, detail);
  auto ins = db.prepare("INSERT INTO audit VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  ins->bind(1, seq).bind(2, at).bind(3, actor).bind(4, event).bind(5, subj).bind(6, detail).bind(7, prev).bind(8, hash);
  EMBER_RETURN_IF_ERROR(ins->run());
  auto meta = db.prepare("INSERT OR REPLACE INTO meta VALUES('audit_head', ?)");
  if (!meta.ok()) return meta.status();
  meta->bind(1, std::to_string(seq) + ":" + hash);
  return meta->run();
}

void Registry::Impl::audit_now(std::string_view actor, std::string_view event, std::string_view subj,
                               std::string_view detail) {
  detail::WriteTxn txn(db);
  if (txn.begin().ok() && audit_append(actor, event, subj, detail).ok()) (void)txn.commit();
}

Registry::Impl::~Impl() {
  std::error_code ec;
  if (!private_checkouts.empty()) std::filesystem::remove_all(private_checkouts, ec);
  key.fill(0);
}

std::uint64_t Registry::Impl::blob_size(std::uint64_t size) const {
  return encrypted ? size + detail::kEncryptedOverhead : size;
}

Result<fs::path> Registry::Impl::checkout_dir(std::string_view name, std::int64_t version, std::string_view digest) {
  const std::string leaf = std::to_string(version) + "-" + std::string(digest.substr(0, 16));
  if (!encrypted) return dir / "checkouts" / std::string(name) / leaf;
  if (private_checkouts.empty()) {
    std::string templ = (fs::temp_directory_path() / "ember-registry-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return data_loss("a private directory for decrypted files cannot be made: " + std::string(std::strerror(errno)));
    }
    private_checkouts = templ;  // mkdtemp makes it 0700
  }
  return private_checkouts / std::string(name) / leaf;
}

Result<detail::StmtRef> Registry::Impl::cached(std::string_view sql) {
  auto it = statements.find(sql);
  if (it == statements.end()) {
    auto st = db.prepare(sql);
    if (!st.ok()) return st.status();
    it = statements.emplace(std::string(sql), std::move(*st)).first;
  }
  return detail::StmtRef(&it->second);
}

Result<std::int64_t> Registry::Impl::version_id(std::string_view name, std::int64_t version) {
  auto st = db.prepare("SELECT id FROM versions WHERE name = ? AND version = ?");
  if (!st.ok()) return st.status();
  st->bind(1, name).bind(2, version);
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return not_found("model version " + detail::subject(name, version) + " does not exist");
  return st->int64(0);
}

Result<std::int64_t> Registry::Impl::version_of(const ModelRef& ref) {
  if (ref.version > 0) return ref.version;
  const bool latest = ref.alias == "latest";
  auto st = latest ? cached("SELECT MAX(version) FROM versions WHERE name = ? AND archived = 0")
                   : cached("SELECT version FROM aliases WHERE name = ? AND alias = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, ref.name);
  if (!latest) (*st)->bind(2, ref.alias);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row || (*st)->is_null(0)) {
    return not_found(latest ? "model '" + ref.name + "' has no versions"
                            : "alias " + ref.name + "@" + ref.alias + " is not set");
  }
  return (*st)->int64(0);
}

// --- Registry ----------------------------------------------------------------------

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

Result<std::unique_ptr<Registry>> Registry::init(const fs::path& dir, const RegistryOptions& options) {
  auto impl = open_impl(dir, options, true);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<Registry>(new Registry(std::move(*impl)));
}

Result<std::unique_ptr<Registry>> Registry::init(const fs::path& dir) {
  const RegistryOptions defaults;
  return init(dir, defaults);
}

Result<std::unique_ptr<Registry>> Registry::open(const fs::path& dir, const RegistryOptions& options) {
  auto impl = open_impl(dir, options, false);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<Registry>(new Registry(std::move(*impl)));
}

Result<std::unique_ptr<Registry>> Registry::open(const fs::path& dir) {
  const RegistryOptions defaults;
  return open(dir, defaults);
}

const fs::path& Registry::dir() const noexcept { return impl_->dir; }


Result<std::int64_t> Registry::publish(const fs::path& bundle_dir, std::string_view actor, std::string_view note) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  VerifyOptions verify;
  verify.progress = impl_->options.progress;
  verify.limits = impl_->options.limits;
  auto manifest = verify_bundle(bundle_dir, verify);
  if (!manifest.ok()) return manifest.status();
  for (const auto& sig : manifest->signatures) {
    EMBER_RETURN_IF_ERROR(verify_signature(manifest->digest, sig).with_context("bundle '" + bundle_dir.string() + "'"));
  }
  auto text = detail::read_text_file(bundle_dir / "manifest.json", "bundle manifest", impl_->options.limits.max_manifest_bytes);
  if (!text.ok()) return text.status();
  auto reread = parse_manifest(*text, impl_->options.limits);
  if (!reread.ok() || reread->digest != manifest->digest) {
    return data_loss("bundle '" + bundle_dir.string() + "': manifest.json changed while it was published");
  }

  // Blobs first, under the shared lock (gc waits); then one transaction references them.
  auto lock = detail::RegistryLock::take(impl_->dir, false);
  if (!lock.ok()) return lock.status();
  std::uint64_t total = 0;
  for (const auto& f : manifest->files) total += f.size;
  detail::ProgressCounter progress(impl_->options.progress, total);
  for (const auto& f : manifest->files) {
    EMBER_RETURN_IF_ERROR(detail::store_blob(*impl_, bundle_dir / f.path, f, progress));
  }

  std::lock_guard<std::mutex> guard(impl_->mu);
  auto& db = impl_->db;
  detail::WriteTxn txn(db);
  EMBER_RETURN_IF_ERROR(txn.begin());
  // The version number is allocated inside the write transaction: no two publishers,
  // in any process, can read the same last_version.
  auto up = db.prepare(
      "INSERT INTO models(name, last_version) VALUES(?, 1) "
      "ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1 RETURNING last_version");
  if (!up.ok()) return up.status();
  up->bind(1, manifest->name);
  auto row = up->step();
  if (!row.ok()) return row.status();
  if (!*row) return internal_error("version allocation returned nothing");
  const std::int64_t version = up->int64(0);
  up->reset();
  auto ins = db.prepare(
      "INSERT INTO versions(name, version, digest, manifest, publisher, note, created_us, file_count) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.status();
  ins->bind(1, manifest->name).bind(2, version).bind(3, manifest->digest).bind(4, *text).bind(5, actor).bind(6, note)
      .bind(7, impl_->now_us()).bind(8, static_cast<std::int64_t>(manifest->files.size()));
  EMBER_RETURN_IF_ERROR(ins->run());
  auto id = impl_->version_id(manifest->name, version);
  if (!id.ok()) return id.status();
  auto file = db.prepare("INSERT INTO files VALUES(?, ?, ?, ?, ?)");
  if (!file.ok()) return file.status();
  for (const auto& f : manifest->files) {
    file->bind(1, *id).bind(2, f.path).bind(3, f.role).bind(4, static_cast<std::int64_t>(f.size)).bind(5, f.sha256);
    EMBER_RETURN_IF_ERROR(file->run());
  }
  auto sig = db.prepare("INSERT OR REPLACE INTO signatures VALUES(?, ?, ?, ?)");
  if (!sig.ok()) return sig.status();
  for (const auto& s : manifest->signatures) {
    sig->bind(1, *id).bind(2, s.key_id).bind(3, s.public_key).bind(4, s.signature);
    EMBER_RETURN_IF_ERROR(sig->run());
  }
  EMBER_RETURN_IF_ERROR(impl_->audit_append(
      actor, "publish", detail::subject(manifest->name, version),
      detail::detail_json({{"digest", manifest->digest}, {"note", std::string(note)},
                           {"files", std::to_string(manifest->files.size())}})));
  EMBER_RETURN_IF_ERROR(txn.commit());
  return version;
}


Result<ResolvedBundle> Registry::resolve(std::string_view ref_text) {
  auto ref = parse_model_ref(ref_text);
  if (!ref.ok()) return ref.status();
  std::int64_t version = 0;
  std::string digest;
  std::string text;
  {
    std::lock_guard<std::mutex> guard(impl_->mu);
    auto v = impl_->version_of(*ref);
    if (!v.ok()) return v.status();
    version = *v;
    auto st = impl_->cached("SELECT digest, manifest FROM versions WHERE name = ? AND version = ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, ref->name).bind(2, version);
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) return not_found("model version " + detail::subject(ref->name, version) + " does not exist");
    digest = (*st)->text(0);
    const auto it = impl_->verified.find(std::make_pair(ref->name, version));
    if (it != impl_->verified.end()) {
      if (!impl_->options.rehash_every_resolve && it->second.digest == digest && detail::unchanged(it->second.stamps)) {
        ResolvedBundle out = it->second.bundle;
        out.hashed = false;
        return out;
      }
      impl_->verified.erase(it);
    }
    text = (*st)->text(1);
  }
  const auto key = std::make_pair(ref->name, version);

  auto manifest = parse_manifest(text, impl_->options.limits);
  if (!manifest.ok()) return data_loss("stored manifest of " + detail::subject(ref->name, version) + ": " + manifest.status().message());
  const std::string subj = detail::subject(ref->name, version);
  if (manifest->digest != digest) {
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->audit_now("ember", "verify_failed", subj, detail::detail_json({{"reason", "stored manifest digest"}}));
    return data_loss(subj + ": the stored manifest does not match its recorded digest");
  }
  Result<fs::path> where = internal_error("unset");
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    where = impl_->checkout_dir(ref->name, version, digest);
  }
  if (!where.ok()) return where.status();
  const fs::path target = *where;
  {
    auto lock = detail::RegistryLock::take(impl_->dir, false);
    if (!lock.ok()) return lock.status();
    const Status made = detail::materialize(*impl_, target, text, *manifest);
    if (!made.ok()) {
      if (made.code() == StatusCode::kPermissionDenied || made.code() == StatusCode::kDataLoss) {
        std::lock_guard<std::mutex> g(impl_->mu);
        impl_->audit_now("ember", "verify_failed", subj, detail::detail_json({{"reason", made.message()}}));
      }
      return made.with_context(subj);
    }
  }
  VerifyOptions verify;
  verify.progress = impl_->options.progress;
  verify.limits = impl_->options.limits;
  auto checked = verify_bundle(target, verify);
  if (!checked.ok() || checked->digest != digest) {
    const Status why = checked.ok() ? data_loss("the checkout's manifest was changed") : checked.status();
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->audit_now("ember", "verify_failed", subj, detail::detail_json({{"reason", why.message()}}));
    return data_loss(subj + " failed verification and will not load: " + why.message());
  }
  Impl::Verified v;
  v.digest = digest;
  v.bundle = ResolvedBundle{ref->name, version, target, std::move(*checked), true};
  for (const auto& f : v.bundle.manifest.files) {
    auto s = detail::stamp(target / f.path);
    if (!s.ok()) return s.status();
    v.stamps.push_back(std::move(*s));
  }
  auto ms = detail::stamp(target / "manifest.json");
  if (!ms.ok()) return ms.status();
  v.stamps.push_back(std::move(*ms));
  ResolvedBundle out = v.bundle;
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->verified[key] = std::move(v);
  return out;
}

Result<std::unique_ptr<Model>> Registry::load_model(std::string_view ref, const ModelOptions& options) {
  std::unique_lock<std::mutex> loading(impl_->load_mu, std::defer_lock);
  if (impl_->encrypted) loading.lock();
  auto resolved = resolve(ref);
  if (!resolved.ok()) return resolved.status();
  ModelOptions o = options;
  if (o.name.empty()) o.name = resolved->name;
  if (o.version.empty()) o.version = std::to_string(resolved->version);
  o.verify_bundle = false;  // resolve() has just verified it (hashed, or unchanged since hashed)
  auto model = Model::load(resolved->dir, o);
  if (impl_->encrypted) {
    // The model is in memory: its decrypted files leave the disk now.
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->verified.erase(std::make_pair(resolved->name, resolved->version));
    std::error_code ec;
    fs::remove_all(resolved->dir, ec);
  }
  return model;
}

Result<std::unique_ptr<Model>> Registry::load_model(std::string_view ref) {
  const ModelOptions defaults;
  return load_model(ref, defaults);
}

}  // namespace ember
