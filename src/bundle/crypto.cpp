// SHA-256, Ed25519 and hex through OpenSSL's libcrypto (linked privately).
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/crypto.hpp"
#include "ember/bundle.hpp"

namespace ember {
namespace detail {

namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  std::string out(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

bool from_hex(std::string_view hex, unsigned char* out, std::size_t n) {
  if (hex.size() != 2 * n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ != nullptr && EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    ctx_ = nullptr;
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, std::size_t n) {
  if (ctx_ != nullptr && EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    ctx_ = nullptr;
  }
}

Result<std::string> Sha256::finish() {
  if (ctx_ == nullptr) return resource_exhausted("SHA-256: OpenSSL could not set up a digest");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const int rc = EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
  ctx_ = nullptr;
  if (rc != 1 || len != 32) return internal_error("SHA-256: OpenSSL failed to finish the digest");
  return to_hex(md, len);
}

Fd::~Fd() {
  if (fd >= 0) ::close(fd);
}

Status read_fully(int fd, char* buf, std::size_t want, std::size_t& got) {
  got = 0;
  while (got < want) {
    const ssize_t n = ::read(fd, buf + got, want - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return data_loss(std::string("read failed: ") + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return {};
}

Status write_fully(int fd, const char* buf, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd, buf + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return data_loss(std::string("write failed: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(w);
  }
  return {};
}

Result<std::string> hash_and_copy(const std::filesystem::path& from, const std::filesystem::path* to,
                                  std::uint64_t expected_size, ProgressCounter& progress) {
  Fd in{::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (in.fd < 0) {
    if (errno == ENOENT) return not_found("'" + from.string() + "' does not exist");
    return data_loss("'" + from.string() + "' cannot be opened: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return data_loss("'" + from.string() + "' is not a regular file");
  }
  Fd out;
  if (to != nullptr) {
    out.fd = ::open(to->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out.fd < 0) return data_loss("'" + to->string() + "' cannot be created: " + std::strerror(errno));
  }
  Sha256 sha;
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::unique_ptr<char[]> buf(new (std::nothrow) char[kBlock]);
  if (!buf) return resource_exhausted("no memory for a read buffer");
  std::uint64_t total = 0;
  for (;;) {
    std::size_t got = 0;
    EMBER_RETURN_IF_ERROR(read_fully(in.fd, buf.get(), kBlock, got).with_context(from.string()));
    if (got == 0) break;
    total += got;
    if (total > expected_size) break;  // grew while read, or bigger than said: the caller reports it
    sha.update(buf.get(), got);
    if (to != nullptr) EMBER_RETURN_IF_ERROR(write_fully(out.fd, buf.get(), got).with_context(to->string()));
    progress.add(got);
    if (got < kBlock) break;
  }
  if (total != expected_size) {
    return data_loss("'" + from.string() + "' is " + std::to_string(total) + " bytes where " +
                     std::to_string(expected_size) + " were expected");
  }
  if (to != nullptr) {
    if (::fsync(out.fd) != 0) return data_loss("'" + to->string() + "': fsync failed: " + std::strerror(errno));
  }
  return sha.finish();
}

Status fsync_dir(const std::filesystem::path& dir) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return data_loss("'" + dir.string() + "' cannot be opened: " + std::strerror(errno));
  if (::fsync(d.fd) != 0) return data_loss("'" + dir.string() + "': fsync failed: " + std::strerror(errno));
  return {};
}

Status write_file_atomically(const std::filesystem::path& path, std::string_view text) {
  std::array<unsigned char, 8> r{};
  if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) return internal_error("no random bytes");
  const std::filesystem::path tmp = path.parent_path() / ("." + path.filename().string() + "." + to_hex(r.data(), r.size()) + ".tmp");
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
    if (f.fd < 0) return data_loss("'" + tmp.string() + "' cannot be created: " + std::strerror(errno));
    Status s = write_fully(f.fd, text.data(), text.size());
    if (s.ok() && ::fsync(f.fd) != 0) s = data_loss(std::string("fsync failed: ") + std::strerror(errno));
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s.with_context(tmp.string());
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return data_loss("'" + path.string() + "' cannot be replaced: " + std::strerror(err));
  }
  return fsync_dir(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> r(bytes);
  if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) {
    // Never expected; fall back to something unique within this process.
    static_assert(sizeof(void*) <= 8);
    const auto t = static_cast<unsigned long long>(::getpid()) ^ reinterpret_cast<std::uintptr_t>(&r);
    std::memcpy(r.data(), &t, std::min(bytes, sizeof t));
  }
  return to_hex(r.data(), r.size());
}

}  // namespace detail

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[32];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != 32) return {};
  return detail::to_hex(md, 32);
}

Result<std::string> sha256_file(const std::filesystem::path& path, const Progress& progress) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return not_found("'" + path.string() + "' cannot be read: " + ec.message());
  detail::ProgressCounter counter(progress, size);
  return detail::hash_and_copy(path, nullptr, size, counter);
}

std::string sha256_implementation() {
  // OpenSSL picks SHA-NI, AVX2 or plain code at run time; report what the CPU offers.
  std::string cpu = "generic";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  unsigned int eax = 7, ebx = 0, ecx = 0, edx = 0;
  __asm__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  if ((ebx >> 29) & 1u) cpu = "SHA-NI";
  else if (__builtin_cpu_supports("avx2")) cpu = "AVX2";
#elif defined(__aarch64__)
  cpu = "ARMv8 crypto when present";
#endif
  return std::string(OpenSSL_version(OPENSSL_VERSION)) + " (" + cpu + ")";
}

namespace {

Result<detail::Pkey> private_key(const std::string& secret_hex) {
  unsigned char seed[32];
  if (!detail::from_hex(secret_hex, seed, 32)) return invalid_argument("an Ed25519 secret is 64 hex digits");
  detail::Pkey k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, 32));
  OPENSSL_cleanse(seed, sizeof seed);
  if (!k) return internal_error("OpenSSL could not build an Ed25519 key");
  return k;
}

Result<SigningKey> describe(EVP_PKEY* k) {
  unsigned char pub[32];
  unsigned char priv[32];
  std::size_t n = 32;
  std::size_t m = 32;
  if (EVP_PKEY_get_raw_public_key(k, pub, &n) != 1 || n != 32 ||
      EVP_PKEY_get_raw_private_key(k, priv, &m) != 1 || m != 32) {
    return internal_error("OpenSSL could not export an Ed25519 key");
  }
  SigningKey key;
  key.secret = detail::to_hex(priv, 32);
  OPENSSL_cleanse(priv, sizeof priv);
  key.public_key = detail::to_hex(pub, 32);
  key.key_id = detail::key_id(key.public_key);
  return key;
}

}  // namespace

std::string detail::key_id(std::string_view public_key_hex) {
  unsigned char pub[32];
  if (!from_hex(public_key_hex, pub, 32)) return {};
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(pub), 32)).substr(0, 16);
}

