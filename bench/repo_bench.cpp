// gamebot::repo benchmarks: pool checkout, prepared insert/point select through repo versus the
// raw sqlite3 / libpq calls on the same statements, and sandbox begin+rollback on PostgreSQL.
// Raw and repo runs alternate in rounds (order swapped every round; single operations interleaved
// for PostgreSQL round trips) and each figure is the median round, so both sides see the same
// machine state.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/bench/private_postgres.hpp"
#include "gamebot/core/uuid.hpp"
#include "gamebot/repo/repo.hpp"

namespace {

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::bench::Baseline;
using gamebot::bench::Context;

constexpr const char* kInsert = "INSERT INTO bench_items (id, name, score) VALUES ($1, $2, $3)";
constexpr const char* kSelect = "SELECT name, score FROM bench_items WHERE id = $1";

// Nanoseconds per operation of `op(i)` run `n` times.
double ns_per_op(std::size_t n, const std::function<void(std::size_t)>& op) {
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) op(i);
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
             .count() /
         static_cast<double>(n);
}

double thread_cpu_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Pair {
  double raw_ns;
  double repo_ns;
};

// Alternates raw and repo runs; returns the median of each.
Pair alternate(int rounds, std::size_t n, const std::function<void(std::size_t)>& raw,
               const std::function<void(std::size_t)>& through_repo) {
  std::vector<double> a;
  std::vector<double> b;
  for (int r = 0; r < rounds; ++r) {
    // Swap the order every round so neither side always inherits the other's leftovers
    // (WAL checkpoints, server-side work).
    if (r % 2 == 0) {
      a.push_back(ns_per_op(n, raw));
      b.push_back(ns_per_op(n, through_repo));
    } else {
      b.push_back(ns_per_op(n, through_repo));
      a.push_back(ns_per_op(n, raw));
    }
  }
  return {median(a), median(b)};
}

// Interleaves single operations (raw/repo pairs, order alternating) and times each, so both sides
// meet the same scheduler and server conditions; for round-trip-bound work on a busy machine.
// Returns the mean of each side over the median-of-rounds.
Pair interleave(int rounds, std::size_t n, const std::function<void(std::size_t)>& raw,
                const std::function<void(std::size_t)>& through_repo) {
  std::vector<double> a;
  std::vector<double> b;
  for (int r = 0; r < rounds; ++r) {
    std::chrono::nanoseconds raw_total{0};
    std::chrono::nanoseconds repo_total{0};
    for (std::size_t i = 0; i < n; ++i) {
      bool raw_first = (i + static_cast<std::size_t>(r)) % 2 == 0;
      auto t0 = std::chrono::steady_clock::now();
      if (raw_first) {
        raw(i);
      } else {
        through_repo(i);
      }
      auto t1 = std::chrono::steady_clock::now();
      if (raw_first) {
        through_repo(i);
      } else {
        raw(i);
      }
      auto t2 = std::chrono::steady_clock::now();
      raw_total += raw_first ? t1 - t0 : t2 - t1;
      repo_total += raw_first ? t2 - t1 : t1 - t0;
    }
    a.push_back(static_cast<double>(raw_total.count()) / static_cast<double>(n));
    b.push_back(static_cast<double>(repo_total.count()) / static_cast<double>(n));
  }
  return {median(a), median(b)};
}

// Overhead figure: repo throughput relative to raw; target ratio >= 1 / (1 + overhead).
void report_overhead(Context& context, const std::string& name, const std::string& raw_name,
                     Pair pair, double max_overhead) {
  double repo_rate = 1e9 / pair.repo_ns;
  double raw_rate = 1e9 / pair.raw_ns;
  auto figure = gamebot::bench::rate_vs_baseline(name, repo_rate, "ops/s", raw_name, raw_rate,
                                                 1.0 / (1.0 + max_overhead));
  figure.target = fmt::format("overhead <= {:.0f}% (ratio >= {:.3f})", max_overhead * 100,
                              1.0 / (1.0 + max_overhead));
  context.report(figure);
}

void report_checkout(Context& context, const std::string& name, Pool& pool, std::size_t n,
                     int rounds) {
  // Baseline: the least a pool can do, a mutex-guarded free list.
  std::mutex mutex;
  std::vector<std::unique_ptr<int>> free_list;
  free_list.push_back(std::make_unique<int>(1));
  Pair pair = alternate(
      rounds, n,
      [&](std::size_t) {
        std::unique_ptr<int> item;
        {
          std::lock_guard lock(mutex);
          item = std::move(free_list.back());
          free_list.pop_back();
        }
        std::lock_guard lock(mutex);
        free_list.push_back(std::move(item));
      },
      [&](std::size_t) { PooledConnection c = pool.checkout(); });
  context.report(
      gamebot::bench::at_most(name, pair.repo_ns / 1000.0, "us", 1.0,
                              Baseline{"mutex-guarded free list pop+push", pair.raw_ns / 1000.0}));
  // The same per CPU second of this thread: on a loaded machine preemption stretches wall time.
  std::vector<double> cpu_ns;
  for (int r = 0; r < rounds; ++r) {
    const double start = thread_cpu_ns();
    for (std::size_t i = 0; i < n; ++i) PooledConnection c = pool.checkout();
    cpu_ns.push_back((thread_cpu_ns() - start) / static_cast<double>(n));
  }
  context.report(gamebot::bench::at_most(name + "/cpu", median(cpu_ns) / 1000.0, "us", 1.0));
}

