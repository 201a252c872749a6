// Bundles: create, verify, tamper, sign; the manifest parser on malformed input.
#include <catch2/catch.hpp>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember::StatusCode;
using ember_test::TempDir;

namespace {

ember::Manifest make_bundle(const TempDir& t, const std::string& name = "churn") {
  ember_test::write_linear_model(t / "model");
  ember::BundleCreateOptions o;
  o.name = name;
  o.lineage.code.commit = "abc123";
  o.lineage.metrics["auc"] = 0.9;
  o.lineage.data.push_back({"s3://bucket/train.csv", std::string(64, 'a'), 1000});
  auto m = ember::create_bundle(t / "model", t / "bundle", o);
  REQUIRE(m.ok());
  return *m;
}

std::string minimal(const std::string& files) {
  return R"({"format":"ember-bundle","format_version":1,"name":"m","files":)" + files + "}";
}

}  // namespace

TEST_CASE("bundle: create lists every file with role, size and SHA-256; verify accepts it") {
  TempDir t;
  const auto m = make_bundle(t);
  REQUIRE(m.files.size() == 3);
  CHECK(m.find_role("schema") != nullptr);
  CHECK(m.find_role("chain") != nullptr);
  CHECK(m.find_role("fallback")->path == "linear.json");
  CHECK(m.find_role("schema")->sha256 == ember::sha256_hex(ember_test::read_all(t / "model" / "schema.json")));
  auto v = ember::verify_bundle(t / "bundle");
  REQUIRE(v.ok());
  CHECK(v->digest == m.digest);
  CHECK(v->lineage.code.commit == "abc123");
  CHECK(v->lineage.metrics.at("auc") == 0.9);
  CHECK(v->lineage.data.at(0).rows == 1000u);
  CHECK(v->lineage.environment.at("ember") == std::string(ember::version()));
}

TEST_CASE("bundle: a changed, resized, missing or extra file is DataLoss naming it") {
  TempDir t;
  make_bundle(t);
  const auto schema = t / "bundle" / "schema.json";
  const std::string original = ember_test::read_all(schema);
  std::string flipped = original;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  ember_test::write_all(schema, flipped);  // same size, other content
  auto v = ember::verify_bundle(t / "bundle");
  REQUIRE(v.status().code() == StatusCode::kDataLoss);
  CHECK(v.status().message().find("schema.json") != std::string::npos);
  CHECK(v.status().message().find("SHA-256") != std::string::npos);
  // Model::load refuses the bundle before it reads the schema.
  CHECK(ember::Model::load(t / "bundle").status().code() == StatusCode::kDataLoss);

  ember_test::write_all(schema, original + " ");
  INFO(ember::verify_bundle(t / "bundle").status().to_string());
  CHECK(ember::verify_bundle(t / "bundle").status().code() == StatusCode::kDataLoss);
  ember_test::write_all(schema, original);
  CHECK(ember::verify_bundle(t / "bundle").ok());

  ember_test::write_all(t / "bundle" / "extra.txt", "hi");
  auto extra = ember::verify_bundle(t / "bundle");
  CHECK(extra.status().code() == StatusCode::kDataLoss);
  CHECK(extra.status().message().find("extra.txt") != std::string::npos);
  std::filesystem::remove(t / "bundle" / "extra.txt");

  std::filesystem::remove(t / "bundle" / "linear.json");
  INFO(ember::verify_bundle(t / "bundle").status().to_string());
  CHECK(ember::verify_bundle(t / "bundle").status().code() == StatusCode::kDataLoss);
}

TEST_CASE("bundle: a symbolic link in a bundle is refused, even to a file with the right content") {
  TempDir t;
  make_bundle(t);
  std::filesystem::copy_file(t / "bundle" / "linear.json", t / "linear-copy.json");
  std::filesystem::remove(t / "bundle" / "linear.json");
  std::filesystem::create_symlink(t / "linear-copy.json", t / "bundle" / "linear.json");
  INFO(ember::verify_bundle(t / "bundle").status().to_string());
  CHECK(ember::verify_bundle(t / "bundle").status().code() == StatusCode::kDataLoss);
}