Result<SigningKey> generate_signing_key() {
  std::unique_ptr<EVP_PKEY_CTX, detail::PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return internal_error("OpenSSL could not generate an Ed25519 key");
  }
  detail::Pkey k(raw);
  return describe(k.get());
}

Result<SigningKey> signing_key_from_secret(std::string_view secret_hex) {
  std::string s(secret_hex);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  auto k = private_key(s);
  OPENSSL_cleanse(s.data(), s.size());
  if (!k.ok()) return k.status();
  return describe(k->get());
}

Result<BundleSignature> sign_digest(std::string_view digest_hex, const SigningKey& key) {
  unsigned char digest[32];
  if (!detail::from_hex(digest_hex, digest, 32)) return invalid_argument("a manifest digest is 64 hex digits");
  auto k = private_key(key.secret);
  if (!k.ok()) return k.status();
  detail::MdCtx ctx(EVP_MD_CTX_new());
  unsigned char sig[64];
  std::size_t n = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k->get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &n, digest, sizeof digest) != 1 || n != 64) {
    return internal_error("OpenSSL could not sign with Ed25519");
  }
  auto described = describe(k->get());
  if (!described.ok()) return described.status();
  return BundleSignature{described->key_id, described->public_key, detail::to_hex(sig, 64)};
}

Status verify_signature(std::string_view digest_hex, const BundleSignature& signature) {
  unsigned char digest[32];
  unsigned char pub[32];
  unsigned char sig[64];
  if (!detail::from_hex(digest_hex, digest, 32)) return invalid_argument("a manifest digest is 64 hex digits");
  if (!detail::from_hex(signature.public_key, pub, 32)) {
    return invalid_argument("signature: public_key is not 64 hex digits");
  }
  if (!detail::from_hex(signature.signature, sig, 64)) {
    return invalid_argument("signature: signature is not 128 hex digits");
  }
  if (signature.key_id != detail::key_id(signature.public_key)) {
    return Status(StatusCode::kPermissionDenied,
                  "signature: key_id '" + signature.key_id + "' is not the id of its public key");
  }
  detail::Pkey k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub, 32));
  detail::MdCtx ctx(EVP_MD_CTX_new());
  if (!k || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1) {
    return internal_error("OpenSSL could not set up Ed25519 verification");
  }
  if (EVP_DigestVerify(ctx.get(), sig, 64, digest, 32) != 1) {
    return Status(StatusCode::kPermissionDenied,
                  "signature by key " + signature.key_id + " does not match manifest digest " + std::string(digest_hex));
  }
  return {};
}

}  // namespace ember
