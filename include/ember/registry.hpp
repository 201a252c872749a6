#pragma once

/// The model registry: versioned bundles under names, in one directory that several
/// processes may share.
///
///   DIR/registry.db         SQLite (WAL): names, versions, files, aliases and their
///                           history, approvals, signatures, tags, policy, audit log
///   DIR/blobs/sha256/ab/…   content-addressed files, read-only, shared by versions
///   DIR/checkouts/…         verified bundle directories that resolve() hands out (for an
///                           encrypted registry, a private temporary directory instead)
///
/// Every file is hashed before a Registry object first hands a version out, and its
/// size, inode and modification time are checked on every later resolve: a file that
/// does not match is DataLoss and the version does not load. Publishing, alias moves
/// and approvals are transactions; a process killed at any moment leaves every version
/// complete or absent. Version numbers are allocated inside the write transaction, so
/// concurrent publishers in several processes never get the same number.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/bundle.hpp"
#include "ember/export.hpp"
#include "ember/model.hpp"
#include "ember/status.hpp"

namespace ember {

/// "churn/3" (a version), "churn@production" (an alias), "churn@latest" (the highest
/// version not archived) or "churn" (the same as @latest).
struct ModelRef {
  std::string name;
  std::int64_t version = 0;  ///< > 0 for "name/N"
  std::string alias;         ///< for "name@alias"
};
/// InvalidArgument for anything else.
EMBER_API Result<ModelRef> parse_model_ref(std::string_view ref);

struct RegistryOptions {
  /// The clock events are stamped with (default: the system clock). Tests inject one.
  std::function<std::chrono::system_clock::time_point()> now;
  /// How long a write waits for another process's write transaction.
  std::chrono::milliseconds busy_timeout{60000};
  /// Called while files are hashed or copied (publish, first resolve, export, check).
  Progress progress;
  BundleLimits limits;
  /// Hash every file on every resolve, not only the first in this Registry object (later
  /// ones otherwise check each file's inode, size and modification time).
  bool rehash_every_resolve = false;
  /// 64 hex digits (a 256-bit key the host keeps). A registry made by init() with a key
  /// stores every file encrypted (AES-256-GCM) and opens only with the same key
  /// (PermissionDenied for another, FailedPrecondition for none). Its versions are
  /// decrypted into a private directory (mode 0700) that the Registry removes when it
  /// is destroyed, and load_model() removes a version's files as soon as it is loaded.
  std::string encryption_key;
};

struct Approval {
  std::string actor;
  std::string note;
  std::int64_t at_us = 0;  ///< microseconds since the Unix epoch, UTC
};

struct VersionInfo {
  std::string name;
  std::int64_t version = 0;
  std::string digest;  ///< the manifest's
  std::string publisher;
  std::string note;
  std::int64_t created_us = 0;
  bool archived = false;
  std::uint64_t bytes = 0;
  std::vector<BundleFile> files;
  std::vector<std::string> aliases;
  std::vector<Approval> approvals;
  std::vector<std::string> signed_by;  ///< key ids of verified signatures
  std::map<std::string, std::string> tags;
};

/// One move of an alias. `from` / `to` are 0 when the alias was unset.
struct AliasEvent {
  std::string name;
  std::string alias;
  std::int64_t from = 0;
  std::int64_t to = 0;
  std::string actor;
  std::string reason;
  std::string kind;  ///< "set", "rollback" or "delete"
  std::int64_t at_us = 0;
};

/// A version ready to load: `dir` is a bundle directory that was verified.
struct ResolvedBundle {
  std::string name;
  std::int64_t version = 0;
  std::filesystem::path dir;
  Manifest manifest;
  bool hashed = false;  ///< true when this call hashed the files; false when it reused a check
};

struct AuditEntry {
  std::int64_t seq = 0;
  std::int64_t at_us = 0;
  std::string actor;
  std::string event;    ///< publish, alias, rollback, approve, sign, tag, archive, delete, gc, verify_failed, ...
  std::string subject;  ///< e.g. "churn/3" or "churn@production"
  std::string detail;   ///< JSON object
  std::string hash;
};

/// A rollout of a candidate version onto name@alias, as the registry keeps it: a
/// process that restarts mid-rollout resumes it from here, and `ember rollout` commands
/// act on it from any process.
struct RolloutRecord {
  std::int64_t id = 0;
  std::string name;
  std::string alias;              ///< the alias the candidate takes over when promoted
  std::int64_t control = 0;       ///< the version the alias held when the rollout started
  std::int64_t candidate = 0;     ///< the version rolled out
  std::string plan;               ///< the plan's JSON (rollout_plan_to_json)
  std::string state;              ///< "running", "paused", "promoted" or "aborted"
  std::int64_t step = 0;          ///< index into the plan's steps
  std::int64_t step_started_us = 0;  ///< when the step (re)started, microseconds since the epoch
  std::string reason;             ///< why the last change of state or step happened
  std::string status = "{}";      ///< the controller's last analysis (rollout_status_to_json)
  std::string actor;              ///< who started it
  std::int64_t started_us = 0;
  std::int64_t updated_us = 0;
  /// Counts every change of state or step: a controller that acted on revision r sees a
  /// host's command as a higher one.
  std::int64_t revision = 0;
  [[nodiscard]] bool active() const noexcept { return state == "running" || state == "paused"; }
};

/// What a host (or a controller's analysis) decides about a rollout.
enum class RolloutCommand : std::uint8_t {
  kPause,    ///< running -> paused; the weight stays
  kResume,   ///< paused -> running; the step starts over
  kAbort,    ///< running or paused -> aborted (the alias stays on, or goes back to, the
             ///< control); promoted -> aborted moves the alias back to the control
  kPromote,  ///< running or paused -> promoted: the alias moves to the candidate (policy applies)
};

struct CheckReport {
  std::vector<std::string> problems;  ///< empty when consistent
  std::size_t versions = 0;
  std::size_t blobs = 0;
  std::size_t audit_entries = 0;
  std::size_t leftover_temporary_files = 0;  ///< from interrupted writes; gc removes them
  [[nodiscard]] bool ok() const noexcept { return problems.empty(); }
};

struct GcReport {
  std::size_t blobs_removed = 0;
  std::uint64_t bytes_removed = 0;
  std::size_t checkouts_removed = 0;
  std::size_t temporary_removed = 0;
};

/// A registry directory. Methods may be called from several threads (they take turns
/// on one database connection) and several processes may open the same directory.
/// Actors and notes are free text naming who did what; they go into the audit log.
class EMBER_API Registry {
 public:
  /// Creates a registry in `dir` (created when absent; AlreadyExists when it holds one).
  static Result<std::unique_ptr<Registry>> init(const std::filesystem::path& dir, const RegistryOptions& options);
  static Result<std::unique_ptr<Registry>> init(const std::filesystem::path& dir);
  /// Opens an existing registry: NotFound when `dir` holds none, DataLoss when its
  /// database is damaged, FailedPrecondition for a newer format.
  static Result<std::unique_ptr<Registry>> open(const std::filesystem::path& dir, const RegistryOptions& options);
  static Result<std::unique_ptr<Registry>> open(const std::filesystem::path& dir);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  [[nodiscard]] const std::filesystem::path& dir() const noexcept;

