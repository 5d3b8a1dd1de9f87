// PostgreSQL event-store backend benchmarks, each beside raw libpq in the same
// run, on the same server (GAMEBOT_BENCH_PG_URL, else a private server from
// scripts/pg-test-server: fsync off, unix socket):
// * batched append (100 events per call) against raw binary COPY of the same
//   rows (one COPY per batch) into a table with the same columns and indexes;
// * single-event append against one raw prepared INSERT per event;
// * reading $all forward (pages of 1,000) against raw keyset-paged SELECTs;
// * 4 writers on distinct streams against 1 writer (single-event appends);
// * group commit (its own benchmark, eventstore/postgres/group_commit), with
//   the server's fsync off and then on: 8 writers on distinct streams against
//   1 writer and against 8 raw libpq threads each doing its own INSERT, and a
//   lone writer's p50 latency against the same store with group commit off;
// * live delivery from an append here to a subscriber in another process
//   (fork) against a bare NOTIFY -> LISTEN between two processes.
// Events: ~200-byte data, small metadata, all ids set, spread over 10,000
// streams (500 under --quick).

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/bench/cpu_meter.hpp"
#include "gamebot/bench/private_postgres.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"

namespace gamebot::bench {
namespace {

namespace es = gamebot::eventstore;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 100;
constexpr std::size_t kDataBytes = 200;

std::string stream_name(std::size_t stream) {
  return fmt::format("game-{:06}", stream);
}

// The i-th benchmark event (as in the other event-store benchmarks).
es::EventData make_event(std::size_t i) {
  static const char* const kTypes[] = {"GameStarted", "GuessMade", "GuessScored", "RoundEnded"};
  es::EventData e;
  e.type = kTypes[i % 4];
  e.data = fmt::format(R"({{"game":{},"player":{},"guess":"{}","round":{}}})", i / kBatch, i % 97,
                       std::string(80, static_cast<char>('a' + i % 26)), i % 13);
  e.data.resize(kDataBytes, ' ');
  e.metadata = fmt::format(R"({{"user":"player-{}"}})", i % 1000);
  e.id = Uuid::v7();
  e.causation_id = Uuid::v7();
  e.correlation_id = Uuid::v7();
  e.created_at = es::now();
  return e;
}

double per_second(std::size_t count, double secs) {
  return secs > 0 ? static_cast<double>(count) / secs : 0;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("eventstore/postgres benchmark: " + what);
}

// ---- raw libpq ----------------------------------------------------------------------

class RawConnection {
 public:
  explicit RawConnection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK)
      fail(std::string("raw connect: ") + PQerrorMessage(conn_));
  }
  ~RawConnection() { PQfinish(conn_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  PGconn* get() const { return conn_; }

  void exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    check(r, sql);
    PQclear(r);
  }
  static void check(PGresult* r, const std::string& what) {
    const ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      std::string message = PQresultErrorMessage(r);
      PQclear(r);
      fail("raw " + what + ": " + message);
    }
  }

 private:
  PGconn* conn_;
};

// Binary encoding helpers (COPY BINARY and binary parameters share them).
void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void put32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void put64(std::string& out, std::uint64_t v) {
  put32(out, static_cast<std::uint32_t>(v >> 32));
  put32(out, static_cast<std::uint32_t>(v));
}
std::string be64(std::uint64_t v) {
  std::string out;
  put64(out, v);
  return out;
}
constexpr std::int64_t kPgEpochMicros = 946'684'800'000'000LL;
std::int64_t pg_micros(es::Timestamp t) {
  return t.time_since_epoch().count() - kPgEpochMicros;
}

// The raw side's rows: the same columns and values our events table gets.
struct RawRow {
  std::int64_t position;
  const es::EventData* event;
  std::string stream;
  std::int64_t version;
};

void copy_field(std::string& out, std::string_view bytes) {
  put32(out, static_cast<std::uint32_t>(bytes.size()));
  out.append(bytes);
}

void copy_row(std::string& out, const RawRow& row) {
  const es::EventData& e = *row.event;
  put16(out, 11);
  put32(out, 8);
  put64(out, static_cast<std::uint64_t>(row.position));
  copy_field(out, {reinterpret_cast<const char*>(e.id->bytes().data()), 16});
  copy_field(out, row.stream);
  put32(out, 8);
  put64(out, static_cast<std::uint64_t>(row.version));
  copy_field(out, e.type);
  copy_field(out, e.data);
  copy_field(out, e.metadata);
  copy_field(out, {reinterpret_cast<const char*>(e.causation_id->bytes().data()), 16});
  copy_field(out, {reinterpret_cast<const char*>(e.correlation_id->bytes().data()), 16});
  put32(out, 8);
  put64(out, static_cast<std::uint64_t>(pg_micros(*e.created_at)));
  put32(out, 0xFFFFFFFFu);  // data_json NULL
}

