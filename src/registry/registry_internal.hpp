#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ember/registry.hpp"
#include "bundle/crypto.hpp"
#include "registry/sqlite.hpp"

namespace ember {

/// What a checkout's file looked like when it was hashed: a later resolve that finds
/// the same inode, size and modification time trusts it without hashing again. (Not the
/// change time: checkouts share inodes with the blob store, and every new link to a
/// blob changes it.)
struct FileStamp {
  std::filesystem::path path;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

struct Registry::Impl {
  ~Impl();
  std::filesystem::path dir;
  bool encrypted = false;
  std::array<unsigned char, 32> key{};
  std::filesystem::path private_checkouts;  // encrypted registries: plaintext lives here only
  RegistryOptions options;
  std::mutex mu;       // one connection; callers take turns
  std::mutex load_mu;  // encrypted registries: one load_model at a time (each removes its files)
  detail::Db db;
  struct Verified {
    std::string digest;
    ResolvedBundle bundle;
    std::vector<FileStamp> stamps;
  };
  std::map<std::pair<std::string, std::int64_t>, Verified, std::less<>> verified;

  std::map<std::string, detail::Stmt, std::less<>> statements;

  /// A prepared statement kept for the registry's life (preparing costs more than a
  /// cached resolve); reset when the returned handle goes. Hold `mu`.
  Result<detail::StmtRef> cached(std::string_view sql);
  std::int64_t now_us() const;
  /// Appends an event to the audit log; call inside a write transaction.
  Status audit_append(std::string_view actor, std::string_view event, std::string_view subject,
                      std::string_view detail_json);
  /// The row id of name/version: NotFound naming it.
  Result<std::int64_t> version_id(std::string_view name, std::int64_t version);
  /// The version a reference names now.
  Result<std::int64_t> version_of(const ModelRef& ref);
  /// Records an audit event in its own transaction (for events outside one, such as a
  /// failed verification).
  /// Runs `body` (returning a Status or a Result) in a write transaction, holding `mu`,
  /// and commits when it succeeds; otherwise everything it wrote is rolled back.
  template <typename F>
  auto write(F&& body) -> decltype(body()) {
    std::lock_guard<std::mutex> guard(mu);
    detail::WriteTxn txn(db);
    EMBER_RETURN_IF_ERROR(txn.begin());
    auto result = body();
    if (!result.ok()) return result;
    EMBER_RETURN_IF_ERROR(txn.commit());
    return result;
  }
  /// Where name/version's verified files go.
  Result<std::filesystem::path> checkout_dir(std::string_view name, std::int64_t version, std::string_view digest);
  /// The size a file's blob has on disk.
  std::uint64_t blob_size(std::uint64_t size) const;
  void audit_now(std::string_view actor, std::string_view event, std::string_view subject,
                 std::string_view detail_json);
};

namespace detail {

/// An advisory lock on DIR/lock (flock): publishers and first resolves hold it shared
/// while they add blobs or links, gc holds it exclusive. The kernel drops it when the
/// process dies, so a killed process never leaves the registry locked.
class RegistryLock {
 public:
  static Result<RegistryLock> take(const std::filesystem::path& registry_dir, bool exclusive);
  RegistryLock(RegistryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RegistryLock& operator=(RegistryLock&&) = delete;
  ~RegistryLock();

 private:
  explicit RegistryLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

std::filesystem::path blob_path(const std::filesystem::path& registry_dir, std::string_view sha256);
std::string subject(std::string_view name, std::int64_t version);
/// Audit detail: a JSON object of string fields.
std::string detail_json(std::initializer_list<std::pair<std::string_view, std::string>> fields);
Status check_actor(std::string_view actor);
Status check_alias_name(std::string_view alias);
/// Adds a bundle file to the blob store (encrypted when the registry is) unless a blob
/// of its hash and size is there already. The copy is hashed as it is written: a file
/// that changed since it was verified is refused, never stored under the wrong name.
Status store_blob(const Registry::Impl& impl, const std::filesystem::path& from, const BundleFile& f,
                  ProgressCounter& progress);
/// Builds a checkout at `target` from the blobs (hard links, copies where links are not
/// possible, decrypted files for an encrypted registry), in a temporary directory renamed
/// into place. Nothing to do when `target` exists.
Status materialize(const Registry::Impl& impl, const std::filesystem::path& target, const std::string& manifest_text,
                   const Manifest& manifest);
Result<FileStamp> stamp(const std::filesystem::path& path);
/// true when every file still has the inode, size and modification time it was stamped with.
bool unchanged(const std::vector<FileStamp>& stamps);

/// The version name@alias holds now (0 when unset).
Result<std::int64_t> alias_target(Db& db, std::string_view name, std::string_view alias);
/// PermissionDenied naming the rule when `alias` is protected and name/version does not
/// meet it. Inside the write transaction.
Status check_policy(Registry::Impl& impl, std::string_view name, std::string_view alias, std::int64_t version,
                    std::int64_t version_id);
/// Moves the alias inside an open write transaction and records history and audit
/// (`kind`: "set", "rollback" or "delete"; `to` 0 deletes it).
Result<AliasEvent> move_alias(Registry::Impl& impl, std::string_view name, std::string_view alias, std::int64_t from,
                              std::int64_t to, std::string_view actor, std::string_view reason, std::string_view kind);
/// The row id of name/version: NotFound when absent, FailedPrecondition when archived.
Result<std::int64_t> aliasable_version_id(Registry::Impl& impl, std::string_view name, std::int64_t version);

std::string audit_hash(std::string_view prev, std::int64_t seq, std::int64_t at_us, std::string_view actor,
                       std::string_view event, std::string_view subject, std::string_view detail);

}  // namespace detail
}  // namespace ember
