#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace gamebot::repo {

class ConnectionBudget;

// PRAGMA synchronous levels.
enum class SqliteSynchronous { off, normal, full, extra };

// SQLite connection settings. URL parameters (busy_timeout, synchronous, journal_mode,
// foreign_keys, mode) win over these.
struct SqliteOptions {
  bool wal = true;                                            // journal_mode=WAL for file databases
  std::chrono::milliseconds busy_timeout{5000};               // wait this long on a locked database
  bool foreign_keys = true;                                   // PRAGMA foreign_keys=ON
  SqliteSynchronous synchronous = SqliteSynchronous::normal;  // NORMAL is safe with WAL
  bool create_if_missing = true;                              // create the file when absent
  std::size_t statement_cache_capacity = 256;  // prepared statements kept per connection
};

// PostgreSQL connection settings. libpq parameters given in the URL win over these.
struct PostgresOptions {
  std::string application_name = "gamebot";        // shown in pg_stat_activity
  std::chrono::seconds connect_timeout{10};        // libpq connect_timeout (libpq minimum is 2 s)
  std::chrono::milliseconds statement_timeout{0};  // per statement; 0 = server default
  // Client-side deadline of each call's round trip, for a network that stalls without closing
  // (the server's statement_timeout never fires when the query does not arrive): past it the
  // call throws a `timeout` DatabaseError and the connection is dropped. 0 = wait as long as
  // the socket lives.
  std::chrono::milliseconds operation_timeout{0};
  bool keepalives = true;                        // TCP keepalives (no effect on unix sockets)
  std::chrono::seconds keepalives_idle{30};      // idle time before the first probe
  std::chrono::seconds keepalives_interval{10};  // between unanswered probes
  int keepalives_count = 3;                      // unanswered probes before the link is dead
  std::size_t statement_cache_capacity = 256;    // prepared statements kept per connection
  // Named prepared statements, cached per connection (statement_cache_capacity). false: every
  // statement runs as libpq's unnamed statement (PQexecParams: parse, bind and execute in one
  // round trip, nothing left on the server), for a pooler in transaction mode (PgBouncer 1.18),
  // which hands each transaction any server session, where a statement prepared on another is
  // unknown. Costs a parse and plan per call.
  bool prepared_statements = true;
  // Runs of a statement before it is prepared (like pgjdbc's prepareThreshold): below it a run
  // is libpq's unnamed statement, one round trip instead of the three of its first prepared run
  // (prepare, describe, execute) but a parse and plan each time; from it on, the cached prepared
  // statement. A short-lived process runs most statements once. 1 = prepare at the first run.
  // Ignored when prepared_statements is false.
  std::size_t prepare_threshold = 2;
  // How long connect() waits for a free slot when the server refuses with too_many_connections
  // (SQLSTATE 53300): many test processes against one server take turns for its
  // max_connections instead of failing. Progress goes to the log every 5 s. 0 = fail at once.
  std::chrono::milliseconds connection_slot_wait{120'000};
  // Counts every connection opened with these options against a cap and decides when a full
  // server may be waited for (connection_budget.hpp); a pool and the store's listener opened
  // with them count too. nullptr: no cap.
  std::shared_ptr<ConnectionBudget> budget;
};

// Settings for opening a connection of either driver.
struct ConnectOptions {
  SqliteOptions sqlite{};      // used when the URL is sqlite:
  PostgresOptions postgres{};  // used when the URL is postgres:// or key=value
};

}  // namespace gamebot::repo