// ---------------------------------------------------------------------------------------------

void sqlite_check(int rc, sqlite3* db) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
  }
}

GAMEBOT_BENCHMARK("repo/sqlite", context) {
  int rounds = context.size(7, 3);
  std::size_t inserts = context.size<std::size_t>(20000, 2000);
  std::size_t selects = context.size<std::size_t>(100000, 10000);
  std::size_t checkouts = context.size<std::size_t>(200000, 20000);

  auto dir =
      std::filesystem::temp_directory_path() / ("gamebot-repo-bench-" + Uuid::v4().to_string());
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{dir};
  auto url = DatabaseUrl::sqlite_file((dir / "bench.db").string());

  auto pool = Pool::create(url, PoolOptions{.min_size = 1, .max_size = 2});
  {
    PooledConnection c = pool->checkout();
    c->execute_batch("CREATE TABLE bench_items (id INTEGER PRIMARY KEY, name TEXT, score INTEGER)");
  }
  report_checkout(context, "repo/pool/checkout+return (sqlite)", *pool, checkouts, rounds);

  // The raw side: its own connection with the same pragmas the driver sets.
  sqlite3* db = nullptr;
  sqlite_check(sqlite3_open_v2(url.sqlite_path().c_str(), &db,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr),
               db);
  sqlite3_busy_timeout(db, 5000);
  sqlite_check(
      sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
                   nullptr, nullptr, nullptr),
      db);
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* select = nullptr;
  sqlite_check(sqlite3_prepare_v3(db, kInsert, -1, SQLITE_PREPARE_PERSISTENT, &insert, nullptr),
               db);
  sqlite_check(sqlite3_prepare_v3(db, kSelect, -1, SQLITE_PREPARE_PERSISTENT, &select, nullptr),
               db);

  PooledConnection conn = pool->checkout("bench");
  const std::string name = "player-name-0123456789";
  // One id sequence for both sides: each insert appends at the right edge of the primary key.
  std::int64_t next_id = 1;
  Pair insert_pair = alternate(
      rounds, inserts,
      [&](std::size_t i) {
        sqlite3_bind_int64(insert, 1, next_id++);
        sqlite3_bind_text(insert, 2, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
        sqlite3_bind_int64(insert, 3, static_cast<std::int64_t>(i));
        sqlite_check(sqlite3_step(insert), db);
        sqlite3_reset(insert);
      },
      [&](std::size_t i) { conn->execute(kInsert, next_id++, name, i); });
  report_overhead(context, "repo/sqlite/insert (file, WAL, autocommit)", "raw sqlite3 insert",
                  insert_pair, 0.10);

  std::int64_t rows = next_id - 1;
  std::string sink;
  std::int64_t total = 0;
  Pair select_pair = alternate(
      rounds, selects,
      [&](std::size_t i) {
        sqlite3_bind_int64(select, 1, static_cast<std::int64_t>(i % rows) + 1);
        if (sqlite3_step(select) == SQLITE_ROW) {
          sink.assign(reinterpret_cast<const char*>(sqlite3_column_text(select, 0)),
                      static_cast<std::size_t>(sqlite3_column_bytes(select, 0)));
          total += sqlite3_column_int64(select, 1);
        }
        sqlite3_reset(select);
      },
      [&](std::size_t i) {
        Result r = conn->query(kSelect, static_cast<std::int64_t>(i % rows) + 1);
        if (r.next()) {
          Row row = r.row();
          sink = row.get<std::string_view>(0);
          total += row.get<std::int64_t>(1);
        }
      });
  report_overhead(context, "repo/sqlite/point select", "raw sqlite3 point select", select_pair,
                  0.10);
  sqlite3_finalize(insert);
  sqlite3_finalize(select);
  sqlite3_close_v2(db);
  if (total < 0) fmt::print(stderr, "{}", sink);
}

// ---------------------------------------------------------------------------------------------

