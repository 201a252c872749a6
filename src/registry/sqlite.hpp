#pragma once

// A thin RAII layer over SQLite: a connection, prepared statements, transactions.
// Every failure is a Status (busy after the timeout: Unavailable; corrupt: DataLoss).

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "ember/status.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ember::detail {

class Db;

class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& other) noexcept;
  ~Stmt();

  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind_null(int i);
  /// true: a row is ready; false: done. Errors become a Status in `status`.
  Result<bool> step();
  /// step() until done; an error otherwise.
  Status run();
  void reset();
  /// Calls `f()` for each row (read it through this statement) until the last, then
  /// resets. `f` returns void, or a Status that stops the walk when not OK.
  template <typename F>
  Status each(F&& f) {
    for (;;) {
      auto row = step();
      if (!row.ok() || !*row) {
        reset();
        return row.status();
      }
      if constexpr (std::is_same_v<std::invoke_result_t<F>, Status>) {
        Status s = f();
        if (!s.ok()) {
          reset();
          return s;
        }
      } else {
        f();
      }
    }
  }

  [[nodiscard]] std::int64_t int64(int col) const;
  [[nodiscard]] std::string text(int col) const;
  [[nodiscard]] bool is_null(int col) const;

 private:
  friend class Db;
  Stmt(Db* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

/// A borrowed statement, reset (bindings cleared) when the handle goes.
class StmtRef {
 public:
  explicit StmtRef(Stmt* s) : s_(s) {}
  StmtRef(StmtRef&& other) noexcept : s_(other.s_) { other.s_ = nullptr; }
  StmtRef& operator=(StmtRef&&) = delete;
  ~StmtRef() {
    if (s_ != nullptr) s_->reset();
  }
  Stmt* operator->() const { return s_; }
  Stmt& operator*() const { return *s_; }

 private:
  Stmt* s_;
};

class Db {
 public:
  /// Opens (creating when `create`) the database at `path`, in WAL mode with full sync
  /// and foreign keys, waiting up to `busy_timeout_ms` for other writers.
  static Result<Db> open(const std::string& path, bool create, int busy_timeout_ms);
  /// OK, or FailedPrecondition in a build without SQLite (EMBER_WITH_REGISTRY=OFF).
  static Status available();
  Db() = default;
  Db(Db&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Db& operator=(Db&& other) noexcept;
  ~Db();

  Status exec(std::string_view sql);
  Result<Stmt> prepare(std::string_view sql);
  /// A Status for the last error, with `what` as context.
  [[nodiscard]] Status error(std::string_view what, int rc) const;
  [[nodiscard]] std::int64_t changes() const;

 private:
  sqlite3* db_ = nullptr;
};

/// BEGIN IMMEDIATE (takes the write lock now, so reads inside see what the write will
/// change) ... commit(); rolled back when destroyed uncommitted.
class WriteTxn {
 public:
  explicit WriteTxn(Db& db) : db_(db) {}
  Status begin() {
    Status s = db_.exec("BEGIN IMMEDIATE");
    open_ = s.ok();
    return s;
  }
  Status commit() {
    Status s = db_.exec("COMMIT");
    if (s.ok()) open_ = false;
    return s;
  }
  ~WriteTxn() {
    if (open_) (void)db_.exec("ROLLBACK");
  }
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;

 private:
  Db& db_;
  bool open_ = false;
};

}  // namespace ember::detail
