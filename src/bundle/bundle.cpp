// Bundles on disk: verify (every file listed, sized and hashed; nothing else there),
// create from a model directory, and sign.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>
#include <system_error>

#include <sys/stat.h>

#include "bundle/crypto.hpp"
#include "bundle/manifest_internal.hpp"
#include "core/files.hpp"
#include "ember/bundle.hpp"
#include "ember/version.hpp"

namespace ember {

namespace fs = std::filesystem;

namespace {

std::string now_rfc3339() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string role_for(const std::string& path) {
  if (path == "schema.json") return "schema";
  if (path == "pipeline.json") return "pipeline";
  if (path == "model.pt") return "model";
  if (path == "chain.json") return "chain";
  const std::string name = fs::path(path).filename().string();
  if (name.rfind("reference", 0) == 0) return "reference";
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".pt" || ext == ".ptl" || name.find("linear") != std::string::npos) return "fallback";
  return "extra";
}

// Every entry below `dir`, relative, '/'-separated, sorted; symbolic links and special
// files are errors. At most `max_files` files.
Result<std::vector<std::string>> list_files(const fs::path& dir, std::size_t max_files, std::string_view what) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) return not_found(std::string(what) + " '" + dir.string() + "' cannot be listed: " + ec.message());
  const std::string prefix = (dir / "").generic_string();
  for (; it != end; it.increment(ec)) {
    if (ec) return data_loss(std::string(what) + " '" + dir.string() + "' cannot be listed: " + ec.message());
    const auto status = it->symlink_status(ec);
    std::string rel = it->path().generic_string();
    if (rel.compare(0, prefix.size(), prefix) == 0) rel.erase(0, prefix.size());
    if (fs::is_symlink(status)) return data_loss(std::string(what) + ": '" + rel + "' is a symbolic link");
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status)) return data_loss(std::string(what) + ": '" + rel + "' is not a regular file");
    out.push_back(std::move(rel));
    if (out.size() > max_files + 1) {
      return invalid_argument(std::string(what) + " holds more than " + std::to_string(max_files) + " files");
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<Manifest> verify_bundle(const fs::path& dir, const VerifyOptions& options) {
  const fs::path manifest_path = dir / "manifest.json";
  auto text = detail::read_text_file(manifest_path, "bundle manifest", options.limits.max_manifest_bytes);
  if (!text.ok()) return text.status();
  auto manifest = parse_manifest(*text, options.limits);
  if (!manifest.ok()) return manifest.status().with_context("bundle '" + dir.string() + "'");
  // The walk first: a symbolic link anywhere in the bundle is refused before any path is followed.
  auto present = list_files(dir, options.limits.max_files, "bundle");
  if (!present.ok()) return present.status();
  std::uint64_t total = 0;
  std::set<std::string, std::less<>> listed;
  // The manifest's paths are plain relative paths (no '..', checked by the parser) and
  // the walk found no symbolic link below `dir`: every listed path stays inside it.
  for (const auto& f : manifest->files) {
    const fs::path full = dir / f.path;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) return data_loss("bundle file '" + f.path + "' is missing");
    if (!S_ISREG(st.st_mode)) return data_loss("bundle file '" + f.path + "' is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) != f.size) {
      return data_loss("bundle file '" + f.path + "' is " + std::to_string(st.st_size) + " bytes; the manifest says " +
                       std::to_string(f.size));
    }
    total += f.size;
    listed.insert(f.path);
  }
  for (const auto& rel : *present) {
    if (rel != "manifest.json" && listed.find(rel) == listed.end()) {
      return data_loss("bundle file '" + rel + "' is not in the manifest");
    }
  }
  if (!options.hash) return manifest;
  detail::ProgressCounter progress(options.progress, total);
  for (const auto& f : manifest->files) {
    auto sha = detail::hash_and_copy(dir / f.path, nullptr, f.size, progress);
    if (!sha.ok()) return sha.status();
    if (*sha != f.sha256) {
      return data_loss("bundle file '" + f.path + "' has SHA-256 " + *sha + "; the manifest says " + f.sha256);
    }
  }
  return manifest;
}

Result<Manifest> verify_bundle(const fs::path& dir) {
  const VerifyOptions defaults;
  return verify_bundle(dir, defaults);
}

