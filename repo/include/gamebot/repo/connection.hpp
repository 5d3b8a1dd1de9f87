#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/options.hpp"
#include "gamebot/repo/param.hpp"
#include "gamebot/repo/result.hpp"

namespace gamebot::repo {

// A place in the source. Callers' places come from default arguments `const char* file =
// __builtin_FILE(), unsigned line = __builtin_LINE()`: a form GCC and Clang share (Clang 14 with
// libstdc++ 12, which builds the fuzzers, has no std::source_location).
struct SourcePlace {
  const char* file = "";
  unsigned line = 0;
};

class Transaction;

// One database connection (SQLite or PostgreSQL). Statements go through a per-connection cache
// of prepared statements keyed by SQL text; parameters are bound ($1..$n), never spliced.
//
// Thread safety: a Connection is used by one thread at a time (the Pool and Repo hand each one
// to a single holder). Errors: every failure is a DatabaseError classified into a FaultClass;
// a connectivity fault marks the connection broken() so a pool discards it.
class Connection {
 public:
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  virtual Driver driver() const noexcept = 0;
  // The URL it was opened with (print it with redacted()).
  const DatabaseUrl& url() const noexcept { return url_; }
  // Process-unique number for diagnostics ("connection #12").
  std::uint64_t id() const noexcept { return id_; }

  // Runs a statement; returns the number of affected rows. Any result rows are discarded.
  template <typename... Args>
  std::int64_t execute(std::string_view sql, const Args&... args) {
    const std::array<Param, sizeof...(Args)> params{Param(args)...};
    return execute_params(sql, std::span<const Param>(params));
  }
  // Runs a statement and returns its rows.
  template <typename... Args>
  Result query(std::string_view sql, const Args&... args) {
    const std::array<Param, sizeof...(Args)> params{Param(args)...};
    return query_params(sql, std::span<const Param>(params));
  }
  // The first column of the first row; nullopt when there is no row. For a nullable column use
  // T = std::optional<U>.
  template <typename T, typename... Args>
  std::optional<T> query_value(std::string_view sql, const Args&... args) {
    Result result = query(sql, args...);
    if (!result.next()) return std::nullopt;
    return result.row().template get<T>(0);
  }

  virtual std::int64_t execute_params(std::string_view sql, std::span<const Param> params) = 0;
  virtual Result query_params(std::string_view sql, std::span<const Param> params) = 0;
  // Runs several ';'-separated statements without parameters (migrations, DDL scripts).
  virtual void execute_batch(std::string_view sql) = 0;

  // A round trip proving the connection works; throws DatabaseError (connectivity) otherwise.
  virtual void ping() = 0;
  // Cheap local check (no round trip): false when the connection is known to be dead (broken(),
  // or for PostgreSQL a closed socket, e.g. after pg_terminate_backend).
  virtual bool is_alive() noexcept = 0;
  // True after a connectivity fault: the connection must not be reused.
  bool broken() const noexcept { return broken_; }

  // Whether the driver reports an open transaction block.
  virtual bool in_transaction() const noexcept = 0;
  // Nesting depth of Transaction objects on this connection (0 = none; 2 = one savepoint).
  int transaction_depth() const noexcept { return depth_; }
  // "file:line" where the open Transaction of `level` (1 = outermost) was begun; empty when no
  // transaction of that level is open.
  std::string transaction_begun_at(int level) const;

  // Number of cached prepared statements, and dropping them all (PostgreSQL: DEALLOCATE).
  virtual std::size_t cached_statements() const noexcept = 0;
  virtual void clear_statement_cache() = 0;

 protected:
  explicit Connection(DatabaseUrl url);
  void mark_broken() noexcept { broken_ = true; }
  // Transaction control without parameters on the fastest path of the driver.
  virtual void run_control(std::string_view sql) = 0;

 private:
  friend class Transaction;
  friend class Pool;
  friend class PooledConnection;
  friend class SandboxState;
  // Rolls back whatever is open and resets the depth; false if that failed (connection unusable).
  bool reset_transaction_state() noexcept;

  DatabaseUrl url_;
  std::uint64_t id_;
  int depth_ = 0;
  // begun_at_[level - 1]: where the open Transaction of that level was begun (valid up to
  // depth_; kept as locations, formatted only for a report, so a BEGIN costs no allocation).
  std::vector<SourcePlace> begun_at_;
  bool broken_ = false;
};

// Opens a connection for `url`. Throws DatabaseError: connectivity (refused, unreachable,
// timeout), authentication (wrong password, unknown role), configuration (missing database,
// unopenable file). Messages name host, port, user and database, never the password.
std::unique_ptr<Connection> connect(const DatabaseUrl& url, const ConnectOptions& options = {});
std::unique_ptr<Connection> connect(std::string_view url, const ConnectOptions& options = {});

}  // namespace gamebot::repo
