// manifest.json: parsing (every field checked, naming it), writing, and the digest.
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "bundle/crypto.hpp"
#include "bundle/manifest_internal.hpp"
#include "core/files.hpp"
#include "ember/bundle.hpp"

namespace ember {

namespace {

using nlohmann::json;

constexpr int kMaxDepth = 64;

const std::set<std::string, std::less<>> kRoles = {"schema",   "pipeline",  "model", "chain",
                                                    "fallback", "reference", "extra"};

Status field_error(std::string_view field, std::string_view what) {
  return invalid_argument("manifest.json: '" + std::string(field) + "' " + std::string(what));
}

Result<std::string> get_string(const json& obj, std::string_view key, std::string_view field, bool required,
                               std::size_t max_len = 4096) {
  const auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) {
    if (required) return field_error(field, "is missing");
    return std::string();
  }
  if (!it->is_string()) return field_error(field, "must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_len) return field_error(field, "is longer than " + std::to_string(max_len) + " characters");
  return s;
}

Status check_object(const json& j, std::string_view field) {
  if (!j.is_object()) return field_error(field, "must be an object");
  return {};
}

Result<std::vector<BundleFile>> parse_files(const json& root, const BundleLimits& limits) {
  const auto it = root.find("files");
  if (it == root.end()) return field_error("files", "is missing");
  if (!it->is_array()) return field_error("files", "must be an array");
  if (it->size() > limits.max_files) {
    return field_error("files", "lists " + std::to_string(it->size()) + " files, more than the limit of " +
                                    std::to_string(limits.max_files));
  }
  std::vector<BundleFile> files;
  std::set<std::string, std::less<>> seen;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& f = (*it)[i];
    const std::string where = "files[" + std::to_string(i) + "]";
    EMBER_RETURN_IF_ERROR(check_object(f, where));
    BundleFile file;
    auto path = get_string(f, "path", where + ".path", true, limits.max_path_length);
    if (!path.ok()) return path.status();
    file.path = std::move(*path);
    EMBER_RETURN_IF_ERROR(detail::check_bundle_path(file.path, where + ".path"));
    if (!seen.insert(file.path).second) return field_error(where + ".path", "repeats '" + file.path + "'");
    auto role = get_string(f, "role", where + ".role", true, 64);
    if (!role.ok()) return role.status();
    if (kRoles.find(*role) == kRoles.end()) {
      return field_error(where + ".role",
                         "is '" + *role + "'; expected schema, pipeline, model, chain, fallback, reference or extra");
    }
    file.role = std::move(*role);
    const auto size = f.find("size");
    if (size == f.end()) return field_error(where + ".size", "is missing");
    if (!size->is_number_unsigned()) return field_error(where + ".size", "must be a non-negative integer");
    file.size = size->get<std::uint64_t>();
    if (file.size > limits.max_file_bytes) {
      return field_error(where + ".size", "is more than the limit of " + std::to_string(limits.max_file_bytes));
    }
    auto sha = get_string(f, "sha256", where + ".sha256", true, 64);
    if (!sha.ok()) return sha.status();
    if (!detail::is_sha256_hex(*sha)) return field_error(where + ".sha256", "must be 64 lowercase hex digits");
    file.sha256 = std::move(*sha);
    files.push_back(std::move(file));
  }
  return files;
}

Result<Lineage> parse_lineage(const json& root) {
  Lineage lineage;
  const auto it = root.find("lineage");
  if (it == root.end() || it->is_null()) return lineage;
  EMBER_RETURN_IF_ERROR(check_object(*it, "lineage"));
  const json& l = *it;
  if (const auto d = l.find("data"); d != l.end() && !d->is_null()) {
    if (!d->is_array()) return field_error("lineage.data", "must be an array");
    if (d->size() > 10000) return field_error("lineage.data", "lists more than 10000 sources");
    for (std::size_t i = 0; i < d->size(); ++i) {
      const std::string where = "lineage.data[" + std::to_string(i) + "]";
      const json& s = (*d)[i];
      EMBER_RETURN_IF_ERROR(check_object(s, where));
      DataSource src;
      auto uri = get_string(s, "uri", where + ".uri", true);
      if (!uri.ok()) return uri.status();
      src.uri = std::move(*uri);
      auto sha = get_string(s, "sha256", where + ".sha256", false, 64);
      if (!sha.ok()) return sha.status();
      if (!sha->empty() && !detail::is_sha256_hex(*sha)) {
        return field_error(where + ".sha256", "must be 64 lowercase hex digits");
      }
      src.sha256 = std::move(*sha);
      if (const auto r = s.find("rows"); r != s.end() && !r->is_null()) {
        if (!r->is_number_unsigned()) return field_error(where + ".rows", "must be a non-negative integer");
        src.rows = r->get<std::uint64_t>();
      }
      lineage.data.push_back(std::move(src));
    }
  }
  if (const auto c = l.find("code"); c != l.end() && !c->is_null()) {
    EMBER_RETURN_IF_ERROR(check_object(*c, "lineage.code"));
    auto commit = get_string(*c, "commit", "lineage.code.commit", false);
    if (!commit.ok()) return commit.status();
    auto repo = get_string(*c, "repository", "lineage.code.repository", false);
    if (!repo.ok()) return repo.status();
    lineage.code.commit = std::move(*commit);
    lineage.code.repository = std::move(*repo);
    if (const auto dirty = c->find("dirty"); dirty != c->end() && !dirty->is_null()) {
      if (!dirty->is_boolean()) return field_error("lineage.code.dirty", "must be true or false");
      lineage.code.dirty = dirty->get<bool>();
    }
  }
  if (const auto h = l.find("hyperparameters"); h != l.end() && !h->is_null()) {
    EMBER_RETURN_IF_ERROR(check_object(*h, "lineage.hyperparameters"));
    lineage.hyperparameters = h->dump();
  }
  if (const auto e = l.find("environment"); e != l.end() && !e->is_null()) {
    EMBER_RETURN_IF_ERROR(check_object(*e, "lineage.environment"));
    for (const auto& [k, v] : e->items()) {
      if (!v.is_string()) return field_error("lineage.environment." + k, "must be a string");
      lineage.environment[k] = v.get<std::string>();
    }
  }
  auto parent = get_string(l, "parent_version", "lineage.parent_version", false);
  if (!parent.ok()) return parent.status();
  lineage.parent_version = std::move(*parent);
  if (const auto m = l.find("metrics"); m != l.end() && !m->is_null()) {
    EMBER_RETURN_IF_ERROR(check_object(*m, "lineage.metrics"));
    for (const auto& [k, v] : m->items()) {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        return field_error("lineage.metrics." + k, "must be a finite number");
      }
      lineage.metrics[k] = v.get<double>();
    }
  }
  return lineage;
}

