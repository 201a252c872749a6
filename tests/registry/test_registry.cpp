// The registry through its public API: versions, references, aliases (compare-and-swap,
// history, time travel, rollback), policy, audit chain, tampering, gc, check, export.
#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>

#include <sqlite3.h>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember::Registry;
using ember::StatusCode;
using ember_test::TempDir;

namespace {

// A clock tests move by hand: alias history is stamped with it.
struct TestClock {
  std::chrono::system_clock::time_point now{std::chrono::seconds(1'700'000'000)};
};

std::unique_ptr<Registry> make_registry(const TempDir& t, TestClock* clock = nullptr) {
  ember::RegistryOptions o;
  if (clock != nullptr) o.now = [clock] { return clock->now; };
  auto r = Registry::init(t / "reg", o);
  REQUIRE(r.ok());
  return std::move(*r);
}

std::filesystem::path bundle(const TempDir& t, const std::string& name, double weight, const std::string& dir) {
  ember_test::write_linear_model(t / (dir + "-model"), weight);
  ember::BundleCreateOptions o;
  o.name = name;
  auto m = ember::create_bundle(t / (dir + "-model"), t / dir, o);
  REQUIRE(m.ok());
  return t / dir;
}

void sql(const std::filesystem::path& db_path, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
  INFO((err != nullptr ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("registry: references parse, and anything else is InvalidArgument") {
  auto v = ember::parse_model_ref("churn/3");
  REQUIRE(v.ok());
  CHECK(v->name == "churn");
  CHECK(v->version == 3);
  auto a = ember::parse_model_ref("churn@production");
  REQUIRE(a.ok());
  CHECK(a->alias == "production");
  CHECK(ember::parse_model_ref("churn")->alias == "latest");
  for (const char* bad : {"", "/3", "churn/0", "churn/-1", "churn/x", "churn/3@prod", "churn@", "chu rn", "../x/1",
                          "churn/99999999999999999999999", "churn@pro/d"}) {
    INFO(bad);
    CHECK(ember::parse_model_ref(bad).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("registry: init, open, and a directory that holds none") {
  TempDir t;
  auto r = make_registry(t);
  CHECK(Registry::init(t / "reg").status().code() == StatusCode::kAlreadyExists);
  CHECK(Registry::open(t / "reg").ok());
  CHECK(Registry::open(t / "nothing").status().code() == StatusCode::kNotFound);
  std::filesystem::create_directories(t / "garbage");
  ember_test::write_all(t / "garbage" / "registry.db", std::string(4096, 'x'));
  auto g = Registry::open(t / "garbage");
  CHECK_FALSE(g.ok());
  CHECK(g.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("registry: publish numbers versions per name, shares identical files, resolves every kind of reference") {
  TempDir t;
  auto r = make_registry(t);
  CHECK(*r->publish(bundle(t, "churn", 1, "a"), "alice", "first") == 1);
  CHECK(*r->publish(bundle(t, "churn", 3, "b"), "alice", "") == 2);
  CHECK(*r->publish(bundle(t, "fraud", 1, "c"), "bob", "") == 1);
  // schema.json and chain.json are the same in all three: stored once.
  std::size_t blobs = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(t / "reg" / "blobs")) blobs += e.is_regular_file();
  CHECK(blobs == 4);  // schema, chain, two different linear.json
  auto latest = r->resolve("churn@latest");
  REQUIRE(latest.ok());
  CHECK(latest->version == 2);
  CHECK(latest->hashed);
  CHECK(r->resolve("churn")->version == 2);
  CHECK(r->resolve("churn/1")->version == 1);
  CHECK(r->resolve("churn/9").status().code() == StatusCode::kNotFound);
  CHECK(r->resolve("nobody").status().code() == StatusCode::kNotFound);
  CHECK(r->resolve("churn@production").status().code() == StatusCode::kNotFound);
  // The second resolve in this process trusts the hash it made, after checking the files' stamps.
  auto again = r->resolve("churn/2");
  REQUIRE(again.ok());
  CHECK_FALSE(again->hashed);
  // The resolved directory is a bundle a Model loads, with name and version.
  auto model = r->load_model("churn/2");
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  CHECK((*model)->name() == "churn");
  CHECK((*model)->version() == "2");
  ember::Prediction p;
  REQUIRE((*model)->predict(R"({"a": 1, "b": 1})", p).ok());
  CHECK(p.value("output", 0).value() == Approx(5.5));
  CHECK(p.model_version == "2");
}

TEST_CASE("registry: a tampered file never loads, in this process or a new one, and the failure is audited") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  auto first = r->resolve("churn/1");
  REQUIRE(first.ok());
  const auto file = first->dir / "linear.json";
  std::string text = ember_test::read_all(file);
  text[text.find("0.5")] = '9';  // same size, other intercept
  ember_test::write_all(file, text);
  auto cached = r->resolve("churn/1");
  CHECK(cached.status().code() == StatusCode::kDataLoss);
  CHECK(r->load_model("churn/1").status().code() == StatusCode::kDataLoss);
  auto other = Registry::open(t / "reg");
  REQUIRE(other.ok());
  CHECK((*other)->resolve("churn/1").status().code() == StatusCode::kDataLoss);
  auto log = r->audit();
  REQUIRE(log.ok());
  CHECK(log->back().event == "verify_failed");
  CHECK(log->back().subject == "churn/1");
  auto report = r->check(true);
  REQUIRE(report.ok());
  CHECK_FALSE(report->ok());
}

TEST_CASE("registry: aliases move by compare-and-swap and keep their history") {
  TempDir t;
  TestClock clock;
  auto r = make_registry(t, &clock);
  for (int i = 0; i < 3; ++i) REQUIRE(r->publish(bundle(t, "churn", i + 1, "b" + std::to_string(i)), "alice", "").ok());
  const auto t0 = clock.now;
  clock.now += std::chrono::hours(1);
  REQUIRE(r->set_alias("churn", "production", 1, Registry::kUnset, "alice", "launch").ok());
  auto stale = r->set_alias("churn", "production", 2, Registry::kUnset, "bob", "");
  CHECK(stale.status().code() == StatusCode::kAborted);
  CHECK(stale.status().message().find("holds version 1") != std::string::npos);
  const auto t1 = clock.now;
  clock.now += std::chrono::hours(1);
  REQUIRE(r->set_alias("churn", "production", 2, 1, "bob", "better auc").ok());
  const auto t2 = clock.now;
  clock.now += std::chrono::hours(1);
  REQUIRE(r->set_alias("churn", "production", 3, Registry::kAnyVersion, "carol", "").ok());
  CHECK(r->resolve("churn@production")->version == 3);
  CHECK(r->set_alias("churn", "production", 7, 3, "x", "").status().code() == StatusCode::kNotFound);
  CHECK(r->set_alias("churn", "latest", 1, Registry::kAnyVersion, "x", "").status().code() == StatusCode::kInvalidArgument);
  CHECK(r->set_alias("churn", "prod", 1, Registry::kAnyVersion, "", "").status().code() == StatusCode::kInvalidArgument);

  auto history = r->alias_history("churn", "production");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  CHECK((*history)[1].from == 1);
  CHECK((*history)[1].to == 2);
  CHECK((*history)[1].actor == "bob");
  CHECK((*history)[1].reason == "better auc");
  // Which version did production point to at time T?
  CHECK(*r->alias_at("churn", "production", t0) == 0);
  CHECK(*r->alias_at("churn", "production", t1) == 1);
  CHECK(*r->alias_at("churn", "production", t1 + std::chrono::minutes(30)) == 1);
  CHECK(*r->alias_at("churn", "production", t2) == 2);
  CHECK(*r->alias_at("churn", "production", clock.now) == 3);

  // Rollback walks back one step at a time, and says when there is nowhere to go.
  auto back = r->rollback("churn", "production", "alice", "regression");
  REQUIRE(back.ok());
  CHECK(back->from == 3);
  CHECK(back->to == 2);
  CHECK(r->resolve("churn@production")->version == 2);
  CHECK(r->rollback("churn", "production", "alice", "")->to == 1);
  CHECK(r->rollback("churn", "production", "alice", "").status().code() == StatusCode::kFailedPrecondition);
  CHECK(r->rollback("churn", "staging", "alice", "").status().code() == StatusCode::kFailedPrecondition);
  // A version an alias points to cannot be deleted; archived versions cannot be aliased.
  CHECK(r->remove("churn", 1, "alice").code() == StatusCode::kFailedPrecondition);
  REQUIRE(r->archive("churn", 3, true, "alice").ok());
  CHECK(r->resolve("churn@latest")->version == 2);
  CHECK(r->set_alias("churn", "production", 3, Registry::kAnyVersion, "a", "").status().code() ==
        StatusCode::kFailedPrecondition);
  CHECK(r->resolve("churn/3").ok());  // still there by number
  REQUIRE(r->delete_alias("churn", "production", "alice", "retired").ok());
  CHECK(r->resolve("churn@production").status().code() == StatusCode::kNotFound);
  CHECK(r->remove("churn", 1, "alice").ok());
  CHECK(r->resolve("churn/1").status().code() == StatusCode::kNotFound);
  // A deleted number is never given again.
  CHECK(*r->publish(bundle(t, "churn", 9, "b9"), "alice", "") == 4);
}

TEST_CASE("registry: a protected alias needs approvals by others than the publisher, then a trusted signature") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  REQUIRE(r->set_alias("churn", "production", 1, Registry::kUnset, "alice", "").ok());  // not protected yet
  REQUIRE(r->protect_alias("production", 2, "admin").ok());
  REQUIRE(r->publish(bundle(t, "churn", 2, "b"), "alice", "").ok());
  auto refused = r->set_alias("churn", "production", 2, 1, "alice", "");
  CHECK(refused.status().code() == StatusCode::kPermissionDenied);
  CHECK(refused.status().message().find("needs 2 approval(s)") != std::string::npos);
  REQUIRE(r->approve("churn", 2, "alice", "self").ok());  // the publisher's own does not count
  REQUIRE(r->approve("churn", 2, "bob", "checked").ok());
  CHECK(r->approve("churn", 2, "bob", "again").code() == StatusCode::kAlreadyExists);
  CHECK(r->set_alias("churn", "production", 2, 1, "alice", "").status().code() == StatusCode::kPermissionDenied);
  REQUIRE(r->approve("churn", 2, "carol", "").ok());
  // Other aliases are not protected.
  CHECK(r->set_alias("churn", "staging", 2, Registry::kUnset, "alice", "").ok());

  auto key = ember::generate_signing_key();
  REQUIRE(key.ok());
  REQUIRE(r->trust_key(key->public_key, "admin").ok());
  auto unsigned_move = r->set_alias("churn", "production", 2, 1, "alice", "");
  CHECK(unsigned_move.status().code() == StatusCode::kPermissionDenied);
  CHECK(unsigned_move.status().message().find("trusted key") != std::string::npos);
  // A signature by an untrusted key does not count; a forged one is refused outright.
  auto stranger = ember::generate_signing_key();
  REQUIRE(stranger.ok());
  const auto digest = r->show("churn/2")->digest;
  REQUIRE(r->add_signature("churn", 2, *ember::sign_digest(digest, *stranger), "eve").ok());
  CHECK(r->set_alias("churn", "production", 2, 1, "alice", "").status().code() == StatusCode::kPermissionDenied);
  auto forged = *ember::sign_digest(std::string(64, '1'), *key);
  CHECK(r->add_signature("churn", 2, forged, "eve").code() == StatusCode::kPermissionDenied);
  REQUIRE(r->add_signature("churn", 2, *ember::sign_digest(digest, *key), "release-bot").ok());
  REQUIRE(r->set_alias("churn", "production", 2, 1, "alice", "").ok());
  // Rolling back to version 1, which has neither, is refused too.
  CHECK(r->rollback("churn", "production", "alice", "").status().code() == StatusCode::kPermissionDenied);
  REQUIRE(r->protect_alias("production", -1, "admin").ok());
  CHECK(r->rollback("churn", "production", "alice", "")->to == 1);
  CHECK(r->show("churn/2")->signed_by.size() == 2);
  // Exported, the version carries the signatures added since it was published.
  REQUIRE(r->export_bundle("churn/2", t / "exported").ok());
  auto exported = ember::verify_bundle(t / "exported");
  REQUIRE(exported.ok());
  CHECK(exported->digest == digest);
  CHECK(exported->signatures.size() == 2);
}

TEST_CASE("registry: the audit log is a hash chain; an edited or removed entry is found") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  REQUIRE(r->approve("churn", 1, "bob", "ok").ok());
  REQUIRE(r->set_alias("churn", "production", 1, Registry::kUnset, "alice", "").ok());
  REQUIRE(r->tag("churn", 1, "team", "growth", "alice").ok());
  auto log = r->audit();
  REQUIRE(log.ok());
  std::vector<std::string> events;
  for (const auto& e : *log) events.push_back(e.event);
  CHECK(events == std::vector<std::string>{"init", "publish", "approve", "alias", "tag"});
  REQUIRE(r->verify_audit().ok());
  r.reset();
  const auto db = t / "reg" / "registry.db";
  SECTION("an edited entry") {
    sql(db, "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 3");
    auto s = (*Registry::open(t / "reg"))->verify_audit();
    CHECK(s.code() == StatusCode::kDataLoss);
    CHECK(s.message().find("entry 3") != std::string::npos);
  }
  SECTION("a removed entry in the middle") {
    sql(db, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2");
    CHECK((*Registry::open(t / "reg"))->verify_audit().code() == StatusCode::kDataLoss);
  }
  SECTION("the last entry removed") {
    sql(db, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 5");
    CHECK((*Registry::open(t / "reg"))->verify_audit().code() == StatusCode::kDataLoss);
  }
  SECTION("the triggers refuse edits made through SQL") {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "UPDATE audit SET actor = 'x'", nullptr, nullptr, nullptr) != SQLITE_OK);
    CHECK(sqlite3_exec(h, "DELETE FROM audit", nullptr, nullptr, nullptr) != SQLITE_OK);
    sqlite3_close(h);
    CHECK((*Registry::open(t / "reg"))->verify_audit().ok());
  }
}

TEST_CASE("registry: tags, list and search") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  REQUIRE(r->publish(bundle(t, "churn", 2, "b"), "alice", "").ok());
  REQUIRE(r->publish(bundle(t, "fraud", 1, "c"), "bob", "").ok());
  REQUIRE(r->tag("churn", 2, "stage", "candidate", "alice").ok());
  CHECK(r->list("", {}, false)->size() == 3);
  CHECK(r->list("chu", {}, false)->size() == 2);
  auto tagged = r->list("", {"stage=candidate"}, false);
  REQUIRE(tagged->size() == 1);
  CHECK(tagged->at(0).version == 2);
  CHECK(r->list("", {"nonsense"}, false).status().code() == StatusCode::kInvalidArgument);
  REQUIRE(r->tag("churn", 2, "stage", "", "alice").ok());  // removed
  CHECK(r->list("", {"stage=candidate"}, false)->empty());
  CHECK(r->tag("churn", 2, "a=b", "x", "alice").code() == StatusCode::kInvalidArgument);
  REQUIRE(r->archive("fraud", 1, true, "bob").ok());
  CHECK(r->list("", {}, false)->size() == 2);
  CHECK(r->list("", {}, true)->size() == 3);
  CHECK(r->resolve("fraud").status().code() == StatusCode::kNotFound);
}

TEST_CASE("registry: gc frees what no version references, keeps what versions and checkouts use") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  REQUIRE(r->publish(bundle(t, "churn", 2, "b"), "alice", "").ok());
  auto in_use = r->resolve("churn/1");
  REQUIRE(in_use.ok());
  REQUIRE(r->remove("churn", 1, "alice").ok());
  std::filesystem::create_directories(t / "reg" / "tmp" / "checkout-leftover");
  auto report = r->gc("alice");
  REQUIRE(report.ok());
  CHECK(report->blobs_removed == 1);  // version 1's linear.json; schema and chain are shared
  CHECK(report->checkouts_removed == 1);
  CHECK(report->temporary_removed == 1);
  CHECK(r->resolve("churn/2").ok());
  auto check = r->check(true);
  REQUIRE(check.ok());
  INFO((check->problems.empty() ? "" : check->problems[0]));
  CHECK(check->ok());
  CHECK(check->versions == 1);
  CHECK(check->blobs == 3);
  CHECK(r->gc("alice")->blobs_removed == 0);
}

TEST_CASE("registry: check finds a missing blob, a dangling alias and a truncated version") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  REQUIRE(r->set_alias("churn", "production", 1, Registry::kUnset, "alice", "").ok());
  REQUIRE(r->check(false)->ok());
  const auto sha = r->show("churn/1")->files.at(0).sha256;
  r.reset();
  SECTION("missing blob") {
    std::filesystem::remove(t / "reg" / "blobs" / "sha256" / sha.substr(0, 2) / sha);
    CHECK_FALSE((*Registry::open(t / "reg"))->check(false)->ok());
  }
  SECTION("dangling alias and missing file rows") {
    sql(t / "reg" / "registry.db", "UPDATE aliases SET version = 5; DELETE FROM files WHERE path = 'schema.json'");
    auto report = (*Registry::open(t / "reg"))->check(false);
    REQUIRE(report.ok());
    REQUIRE(report->problems.size() == 2);
  }
}

TEST_CASE("registry: export writes the same bundle, which another registry publishes with the same digest") {
  TempDir t;
  auto r = make_registry(t);
  REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  auto m = r->export_bundle("churn/1", t / "exported");
  REQUIRE(m.ok());
  CHECK(ember::verify_bundle(t / "exported")->digest == m->digest);
  CHECK(r->export_bundle("churn/1", t / "exported").status().code() == StatusCode::kAlreadyExists);
  auto other = Registry::init(t / "other");
  REQUIRE(other.ok());
  REQUIRE((*other)->publish(t / "exported", "bob", "imported").ok());
  CHECK((*other)->show("churn/1")->digest == m->digest);
}

TEST_CASE("registry: publishers on several threads with their own connections never share a version number") {
  TempDir t;
  auto r = make_registry(t);
  const auto b = bundle(t, "churn", 1, "a");
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::int64_t> versions;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto mine = Registry::open(t / "reg");
      if (!mine.ok()) {
        ++failures;
        return;
      }
      for (int k = 0; k < 5; ++k) {
        auto v = (*mine)->publish(b, "thread", "");
        if (!v.ok()) {
          ++failures;
          continue;
        }
        std::lock_guard<std::mutex> g(mu);
        versions.push_back(*v);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  std::set<std::int64_t> unique(versions.begin(), versions.end());
  CHECK(unique.size() == 20);
  CHECK(*unique.rbegin() == 20);
  CHECK(r->verify_audit().ok());
}

TEST_CASE("registry: bad arguments are clear errors") {
  TempDir t;
  auto r = make_registry(t);
  CHECK(r->publish(t / "missing", "alice", "").status().code() == StatusCode::kNotFound);
  CHECK(r->publish(t.path(), "", "").status().code() == StatusCode::kInvalidArgument);
  CHECK(r->approve("churn", 1, "bob", "").code() == StatusCode::kNotFound);
  CHECK(r->trust_key("abc", "admin").code() == StatusCode::kInvalidArgument);
  CHECK(r->protect_alias("latest", 1, "admin").code() == StatusCode::kInvalidArgument);
  CHECK(r->alias_history("bad name", "").status().code() == StatusCode::kInvalidArgument);
  CHECK(r->show("churn@production").status().code() == StatusCode::kNotFound);
}

TEST_CASE("registry: an encrypted registry stores no plaintext, loads with its key and refuses any other") {
  TempDir t;
  const std::string key(64, 'a');
  ember::RegistryOptions o;
  o.encryption_key = key;
  auto r = Registry::init(t / "reg", o);
  REQUIRE(r.ok());
  const auto b = bundle(t, "secret", 1, "a");
  REQUIRE((*r)->publish(b, "alice", "").ok());
  const std::string schema = ember_test::read_all(b / "schema.json");
  for (auto& e : std::filesystem::recursive_directory_iterator(t / "reg" / "blobs")) {
    if (e.is_regular_file()) CHECK(ember_test::read_all(e.path()).find("\"properties\"") == std::string::npos);
  }
  auto model = (*r)->load_model("secret/1");
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  ember::Prediction p;
  REQUIRE((*model)->predict(R"({"a": 1, "b": 1})", p).ok());
  CHECK(p.value("output", 0).value() == Approx(3.5));
  auto resolved = (*r)->resolve("secret/1");
  REQUIRE(resolved.ok());
  CHECK(ember_test::read_all(resolved->dir / "schema.json") == schema);
  CHECK(resolved->dir.string().find((t / "reg").string()) == std::string::npos);  // not beside the blobs
  REQUIRE((*r)->check(true)->ok());
  const auto private_dir = resolved->dir.parent_path().parent_path();
  r->reset();
  CHECK_FALSE(std::filesystem::exists(private_dir));  // decrypted files leave with the Registry

  CHECK(Registry::open(t / "reg").status().code() == StatusCode::kFailedPrecondition);
  o.encryption_key = std::string(64, 'b');
  CHECK(Registry::open(t / "reg", o).status().code() == StatusCode::kPermissionDenied);
  o.encryption_key = "short";
  CHECK(Registry::open(t / "reg", o).status().code() == StatusCode::kInvalidArgument);
  o.encryption_key = key;
  REQUIRE(Registry::open(t / "reg", o).ok());

  // A flipped byte in a blob fails authentication: the version never loads.
  const auto sha = (*Registry::open(t / "reg", o))->show("secret/1")->files.at(0).sha256;
  const auto blob = t / "reg" / "blobs" / "sha256" / sha.substr(0, 2) / sha;
  std::string bytes = ember_test::read_all(blob);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
  ember_test::write_all(blob, bytes);
  auto again = Registry::open(t / "reg", o);
  REQUIRE(again.ok());
  auto bad = (*again)->load_model("secret/1");
  CHECK(bad.status().code() == StatusCode::kPermissionDenied);
  CHECK((*again)->audit()->back().event == "verify_failed");
  CHECK_FALSE((*again)->check(true)->ok());
  // A registry made without a key refuses one.
  REQUIRE(Registry::init(t / "plain").ok());
  CHECK(Registry::open(t / "plain", o).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("registry: one made before rollouts were kept gains their table when opened") {
  TempDir t;
  {
    auto r = make_registry(t);
    REQUIRE(r->publish(bundle(t, "churn", 1, "a"), "alice", "").ok());
  }
  sql(t / "reg" / "registry.db", "DROP TABLE rollouts");
  auto r = Registry::open(t / "reg");
  REQUIRE(r.ok());
  CHECK((*r)->rollout("churn", "production").status().code() == StatusCode::kNotFound);
  auto all = (*r)->rollouts("");
  REQUIRE(all.ok());
  CHECK(all->empty());
  auto check = (*r)->check(false);
  REQUIRE(check.ok());
  CHECK(check->ok());
}
