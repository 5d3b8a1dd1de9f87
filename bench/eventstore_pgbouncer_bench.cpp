// The PostgreSQL event store behind PgBouncer: 16 writer PROCESSES
// (bench/pgbouncer/writer.cpp), each appending single events to a stream of
// its own, first each with its own connections straight to the server, then
// through a PgBouncer in pool_mode = transaction with a pool of 4 server
// connections (the store's pooling=transaction), in the same run on the same
// server (GAMEBOT_BENCH_PG_URL on a unix socket, else the private server of
// private_postgres.hpp). A third variant runs straight to the server with
// pooling=transaction (unnamed statements, polling): what the mode costs
// without the pooler, to tell that apart from the pooler's own cost.
// Reported: appends/s of each (the writers start together; wall time from the
// start to the last writer's end, median over the rounds), the peak number of
// the database's server sessions opened for the run that pg_stat_activity
// showed while the writers ran (sampled every 20 ms; PgBouncer's server
// connections are closed before each run, so a pooled run counts the ones it
// opened), and on stderr the CPU time per append of the writers (whole
// processes) and, over the timed part, of the server and the PgBouncer, and
// the load average. A writer straight to the server holds two sessions: its
// pool's and its store's background (LISTEN) connection; through PgBouncer
// both share the pool's server connections.

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/bench/child_process.hpp"
#include "gamebot/bench/cpu_meter.hpp"
#include "gamebot/bench/private_postgres.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/identifier.hpp"

#ifndef GAMEBOT_PGBOUNCER_TEST_SERVER
#error "GAMEBOT_PGBOUNCER_TEST_SERVER (the path of scripts/pgbouncer-test-server) is not defined"
#endif
#ifndef GAMEBOT_BENCH_PG_WRITER
#error "GAMEBOT_BENCH_PG_WRITER (the path of gamebot-bench-pg-writer) is not defined"
#endif

extern char** environ;

namespace gamebot::bench {
namespace {

namespace es = gamebot::eventstore;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kWriters = 16;
constexpr std::size_t kPoolSize = 4;
// The writers' application_name, so that the sampler can tell their sessions apart.
constexpr const char* kWriterApplicationName = "gamebot-bench-writer";

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("eventstore/postgres/pgbouncer benchmark: " + what);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  in >> one >> five >> fifteen;
  return fmt::format("{:.2f} {:.2f} {:.2f}", one, five, fifteen);
}

// A PgBouncer in pool_mode = transaction from scripts/pgbouncer-test-server in
// front of the server on the unix socket `server_socket_dir`, stopped (and its
// directory removed) by the destructor.
class PrivatePgBouncer {
 public:
  PrivatePgBouncer(const std::string& server_socket_dir, std::size_t pool_size)
      : dir_((std::filesystem::temp_directory_path() /
              fmt::format("gamebot-bench-pgbouncer-{}", ::getpid()))
                 .string()) {
    run_child({GAMEBOT_PGBOUNCER_TEST_SERVER, "start", dir_, server_socket_dir,
               std::to_string(pool_size)});
    started_ = true;
  }
  ~PrivatePgBouncer() {
    if (!started_) return;
    try {
      run_child({GAMEBOT_PGBOUNCER_TEST_SERVER, "stop", dir_});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stopping the benchmark PgBouncer failed: %s\n", e.what());
    }
  }
  PrivatePgBouncer(const PrivatePgBouncer&) = delete;
  PrivatePgBouncer& operator=(const PrivatePgBouncer&) = delete;

  // Database "postgres" as user "postgres" on the PgBouncer's socket.
  std::string url() const { return "postgresql://postgres@/postgres?host=" + dir_ + "&port=6432"; }
  // Closes its server connections (admin console: KILL, then RESUME), so that
  // a run counts only the server sessions opened for it.
  void close_server_connections() const {
    const std::string console = "postgresql://postgres@/pgbouncer?host=" + dir_ + "&port=6432";
    PGconn* conn = PQconnectdb(console.c_str());
    std::string error;
    if (PQstatus(conn) != CONNECTION_OK) error = PQerrorMessage(conn);
    for (const char* command : {"KILL postgres", "RESUME postgres"}) {
      if (!error.empty()) break;
      PGresult* result = PQexec(conn, command);
      if (PQresultStatus(result) != PGRES_COMMAND_OK) {
        error = std::string(command) + ": " + PQerrorMessage(conn);
      }
      PQclear(result);
    }
    PQfinish(conn);
    if (!error.empty()) fail("PgBouncer admin console: " + error);
  }
  pid_t pid() const {
    std::ifstream in(dir_ + "/pgbouncer.pid");
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
  }