Result<std::vector<BundleSignature>> parse_signatures(const json& root) {
  std::vector<BundleSignature> out;
  const auto it = root.find("signatures");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) return field_error("signatures", "must be an array");
  if (it->size() > 256) return field_error("signatures", "holds more than 256 signatures");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const std::string where = "signatures[" + std::to_string(i) + "]";
    const json& s = (*it)[i];
    EMBER_RETURN_IF_ERROR(check_object(s, where));
    BundleSignature sig;
    auto id = get_string(s, "key_id", where + ".key_id", true, 16);
    auto pub = get_string(s, "public_key", where + ".public_key", true, 64);
    auto val = get_string(s, "signature", where + ".signature", true, 128);
    if (!id.ok()) return id.status();
    if (!pub.ok()) return pub.status();
    if (!val.ok()) return val.status();
    sig.key_id = std::move(*id);
    sig.public_key = std::move(*pub);
    sig.signature = std::move(*val);
    out.push_back(std::move(sig));
  }
  return out;
}

json lineage_json(const Lineage& l) {
  json data = json::array();
  for (const auto& d : l.data) {
    json s{{"uri", d.uri}};
    if (!d.sha256.empty()) s["sha256"] = d.sha256;
    if (d.rows) s["rows"] = *d.rows;
    data.push_back(std::move(s));
  }
  json hyper = json::parse(l.hyperparameters.empty() ? std::string("{}") : l.hyperparameters, nullptr, false);
  if (!hyper.is_object()) hyper = json::object();
  return json{{"data", std::move(data)},
              {"code", {{"commit", l.code.commit}, {"repository", l.code.repository}, {"dirty", l.code.dirty}}},
              {"hyperparameters", std::move(hyper)},
              {"environment", l.environment},
              {"parent_version", l.parent_version},
              {"metrics", l.metrics}};
}

}  // namespace

