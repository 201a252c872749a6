// The registry's store in a build without SQLite (EMBER_WITH_REGISTRY=OFF): no database
// can be opened, so Registry::open/init answer FailedPrecondition before touching the
// directory, and nothing below Db::open is ever reached.
#include "registry/sqlite.hpp"

namespace ember::detail {

namespace {
Status no_registry() {
  return failed_precondition("this build of ember has no registry (EMBER_WITH_REGISTRY=OFF, which leaves out SQLite)");
}
}  // namespace

Status Db::available() { return no_registry(); }

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  db_ = other.db_;
  stmt_ = other.stmt_;
  other.stmt_ = nullptr;
  return *this;
}
Stmt::~Stmt() = default;
Stmt& Stmt::bind(int, std::int64_t) { return *this; }
Stmt& Stmt::bind(int, std::string_view) { return *this; }
Stmt& Stmt::bind_null(int) { return *this; }
Result<bool> Stmt::step() { return no_registry(); }
Status Stmt::run() { return no_registry(); }
void Stmt::reset() {}
std::int64_t Stmt::int64(int) const { return 0; }
std::string Stmt::text(int) const { return {}; }
bool Stmt::is_null(int) const { return true; }

Db& Db::operator=(Db&& other) noexcept {
  db_ = other.db_;
  other.db_ = nullptr;
  return *this;
}
Db::~Db() = default;
Status Db::error(std::string_view, int) const { return no_registry(); }
Result<Db> Db::open(const std::string&, bool, int) { return no_registry(); }
Status Db::exec(std::string_view) { return no_registry(); }
Result<Stmt> Db::prepare(std::string_view) { return no_registry(); }
std::int64_t Db::changes() const { return 0; }

}  // namespace ember::detail
