// SQLite event-store backend benchmarks, each beside raw sqlite3 in the same
// run: batched (100 per transaction) and single-event appends against raw
// prepared INSERTs of the same rows into the same table with the same indexes
// and the same transaction sizes; reading $all forward against a raw prepared
// SELECT stepping over the same rows; and the delay from an append in another
// process to a subscriber here. Both sides use a file in a temporary
// directory, WAL, synchronous=NORMAL and the same mmap_size.

#include <fmt/format.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"

namespace gamebot::bench {
namespace {

namespace es = gamebot::eventstore;

constexpr std::size_t kBatch = 100;
constexpr std::size_t kDataBytes = 200;

std::string stream_name(std::size_t stream) {
  return fmt::format("game-{:06}", stream);
}

// The i-th benchmark event (as in eventstore_bench.cpp): a 200-byte payload,
// small metadata, all ids set.
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

double process_cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Wall-clock and CPU seconds (user + system of the whole process: the store's
// watcher thread counts) of one run of `work`.
struct Times {
  double wall = 0;
  double cpu = 0;
};

Times timed(const std::function<void()>& work) {
  const double cpu_before = process_cpu_seconds();
  const double wall = seconds(work);
  return Times{wall, process_cpu_seconds() - cpu_before};
}

// Events per wall-clock and per CPU second, one entry per round.
struct Rates {
  std::vector<double> wall;
  std::vector<double> cpu;
  void add(std::size_t count, Times times) {
    wall.push_back(per_second(count, times.wall));
    cpu.push_back(per_second(count, times.cpu));
  }
};

// A private temporary directory, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "gamebot-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void check(int rc, sqlite3* db) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "sqlite3: %s\n", sqlite3_errmsg(db));
    std::abort();
  }
}

void exec(sqlite3* db, const std::string& sql) {
  check(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), db);
}