namespace detail {

Status check_bundle_path(std::string_view path, std::string_view field) {
  if (path.empty()) return field_error(field, "is empty");
  if (path.front() == '/') return field_error(field, "is absolute: '" + std::string(path) + "'");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\\' || c == ':') {
      return field_error(field, "holds a control character, '\\' or ':': '" + std::string(path) + "'");
    }
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return field_error(field, "must be a plain relative path without '.', '..' or empty parts: '" +
                                    std::string(path) + "'");
    }
    start = end + 1;
  }
  if (path == "manifest.json") return field_error(field, "cannot list manifest.json itself");
  return {};
}

Result<std::string> with_signatures(std::string_view manifest_text, const std::vector<BundleSignature>& signatures) {
  if (detail::json_too_deep(manifest_text, kMaxDepth)) return invalid_argument("manifest.json nests too deep");
  json root = json::parse(manifest_text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) return invalid_argument("manifest.json is not a JSON object");
  json sigs = json::array();
  for (const auto& s : signatures) {
    sigs.push_back({{"key_id", s.key_id}, {"public_key", s.public_key}, {"signature", s.signature}});
  }
  root["signatures"] = std::move(sigs);
  return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace detail

const BundleFile* Manifest::find_role(std::string_view role) const {
  for (const auto& f : files) {
    if (f.role == role) return &f;
  }
  return nullptr;
}

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

Result<Manifest> parse_manifest(std::string_view text, const BundleLimits& limits) {
  if (text.size() > limits.max_manifest_bytes) {
    return invalid_argument("manifest.json is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                            std::to_string(limits.max_manifest_bytes));
  }
  if (detail::json_too_deep(text, kMaxDepth)) return invalid_argument("manifest.json nests deeper than " + std::to_string(kMaxDepth) + " levels");
  json root = json::parse(text, nullptr, false);
  if (root.is_discarded()) return invalid_argument("manifest.json is not valid JSON");
  if (!root.is_object()) return invalid_argument("manifest.json must hold a JSON object");
  auto format = get_string(root, "format", "format", true, 64);
  if (!format.ok()) return format.status();
  if (*format != "ember-bundle") return field_error("format", "is '" + *format + "'; expected 'ember-bundle'");
  const auto fv = root.find("format_version");
  if (fv == root.end()) return field_error("format_version", "is missing");
  if (!fv->is_number_integer() || fv->get<std::int64_t>() != 1) {
    return field_error("format_version", "is " + fv->dump() + "; this ember reads version 1");
  }
  Manifest m;
  auto name = get_string(root, "name", "name", true, 128);
  if (!name.ok()) return name.status();
  if (!valid_model_name(*name)) {
    return field_error("name", "is '" + *name + "'; use letters, digits, '.', '_' and '-', starting with a letter or digit");
  }
  m.name = std::move(*name);
  auto description = get_string(root, "description", "description", false, 65536);
  auto created = get_string(root, "created_at", "created_at", false, 64);
  auto ever = get_string(root, "ember_version", "ember_version", false, 64);
  if (!description.ok()) return description.status();
  if (!created.ok()) return created.status();
  if (!ever.ok()) return ever.status();
  m.description = std::move(*description);
  m.created_at = std::move(*created);
  m.ember_version = std::move(*ever);
  auto files = parse_files(root, limits);
  if (!files.ok()) return files.status();
  m.files = std::move(*files);
  auto lineage = parse_lineage(root);
  if (!lineage.ok()) return lineage.status();
  m.lineage = std::move(*lineage);
  auto signatures = parse_signatures(root);
  if (!signatures.ok()) return signatures.status();
  m.signatures = std::move(*signatures);
  root.erase("signatures");
  m.digest = sha256_hex(root.dump());  // keys sorted, no spaces: canonical
  return m;
}

std::string manifest_to_json(const Manifest& m) {
  json files = json::array();
  for (const auto& f : m.files) {
    files.push_back({{"path", f.path}, {"role", f.role}, {"size", f.size}, {"sha256", f.sha256}});
  }
  json sigs = json::array();
  for (const auto& s : m.signatures) {
    sigs.push_back({{"key_id", s.key_id}, {"public_key", s.public_key}, {"signature", s.signature}});
  }
  json root{{"format", "ember-bundle"},
            {"format_version", 1},
            {"name", m.name},
            {"description", m.description},
            {"created_at", m.created_at},
            {"ember_version", m.ember_version},
            {"files", std::move(files)},
            {"lineage", lineage_json(m.lineage)},
            {"signatures", std::move(sigs)}};
  return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace ember
