// AES-256-GCM for encrypted registries (OpenSSL's EVP interface), streamed in 1 MiB
// blocks so that files of any size go through a fixed buffer.
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/crypto.hpp"

namespace ember::detail {

namespace {

struct CipherDeleter {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
constexpr char kMagic[] = "EMBERGCM1\n";
constexpr std::size_t kMagicSize = 10;

}  // namespace

Result<std::string> encrypt_copy(const std::filesystem::path& from, const std::filesystem::path& to,
                                 const unsigned char* key, std::string_view aad, std::uint64_t expected_size,
                                 ProgressCounter& progress) {
  Fd in{::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (in.fd < 0) return data_loss("'" + from.string() + "' cannot be opened: " + std::strerror(errno));
  Fd out{::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
  if (out.fd < 0) return data_loss("'" + to.string() + "' cannot be created: " + std::strerror(errno));
  unsigned char nonce[12];
  if (RAND_bytes(nonce, sizeof nonce) != 1) return internal_error("no random bytes for a nonce");
  std::unique_ptr<EVP_CIPHER_CTX, CipherDeleter> ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return internal_error("OpenSSL could not set up AES-256-GCM");
  }
  EMBER_RETURN_IF_ERROR(write_fully(out.fd, kMagic, kMagicSize));
  EMBER_RETURN_IF_ERROR(write_fully(out.fd, reinterpret_cast<const char*>(nonce), sizeof nonce));
  Sha256 sha;
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::unique_ptr<unsigned char[]> buf(new (std::nothrow) unsigned char[kBlock]);
  std::unique_ptr<unsigned char[]> enc(new (std::nothrow) unsigned char[kBlock + 16]);
  if (!buf || !enc) return resource_exhausted("no memory for a cipher buffer");
  std::uint64_t total = 0;
  for (;;) {
    std::size_t got = 0;
    EMBER_RETURN_IF_ERROR(read_fully(in.fd, reinterpret_cast<char*>(buf.get()), kBlock, got));
    if (got == 0) break;
    total += got;
    if (total > expected_size) break;
    sha.update(buf.get(), got);
    if (EVP_EncryptUpdate(ctx.get(), enc.get(), &n, buf.get(), static_cast<int>(got)) != 1) {
      return internal_error("AES-256-GCM encryption failed");
    }
    EMBER_RETURN_IF_ERROR(write_fully(out.fd, reinterpret_cast<const char*>(enc.get()), static_cast<std::size_t>(n)));
    progress.add(got);
    if (got < kBlock) break;
  }
  if (total != expected_size) {
    return data_loss("'" + from.string() + "' is not the " + std::to_string(expected_size) + " bytes expected");
  }
  unsigned char tag[16];
  if (EVP_EncryptFinal_ex(ctx.get(), enc.get(), &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, sizeof tag, tag) != 1) {
    return internal_error("AES-256-GCM could not finish");
  }
  EMBER_RETURN_IF_ERROR(write_fully(out.fd, reinterpret_cast<const char*>(tag), sizeof tag));
  if (::fsync(out.fd) != 0) return data_loss("'" + to.string() + "': fsync failed: " + std::strerror(errno));
  return sha.finish();
}

Result<std::string> decrypt_copy(const std::filesystem::path& from, const std::filesystem::path* to,
                                 const unsigned char* key, std::string_view aad, ProgressCounter& progress) {
  Fd in{::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (in.fd < 0) return data_loss("'" + from.string() + "' cannot be opened: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) < kEncryptedOverhead) {
    return data_loss("'" + from.string() + "' is not an encrypted blob (too short)");
  }
  char head[kMagicSize];
  unsigned char nonce[12];
  std::size_t got = 0;
  EMBER_RETURN_IF_ERROR(read_fully(in.fd, head, kMagicSize, got));
  if (got != kMagicSize || std::memcmp(head, kMagic, kMagicSize) != 0) {
    return data_loss("'" + from.string() + "' is not an encrypted blob (no header)");
  }
  EMBER_RETURN_IF_ERROR(read_fully(in.fd, reinterpret_cast<char*>(nonce), sizeof nonce, got));
  std::uint64_t remaining = static_cast<std::uint64_t>(st.st_size) - kEncryptedOverhead;
  std::unique_ptr<EVP_CIPHER_CTX, CipherDeleter> ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return internal_error("OpenSSL could not set up AES-256-GCM");
  }
  Fd out;
  if (to != nullptr) {
    out.fd = ::open(to->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out.fd < 0) return data_loss("'" + to->string() + "' cannot be created: " + std::strerror(errno));
  }
  const auto fail = [&](Status s) {
    if (to != nullptr) ::unlink(to->c_str());
    return s;
  };
  Sha256 sha;
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::unique_ptr<unsigned char[]> buf(new (std::nothrow) unsigned char[kBlock]);
  std::unique_ptr<unsigned char[]> dec(new (std::nothrow) unsigned char[kBlock + 16]);
  if (!buf || !dec) return fail(resource_exhausted("no memory for a cipher buffer"));
  while (remaining > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kBlock));
    Status s = read_fully(in.fd, reinterpret_cast<char*>(buf.get()), want, got);
    if (!s.ok() || got != want) return fail(data_loss("'" + from.string() + "' could not be read whole"));
    remaining -= got;
    if (EVP_DecryptUpdate(ctx.get(), dec.get(), &n, buf.get(), static_cast<int>(got)) != 1) {
      return fail(internal_error("AES-256-GCM decryption failed"));
    }
    sha.update(dec.get(), static_cast<std::size_t>(n));
    if (to != nullptr) {
      s = write_fully(out.fd, reinterpret_cast<const char*>(dec.get()), static_cast<std::size_t>(n));
      if (!s.ok()) return fail(s);
    }
    progress.add(got);
  }
  unsigned char tag[16];
  EMBER_RETURN_IF_ERROR(read_fully(in.fd, reinterpret_cast<char*>(tag), sizeof tag, got));
  if (got != sizeof tag || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, sizeof tag, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), dec.get(), &n) != 1) {
    return fail(Status(StatusCode::kPermissionDenied,
                       "'" + from.filename().string() + "' does not decrypt: the key is wrong or the file was altered"));
  }
  return sha.finish();
}

}  // namespace ember::detail
