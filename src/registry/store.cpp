// The file side of the registry: the lock gc and writers share, blobs, checkouts and
// the stamps that let a later resolve skip hashing; and small helpers the other files use.
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bundle/crypto.hpp"
#include "registry/registry_internal.hpp"

namespace ember {

namespace fs = std::filesystem;

namespace detail {

Result<RegistryLock> RegistryLock::take(const fs::path& registry_dir, bool exclusive) {
  const fs::path path = registry_dir / "lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return data_loss("'" + path.string() + "' cannot be opened: " + std::strerror(errno));
  while (::flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    return Status(StatusCode::kUnavailable, "'" + path.string() + "' cannot be locked: " + std::strerror(err));
  }
  return RegistryLock(fd);
}

RegistryLock::~RegistryLock() {
  if (fd_ >= 0) ::close(fd_);
}

fs::path blob_path(const fs::path& registry_dir, std::string_view sha256) {
  return registry_dir / "blobs" / "sha256" / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

std::string subject(std::string_view name, std::int64_t version) {
  return std::string(name) + "/" + std::to_string(version);
}

std::string detail_json(std::initializer_list<std::pair<std::string_view, std::string>> fields) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : fields) j[std::string(k)] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status check_actor(std::string_view actor) {
  if (actor.empty()) return invalid_argument("an actor is required (who does this)");
  if (actor.size() > 256) return invalid_argument("the actor is longer than 256 characters");
  return {};
}

Status check_alias_name(std::string_view alias) {
  if (alias == "latest") return invalid_argument("'latest' is not an alias one sets: it is always the newest version");
  if (!valid_model_name(alias)) {
    return invalid_argument("alias '" + std::string(alias) + "': use letters, digits, '.', '_' and '-'");
  }
  return {};
}

std::string audit_hash(std::string_view prev, std::int64_t seq, std::int64_t at_us, std::string_view actor,
                       std::string_view event, std::string_view subject, std::string_view detail) {
  // Each field length-prefixed, so no two different entries hash the same text.
  const std::string seq_text = std::to_string(seq);
  const std::string at_text = std::to_string(at_us);
  const std::string_view parts[] = {prev, seq_text, at_text, actor, event, subject, detail};
  std::string text;
  for (std::string_view part : parts) {
    text += std::to_string(part.size());
    text += ':';
    text += part;
    text += ';';
  }
  return sha256_hex(text);
}

Status store_blob(const Registry::Impl& impl, const fs::path& from, const BundleFile& f,
                  ProgressCounter& progress) {
  const fs::path& registry_dir = impl.dir;
  const fs::path target = blob_path(registry_dir, f.sha256);
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<std::uint64_t>(st.st_size) == impl.blob_size(f.size)) {
    progress.add(f.size);
    return {};
  }
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return data_loss("'" + target.parent_path().string() + "' cannot be created: " + ec.message());
  const fs::path tmp = registry_dir / "tmp" / ("blob-" + random_hex(8));
  auto sha = impl.encrypted ? encrypt_copy(from, tmp, impl.key.data(), f.sha256, f.size, progress)
                            : hash_and_copy(from, &tmp, f.size, progress);
  if (!sha.ok()) {
    fs::remove(tmp, ec);
    return sha.status();
  }
  if (*sha != f.sha256) {
    fs::remove(tmp, ec);
    return data_loss("bundle file '" + f.path + "' changed while it was published");
  }
  ::chmod(tmp.c_str(), 0444);
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    fs::remove(tmp, ec);
    return data_loss("blob '" + target.string() + "' cannot be stored: " + std::strerror(err));
  }
  return fsync_dir(target.parent_path());
}

Result<FileStamp> stamp(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return data_loss("'" + path.string() + "' is missing");
  if (!S_ISREG(st.st_mode)) return data_loss("'" + path.string() + "' is not a regular file");
  return FileStamp{path, static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                   static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

bool unchanged(const std::vector<FileStamp>& stamps) {
  for (const auto& s : stamps) {
    auto now = stamp(s.path);
    if (!now.ok() || now->ino != s.ino || now->size != s.size || now->mtime_ns != s.mtime_ns) {
      return false;
    }
  }
  return true;
}

Status materialize(const Registry::Impl& impl, const fs::path& target, const std::string& manifest_text,
                   const Manifest& manifest) {
  const fs::path& registry_dir = impl.dir;
  std::error_code ec;
  if (fs::is_directory(target, ec)) return {};
  const fs::path tmp = registry_dir / "tmp" / ("checkout-" + random_hex(8));
  fs::create_directories(tmp, ec);
  if (ec) return data_loss("'" + tmp.string() + "' cannot be created: " + ec.message());
  Status status;
  for (const auto& f : manifest.files) {
    const fs::path blob = blob_path(registry_dir, f.sha256);
    const fs::path to = tmp / f.path;
    fs::create_directories(to.parent_path(), ec);
    if (impl.encrypted) {
      ProgressCounter quiet(impl.options.progress, 0);
      auto sha = decrypt_copy(blob, &to, impl.key.data(), f.sha256, quiet);
      if (!sha.ok()) {
        status = Status(sha.status().code(), "'" + f.path + "': " + sha.status().message());
        break;
      }
      continue;
    }
    if (::link(blob.c_str(), to.c_str()) == 0) continue;
    if (errno == ENOENT) {
      status = data_loss("the stored file of '" + f.path + "' (blob " + f.sha256.substr(0, 16) + "...) is missing");
      break;
    }
    fs::copy_file(blob, to, ec);
    if (ec) {
      status = data_loss("'" + f.path + "' cannot be checked out: " + ec.message());
      break;
    }
  }
  if (status.ok()) status = write_file_atomically(tmp / "manifest.json", manifest_text);
  if (status.ok()) {
    fs::create_directories(target.parent_path(), ec);
    if (::rename(tmp.c_str(), target.c_str()) == 0) return fsync_dir(target.parent_path());
    if (errno != EEXIST && errno != ENOTEMPTY) status = data_loss("'" + target.string() + "' cannot be created: " + std::strerror(errno));
  }
  fs::remove_all(tmp, ec);  // another process made the same checkout first, or we failed
  return status;
}

}  // namespace detail
}  // namespace ember