// One binary COPY of `rows` (a statement of its own: autocommit).
void raw_copy(RawConnection& raw, const std::string& table, const std::vector<RawRow>& rows) {
  PGconn* c = raw.get();
  PGresult* r = PQexec(c, ("COPY " + table + " FROM STDIN (FORMAT binary)").c_str());
  if (PQresultStatus(r) != PGRES_COPY_IN) RawConnection::check(r, "COPY");
  PQclear(r);
  std::string buffer("PGCOPY\n\377\r\n\0", 11);
  put32(buffer, 0);
  put32(buffer, 0);
  for (const RawRow& row : rows) copy_row(buffer, row);
  put16(buffer, 0xFFFF);
  if (PQputCopyData(c, buffer.data(), static_cast<int>(buffer.size())) != 1 ||
      PQputCopyEnd(c, nullptr) != 1) {
    fail(std::string("raw COPY data: ") + PQerrorMessage(c));
  }
  r = PQgetResult(c);
  RawConnection::check(r, "COPY end");
  PQclear(r);
  while ((r = PQgetResult(c)) != nullptr) PQclear(r);
}

// One prepared INSERT of `row` with binary parameters (autocommit).
void raw_insert(RawConnection& raw, const RawRow& row) {
  const es::EventData& e = *row.event;
  const std::string position = be64(static_cast<std::uint64_t>(row.position));
  const std::string version = be64(static_cast<std::uint64_t>(row.version));
  const std::string created = be64(static_cast<std::uint64_t>(pg_micros(*e.created_at)));
  const char* values[10] = {position.data(),
                            reinterpret_cast<const char*>(e.id->bytes().data()),
                            row.stream.data(),
                            version.data(),
                            e.type.data(),
                            e.data.data(),
                            e.metadata.data(),
                            reinterpret_cast<const char*>(e.causation_id->bytes().data()),
                            reinterpret_cast<const char*>(e.correlation_id->bytes().data()),
                            created.data()};
  const int lengths[10] = {8,
                           16,
                           static_cast<int>(row.stream.size()),
                           8,
                           static_cast<int>(e.type.size()),
                           static_cast<int>(e.data.size()),
                           static_cast<int>(e.metadata.size()),
                           16,
                           16,
                           8};
  const int formats[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  PGresult* r = PQexecPrepared(raw.get(), "raw_insert", 10, values, lengths, formats, 1);
  RawConnection::check(r, "INSERT");
  PQclear(r);
}

// ---- live delivery --------------------------------------------------------------------

// Reads `count` doubles from `fd`; empty on a short read.
std::vector<double> read_doubles(int fd, std::size_t count) {
  std::vector<double> values(count);
  std::size_t got = 0;
  const std::size_t want = count * sizeof(double);
  auto* bytes = reinterpret_cast<char*>(values.data());
  while (got < want) {
    const ssize_t n = ::read(fd, bytes + got, want - got);
    if (n <= 0) return {};
    got += static_cast<std::size_t>(n);
  }
  return values;
}

void write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n <= 0) return;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::pair<double, double> percentiles(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return samples[std::min(samples.size() - 1,
                            static_cast<std::size_t>(q * static_cast<double>(samples.size())))];
  };
  return {at(0.50), at(0.99)};
}

// Forks a child that runs `body(ready_fd, result_fd)` and _exits; the parent
// gets the read ends. The calling process must have no other threads.
struct Child {
  pid_t pid;
  int ready;
  int results;
};
template <typename Body>
Child fork_child(Body body) {
  int ready[2];
  int results[2];
  if (::pipe(ready) != 0 || ::pipe(results) != 0) fail("pipe");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    ::close(ready[0]);
    ::close(results[0]);
    int code = 0;
    try {
      body(ready[1], results[1]);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "benchmark child: %s\n", error.what());
      code = 1;
    }
    ::_exit(code);  // never run the parent's atexit handlers (the server's stop)
  }
  ::close(ready[1]);
  ::close(results[1]);
  return Child{pid, ready[0], results[0]};
}

bool wait_ready(const Child& child) {
  char byte = 0;
  return ::read(child.ready, &byte, 1) == 1;
}

std::vector<double> finish(const Child& child, std::size_t count) {
  std::vector<double> values = read_doubles(child.results, count);
  ::close(child.ready);
  ::close(child.results);
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  return values;
}

double ms_since(Clock::time_point sent_steady_ns) {
  return std::chrono::duration<double, std::milli>(Clock::now() - sent_steady_ns).count();
}