TEST_CASE("bundle: Model::load loads a verified bundle and takes its name") {
  TempDir t;
  make_bundle(t, "pricing");
  auto model = ember::Model::load(t / "bundle");
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  CHECK((*model)->name() == "pricing");
  ember::Prediction p;
  REQUIRE((*model)->predict(R"({"a": 1, "b": 2})", p).ok());
  CHECK(p.value("output", 0).value() == Approx(5.5));
  CHECK(p.model_name == "pricing");
}

TEST_CASE("bundle: create refuses a bad name, a non-empty output and a missing schema") {
  TempDir t;
  ember_test::write_linear_model(t / "model");
  ember::BundleCreateOptions o;
  o.name = "../evil";
  CHECK(ember::create_bundle(t / "model", t / "b1", o).status().code() == StatusCode::kInvalidArgument);
  o.name = "ok";
  std::filesystem::create_directories(t / "busy");
  ember_test::write_all(t / "busy" / "x", "x");
  CHECK(ember::create_bundle(t / "model", t / "busy", o).status().code() == StatusCode::kAlreadyExists);
  std::filesystem::create_directories(t / "empty-model");
  CHECK(ember::create_bundle(t / "empty-model", t / "b2", o).status().code() == StatusCode::kNotFound);
}

TEST_CASE("bundle: signatures verify, and fail for another digest, another key id or a flipped bit") {
  TempDir t;
  const auto m = make_bundle(t);
  auto key = ember::generate_signing_key();
  REQUIRE(key.ok());
  auto sig = ember::sign_bundle(t / "bundle", *key);
  REQUIRE(sig.ok());
  auto v = ember::verify_bundle(t / "bundle");
  REQUIRE(v.ok());
  CHECK(v->digest == m.digest);  // signing does not change the digest
  REQUIRE(v->signatures.size() == 1);
  CHECK(ember::verify_signature(m.digest, v->signatures[0]).ok());
  CHECK(ember::verify_signature(std::string(64, '0'), *sig).code() == StatusCode::kPermissionDenied);
  auto bad = *sig;
  bad.signature[5] = bad.signature[5] == '0' ? '1' : '0';
  CHECK(ember::verify_signature(m.digest, bad).code() == StatusCode::kPermissionDenied);
  auto other = ember::generate_signing_key();
  REQUIRE(other.ok());
  bad = *sig;
  bad.public_key = other->public_key;  // key id no longer matches
  CHECK(ember::verify_signature(m.digest, bad).code() == StatusCode::kPermissionDenied);
  bad.signature = "zz";
  CHECK(ember::verify_signature(m.digest, bad).code() == StatusCode::kInvalidArgument);
  // A key round-trips through its secret.
  auto again = ember::signing_key_from_secret(key->secret + "\n");
  REQUIRE(again.ok());
  CHECK(again->public_key == key->public_key);
  CHECK(ember::signing_key_from_secret("not hex").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("bundle: the manifest's digest covers lineage and files but not signatures") {
  const std::string files = R"([{"path":"schema.json","role":"schema","size":1,"sha256":")" + std::string(64, 'a') + R"("}])";
  auto a = ember::parse_manifest(minimal(files));
  REQUIRE(a.ok());
  auto b = ember::parse_manifest(R"({"format":"ember-bundle","format_version":1,"name":"m","files":)" + files +
                                 R"(,"lineage":{"metrics":{"auc":0.5}}})");
  REQUIRE(b.ok());
  CHECK(a->digest != b->digest);
  auto c = ember::parse_manifest(R"({"signatures":[], "name":"m","format_version":1,"format":"ember-bundle","files":)" + files + "}");
  REQUIRE(c.ok());
  CHECK(a->digest == c->digest);  // key order and signatures do not matter
}

TEST_CASE("bundle: malformed manifests are InvalidArgument naming the field") {
  const std::string sha(64, 'a');
  const auto file = [&](const std::string& path, const std::string& extra = "") {
    return R"([{"path":")" + path + R"(","role":"schema","size":1,"sha256":")" + sha + "\"" + extra + "}]";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"format":"other","format_version":1,"name":"m","files":[]})", "'format'"},
      {R"({"format":"ember-bundle","format_version":2,"name":"m","files":[]})", "'format_version'"},
      {R"({"format":"ember-bundle","format_version":1,"files":[]})", "'name'"},
      {R"({"format":"ember-bundle","format_version":1,"name":"a/b","files":[]})", "'name'"},
      {R"({"format":"ember-bundle","format_version":1,"name":"m"})", "'files'"},
      {minimal(file("/etc/passwd")), "absolute"},
      {minimal(file("../x")), "'files[0].path'"},
      {minimal(file("a/./b")), "'files[0].path'"},
      {minimal(file("a//b")), "'files[0].path'"},
      {minimal(file("a\\\\b")), "'files[0].path'"},
      {minimal(file("manifest.json")), "manifest.json"},
      {minimal(R"([{"path":"a","role":"weird","size":1,"sha256":")" + sha + "\"}]"), "'files[0].role'"},
      {minimal(R"([{"path":"a","role":"schema","size":-1,"sha256":")" + sha + "\"}]"), "'files[0].size'"},
      {minimal(R"([{"path":"a","role":"schema","size":1,"sha256":"ABC"}])"), "'files[0].sha256'"},
      {minimal("[" + file("a").substr(1, file("a").size() - 2) + "," + file("a").substr(1)), "repeats"},
      {R"({"format":"ember-bundle","format_version":1,"name":"m","files":[],"lineage":{"metrics":{"auc":"high"}}})",
       "'lineage.metrics.auc'"},
      {R"({"format":"ember-bundle","format_version":1,"name":"m","files":[],"lineage":{"code":{"dirty":"yes"}}})",
       "'lineage.code.dirty'"},
      {R"({"format":"ember-bundle","format_version":1,"name":"m","files":[],"lineage":{"data":[{"rows":3}]}})",
       "'lineage.data[0].uri'"},
      {R"({"format":"ember-bundle","format_version":1,"name":"m","files":[],"signatures":[{"key_id":1}]})",
       "'signatures[0].key_id'"},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    auto m = ember::parse_manifest(text);
    REQUIRE_FALSE(m.ok());
    CHECK(m.status().code() == StatusCode::kInvalidArgument);
    CHECK(m.status().message().find(expected) != std::string::npos);
  }
}