Result<Manifest> create_bundle(const fs::path& model_dir, const fs::path& out, const BundleCreateOptions& options) {
  if (!valid_model_name(options.name)) {
    return invalid_argument("bundle name '" + options.name +
                            "': use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 128)");
  }
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) return not_found("model directory '" + model_dir.string() + "' does not exist");
  if (!fs::exists(model_dir / "schema.json", ec)) {
    return not_found("model directory '" + model_dir.string() + "' has no schema.json");
  }
  auto files = list_files(model_dir, options.limits.max_files, "model directory");
  if (!files.ok()) return files.status();
  files->erase(std::remove(files->begin(), files->end(), std::string("manifest.json")), files->end());
  if (files->size() > options.limits.max_files) return invalid_argument("model directory holds too many files");
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec) || !fs::is_empty(out, ec)) {
      return Status(StatusCode::kAlreadyExists, "'" + out.string() + "' exists and is not an empty directory");
    }
  } else if (!fs::create_directories(out, ec) || ec) {
    return data_loss("'" + out.string() + "' cannot be created: " + ec.message());
  }
  Manifest m;
  m.name = options.name;
  m.description = options.description;
  m.created_at = now_rfc3339();
  m.ember_version = std::string(version());
  m.lineage = options.lineage;
  if (m.lineage.environment.find("ember") == m.lineage.environment.end()) m.lineage.environment["ember"] = m.ember_version;
  std::uint64_t total = 0;
  std::vector<std::uint64_t> sizes;
  for (const auto& rel : *files) {
    EMBER_RETURN_IF_ERROR(detail::check_bundle_path(rel, "model file"));
    if (rel.size() > options.limits.max_path_length) return invalid_argument("model file path '" + rel + "' is too long");
    sizes.push_back(fs::file_size(model_dir / rel, ec));
    if (ec) return data_loss("'" + rel + "' cannot be read: " + ec.message());
    if (sizes.back() > options.limits.max_file_bytes) return invalid_argument("'" + rel + "' is larger than the limit");
    total += sizes.back();
  }
  detail::ProgressCounter progress(options.progress, total);
  for (std::size_t i = 0; i < files->size(); ++i) {
    const std::string& rel = (*files)[i];
    const fs::path to = out / rel;
    fs::create_directories(to.parent_path(), ec);
    if (ec) return data_loss("'" + to.parent_path().string() + "' cannot be created: " + ec.message());
    auto sha = detail::hash_and_copy(model_dir / rel, &to, sizes[i], progress);
    if (!sha.ok()) return sha.status();
    m.files.push_back(BundleFile{rel, role_for(rel), sizes[i], std::move(*sha)});
  }
  const std::string text = manifest_to_json(m);
  auto parsed = parse_manifest(text, options.limits);  // the digest, and a check that it reads back
  if (!parsed.ok()) return parsed.status().with_context("the manifest written");
  EMBER_RETURN_IF_ERROR(detail::write_file_atomically(out / "manifest.json", text));
  return parsed;
}

Result<BundleSignature> sign_bundle(const fs::path& dir, const SigningKey& key) {
  auto manifest = verify_bundle(dir);
  if (!manifest.ok()) return manifest.status();
  auto text = detail::read_text_file(dir / "manifest.json", "bundle manifest");
  if (!text.ok()) return text.status();
  auto sig = sign_digest(manifest->digest, key);
  if (!sig.ok()) return sig.status();
  auto& sigs = manifest->signatures;
  sigs.erase(std::remove_if(sigs.begin(), sigs.end(), [&](const BundleSignature& s) { return s.key_id == sig->key_id; }),
             sigs.end());
  sigs.push_back(*sig);
  auto signed_text = detail::with_signatures(*text, sigs);
  if (!signed_text.ok()) return signed_text.status();
  auto check = parse_manifest(*signed_text);
  if (!check.ok() || check->digest != manifest->digest) {
    return internal_error("signing changed the manifest's digest; nothing was written");
  }
  EMBER_RETURN_IF_ERROR(detail::write_file_atomically(dir / "manifest.json", *signed_text));
  return sig;
}

}  // namespace ember