 private:
  std::string dir_;
  bool started_ = false;
};

// The peak number of the database's client sessions (and of the writers'
// among them) while it runs, sampled on a connection of its own (not counted).
class SessionSampler {
 public:
  // Counts only sessions that started at or after `since` (the server's clock).
  SessionSampler(const std::string& url, std::string since)
      : connection_(repo::connect(url)), since_(std::move(since)), thread_([this] { run(); }) {}
  ~SessionSampler() { stop(); }
  SessionSampler(const SessionSampler&) = delete;
  SessionSampler& operator=(const SessionSampler&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (error_) fail("sampling pg_stat_activity: " + *error_);
  }
  std::int64_t peak_sessions() const { return peak_sessions_; }
  std::int64_t peak_writer_sessions() const { return peak_writers_; }

 private:
  void run() {
    try {
      std::unique_lock lock(mutex_);
      while (!stopping_) {
        lock.unlock();
        sample();
        lock.lock();
        wake_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stopping_; });
      }
      sample();  // at least one sample however short the run
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  void sample() {
    const auto sessions = connection_->query_value<std::int64_t>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
        "backend_type = 'client backend' AND pid <> pg_backend_pid() AND "
        "backend_start >= $1::timestamptz",
        since_);
    const auto writers = connection_->query_value<std::int64_t>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
        "backend_type = 'client backend' AND backend_start >= $1::timestamptz AND "
        "application_name = $2",
        since_, std::string(kWriterApplicationName));
    peak_sessions_ = std::max(peak_sessions_, sessions.value_or(0));
    peak_writers_ = std::max(peak_writers_, writers.value_or(0));
  }

  std::unique_ptr<repo::Connection> connection_;
  std::string since_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::int64_t peak_sessions_ = 0;
  std::int64_t peak_writers_ = 0;
  std::optional<std::string> error_;
  std::thread thread_;  // last: starts after the members it uses
};

// A writer process with a pipe to its stdin (the start) and from its stdout
// ('R' when ready, 'D' when done).
struct Writer {
  pid_t pid = 0;
  int start = -1;
  int signals = -1;
};

Writer spawn_writer(const std::string& store_url, const std::string& stream, std::size_t count) {
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) fail("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
  const std::string count_text = std::to_string(count);
  std::vector<std::string> argv{GAMEBOT_BENCH_PG_WRITER, store_url, stream, count_text};
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(to_child[0]);
  ::close(from_child[1]);
  if (rc != 0) fail("cannot spawn " + argv[0]);
  return Writer{pid, to_child[1], from_child[0]};
}

void expect_signal(const Writer& writer, char expected) {
  char got = 0;
  if (::read(writer.signals, &got, 1) != 1 || got != expected) {
    fail(fmt::format("writer {} ended before '{}' (its stderr says why)", writer.pid, expected));
  }
}

// One run of kWriters processes; appends/s, peak sessions, CPU seconds.
struct RunResult {
  double appends_per_second = 0;
  std::int64_t sessions = 0;
  std::int64_t writer_sessions = 0;
  double writer_cpu = 0;
  double server_cpu = 0;
  double pgbouncer_cpu = 0;
};

RunResult run_writers(const std::string& store_url, const std::string& server_url,
                      const std::string& label, std::size_t per_writer, const CpuMeter& meter,
                      pid_t pgbouncer) {
  const std::string since =
      repo::connect(server_url)->query_value<std::string>("SELECT clock_timestamp()::text").value();
  std::vector<Writer> writers;
  for (std::size_t w = 0; w < kWriters; ++w) {
    writers.push_back(spawn_writer(store_url, fmt::format("{}-{}", label, w), per_writer));
  }
  for (const Writer& w : writers) expect_signal(w, 'R');
  RunResult result;
  SessionSampler sampler(server_url, since);
  const double server_before = meter.server_seconds();
  const double pgbouncer_before = pgbouncer > 0 ? process_cpu_seconds(pgbouncer) : 0;
  const auto start = Clock::now();
  for (const Writer& w : writers) {
    if (::write(w.start, "G", 1) != 1) fail("cannot start a writer");
  }
  for (const Writer& w : writers) expect_signal(w, 'D');
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  result.server_cpu = meter.server_seconds() - server_before;
  result.pgbouncer_cpu = pgbouncer > 0 ? process_cpu_seconds(pgbouncer) - pgbouncer_before : 0;
  sampler.stop();
  result.sessions = sampler.peak_sessions();
  result.writer_sessions = sampler.peak_writer_sessions();
  for (const Writer& w : writers) {
    ::close(w.start);
    ::close(w.signals);
    int status = 0;
    rusage usage{};
    while (::wait4(w.pid, &status, 0, &usage) < 0) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("a writer failed");
    result.writer_cpu += static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  }
  result.appends_per_second = secs > 0 ? static_cast<double>(kWriters * per_writer) / secs : 0;
  return result;
}

std::string with_parameters(const std::string& url, const std::string& parameters) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + parameters;
}