TEST_CASE("bundle: oversized, deeply nested and truncated manifests are refused cleanly") {
  ember::BundleLimits limits;
  limits.max_manifest_bytes = 1000;
  CHECK(ember::parse_manifest(std::string(2000, ' '), limits).status().code() == StatusCode::kInvalidArgument);
  std::string deep = R"({"format":"ember-bundle","format_version":1,"name":"m","files":[],"lineage":{"hyperparameters":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto d = ember::parse_manifest(deep);
  CHECK(d.status().code() == StatusCode::kInvalidArgument);
  CHECK(d.status().message().find("deeper") != std::string::npos);
  limits = {};
  limits.max_files = 2;
  const std::string f = R"({"path":"P","role":"extra","size":1,"sha256":")" + std::string(64, 'a') + "\"}";
  std::string three = "[";
  for (const char* p : {"a", "b", "c"}) {
    std::string one = f;
    one.replace(one.find('P'), 1, p);
    three += (three.size() > 1 ? "," : "") + one;
  }
  CHECK(ember::parse_manifest(minimal(three + "]"), limits).status().code() == StatusCode::kInvalidArgument);
  const std::string good = minimal("[" + f + "]");
  for (std::size_t cut = 0; cut < good.size(); cut += 7) {
    CHECK_FALSE(ember::parse_manifest(good.substr(0, cut)).ok());
  }
}

TEST_CASE("bundle: sha256 of known vectors and of a file") {
  CHECK(ember::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(ember::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir t;
  ember_test::write_all(t / "f", std::string(3 << 20, 'x'));  // spans several read blocks
  auto h = ember::sha256_file(t / "f");
  REQUIRE(h.ok());
  CHECK(*h == ember::sha256_hex(std::string(3 << 20, 'x')));
  CHECK(ember::sha256_file(t / "missing").status().code() == StatusCode::kNotFound);
  CHECK(ember::sha256_implementation().find("OpenSSL") != std::string::npos);
}
