// Four processes share one registry: each makes 50 operations (publish, move an alias
// by compare-and-swap, approve, resolve) at once. Afterwards no version number is
// repeated or lost, every successful alias move is in the history and the moves chain
// (each starts where the previous ended), and the audit chain is intact.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

#include "ember/ember.hpp"
#include "registry/helpers.hpp"

using ember::Registry;
using ember::StatusCode;
using ember_test::TempDir;

namespace {

constexpr int kProcesses = 4;
constexpr int kOperations = 50;

struct Tally {
  int published = 0, moved = 0, conflicts = 0, approved = 0, resolved = 0, errors = 0;
  std::vector<std::int64_t> versions;
  std::string first_error;
};

void note_error(Tally& t, const ember::Status& s) {
  ++t.errors;
  if (t.first_error.empty()) t.first_error = s.to_string();
}

// One process's work; written to `out` as "published moved conflicts approved resolved errors v1 v2 ...".
[[noreturn]] void worker(int id, const std::filesystem::path& reg, const std::filesystem::path& bundle,
                         const std::filesystem::path& out) {
  Tally t;
  auto r = Registry::open(reg);
  if (!r.ok()) {
    note_error(t, r.status());
  } else {
    std::mt19937 rng(static_cast<unsigned>(id * 7919 + 1));
    const std::string actor = "worker-" + std::to_string(id);
    for (int op = 0; op < kOperations; ++op) {
      switch (rng() % 4) {
        case 0: {
          auto v = (*r)->publish(bundle, actor, "stress");
          if (v.ok()) {
            ++t.published;
            t.versions.push_back(*v);
          } else {
            note_error(t, v.status());
          }
          break;
        }
        case 1: {
          auto latest = (*r)->show("m@latest");
          if (!latest.ok()) break;  // nothing published yet
          auto current = (*r)->show("m@production");
          const std::int64_t expected = current.ok() ? current->version : Registry::kUnset;
          const std::int64_t target = 1 + static_cast<std::int64_t>(rng() % static_cast<unsigned>(latest->version));
          auto e = (*r)->set_alias("m", "production", target, expected, actor, "stress");
          if (e.ok()) ++t.moved;
          else if (e.status().code() == StatusCode::kAborted) ++t.conflicts;
          else note_error(t, e.status());
          break;
        }
        case 2: {
          auto latest = (*r)->show("m@latest");
          if (!latest.ok()) break;
          const auto s = (*r)->approve("m", latest->version, actor, "");
          if (s.ok()) ++t.approved;
          else if (s.code() != StatusCode::kAlreadyExists) note_error(t, s);
          break;
        }
        default: {
          auto b = (*r)->resolve(rng() % 2 ? "m@production" : "m@latest");
          if (b.ok()) ++t.resolved;
          else if (b.status().code() != StatusCode::kNotFound) note_error(t, b.status());
        }
      }
    }
  }
  std::ofstream f(out);
  f << t.published << ' ' << t.moved << ' ' << t.conflicts << ' ' << t.approved << ' ' << t.resolved << ' '
    << t.errors;
  for (auto v : t.versions) f << ' ' << v;
  f << "\n" << t.first_error << "\n";
  f.close();
  std::_Exit(0);
}

}  // namespace

TEST_CASE("registry: 4 processes x 50 operations at once lose no update and repeat no version") {
  TempDir t;
  REQUIRE(Registry::init(t / "reg").ok());
  ember_test::write_linear_model(t / "model");
  ember::BundleCreateOptions o;
  o.name = "m";
  REQUIRE(ember::create_bundle(t / "model", t / "bundle", o).ok());

  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) worker(i, t / "reg", t / "bundle", t / ("tally-" + std::to_string(i)));
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
  }

  Tally total;
  std::set<std::int64_t> versions;
  for (int i = 0; i < kProcesses; ++i) {
    std::ifstream f(t / ("tally-" + std::to_string(i)));
    std::string line, error;
    REQUIRE(std::getline(f, line));
    std::getline(f, error);
    std::istringstream in(line);
    Tally one;
    in >> one.published >> one.moved >> one.conflicts >> one.approved >> one.resolved >> one.errors;
    INFO("worker " << i << ": " << error);
    CHECK(one.errors == 0);
    std::int64_t v = 0;
    while (in >> v) CHECK(versions.insert(v).second);  // no number given twice
    total.published += one.published;
    total.moved += one.moved;
    total.conflicts += one.conflicts;
    total.approved += one.approved;
  }
  REQUIRE(total.published > 0);
  CHECK(total.moved > 0);
  CHECK(total.approved > 0);
  WARN("published " << total.published << ", alias moves " << total.moved << " (conflicts " << total.conflicts
                     << "), approvals " << total.approved);
  CHECK(static_cast<int>(versions.size()) == total.published);
  CHECK(*versions.rbegin() == total.published);  // 1..N, none lost

  auto r = Registry::open(t / "reg");
  REQUIRE(r.ok());
  auto history = (*r)->alias_history("m", "production");
  REQUIRE(history.ok());
  CHECK(static_cast<int>(history->size()) == total.moved);
  for (std::size_t i = 1; i < history->size(); ++i) CHECK((*history)[i].from == (*history)[i - 1].to);
  if (!history->empty()) CHECK((*r)->resolve("m@production")->version == history->back().to);
  REQUIRE((*r)->verify_audit().ok());
  auto audit = (*r)->audit();
  REQUIRE(audit.ok());
  // init + every publish, move and approval, nothing else and nothing lost.
  CHECK(static_cast<int>(audit->size()) == 1 + total.published + total.moved + total.approved);
  auto check = (*r)->check(true);
  REQUIRE(check.ok());
  CHECK(check->ok());
}
