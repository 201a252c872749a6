#pragma once

// Hashing, hex, and durable file writes for bundles and the registry.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "ember/bundle.hpp"
#include "ember/status.hpp"

namespace ember::detail {

std::string to_hex(const unsigned char* bytes, std::size_t n);
/// Exactly 2n hex digits into n bytes; false otherwise.
bool from_hex(std::string_view hex, unsigned char* out, std::size_t n);
bool is_sha256_hex(std::string_view s);
std::string key_id(std::string_view public_key_hex);
std::string random_hex(std::size_t bytes);

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  Result<std::string> finish();

 private:
  void* ctx_;
};

/// An owned file descriptor.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
};

/// Reports bytes done to a Progress, at most every 8 MiB and at the end.
class ProgressCounter {
 public:
  ProgressCounter(const Progress& progress, std::uint64_t total) : progress_(progress), total_(total) {}
  void add(std::uint64_t n) {
    done_ += n;
    if (progress_ && (done_ - reported_ >= (std::uint64_t{8} << 20) || done_ == total_)) {
      reported_ = done_;
      progress_(done_, total_);
    }
  }

 private:
  const Progress& progress_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::uint64_t reported_ = 0;
};

Status read_fully(int fd, char* buf, std::size_t want, std::size_t& got);
Status write_fully(int fd, const char* buf, std::size_t n);

/// SHA-256 of `from` (which must be `expected_size` bytes: DataLoss otherwise), copied
/// to `to` (created exclusively, then fsynced) when `to` is not null.
Result<std::string> hash_and_copy(const std::filesystem::path& from, const std::filesystem::path* to,
                                  std::uint64_t expected_size, ProgressCounter& progress);

/// Encrypted blobs: "EMBERGCM1\n", a 12-byte random nonce, the AES-256-GCM ciphertext,
/// and the 16-byte tag. `aad` (the plaintext's SHA-256) is authenticated with it, so a
/// blob cannot be passed off under another name.
constexpr std::size_t kEncryptedOverhead = 10 + 12 + 16;

/// Encrypts `from` (`expected_size` bytes) into `to` (created exclusively, fsynced);
/// returns the plaintext's SHA-256.
Result<std::string> encrypt_copy(const std::filesystem::path& from, const std::filesystem::path& to,
                                 const unsigned char* key, std::string_view aad, std::uint64_t expected_size,
                                 ProgressCounter& progress);
/// Decrypts blob `from` into `to` (or nowhere when null) and returns the plaintext's
/// SHA-256. PermissionDenied when the key is wrong or the blob was altered (the tag
/// does not match); `to` is removed then.
Result<std::string> decrypt_copy(const std::filesystem::path& from, const std::filesystem::path* to,
                                 const unsigned char* key, std::string_view aad, ProgressCounter& progress);

Status fsync_dir(const std::filesystem::path& dir);
/// Writes a temporary file beside `path`, fsyncs it, renames it over `path`, fsyncs the
/// directory: readers see the old text or the new, never a part.
Status write_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace ember::detail
