// ember bundle create | verify | sign | keygen
#include <fstream>
#include <iostream>
#include <memory>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/bundle.hpp"

namespace ember_cli {

namespace {

using nlohmann::json;

struct CreateArgs {
  std::string model_dir, name, out, description, lineage_file, parent;
  std::vector<std::string> metrics;
  bool progress = false;
};

struct VerifyArgs {
  std::string dir;
  bool json = false;
  bool progress = false;
};

struct SignArgs {
  std::string dir, key;
};

struct KeygenArgs {
  std::string out;
};

ember::Result<std::string> read_small(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return ember::not_found(what + " '" + path + "' cannot be read");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (text.size() > (std::size_t{4} << 20)) return ember::invalid_argument(what + " '" + path + "' is too large");
  return text;
}

// Lineage from a JSON file in the manifest's "lineage" format, checked by the manifest parser.
ember::Result<ember::Lineage> read_lineage(const std::string& path) {
  auto text = read_small(path, "lineage file");
  if (!text.ok()) return text.status();
  const std::string doc = R"({"format":"ember-bundle","format_version":1,"name":"lineage","files":[],"lineage":)" +
                          *text + "}";
  auto m = ember::parse_manifest(doc);
  if (!m.ok()) return m.status().with_context("lineage file '" + path + "'");
  return m->lineage;
}

json manifest_summary(const ember::Manifest& m, const std::string& dir) {
  json files = json::array();
  std::uint64_t bytes = 0;
  for (const auto& f : m.files) {
    files.push_back({{"path", f.path}, {"role", f.role}, {"size", f.size}, {"sha256", f.sha256}});
    bytes += f.size;
  }
  json sigs = json::array();
  for (const auto& s : m.signatures) sigs.push_back(s.key_id);
  return {{"bundle", dir}, {"name", m.name}, {"digest", m.digest}, {"files", files},
          {"bytes", bytes}, {"signatures", sigs}, {"created_at", m.created_at}};
}

int cmd_create(const CreateArgs& a) {
  ember::BundleCreateOptions o;
  o.name = a.name;
  o.description = a.description;
  if (!a.lineage_file.empty()) {
    auto l = read_lineage(a.lineage_file);
    if (!l.ok()) return fail(l.status());
    o.lineage = std::move(*l);
  }
  if (!a.parent.empty()) o.lineage.parent_version = a.parent;
  for (const auto& m : a.metrics) {
    const auto eq = m.find('=');
    char* end = nullptr;
    const double v = eq == std::string::npos ? 0.0 : std::strtod(m.c_str() + eq + 1, &end);
    if (eq == std::string::npos || eq == 0 || end == nullptr || *end != '\0' || end == m.c_str() + eq + 1) {
      return fail(ember::invalid_argument("--metric '" + m + "': expected NAME=NUMBER"));
    }
    o.lineage.metrics[m.substr(0, eq)] = v;
  }
  o.progress = progress_bar("hashing", a.progress);
  auto m = ember::create_bundle(a.model_dir, a.out, o);
  if (!m.ok()) return fail(m.status());
  std::uint64_t bytes = 0;
  for (const auto& f : m->files) bytes += f.size;
  std::printf("bundle %s: %zu files, %llu bytes, digest %s\n", m->name.c_str(), m->files.size(),
              static_cast<unsigned long long>(bytes), m->digest.c_str());
  std::printf("%s\n", a.out.c_str());
  return 0;
}

int cmd_verify(const VerifyArgs& a) {
  ember::VerifyOptions o;
  o.progress = progress_bar("verifying", a.progress);
  auto m = ember::verify_bundle(a.dir, o);
  if (!m.ok()) {
    if (a.json) std::printf("%s\n", json{{"bundle", a.dir}, {"ok", false}, {"error", m.status().to_string()}}.dump().c_str());
    return fail(m.status());
  }
  for (const auto& s : m->signatures) {
    if (auto st = ember::verify_signature(m->digest, s); !st.ok()) return fail(st);
  }
  if (a.json) {
    json j = manifest_summary(*m, a.dir);
    j["ok"] = true;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("ok: bundle %s, %zu files verified, %zu signature(s) valid, digest %s\n", m->name.c_str(),
                m->files.size(), m->signatures.size(), m->digest.c_str());
  }
  return 0;
}

int cmd_sign(const SignArgs& a) {
  auto key = read_signing_key(a.key);
  if (!key.ok()) return fail(key.status());
  auto sig = ember::sign_bundle(a.dir, *key);
  if (!sig.ok()) return fail(sig.status());
  std::printf("signed with key %s\n", sig->key_id.c_str());
  return 0;
}

int cmd_keygen(const KeygenArgs& a) {
  auto key = ember::generate_signing_key();
  if (!key.ok()) return fail(key.status());
  const std::string secret_path = a.out + ".key";
  const std::string public_path = a.out + ".pub";
  {
    const mode_t old = ::umask(077);
    std::ofstream f(secret_path, std::ios::binary | std::ios::trunc);
    ::umask(old);
    if (!f) return fail(ember::invalid_argument("cannot write '" + secret_path + "'"));
    f << key->secret << "\n";
  }
  std::ofstream p(public_path, std::ios::binary | std::ios::trunc);
  if (!p) return fail(ember::invalid_argument("cannot write '" + public_path + "'"));
  p << key->public_key << "\n";
  std::printf("key %s: secret in %s (keep it private), public key in %s\n", key->key_id.c_str(), secret_path.c_str(),
              public_path.c_str());
  return 0;
}

}  // namespace

void add_bundle_commands(CLI::App& app, std::function<int()>& run) {
  CLI::App* bundle = app.add_subcommand("bundle", "Make, verify and sign bundles (a model directory + manifest.json).");
  bundle->require_subcommand(1);

  auto create = std::make_shared<CreateArgs>();
  CLI::App* c = bundle->add_subcommand("create", "Turn a model directory into a bundle with a manifest.");
  c->footer(
      "Copies every file of MODEL_DIR (schema.json, pipeline.json, model.pt, chain.json and\n"
      "any other) to --out and writes manifest.json: each file's role, size and SHA-256, the\n"
      "name, and the lineage (from --lineage, a JSON object in the manifest's 'lineage' form:\n"
      "data, code, hyperparameters, environment, parent_version, metrics).");
  c->add_option("model_dir", create->model_dir, "Model directory")->required();
  c->add_option("--name", create->name, "Model name (letters, digits, '.', '_', '-')")->required();
  c->add_option("--out", create->out, "Bundle directory to write (absent or empty)")->required();
  c->add_option("--description", create->description, "What the model does");
  c->add_option("--lineage", create->lineage_file, "JSON file with the lineage");
  c->add_option("--parent", create->parent, "The version this model was derived from");
  c->add_option("--metric", create->metrics, "Evaluation metric NAME=NUMBER (repeatable)");
  c->add_flag("--progress", create->progress, "Show a progress bar even when stderr is not a terminal");
  c->callback([&run, create] { run = [create] { return cmd_create(*create); }; });

  auto verify = std::make_shared<VerifyArgs>();
  CLI::App* v = bundle->add_subcommand("verify", "Check every file of a bundle against its manifest, and its signatures.");
  v->footer("Exit status 0 when every file is listed, present, of its size and SHA-256, no other file is\n"
            "there and every signature is valid; 1 otherwise (the first problem is named).");
  v->add_option("bundle_dir", verify->dir, "Bundle directory")->required();
  v->add_flag("--json", verify->json, "Print the result as JSON");
  v->add_flag("--progress", verify->progress, "Show a progress bar even when stderr is not a terminal");
  v->callback([&run, verify] { run = [verify] { return cmd_verify(*verify); }; });

  auto sign = std::make_shared<SignArgs>();
  CLI::App* s = bundle->add_subcommand("sign", "Add an Ed25519 signature over the bundle's manifest digest.");
  s->add_option("bundle_dir", sign->dir, "Bundle directory")->required();
  s->add_option("--key", sign->key, "Secret key file (from 'ember bundle keygen')")->required();
  s->callback([&run, sign] { run = [sign] { return cmd_sign(*sign); }; });

  auto keygen = std::make_shared<KeygenArgs>();
  CLI::App* k = bundle->add_subcommand("keygen", "Make an Ed25519 key pair: PREFIX.key (secret) and PREFIX.pub.");
  k->add_option("--out", keygen->out, "File name prefix")->required();
  k->callback([&run, keygen] { run = [keygen] { return cmd_keygen(*keygen); }; });
}

}  // namespace ember_cli
