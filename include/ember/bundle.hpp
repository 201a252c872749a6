#pragma once

/// Bundles: a model directory plus manifest.json, which lists every file with its role,
/// size and SHA-256, the model's lineage (data, code, hyperparameters, environment,
/// parent, metrics) and Ed25519 signatures over the manifest's digest. A bundle is
/// what the registry stores and what Model::load verifies before it reads a byte.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

/// One file of a bundle. `path` is relative to the bundle, with '/' separators.
struct BundleFile {
  std::string path;
  /// schema, pipeline, model, chain, fallback, reference or extra.
  std::string role;
  std::uint64_t size = 0;
  std::string sha256;  ///< 64 lowercase hex digits
};

struct DataSource {
  std::string uri;
  std::string sha256;                 ///< may be empty
  std::optional<std::uint64_t> rows;  ///< may be unknown
};

struct CodeVersion {
  std::string commit;
  std::string repository;
  bool dirty = false;
};

/// Where a model came from. Everything is optional.
struct Lineage {
  std::vector<DataSource> data;
  CodeVersion code;
  /// A JSON object, as text ("{}" when none).
  std::string hyperparameters = "{}";
  /// Package versions and platform: python, torch, scikit-learn, numpy, ember, platform.
  std::map<std::string, std::string> environment;
  std::string parent_version;
  std::map<std::string, double> metrics;
};

/// An Ed25519 signature over a manifest's digest (the 32 bytes the hex digest spells).
struct BundleSignature {
  std::string key_id;      ///< first 16 hex digits of SHA-256(public key)
  std::string public_key;  ///< 64 hex digits (the raw 32-byte key)
  std::string signature;   ///< 128 hex digits
};

/// manifest.json: format "ember-bundle", format_version 1.
struct EMBER_API Manifest {
  std::string name;
  std::string description;
  std::string created_at;     ///< RFC 3339, UTC
  std::string ember_version;  ///< of the ember that wrote it
  std::vector<BundleFile> files;
  Lineage lineage;
  std::vector<BundleSignature> signatures;
  /// SHA-256 (hex) of the manifest's canonical JSON without "signatures": what a
  /// signature signs and what the registry records. Set by parse_manifest.
  std::string digest;

  /// The file with this role (the first one), or null.
  [[nodiscard]] const BundleFile* find_role(std::string_view role) const;
};

/// Limits on what a bundle may hold; a bundle beyond them is refused.
struct BundleLimits {
  std::uint64_t max_manifest_bytes = std::uint64_t{4} << 20;
  std::size_t max_files = 4096;
  std::size_t max_path_length = 512;
  std::uint64_t max_file_bytes = std::uint64_t{64} << 30;
};

/// Progress of long work (hashing, copying): bytes done of bytes in all. Called on the
/// caller's thread, at most every few megabytes; must not throw.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// Parses manifest.json's text and computes its digest. InvalidArgument naming the
/// field for anything malformed: wrong format or version, a missing or mistyped field,
/// a path that is absolute, holds '..', a backslash or repeats, a bad hex digest.
EMBER_API Result<Manifest> parse_manifest(std::string_view json, const BundleLimits& limits = {});
/// The manifest as JSON text (signatures included); parse_manifest reads it back.
EMBER_API std::string manifest_to_json(const Manifest& manifest);

/// Reads `dir`/manifest.json and checks that every listed file is present, inside the
/// bundle and of the listed size, that no other file is there, and (when `hash`) that
/// every file's SHA-256 matches. NotFound without a manifest, InvalidArgument for a
/// malformed one, DataLoss for a missing, resized, changed or unlisted file (naming it).
struct VerifyOptions {
  bool hash = true;
  Progress progress;
  BundleLimits limits;
};
EMBER_API Result<Manifest> verify_bundle(const std::filesystem::path& dir, const VerifyOptions& options);
EMBER_API Result<Manifest> verify_bundle(const std::filesystem::path& dir);

/// Turns a model directory (schema.json, pipeline.json, model.pt, chain.json, and any
/// other file, in subfolders too) into a bundle at `out`: files are copied, hashed and
/// given a role by name; manifest.json is written last, atomically. `out` must not
/// exist or be an empty directory (AlreadyExists otherwise). Symbolic links and special
/// files in `model_dir` are refused. Returns the manifest written.
struct BundleCreateOptions {
  std::string name;  ///< required: letters, digits, '.', '_', '-'; at most 128
  std::string description;
  Lineage lineage;
  Progress progress;
  BundleLimits limits;
};
EMBER_API Result<Manifest> create_bundle(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                         const BundleCreateOptions& options);

/// A model or bundle name is letters, digits, '.', '_' and '-', starting with a letter
/// or digit, at most 128 characters.
EMBER_API bool valid_model_name(std::string_view name);

// --- hashing and signing ---------------------------------------------------------

/// SHA-256 of bytes, as 64 lowercase hex digits.
EMBER_API std::string sha256_hex(std::string_view bytes);
/// SHA-256 of a file, read in 1 MiB blocks (OpenSSL's implementation, which uses the
/// CPU's SHA extensions where present). NotFound / DataLoss on a read error.
EMBER_API Result<std::string> sha256_file(const std::filesystem::path& path, const Progress& progress = {});
/// The SHA-256 implementation in use, e.g. "OpenSSL 3.0.19 (SHA-NI)".
EMBER_API std::string sha256_implementation();

/// A fresh Ed25519 key pair: `secret` is the 32-byte seed, in hex. Keep it private.
struct SigningKey {
  std::string secret;      ///< 64 hex digits
  std::string public_key;  ///< 64 hex digits
  std::string key_id;
};
EMBER_API Result<SigningKey> generate_signing_key();
/// The key pair of a secret (64 hex digits). InvalidArgument for a malformed one.
EMBER_API Result<SigningKey> signing_key_from_secret(std::string_view secret_hex);
/// Signs a manifest digest (64 hex digits).
EMBER_API Result<BundleSignature> sign_digest(std::string_view digest_hex, const SigningKey& key);
/// OK when `signature` is a valid signature of `digest_hex` by its public key and its
/// key_id matches that key; PermissionDenied otherwise; InvalidArgument when malformed.
EMBER_API Status verify_signature(std::string_view digest_hex, const BundleSignature& signature);
/// Adds a signature by `key` to `dir`/manifest.json (rewritten atomically; the digest
/// does not change). Verifies the bundle's files first.
EMBER_API Result<BundleSignature> sign_bundle(const std::filesystem::path& dir, const SigningKey& key);

}  // namespace ember