// Raw sqlite3 on the same events table (the store's migration creates it,
// with both unique indexes), WAL, synchronous=NORMAL.
class RawStore {
 public:
  RawStore(const std::string& path, bool create) {
    check(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
          db_);
    exec(db_, "PRAGMA journal_mode=WAL");
    exec(db_, "PRAGMA synchronous=NORMAL");
    // As the store's connections (SqliteBackendOptions::mmap_size).
    exec(db_, fmt::format("PRAGMA mmap_size={}", es::SqliteBackendOptions{}.mmap_size));
    if (create) {
      for (const auto& migration : es::sqlite_event_store_migrations()) exec(db_, migration.sql);
    }
    check(sqlite3_prepare_v3(db_,
                             "INSERT INTO eventstore_events (position, event_id, stream_id, "
                             "stream_version, type, data, metadata, causation_id, correlation_id, "
                             "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                             -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr),
          db_);
    check(sqlite3_prepare_v3(db_, "BEGIN", -1, SQLITE_PREPARE_PERSISTENT, &begin_, nullptr), db_);
    check(sqlite3_prepare_v3(db_, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &commit_, nullptr), db_);
  }
  ~RawStore() {
    sqlite3_finalize(insert_);
    sqlite3_finalize(begin_);
    sqlite3_finalize(commit_);
    sqlite3_close_v2(db_);
  }

  void begin() { run(begin_); }
  void commit() { run(commit_); }

  void insert(std::int64_t position, const std::string& stream, std::int64_t version,
              const es::EventData& e) {
    sqlite3_bind_int64(insert_, 1, position);
    sqlite3_bind_blob(insert_, 2, e.id->bytes().data(), 16, SQLITE_STATIC);
    sqlite3_bind_text(insert_, 3, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 4, version);
    sqlite3_bind_text(insert_, 5, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert_, 6, e.data.data(), static_cast<int>(e.data.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert_, 7, e.metadata.data(), static_cast<int>(e.metadata.size()),
                      SQLITE_STATIC);
    sqlite3_bind_blob(insert_, 8, e.causation_id->bytes().data(), 16, SQLITE_STATIC);
    sqlite3_bind_blob(insert_, 9, e.correlation_id->bytes().data(), 16, SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 10, e.created_at->time_since_epoch().count());
    run(insert_);
  }

  // Steps over every row in position order, reading each column as the store
  // does; returns the number of rows and adds the payload bytes to `bytes`.
  std::size_t read_all(std::size_t& bytes) {
    sqlite3_stmt* select = prepare_select("ORDER BY position");
    const std::size_t rows = step_rows(select, bytes);
    sqlite3_finalize(select);
    return rows;
  }

  // The same, one prepared statement re-bound per stream, in version order
  // (the access path of a stream read: the (stream_id, stream_version) index).
  std::size_t read_streams(const std::vector<std::string>& streams, std::size_t& bytes) {
    sqlite3_stmt* select = prepare_select("WHERE stream_id = ?1 ORDER BY stream_version");
    std::size_t rows = 0;
    for (const std::string& stream : streams) {
      sqlite3_bind_text(select, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
      rows += step_rows(select, bytes);
      sqlite3_reset(select);
    }
    sqlite3_finalize(select);
    return rows;
  }

 private:
  // The store's ten columns of eventstore_events, then `rest` (a filter and an order).
  sqlite3_stmt* prepare_select(const std::string& rest) {
    const std::string sql =
        "SELECT position, event_id, stream_id, stream_version, type, data, metadata, "
        "causation_id, correlation_id, created_at FROM eventstore_events " +
        rest;
    sqlite3_stmt* select = nullptr;
    check(sqlite3_prepare_v2(db_, sql.c_str(), -1, &select, nullptr), db_);
    return select;
  }

  static std::size_t step_rows(sqlite3_stmt* select, std::size_t& bytes) {
    std::size_t rows = 0;
    while (sqlite3_step(select) == SQLITE_ROW) {
      for (int c = 0; c < 10; ++c) {
        if (c == 1 || c >= 5) {
          bytes += static_cast<std::size_t>(sqlite3_column_bytes(select, c)) +
                   (sqlite3_column_blob(select, c) != nullptr ? 1 : 0);
        } else if (c == 2 || c == 4) {
          bytes += static_cast<std::size_t>(sqlite3_column_bytes(select, c)) +
                   (sqlite3_column_text(select, c) != nullptr ? 1 : 0);
        } else {
          bytes += static_cast<std::size_t>(sqlite3_column_int64(select, c) & 1);
        }
      }
      ++rows;
    }
    return rows;
  }

  void run(sqlite3_stmt* stmt) {
    check(sqlite3_step(stmt), db_);
    sqlite3_reset(stmt);
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
};

// Appends `values` in batches of `batch`, batch k to stream k % streams (or,
// for batch == 1, event i to stream i % streams), at exact versions.
Times store_appends(es::EventStore& store, const std::vector<es::EventData>& values,
                    std::size_t batch, std::size_t streams) {
  std::vector<es::StreamVersion> versions(streams, 0);
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(stream_name(s));
  return timed([&] {
    for (std::size_t first = 0; first < values.size(); first += batch) {
      const std::size_t stream = (first / batch) % streams;
      const std::span<const es::EventData> events(values.data() + first,
                                                  std::min(batch, values.size() - first));
      const es::AppendResult r = store.append(names[stream], versions[stream], events);
      if (!r.ok()) std::abort();
      versions[stream] = r.version;
    }
  });
}

Times raw_appends(RawStore& raw, const std::vector<es::EventData>& values, std::size_t batch,
                  std::size_t streams) {
  std::vector<std::int64_t> versions(streams, 0);
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(stream_name(s));
  return timed([&] {
    for (std::size_t first = 0; first < values.size(); first += batch) {
      const std::size_t stream = (first / batch) % streams;
      raw.begin();
      for (std::size_t i = first; i < std::min(first + batch, values.size()); ++i) {
        raw.insert(static_cast<std::int64_t>(i) + 1, names[stream], ++versions[stream], values[i]);
      }
      raw.commit();
    }
  });
}

es::EventStore open_store(const std::string& path) {
  return es::EventStore(es::SqliteBackend::open("sqlite:" + path));
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Each figure is the median of `rounds` rounds; in every round the store and
// raw sqlite3 run on fresh files, taking turns at going first (the page cache
// and the WAL checkpoints of one must not favour the other).
GAMEBOT_BENCHMARK("eventstore/sqlite/throughput", context) {
  const std::size_t events = context.size<std::size_t>(500'000, 20'000);
  const std::size_t singles = context.size<std::size_t>(50'000, 2'000);
  const std::size_t streams = context.size<std::size_t>(10'000, 200);
  const int rounds = 3;
  ScratchDir dir;

  std::vector<es::EventData> values;
  values.reserve(events);
  for (std::size_t i = 0; i < events; ++i) values.push_back(make_event(i));
  const std::vector<es::EventData> single_values(values.begin(),
                                                 values.begin() + static_cast<long>(singles));

  Rates raw_batch, store_batch, raw_single, store_single;
  Rates raw_read, raw_read_streams, store_read_all, store_read_streams;
  std::vector<std::string> stream_names;
  for (std::size_t s = 0; s < streams; ++s) stream_names.push_back(stream_name(s));
  for (int round = 0; round < rounds; ++round) {
    const std::string tag = std::to_string(round);
    const std::string raw_path = dir.file("raw-batch-" + tag + ".db");
    const std::string store_path = dir.file("store-batch-" + tag + ".db");
    auto run_raw = [&] {
      {
        RawStore raw(raw_path, true);
        raw_batch.add(events, raw_appends(raw, values, kBatch, streams));
      }
      RawStore raw(dir.file("raw-single-" + tag + ".db"), true);
      raw_single.add(singles, raw_appends(raw, single_values, 1, streams));
    };
    auto run_store = [&] {
      {
        es::EventStore store = open_store(store_path);
        store_batch.add(events, store_appends(store, values, kBatch, streams));
      }
      es::EventStore store = open_store(dir.file("store-single-" + tag + ".db"));
      store_single.add(singles, store_appends(store, single_values, 1, streams));
    };
    auto read_raw = [&] {
      RawStore raw(raw_path, false);
      std::size_t bytes = 0;
      std::size_t rows = 0;
      raw_read.add(events, timed([&] { rows = raw.read_all(bytes); }));
      if (rows != events || bytes == 0) std::abort();
      raw_read_streams.add(events, timed([&] { rows = raw.read_streams(stream_names, bytes); }));
      if (rows != events) std::abort();
    };
    auto read_store = [&] {
      es::EventStore store = open_store(store_path);
      std::size_t read_all = 0;
      std::size_t read_streams = 0;
      std::size_t bytes = 0;
      store_read_all.add(events, timed([&] {
                           for (const es::RecordedEvent& e : store.all_forward()) {
                             bytes += e.data.size();
                             ++read_all;
                           }
                         }));
      store_read_streams.add(events, timed([&] {
                               for (const std::string& stream : stream_names) {
                                 for (const es::RecordedEvent& e : store.stream_forward(stream)) {
                                   bytes += e.data.size();
                                   ++read_streams;
                                 }
                               }
                             }));
      if (read_all != events || read_streams != events || bytes == 0) std::abort();
    };
    if (round % 2 == 0) {
      run_raw();
      run_store();
      read_raw();
      read_store();
    } else {
      run_store();
      run_raw();
      read_store();
      read_raw();
    }
  }

  // Wall clock, then the same runs per CPU second (what the figures are worth
  // when other processes share the machine).
  for (const bool cpu : {false, true}) {
    const std::string suffix = cpu ? "/cpu" : "";
    const std::string unit = cpu ? "events/cpu-s" : "events/s";
    auto pick = [cpu](const Rates& rates) { return median(cpu ? rates.cpu : rates.wall); };
    context.report(rate_vs_baseline("eventstore/sqlite/append/batch100" + suffix, pick(store_batch),
                                    unit, "raw sqlite3 INSERT, 100 rows per transaction",
                                    pick(raw_batch), 0.7));
    context.report(rate_vs_baseline("eventstore/sqlite/append/single" + suffix, pick(store_single),
                                    unit, "raw sqlite3 INSERT, 1 row per transaction",
                                    pick(raw_single), 0.7));
    const Baseline raw_read_baseline{"raw sqlite3 SELECT stepping the same rows", pick(raw_read)};
    context.report(at_least("eventstore/sqlite/read/all" + suffix, pick(store_read_all), unit,
                            2'000'000, raw_read_baseline));
    context.report(at_least(
        "eventstore/sqlite/read/streams" + suffix, pick(store_read_streams), unit, 2'000'000,
        Baseline{"raw sqlite3 SELECT per stream, same index", pick(raw_read_streams)}));
  }
}

// p50/p99 of a sample.
std::pair<double, double> percentiles(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return samples[std::min(samples.size() - 1,
                            static_cast<std::size_t>(q * static_cast<double>(samples.size())))];
  };
  return {at(0.50), at(0.99)};
}

// Delivery delays (ms) of `count` events appended one by one, `gap` apart, by
// `append` to a subscriber of `store` here; the event's created_at is its send
// time.
std::vector<double> delivery_delays(es::EventStore& store, std::size_t count,
                                    const std::function<void()>& start_appending) {
  es::Subscription sub = store.subscribe(std::string(es::kAllStream));
  start_appending();
  std::vector<double> delays;
  while (delays.size() < count) {
    auto e = sub.next(std::chrono::seconds(10));
    if (!e) break;
    const auto delay = es::now() - e->created_at;
    delays.push_back(std::chrono::duration<double, std::milli>(delay).count());
  }
  return delays;
}

void append_paced(es::EventStore& store, std::size_t count, std::chrono::milliseconds gap) {
  for (std::size_t i = 0; i < count; ++i) {
    std::this_thread::sleep_for(gap);
    if (!store.append("wake", es::ExpectedVersion::any(), make_event(i)).ok()) std::abort();
  }
}

GAMEBOT_BENCHMARK("eventstore/sqlite/live_delivery", context) {
  const std::size_t count = context.size<std::size_t>(400, 60);
  const auto gap = std::chrono::milliseconds(3);
  ScratchDir dir;
  const std::string path = dir.file("live.db");
  es::EventStore store = open_store(path);

  // Baseline: an append in this process wakes the subscriber at once.
  std::vector<double> local;
  {
    std::thread writer;
    local = delivery_delays(
        store, count, [&] { writer = std::thread([&] { append_paced(store, count, gap); }); });
    writer.join();
  }

  // Another process appends to the same file; the watcher notices.
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    int code = 0;
    try {
      es::EventStore writer = open_store(path);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the parent subscribes
      append_paced(writer, count, gap);
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  const std::vector<double> remote = delivery_delays(store, count, [] {});
  int status = 0;
  ::waitpid(child, &status, 0);
  if (remote.size() != count || local.size() != count || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    std::abort();
  }
  const auto [local_p50, local_p99] = percentiles(local);
  const auto [remote_p50, remote_p99] = percentiles(remote);
  context.report(at_most("eventstore/sqlite/live/other_process/p99", remote_p99, "ms", 50,
                         Baseline{"append in the same process, p99", local_p99}));
  context.report(at_most("eventstore/sqlite/live/other_process/p50", remote_p50, "ms", 50,
                         Baseline{"append in the same process, p50", local_p50}));
}

}  // namespace
}  // namespace gamebot::bench