// A subscriber in another process; the append's created_at is its send time.
std::vector<double> store_delivery(const std::string& store_url, std::size_t count,
                                   std::chrono::microseconds gap) {
  Child child = fork_child([&](int ready, int results) {
    es::StoreOptions options;
    options.poll_interval = std::chrono::hours(1);  // notifications only
    es::EventStore store = es::open(store_url, options);
    es::Subscription sub = store.subscribe(std::string(es::kAllStream));
    write_all(ready, "R", 1);
    std::vector<double> delays;
    while (delays.size() < count) {
      auto e = sub.next(std::chrono::seconds(10));
      if (!e) fail("a live event did not arrive");
      delays.push_back(
          std::chrono::duration<double, std::milli>(es::now() - e->created_at).count());
    }
    write_all(results, delays.data(), delays.size() * sizeof(double));
  });
  if (!wait_ready(child)) fail("subscriber process did not start");
  {
    es::EventStore store = es::open(store_url);
    for (std::size_t i = 0; i < count; ++i) {
      std::this_thread::sleep_for(gap);
      es::EventData e = make_event(i);
      e.created_at.reset();  // stamped when append is called
      if (!store.append("live", es::ExpectedVersion::any(), e).ok()) fail("live append");
    }
  }
  return finish(child, count);
}

