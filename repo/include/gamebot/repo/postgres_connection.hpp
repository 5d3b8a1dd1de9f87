#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "gamebot/repo/connection.hpp"

struct pg_conn;
struct pg_result;

namespace gamebot::repo {

// The PostgreSQL driver (libpq). Results are fetched in binary format and converted by column
// type. Exposed for backends that need libpq features (COPY, pipeline mode, LISTEN/NOTIFY)
// through native_handle().
class PostgresConnection final : public Connection {
 public:
  // Connects to `url` (must be postgres). Sets application_name, connect_timeout, keepalives
  // and statement_timeout from `options` unless the URL sets them. Throws DatabaseError
  // (connectivity / authentication / configuration); the password never appears.
  // Every PostgreSQL connection of the kit is opened here (repo::connect, the store's pool and
  // listener), so the rule for a full server lives here: a refusal with too_many_connections
  // (SQLSTATE 53300) is retried with backoff for up to PostgresOptions::connection_slot_wait,
  // with a progress line on the log every 5 s, and thrown only when no slot freed in that time;
  // and a connection opened with options.budget counts against it (connection_budget.hpp),
  // which decides whether a full server may be waited for at all.
  static std::unique_ptr<PostgresConnection> open(const DatabaseUrl& url,
                                                  const PostgresOptions& options = {});
  // Connects `count` connections to `url` at once, their set-ups overlapping on the server (a
  // short-lived process that needs several pays about one set-up's latency, not `count`).
  // All or nothing: on any failure the others are closed and that failure is thrown, classified
  // as open() does; a full server's refusal (53300) is not waited for here. No budget:
  // options.budget must be null (std::logic_error), ConnectionBudget::reserve() counts them.
  static std::vector<std::unique_ptr<PostgresConnection>> open_together(
      const DatabaseUrl& url, std::size_t count, const PostgresOptions& options = {});
  // The same, one connection to each of `urls` (in that order), which may name different
  // databases of the server.
  static std::vector<std::unique_ptr<PostgresConnection>> open_together(
      std::span<const DatabaseUrl> urls, const PostgresOptions& options = {});
  ~PostgresConnection() override;

  Driver driver() const noexcept override { return Driver::postgres; }
  std::int64_t execute_params(std::string_view sql, std::span<const Param> params) override;
  Result query_params(std::string_view sql, std::span<const Param> params) override;
  void execute_batch(std::string_view sql) override;
  void ping() override;
  bool is_alive() noexcept override;
  bool in_transaction() const noexcept override;
  std::size_t cached_statements() const noexcept override;
  void clear_statement_cache() override;

  // The libpq connection (PGconn*); owned by this object. Use it on the thread that holds the
  // connection; leave it idle (no pending results, no open COPY) when done.
  pg_conn* native_handle() const noexcept;
  // PQexecParams of `sql` (not prepared) with `count` parameters and a binary
  // result, under options.operation_timeout when it is set (no answer in time:
  // DatabaseError(timeout), connection marked broken). `types`, `values`,
  // `lengths` and `formats` are PQexecParams' arrays. Returns the successful
  // result, owned by the caller (PQclear); throws DatabaseError for a failure.
  // For backends that decode rows straight from libpq.
  pg_result* exec_params_binary(std::string_view sql, int count, const unsigned int* types,
                                const char* const* values, const int* lengths, const int* formats);
  // pg_backend_pid() of the server process serving this connection.
  int backend_pid() const noexcept;
  // Server version as PQserverVersion reports it (150004 for 15.4).
  int server_version() const noexcept;
  // Throws the DatabaseError for a failed libpq call on this connection, classifying the
  // PGresult (may be null) — for backends calling libpq directly. Marks the connection broken
  // when libpq reports it lost. Takes ownership of `result` (cleared).
  [[noreturn]] void throw_error(pg_result* result, std::string_view context);

  class Impl;

 protected:
  void run_control(std::string_view sql) override;

 private:
  // One attempt of open(), without the wait for a slot.
  static std::unique_ptr<PostgresConnection> open_once(const DatabaseUrl& url,
                                                       const PostgresOptions& options);
  // Wraps `conn`, connected (CONNECTION_OK), as a PostgresConnection; takes ownership.
  static std::unique_ptr<PostgresConnection> adopt(const DatabaseUrl& url,
                                                   const PostgresOptions& options, pg_conn* conn);
  PostgresConnection(DatabaseUrl url, std::unique_ptr<Impl> impl);
  // Runs one libpq call the way PQexec would, under options.operation_timeout when it is set
  // (sent with a PQsend* function, awaited with poll()); `send` is that PQsend* call (returns
  // its int), `blocking` the PQexec-style call used when no deadline is set.
  template <typename Send, typename Blocking>
  pg_result* run(Send&& send, Blocking&& blocking, std::string_view context);
  std::unique_ptr<Impl> impl_;
};

// The PostgreSQL driver behind `connection`; throws std::logic_error if it is another driver.
PostgresConnection& as_postgres(Connection& connection);

}  // namespace gamebot::repo
