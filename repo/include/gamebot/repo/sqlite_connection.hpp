#pragma once

#include <memory>

#include "gamebot/repo/connection.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace gamebot::repo {

// The SQLite driver. Exposed for backends that need sqlite-specific features (backup API,
// PRAGMA data_version, sqlite3_update_hook, ...) through native_handle().
class SqliteConnection final : public Connection {
 public:
  // Opens `url` (must be sqlite:). Applies busy_timeout, WAL (file databases), synchronous and
  // foreign_keys. Throws DatabaseError (configuration when the file cannot be opened).
  static std::unique_ptr<SqliteConnection> open(const DatabaseUrl& url,
                                                const SqliteOptions& options = {});
  ~SqliteConnection() override;

  Driver driver() const noexcept override { return Driver::sqlite; }
  std::int64_t execute_params(std::string_view sql, std::span<const Param> params) override;
  Result query_params(std::string_view sql, std::span<const Param> params) override;
  void execute_batch(std::string_view sql) override;
  void ping() override;
  bool is_alive() noexcept override;
  bool in_transaction() const noexcept override;
  std::size_t cached_statements() const noexcept override;
  void clear_statement_cache() override;

  // The sqlite3 handle; owned by this object. Use it on the thread that holds the connection,
  // and leave the transaction state to Transaction.
  sqlite3* native_handle() const noexcept;
  // rowid of the last successful INSERT on this connection.
  std::int64_t last_insert_rowid() const noexcept;

  class Impl;

 protected:
  void run_control(std::string_view sql) override;

 private:
  SqliteConnection(DatabaseUrl url, std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The SQLite driver behind `connection`; throws std::logic_error if it is another driver.
SqliteConnection& as_sqlite(Connection& connection);

}  // namespace gamebot::repo