// The same through a bare NOTIFY -> LISTEN; the payload is the send time.
std::vector<double> raw_delivery(const std::string& url, std::size_t count,
                                 std::chrono::microseconds gap) {
  const std::string channel = fmt::format("gamebot_bench_raw_{}", ::getpid());
  Child child = fork_child([&](int ready, int results) {
    RawConnection listener(url);
    listener.exec("LISTEN " + channel);
    write_all(ready, "R", 1);
    std::vector<double> delays;
    while (delays.size() < count) {
      pollfd fd{PQsocket(listener.get()), POLLIN, 0};
      if (::poll(&fd, 1, 10'000) <= 0) fail("a raw notification did not arrive");
      PQconsumeInput(listener.get());
      while (PGnotify* note = PQnotifies(listener.get())) {
        const auto sent = Clock::time_point(Clock::duration(std::stoll(note->extra)));
        delays.push_back(ms_since(sent));
        PQfreemem(note);
      }
    }
    write_all(results, delays.data(), delays.size() * sizeof(double));
  });
  if (!wait_ready(child)) fail("raw listener process did not start");
  {
    RawConnection notifier(url);
    for (std::size_t i = 0; i < count; ++i) {
      std::this_thread::sleep_for(gap);
      const std::string payload = std::to_string(Clock::now().time_since_epoch().count());
      const char* values[2] = {channel.c_str(), payload.c_str()};
      PGresult* r = PQexecParams(notifier.get(), "SELECT pg_notify($1, $2)", 2, nullptr, values,
                                 nullptr, nullptr, 0);
      RawConnection::check(r, "NOTIFY");
      PQclear(r);
    }
  }
  return finish(child, count);
}

// The store's schema and, for the raw libpq baselines, a table with the same
// columns and indexes as its events table; both are dropped at the end.
struct BenchSchemas {
  BenchSchemas(std::string server_url, std::string_view store_prefix, std::string_view raw_prefix)
      : url(std::move(server_url)),
        schema(fmt::format("{}{}", store_prefix, ::getpid())),
        raw_schema(fmt::format("{}{}", raw_prefix, ::getpid())),
        store_url(url + (url.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema),
        raw_table(repo::quote_identifier(raw_schema) + ".events") {
    auto admin = repo::connect(url);
    es::postgres_event_store_migrator(schema).migrate(*admin);
    admin->execute_batch("CREATE SCHEMA " + repo::quote_identifier(raw_schema) + "; CREATE TABLE " +
                         raw_table + " (LIKE " + repo::quote_identifier(schema) +
                         ".events INCLUDING ALL)");
  }
  BenchSchemas(const BenchSchemas&) = delete;
  BenchSchemas& operator=(const BenchSchemas&) = delete;
  ~BenchSchemas() {
    try {
      auto admin = repo::connect(url);
      for (const std::string* s : {&schema, &raw_schema}) {
        admin->execute_batch("DROP SCHEMA IF EXISTS " + repo::quote_identifier(*s) + " CASCADE");
      }
    } catch (...) {
    }
  }

  std::string url;
  std::string schema;
  std::string raw_schema;
  std::string store_url;  // the server's URL with ?schema=
  std::string raw_table;  // quoted, schema-qualified
};

// ---- the benchmark ------------------------------------------------------------------------

GAMEBOT_BENCHMARK("eventstore/postgres", context) {
  const std::size_t streams = context.size<std::size_t>(10'000, 500);
  const std::size_t batches_per_round = context.size<std::size_t>(300, 20);
  const std::size_t singles_per_round = context.size<std::size_t>(2'000, 200);
  const std::size_t per_writer = context.size<std::size_t>(1'500, 150);
  const std::size_t live_events = context.size<std::size_t>(500, 60);
  const int rounds = context.size(3, 1);
  const auto gap = std::chrono::microseconds(2000);

  const BenchSchemas schemas(bench_postgres_url(), "gamebot_bench_es_", "gamebot_bench_raw_");
  const std::string& url = schemas.url;
  const std::string& store_url = schemas.store_url;
  const std::string& raw_table = schemas.raw_table;

  // Live delivery first: the subscriber processes are forked while this
  // process has no other threads.
  {
    const auto ours = store_delivery(store_url, live_events, gap);
    const auto raw = raw_delivery(url, live_events, gap);
    if (ours.size() != live_events || raw.size() != live_events) fail("live delivery");
    const auto [p50, p99] = percentiles(ours);
    const auto [raw_p50, raw_p99] = percentiles(raw);
    context.report(at_most("eventstore/postgres/live/other_process/p99", p99, "ms", 10,
                           Baseline{"raw NOTIFY->LISTEN, p99", raw_p99}));
    context.report(at_most("eventstore/postgres/live/other_process/p50", p50, "ms", 10,
                           Baseline{"raw NOTIFY->LISTEN, p50", raw_p50}));
  }

  const CpuMeter meter(url);
  // Rates of one side over rounds: per wall second and per CPU second.
  struct Rates {
    std::vector<double> wall;
    std::vector<double> cpu;
    void add(std::size_t events, double wall_secs, double cpu_secs) {
      wall.push_back(per_second(events, wall_secs));
      cpu.push_back(per_second(events, cpu_secs));
    }
  };
  auto measure = [&meter](Rates& rates, std::size_t events, const std::function<void()>& work) {
    const double cpu_before = meter.available() ? meter.now() : 0;
    const double wall = seconds(work);
    rates.add(events, wall, meter.available() ? meter.now() - cpu_before : 0);
  };
  // A figure per wall second and, if the server's CPU time is readable, one
  // per CPU second (client + server) with the same target.
  auto report_pair = [&](const std::string& name, const Rates& ours, const std::string& baseline,
                         const Rates& raw, double min_ratio) {
    context.report(rate_vs_baseline(name, median(ours.wall), "events/s", baseline, median(raw.wall),
                                    min_ratio));
    if (meter.available()) {
      context.report(rate_vs_baseline(name + "/cpu", median(ours.cpu), "events/cpu-s",
                                      baseline + " (CPU)", median(raw.cpu), min_ratio));
    }
  };

  es::EventStore store = es::open(store_url);
  RawConnection raw(url);
  {
    PGresult* r = PQprepare(raw.get(), "raw_insert",
                            ("INSERT INTO " + raw_table +
                             " (position, event_id, stream_id, stream_version, type, data, "
                             "metadata, causation_id, correlation_id, created_at) VALUES ($1, "
                             "$2, $3, $4, $5, $6, $7, $8, $9, $10)")
                                .c_str(),
                            0, nullptr);
    RawConnection::check(r, "PREPARE");
    PQclear(r);
  }
  std::vector<std::int64_t> our_versions(streams, 0);
  std::vector<std::int64_t> raw_versions(streams, 0);
  std::int64_t raw_position = 0;
  std::size_t next_event = 0;

  // Warm-up, not timed: connections opened, statements prepared, caches
  // filled on both sides (--quick rounds are short enough to notice).
  {
    std::vector<es::EventData> warm;
    for (std::size_t i = 0; i < kBatch; ++i) warm.push_back(make_event(next_event++));
    if (!store.append("warm-up", 0, warm).ok() ||
        !store.append("warm-up", static_cast<std::int64_t>(kBatch), make_event(next_event++))
             .ok()) {
      fail("warm-up append");
    }
    std::vector<RawRow> rows;
    for (std::size_t i = 0; i < kBatch; ++i) {
      rows.push_back(RawRow{++raw_position, &warm[i], "warm-up", static_cast<std::int64_t>(i + 1)});
    }
    raw_copy(raw, raw_table, rows);
    const es::EventData single = make_event(next_event++);
    raw_insert(raw,
               RawRow{++raw_position, &single, "warm-up", static_cast<std::int64_t>(kBatch) + 1});
  }

  // Batched appends: rounds of (raw COPY, ours) on equally filled tables.
  Rates our_batched;
  Rates raw_batched;
  for (int round = 0; round < rounds; ++round) {
    std::vector<es::EventData> events;
    events.reserve(batches_per_round * kBatch);
    for (std::size_t i = 0; i < batches_per_round * kBatch; ++i) {
      events.push_back(make_event(next_event + i));
    }
    const std::size_t first_batch = next_event / kBatch;
    next_event += events.size();
    measure(raw_batched, events.size(), [&] {
      std::vector<RawRow> rows;
      for (std::size_t b = 0; b < batches_per_round; ++b) {
        const std::size_t s = (first_batch + b) % streams;
        rows.clear();
        for (std::size_t i = 0; i < kBatch; ++i) {
          rows.push_back(
              RawRow{++raw_position, &events[b * kBatch + i], stream_name(s), ++raw_versions[s]});
        }
        raw_copy(raw, raw_table, rows);
      }
    });
    measure(our_batched, events.size(), [&] {
      for (std::size_t b = 0; b < batches_per_round; ++b) {
        const std::size_t s = (first_batch + b) % streams;
        const auto result =
            store.append(stream_name(s), our_versions[s],
                         std::span<const es::EventData>(events.data() + b * kBatch, kBatch));
        if (!result.ok()) fail("batched append");
        our_versions[s] = result.version;
      }
    });
  }
  report_pair("eventstore/postgres/append/batched_100", our_batched,
              "raw libpq binary COPY per batch", raw_batched, 0.5);

  // Single-event appends, round-robin over the streams the batches created
  // (the steady state: a stream is created once and appended to many times).
  const std::size_t existing = std::min(streams, next_event / kBatch);
  Rates our_single;
  Rates raw_single;
  for (int round = 0; round < rounds; ++round) {
    std::vector<es::EventData> events;
    for (std::size_t i = 0; i < singles_per_round; ++i)
      events.push_back(make_event(next_event + i));
    const std::size_t first = next_event;
    next_event += events.size();
    measure(raw_single, events.size(), [&] {
      for (std::size_t i = 0; i < events.size(); ++i) {
        const std::size_t s = (first + i) % existing;
        raw_insert(raw, RawRow{++raw_position, &events[i], stream_name(s), ++raw_versions[s]});
      }
    });
    measure(our_single, events.size(), [&] {
      for (std::size_t i = 0; i < events.size(); ++i) {
        const std::size_t s = (first + i) % existing;
        const auto result = store.append(stream_name(s), our_versions[s], events[i]);
        if (!result.ok()) fail("single append");
        our_versions[s] = result.version;
      }
    });
  }
  report_pair("eventstore/postgres/append/single", our_single,
              "raw libpq prepared INSERT per event", raw_single, 0.7);

  // Concurrent writers on distinct streams (single-event appends).
  auto writers_rate = [&](std::size_t writers, std::size_t round) {
    std::vector<std::vector<es::EventData>> work(writers);
    for (std::size_t w = 0; w < writers; ++w) {
      for (std::size_t i = 0; i < per_writer; ++i) work[w].push_back(make_event(next_event++));
    }
    std::atomic<bool> failed{false};
    const double secs = seconds([&] {
      std::vector<std::thread> threads;
      for (std::size_t w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
          const std::string stream = fmt::format("writer-{}-{}-{}", writers, round, w);
          for (std::size_t i = 0; i < per_writer; ++i) {
            if (!store.append(stream, static_cast<std::int64_t>(i), work[w][i]).ok()) {
              failed = true;
            }
          }
        });
      }
      for (auto& t : threads) t.join();
    });
    if (failed) fail("concurrent append");
    return per_second(writers * per_writer, secs);
  };
  // The same shape raw: threads with a connection each, one INSERT per event
  // (no stream versions, no positions to agree on), to show what the machine
  // itself allows.
  auto raw_writers_rate = [&](std::size_t writers, std::size_t round) {
    std::vector<std::vector<es::EventData>> work(writers);
    for (std::size_t w = 0; w < writers; ++w) {
      for (std::size_t i = 0; i < per_writer; ++i) work[w].push_back(make_event(next_event++));
    }
    std::vector<std::unique_ptr<RawConnection>> connections;
    for (std::size_t w = 0; w < writers; ++w) {
      connections.push_back(std::make_unique<RawConnection>(url));
      PGresult* r = PQprepare(connections.back()->get(), "raw_insert",
                              ("INSERT INTO " + raw_table +
                               " (position, event_id, stream_id, stream_version, type, data, "
                               "metadata, causation_id, correlation_id, created_at) VALUES ($1, "
                               "$2, $3, $4, $5, $6, $7, $8, $9, $10)")
                                  .c_str(),
                              0, nullptr);
      RawConnection::check(r, "PREPARE");
      PQclear(r);
    }
    std::atomic<std::int64_t> position{raw_position};
    const double secs = seconds([&] {
      std::vector<std::thread> threads;
      for (std::size_t w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
          const std::string stream = fmt::format("raw-writer-{}-{}-{}", writers, round, w);
          for (std::size_t i = 0; i < per_writer; ++i) {
            raw_insert(*connections[w],
                       RawRow{++position, &work[w][i], stream, static_cast<std::int64_t>(i) + 1});
          }
        });
      }
      for (auto& t : threads) t.join();
    });
    raw_position = position.load();
    return per_second(writers * per_writer, secs);
  };
  std::vector<double> one_writer;
  std::vector<double> four_writers;
  std::vector<double> raw_one;
  std::vector<double> raw_four;
  for (int round = 0; round < rounds; ++round) {
    one_writer.push_back(writers_rate(1, static_cast<std::size_t>(round)));
    four_writers.push_back(writers_rate(4, static_cast<std::size_t>(round)));
    raw_one.push_back(raw_writers_rate(1, static_cast<std::size_t>(round)));
    raw_four.push_back(raw_writers_rate(4, static_cast<std::size_t>(round)));
  }
  context.report(rate_vs_baseline("eventstore/postgres/append/4_writers", median(four_writers),
                                  "events/s", "1 writer, same store", median(one_writer), 1.5));
  Figure raw_scaling;
  raw_scaling.name = "eventstore/postgres/append/4_writers/raw_libpq";
  raw_scaling.value = median(raw_four);
  raw_scaling.unit = "events/s";
  raw_scaling.baseline = Baseline{"raw libpq, 1 thread", median(raw_one)};
  raw_scaling.ratio = median(raw_one) > 0 ? median(raw_four) / median(raw_one) : 0;
  raw_scaling.target = "context (no target)";
  context.report(std::move(raw_scaling));

  // Reading $all forward: everything appended above. Both tables are vacuumed
  // and analyzed first, so autovacuum does not run (and use CPU) meanwhile.
  raw.exec("VACUUM (ANALYZE) " + raw_table + ", " + repo::quote_identifier(schemas.schema) +
           ".events");
  std::size_t checksum = 0;
  Rates our_read;
  Rates raw_read;
  for (int round = 0; round < rounds; ++round) {
    std::size_t our_events = 0;
    const double our_cpu_before = meter.available() ? meter.now() : 0;
    const double our_secs = seconds([&] {
      for (const es::RecordedEvent& e : store.all_forward(0, 1000)) {
        ++our_events;
        checksum += e.data.size();
      }
    });
    our_read.add(our_events, our_secs, meter.available() ? meter.now() - our_cpu_before : 0);
    std::size_t raw_events = 0;
    const double raw_cpu_before = meter.available() ? meter.now() : 0;
    const double raw_secs = seconds([&] {
      const std::string sql =
          "SELECT position, event_id, stream_id, stream_version, type, data, metadata, "
          "causation_id, correlation_id, created_at FROM " +
          raw_table + " WHERE position > $1 ORDER BY position LIMIT 1000";
      std::int64_t after = 0;
      for (;;) {
        const std::string key = be64(static_cast<std::uint64_t>(after));
        const char* values[1] = {key.data()};
        const int lengths[1] = {8};
        const int formats[1] = {1};
        PGresult* r = PQexecParams(raw.get(), sql.c_str(), 1, nullptr, values, lengths, formats, 1);
        RawConnection::check(r, "SELECT");
        const int rows = PQntuples(r);
        for (int i = 0; i < rows; ++i) {
          for (int c = 0; c < 10; ++c) checksum += static_cast<std::size_t>(PQgetlength(r, i, c));
        }
        if (rows > 0) {
          std::uint64_t last = 0;
          std::memcpy(&last, PQgetvalue(r, rows - 1, 0), 8);
          after = static_cast<std::int64_t>(__builtin_bswap64(last));
        }
        raw_events += static_cast<std::size_t>(rows);
        PQclear(r);
        if (rows < 1000) break;
      }
    });
    raw_read.add(raw_events, raw_secs, meter.available() ? meter.now() - raw_cpu_before : 0);
  }
  if (checksum == 0) fail("nothing read");
  Figure read =
      at_least("eventstore/postgres/read/all_forward", median(our_read.wall), "events/s", 500'000,
               Baseline{"raw libpq SELECT pages of 1,000", median(raw_read.wall)});
  read.ratio = read.baseline->value > 0 ? read.value / read.baseline->value : 0;
  context.report(std::move(read));
  if (meter.available()) {
    Figure read_cpu =
        at_least("eventstore/postgres/read/all_forward/cpu", median(our_read.cpu), "events/cpu-s",
                 500'000, Baseline{"raw libpq SELECT pages of 1,000 (CPU)", median(raw_read.cpu)});
    read_cpu.ratio = read_cpu.baseline->value > 0 ? read_cpu.value / read_cpu.baseline->value : 0;
    context.report(std::move(read_cpu));
  }
}

// ---- group commit --------------------------------------------------------------------------

// The private server runs with fsync and synchronous_commit off; the fsync-on
// variant turns both on (ALTER SYSTEM + reload) and back. A server given by
// GAMEBOT_BENCH_PG_URL is not reconfigured: both variants then run as it is
// configured, and the figure names say what `SHOW fsync` answered.
GAMEBOT_BENCHMARK("eventstore/postgres/group_commit", context) {
  constexpr std::size_t kWriters = 8;
  const std::size_t per_writer = context.size<std::size_t>(400, 60);
  const std::size_t lone_appends = context.size<std::size_t>(1'000, 150);
  const int rounds = context.size(3, 1);
  const bool private_server = std::getenv("GAMEBOT_BENCH_PG_URL") == nullptr ||
                              *std::getenv("GAMEBOT_BENCH_PG_URL") == '\0';

  const BenchSchemas schemas(bench_postgres_url(), "gamebot_bench_gc_", "gamebot_bench_gc_raw_");
  const std::string& url = schemas.url;
  const std::string& store_url = schemas.store_url;
  const std::string& raw_table = schemas.raw_table;
  auto admin = repo::connect(url);
  struct Restore {
    repo::Connection& admin;
    bool reconfigured = false;
    ~Restore() {
      if (!reconfigured) return;
      try {
        admin.execute_batch("ALTER SYSTEM RESET fsync");
        admin.execute_batch("ALTER SYSTEM RESET synchronous_commit");
        admin.execute_batch("SELECT pg_reload_conf()");
      } catch (...) {
      }
    }
  } restore{*admin, false};

  std::size_t next_event = 0;
  std::atomic<std::int64_t> raw_position{0};
  std::size_t stream_serial = 0;

  // Events per second of `writers` threads, each appending per_writer single
  // events to a stream of its own.
  auto store_rate = [&](es::EventStore& store, std::size_t writers) {
    std::vector<std::vector<es::EventData>> work(writers);
    for (auto& events : work) {
      for (std::size_t i = 0; i < per_writer; ++i) events.push_back(make_event(next_event++));
    }
    const std::size_t serial = ++stream_serial;
    std::atomic<bool> failed{false};
    const double secs = seconds([&] {
      std::vector<std::thread> threads;
      for (std::size_t w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
          const std::string stream = fmt::format("gc-{}-{}", serial, w);
          for (std::size_t i = 0; i < per_writer; ++i) {
            if (!store.append(stream, static_cast<std::int64_t>(i), work[w][i]).ok()) {
              failed = true;
            }
          }
        });
      }
      for (auto& t : threads) t.join();
    });
    if (failed) fail("group commit append");
    return per_second(writers * per_writer, secs);
  };
  // The same with raw libpq: a connection per thread, one INSERT per event.
  auto raw_rate = [&](std::size_t writers) {
    std::vector<std::vector<es::EventData>> work(writers);
    for (auto& events : work) {
      for (std::size_t i = 0; i < per_writer; ++i) events.push_back(make_event(next_event++));
    }
    std::vector<std::unique_ptr<RawConnection>> connections;
    for (std::size_t w = 0; w < writers; ++w) {
      connections.push_back(std::make_unique<RawConnection>(url));
      PGresult* r = PQprepare(connections.back()->get(), "raw_insert",
                              ("INSERT INTO " + raw_table +
                               " (position, event_id, stream_id, stream_version, type, data, "
                               "metadata, causation_id, correlation_id, created_at) VALUES ($1, "
                               "$2, $3, $4, $5, $6, $7, $8, $9, $10)")
                                  .c_str(),
                              0, nullptr);
      RawConnection::check(r, "PREPARE");
      PQclear(r);
    }
    const std::size_t serial = ++stream_serial;
    const double secs = seconds([&] {
      std::vector<std::thread> threads;
      for (std::size_t w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
          const std::string stream = fmt::format("gc-raw-{}-{}", serial, w);
          for (std::size_t i = 0; i < per_writer; ++i) {
            raw_insert(*connections[w], RawRow{++raw_position, &work[w][i], stream,
                                               static_cast<std::int64_t>(i) + 1});
          }
        });
      }
      for (auto& t : threads) t.join();
    });
    return per_second(writers * per_writer, secs);
  };
  // Median latency in microseconds of one thread's appends, one at a time.
  auto lone_p50 = [&](es::EventStore& store) {
    std::vector<es::EventData> events;
    for (std::size_t i = 0; i < lone_appends; ++i) events.push_back(make_event(next_event++));
    const std::string stream = fmt::format("gc-lone-{}", ++stream_serial);
    std::vector<double> micros;
    micros.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto start = Clock::now();
      if (!store.append(stream, static_cast<std::int64_t>(i), events[i]).ok()) fail("lone append");
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    return median(std::move(micros));
  };

  for (const bool durable : {false, true}) {
    if (durable && private_server) {
      admin->execute_batch("ALTER SYSTEM SET fsync = on");
      admin->execute_batch("ALTER SYSTEM SET synchronous_commit = on");
      admin->execute_batch("SELECT pg_reload_conf()");
      restore.reconfigured = true;
    }
    // Fresh connections (after a reload) and a check of what the server does.
    es::PostgresBackendOptions grouped;
    es::PostgresBackendOptions alone;
    alone.group_commit_patience = std::chrono::milliseconds(0);
    // To compare settings: GAMEBOT_BENCH_GC_IN_FLIGHT=n runs the grouped store
    // with group_commit_in_flight = n.
    if (const char* in_flight = std::getenv("GAMEBOT_BENCH_GC_IN_FLIGHT")) {
      grouped.group_commit_in_flight = std::stoul(in_flight);
    }
    const std::shared_ptr<es::PostgresBackend> grouped_backend =
        es::PostgresBackend::open(store_url, grouped);
    es::EventStore store(grouped_backend);
    es::EventStore before(es::PostgresBackend::open(store_url, alone));
    const std::string fsync =
        repo::connect(url)->query_value<std::string>("SHOW fsync").value_or("?");
    const std::string label = "fsync_" + fsync;
    if (private_server && (fsync == "on") != durable) fail("fsync did not change to the variant");

    std::vector<double> one;
    std::vector<double> eight;
    std::vector<double> eight_before;
    std::vector<double> raw_eight;
    std::vector<double> raw_one;
    std::vector<double> p50;
    std::vector<double> p50_before;
    store_rate(store, 1);  // warm-up: connections, prepared statements
    store_rate(before, 1);
    // Commits by appends carried, over the rounds' 8-writer runs.
    std::vector<std::uint64_t> sizes(grouped_backend->commits_by_group_size().size(), 0);
    // Client and server CPU seconds of the rounds' 8-thread runs: grouped,
    // group commit off, raw.
    const CpuMeter meter(url);
    std::array<std::pair<double, double>, 3> cpu{};
    auto metered = [&](std::size_t which, auto&& run) {
      const double client = CpuMeter::client_seconds();
      const double server = meter.server_seconds();
      const double rate = run();
      cpu[which].first += CpuMeter::client_seconds() - client;
      cpu[which].second += meter.server_seconds() - server;
      return rate;
    };
    for (int round = 0; round < rounds; ++round) {
      one.push_back(store_rate(store, 1));
      const std::vector<std::uint64_t> sizes_before = grouped_backend->commits_by_group_size();
      eight.push_back(metered(0, [&] { return store_rate(store, kWriters); }));
      const std::vector<std::uint64_t> sizes_after = grouped_backend->commits_by_group_size();
      for (std::size_t n = 0; n < sizes.size(); ++n) sizes[n] += sizes_after[n] - sizes_before[n];
      eight_before.push_back(metered(1, [&] { return store_rate(before, kWriters); }));
      raw_eight.push_back(metered(2, [&] { return raw_rate(kWriters); }));
      raw_one.push_back(raw_rate(1));
      p50_before.push_back(lone_p50(before));
      p50.push_back(lone_p50(store));
    }
    const std::string prefix = "eventstore/postgres/group_commit/" + label;
    std::string histogram;
    std::uint64_t commits = 0;
    for (std::size_t n = 1; n < sizes.size(); ++n) {
      if (sizes[n] == 0) continue;
      histogram += fmt::format(" {}{}:{}", n, n + 1 == sizes.size() ? "+" : "", sizes[n]);
      commits += sizes[n];
    }
    fmt::print(stderr,
               "{}: 8 writers, commits by appends carried (size:commits):{}; {:.2f} per commit\n",
               label, histogram,
               commits > 0
                   ? static_cast<double>(static_cast<std::size_t>(rounds) * kWriters * per_writer) /
                         static_cast<double>(commits)
                   : 0.0);
    if (meter.available()) {
      const double events =
          static_cast<double>(static_cast<std::size_t>(rounds) * kWriters * per_writer) / 1e6;
      fmt::print(stderr,
                 "{}: 8 threads, CPU us per event (client + server): group commit {:.0f} + {:.0f}, "
                 "group commit off {:.0f} + {:.0f}, raw libpq {:.0f} + {:.0f}\n",
                 label, cpu[0].first / events, cpu[0].second / events, cpu[1].first / events,
                 cpu[1].second / events, cpu[2].first / events, cpu[2].second / events);
    }
    context.report(rate_vs_baseline(prefix + "/8_writers_vs_1", median(eight), "events/s",
                                    "1 writer, same store", median(one), 3.0));
    context.report(rate_vs_baseline(prefix + "/8_writers_vs_raw", median(eight), "events/s",
                                    "raw libpq INSERT, 8 threads", median(raw_eight), 1.5));
    Figure lone = at_most(prefix + "/lone_writer_p50", median(p50), "us", median(p50_before) * 1.1,
                          Baseline{"group commit off (patience 0), p50", median(p50_before)});
    lone.ratio = median(p50_before) > 0 ? median(p50) / median(p50_before) : 0;
    context.report(std::move(lone));
    Figure context_before;
    context_before.name = prefix + "/8_writers_group_commit_off";
    context_before.value = median(eight_before);
    context_before.unit = "events/s";
    context_before.baseline = Baseline{"raw libpq INSERT, 8 threads", median(raw_eight)};
    context_before.ratio = median(raw_eight) > 0 ? median(eight_before) / median(raw_eight) : 0;
    context_before.target = "context (no target)";
    context.report(std::move(context_before));
    // Each writer waits for its own durable commit, so 8 writers append about
    // 8 times as fast as one raw INSERT commits alone at best (more only when
    // a lone commit is slower than one shared by others): how close raw libpq
    // already comes to that ceiling bounds what grouping can gain over it.
    const double ceiling = median(raw_one) * static_cast<double>(kWriters);
    for (const auto& [name, rate] : {std::pair{"raw_8_threads_vs_ceiling", median(raw_eight)},
                                     std::pair{"8_writers_vs_ceiling", median(eight)}}) {
      Figure against_ceiling;
      against_ceiling.name = prefix + "/" + name;
      against_ceiling.value = rate;
      against_ceiling.unit = "events/s";
      against_ceiling.baseline = Baseline{"8 x raw libpq INSERT, 1 thread", ceiling};
      against_ceiling.ratio = ceiling > 0 ? rate / ceiling : 0;
      against_ceiling.target = "context (no target)";
      context.report(std::move(against_ceiling));
    }
  }
}

}  // namespace
}  // namespace gamebot::bench