GAMEBOT_BENCHMARK("repo/postgres", context) {
  int rounds = context.size(7, 3);
  std::size_t inserts = context.size<std::size_t>(4000, 400);
  std::size_t selects = context.size<std::size_t>(4000, 400);
  std::size_t checkouts = context.size<std::size_t>(200000, 20000);
  std::size_t sandboxes = context.size<std::size_t>(2000, 200);

  // GAMEBOT_BENCH_PG_URL, else the run's private server (shared with the other benchmarks).
  const std::string url_text = gamebot::bench::bench_postgres_url();
  auto url = DatabaseUrl::parse(url_text);
  std::string table_schema = "gamebot_bench_" + std::to_string(::getpid());
  RepoOptions options;
  options.pool.min_size = 1;
  options.pool.max_size = 2;
  Repo repo = Repo::open(url.with_parameter("options", "-c search_path=" + table_schema), options);
  repo.run([&](Connection& c) {
    c.execute_batch("CREATE SCHEMA " + quote_identifier(table_schema) +
                    "; CREATE TABLE bench_items (id bigint PRIMARY KEY, name text, score bigint)");
  });
  struct DropSchema {
    Repo& repo;
    std::string schema;
    ~DropSchema() {
      try {
        repo.run([&](Connection& c) {
          c.execute_batch("DROP SCHEMA " + quote_identifier(schema) + " CASCADE");
        });
      } catch (...) {
      }
    }
  } drop{repo, table_schema};

  report_checkout(context, "repo/pool/checkout+return (postgres)", repo.pool(), checkouts, rounds);

  // The raw side: its own libpq connection, same statements, text parameters.
  PGconn* raw = PQconnectdb((url_text + (url_text.find('?') == std::string::npos ? "?" : "&") +
                             "options=-c%20search_path%3D" + table_schema)
                                .c_str());
  if (PQstatus(raw) != CONNECTION_OK) {
    std::string message = PQerrorMessage(raw);
    PQfinish(raw);
    throw std::runtime_error("raw libpq connect failed: " + message);
  }
  auto raw_ok = [&](PGresult* r) {
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      std::string message = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("raw libpq: " + message);
    }
    return r;
  };
  PQclear(raw_ok(PQprepare(raw, "ins", kInsert, 0, nullptr)));
  PQclear(raw_ok(PQprepare(raw, "sel", kSelect, 0, nullptr)));

  ConnectionLease conn = repo.acquire("bench");
  const std::string name = "player-name-0123456789";
  std::int64_t next_id = 1;
  Pair insert_pair = interleave(
      rounds, inserts,
      [&](std::size_t i) {
        std::string id = std::to_string(next_id++);
        std::string score = std::to_string(i);
        const char* values[3] = {id.c_str(), name.c_str(), score.c_str()};
        PQclear(raw_ok(PQexecPrepared(raw, "ins", 3, values, nullptr, nullptr, 0)));
      },
      [&](std::size_t i) { conn->execute(kInsert, next_id++, name, i); });
  report_overhead(context, "repo/postgres/insert (autocommit)", "raw libpq insert", insert_pair,
                  0.05);

  std::int64_t rows = next_id - 1;
  std::string sink;
  std::int64_t total = 0;
  Pair select_pair = interleave(
      rounds, selects,
      [&](std::size_t i) {
        std::string id = std::to_string(static_cast<std::int64_t>(i % rows) + 1);
        const char* values[1] = {id.c_str()};
        PGresult* r = raw_ok(PQexecPrepared(raw, "sel", 1, values, nullptr, nullptr, 0));
        if (PQntuples(r) == 1) {
          sink.assign(PQgetvalue(r, 0, 0), static_cast<std::size_t>(PQgetlength(r, 0, 0)));
          total += std::strtoll(PQgetvalue(r, 0, 1), nullptr, 10);
        }
        PQclear(r);
      },
      [&](std::size_t i) {
        Result r = conn->query(kSelect, static_cast<std::int64_t>(i % rows) + 1);
        if (r.next()) {
          Row row = r.row();
          sink = row.get<std::string_view>(0);
          total += row.get<std::int64_t>(1);
        }
      });
  report_overhead(context, "repo/postgres/point select", "raw libpq point select", select_pair,
                  0.05);
  conn.release();

  Pair sandbox_pair = interleave(
      rounds, sandboxes,
      [&](std::size_t) {
        PQclear(raw_ok(PQexec(raw, "BEGIN")));
        PQclear(raw_ok(PQexec(raw, "ROLLBACK")));
      },
      [&](std::size_t) { Sandbox sandbox(repo, SandboxOptions{.label = "bench"}); });
  context.report(gamebot::bench::at_most(
      "repo/postgres/sandbox begin+rollback", sandbox_pair.repo_ns / 1000.0, "us", 300.0,
      Baseline{"raw libpq BEGIN+ROLLBACK", sandbox_pair.raw_ns / 1000.0}));
  PQfinish(raw);
  if (total < 0) fmt::print(stderr, "{}", sink);
}

}  // namespace