  /// Verifies the bundle (every file hashed, signatures checked), stores its files and
  /// gives it the next version of its name (1 for a new name). Returns the version.
  Result<std::int64_t> publish(const std::filesystem::path& bundle_dir, std::string_view actor,
                               std::string_view note);

  /// The bundle a reference names, verified. NotFound for an unknown name, version or
  /// alias; DataLoss when a file does not match its SHA-256 (recorded in the audit log).
  Result<ResolvedBundle> resolve(std::string_view ref);
  /// resolve() then Model::load, with the name and version filled in.
  Result<std::unique_ptr<Model>> load_model(std::string_view ref, const ModelOptions& options);
  Result<std::unique_ptr<Model>> load_model(std::string_view ref);

  /// `expected` for set_alias: the version the caller believes the alias holds now.
  static constexpr std::int64_t kUnset = 0;        ///< the alias must not exist yet
  static constexpr std::int64_t kAnyVersion = -1;  ///< no check
  /// Points name@alias at `version` if it holds `expected` (Aborted otherwise, naming
  /// what it holds). PermissionDenied, naming the rule, when the alias is protected and
  /// the version lacks approvals or a trusted signature; FailedPrecondition for an
  /// archived version; InvalidArgument for "latest" or a malformed alias.
  Result<AliasEvent> set_alias(std::string_view name, std::string_view alias, std::int64_t version,
                               std::int64_t expected, std::string_view actor, std::string_view reason);
  /// Moves name@alias back to the version it held before its current target was set
  /// (repeated calls walk further back). FailedPrecondition when there is none.
  Result<AliasEvent> rollback(std::string_view name, std::string_view alias, std::string_view actor,
                              std::string_view reason);
  /// Removes name@alias (its history stays).
  Result<AliasEvent> delete_alias(std::string_view name, std::string_view alias, std::string_view actor,
                                  std::string_view reason);
  /// Every move of name@alias, oldest first (every alias of `name` when `alias` is empty).
  Result<std::vector<AliasEvent>> alias_history(std::string_view name, std::string_view alias);
  /// The version name@alias pointed to at time `at` (0: unset then).
  Result<std::int64_t> alias_at(std::string_view name, std::string_view alias,
                                std::chrono::system_clock::time_point at);