GAMEBOT_BENCHMARK("eventstore/postgres/pgbouncer", context) {
  const std::size_t per_writer = context.size<std::size_t>(400, 20);
  const int rounds = context.size(3, 1);
  const std::string url = bench_postgres_url();
  const std::string socket_dir = repo::DatabaseUrl::parse(url).host();
  if (socket_dir.empty() || socket_dir.front() != '/') {
    fail(
        "the server must be on a unix socket (host=/dir in GAMEBOT_BENCH_PG_URL) for "
        "scripts/pgbouncer-test-server to stand in front of it");
  }
  const std::string schema = fmt::format("gamebot_bench_pgb_{}", ::getpid());
  {
    auto admin = repo::connect(url);
    es::postgres_event_store_migrator(schema).migrate(*admin);
  }
  struct DropSchema {
    const std::string& url;
    const std::string& schema;
    ~DropSchema() {
      try {
        repo::connect(url)->execute_batch("DROP SCHEMA IF EXISTS " +
                                          repo::quote_identifier(schema) + " CASCADE");
      } catch (...) {
      }
    }
  } drop_schema{url, schema};
  const PrivatePgBouncer pgbouncer(socket_dir, kPoolSize);
  const std::string store =
      fmt::format("schema={}&application_name={}", schema, kWriterApplicationName);
  const std::string direct_url = with_parameters(url, store);
  const std::string direct_unprepared_url = with_parameters(url, store + "&pooling=transaction");
  const std::string pooled_url = with_parameters(pgbouncer.url(), store + "&pooling=transaction");
  const CpuMeter meter(url);
  const std::string load_before = load_average();

  struct Variant {
    const char* name;
    const std::string* url;
    pid_t pgbouncer;
    std::vector<RunResult> runs;
  };
  std::vector<Variant> variants{{"direct", &direct_url, 0, {}},
                                {"pgbouncer", &pooled_url, pgbouncer.pid(), {}},
                                {"direct_pooling_transaction", &direct_unprepared_url, 0, {}}};
  for (int round = 0; round < rounds; ++round) {
    for (Variant& v : variants) {
      pgbouncer.close_server_connections();
      v.runs.push_back(run_writers(*v.url, url, fmt::format("{}-{}", v.name, round), per_writer,
                                   meter, v.pgbouncer));
    }
  }

  auto rate = [](const Variant& v) {
    std::vector<double> rates;
    for (const RunResult& r : v.runs) rates.push_back(r.appends_per_second);
    return median(rates);
  };
  auto peak = [](const Variant& v, bool writers_only) {
    std::int64_t most = 0;
    for (const RunResult& r : v.runs) {
      most = std::max(most, writers_only ? r.writer_sessions : r.sessions);
    }
    return static_cast<double>(most);
  };
  const double appends = static_cast<double>(kWriters * per_writer) / 1e6;
  for (const Variant& v : variants) {
    double writer = 0, server = 0, bouncer = 0;
    for (const RunResult& r : v.runs) {
      writer += r.writer_cpu;
      server += r.server_cpu;
      bouncer += r.pgbouncer_cpu;
    }
    const double n = static_cast<double>(v.runs.size()) * appends;
    fmt::print(
        stderr,
        "pgbouncer bench, {}: {:.0f} appends/s (rounds:{}), peak server sessions {} "
        "(writers' application_name {}), CPU us per append: writers {:.0f}, server "
        "{:.0f}, pgbouncer {:.0f}\n",
        v.name, rate(v),
        [&] {
          std::string all;
          for (const RunResult& r : v.runs) all += fmt::format(" {:.0f}", r.appends_per_second);
          return all;
        }(),
        peak(v, false), peak(v, true), writer / n, server / n, bouncer / n);
  }
  fmt::print(stderr, "pgbouncer bench: load average before {}, after {}\n", load_before,
             load_average());

  const std::string prefix = "eventstore/postgres/pgbouncer/16_writers";
  const double direct = rate(variants[0]);
  context.report(rate_vs_baseline(prefix + "/pooled_vs_direct", rate(variants[1]), "appends/s",
                                  "16 processes, own connections to the server", direct, 0.8));
  Figure mode_cost;
  mode_cost.name = prefix + "/direct_pooling_transaction";
  mode_cost.value = rate(variants[2]);
  mode_cost.unit = "appends/s";
  mode_cost.baseline = Baseline{"16 processes, own connections to the server", direct};
  mode_cost.ratio = direct > 0 ? mode_cost.value / direct : 0;
  mode_cost.target = "context (no target)";
  context.report(std::move(mode_cost));
  Figure direct_sessions;
  direct_sessions.name = prefix + "/server_sessions_direct";
  direct_sessions.value = peak(variants[0], false);
  direct_sessions.unit = "sessions";
  direct_sessions.target = "context (no target)";
  context.report(std::move(direct_sessions));
  context.report(at_most(prefix + "/server_sessions_pooled", peak(variants[1], false), "sessions",
                         static_cast<double>(kPoolSize),
                         Baseline{"16 processes, own connections", peak(variants[0], false)}));
}

}  // namespace
}  // namespace gamebot::bench