  /// Records an approval of name/version by `actor` (once per actor).
  Status approve(std::string_view name, std::int64_t version, std::string_view actor, std::string_view note);
  /// Records a signature of name/version's manifest digest; it must verify.
  Status add_signature(std::string_view name, std::int64_t version, const BundleSignature& signature,
                       std::string_view actor);
  /// Adds a trusted Ed25519 public key (64 hex digits). Once any key is trusted, a
  /// protected alias needs a signature by one of them.
  Status trust_key(std::string_view public_key_hex, std::string_view actor);
  /// Protects `alias` (for every name): it may only point at a version approved by at
  /// least `approvals` actors other than its publisher (and signed, see trust_key).
  /// approvals < 0 removes the protection.
  Status protect_alias(std::string_view alias, int approvals, std::string_view actor);
  /// The protected aliases and the approvals each needs.
  Result<std::map<std::string, int>> protected_aliases();
  Result<std::vector<std::string>> trusted_keys();

  /// Sets a tag on name/version (an empty value removes it).
  Status tag(std::string_view name, std::int64_t version, std::string_view key, std::string_view value,
             std::string_view actor);
  /// Versions whose name contains `name_contains` and that carry every tag in `tags`
  /// ("key=value"), oldest first; archived ones too when `include_archived`.
  Result<std::vector<VersionInfo>> list(std::string_view name_contains, const std::vector<std::string>& tags,
                                        bool include_archived);
  Result<VersionInfo> show(std::string_view ref);
  /// An archived version is not @latest and cannot be aliased; it can still be resolved
  /// by number. `archived` false restores it.
  Status archive(std::string_view name, std::int64_t version, bool archived, std::string_view actor);
  /// Deletes a version's record (FailedPrecondition while an alias points at it); gc
  /// then frees its files.
  Status remove(std::string_view name, std::int64_t version, std::string_view actor);

  /// Appends an event of the host's (or a Deployment's) to the audit log: `detail` is a
  /// JSON object ("{}" when empty). InvalidArgument for an empty event or actor, or a
  /// detail that is not a JSON object.
  Status record_event(std::string_view actor, std::string_view event, std::string_view subject,
                      std::string_view detail);

  /// Starts rolling name/`candidate` out onto name@alias under `plan_json` (a rollout
  /// plan, validated). The alias must be set (its version is the control) and may not be
  /// the candidate; InvalidArgument for a bad plan, FailedPrecondition while another
  /// rollout of name@alias is running or paused, PermissionDenied when the alias is
  /// protected and the candidate could never be promoted. Audited ("rollout_start").
  Result<RolloutRecord> start_rollout(std::string_view name, std::string_view alias, std::int64_t candidate,
                                      std::string_view plan_json, std::string_view actor, std::string_view reason);
  /// The latest rollout of name@alias (NotFound when there was none).
  Result<RolloutRecord> rollout(std::string_view name, std::string_view alias);
  /// Every rollout of `name` (every name when empty), oldest first.
  Result<std::vector<RolloutRecord>> rollouts(std::string_view name);
  /// Applies a command to the latest rollout of name@alias, in one transaction with the
  /// alias move it implies; audited ("rollout_pause", "rollout_resume", "rollout_abort",
  /// "rollout_promote"). FailedPrecondition when the state does not allow it; Aborted
  /// when `expected_revision` (unless kAnyVersion) is not the rollout's revision.
  /// `status_json`, when not empty, replaces the saved analysis.
  Result<RolloutRecord> command_rollout(std::string_view name, std::string_view alias, RolloutCommand command,
                                        std::string_view actor, std::string_view reason,
                                        std::int64_t expected_revision = kAnyVersion, std::string_view status_json = {});
  /// A controller's step change: the running rollout `id` moves to `step` (greater than
  /// its step). Aborted when `expected_revision` is not its revision; FailedPrecondition
  /// when it is not running. Audited ("rollout_step").
  Result<RolloutRecord> advance_rollout(std::int64_t id, std::int64_t step, std::int64_t expected_revision,
                                        std::string_view status_json, std::string_view actor, std::string_view reason);
  /// Saves a controller's analysis of rollout `id` (no revision, no audit entry).
  Status save_rollout_status(std::int64_t id, std::string_view status_json);

  /// The audit log, oldest first.
  Result<std::vector<AuditEntry>> audit();
  /// DataLoss naming the first entry that was edited, removed or reordered.
  Status verify_audit();

  /// Checks consistency: the database's integrity, every version complete (its manifest's
  /// files all recorded and their blobs present, of the right size; and their SHA-256
  /// when `deep`), every alias on an existing version, the audit chain intact.
  Result<CheckReport> check(bool deep);
  /// Removes blobs no version references, checkouts of deleted versions and files left
  /// by interrupted writes. Waits for publishers and first resolves in progress (in any
  /// process), and never removes what a checkout in use needs.
  Result<GcReport> gc(std::string_view actor);
  /// Writes name/version as a bundle directory at `out` (not existing or empty): the
  /// same manifest, so the same digest and signatures.
  Result<Manifest> export_bundle(std::string_view ref, const std::filesystem::path& out);

  struct Impl;

 private:
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
