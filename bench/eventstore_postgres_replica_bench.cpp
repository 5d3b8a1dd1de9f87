// PostgreSQL event store with reads on a streaming hot-standby replica
// (PostgresBackendOptions::read_url), on a private primary (EphemeralPostgres)
// and a replica of it (scripts/pg-replica-test-server), in the same run:
// * `$all` read throughput (pages of 1,000) from the replica against the same
//   read from the primary;
// * replica lag as a read-your-writes reader sees it: from an append's return
//   to a read of its stream on the replica that shows it (p50, p99), against
//   the same read from the primary; with the primary's synchronous_commit off
//   (as the test servers run: WAL reaches the standby at the WAL writer's
//   rounds) and on (WAL flushed at each commit; fsync stays off).
// Events: ~200-byte data, spread over 100 streams.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/bench/child_process.hpp"
#include "gamebot/core/uuid.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"

#ifndef GAMEBOT_PG_REPLICA_SCRIPT
#error "GAMEBOT_PG_REPLICA_SCRIPT (the path of scripts/pg-replica-test-server) is not defined"
#endif

namespace {

namespace es = gamebot::eventstore;
using gamebot::bench::Baseline;
using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("eventstore/postgres/replica benchmark: " + what);
}

double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

double quantile_of(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return 0;
  return values[std::min(values.size() - 1,
                         static_cast<std::size_t>(q * static_cast<double>(values.size())))];
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A primary and a hot-standby replica of it, both stopped and removed at the end.
class PrimaryAndReplica {
 public:
  explicit PrimaryAndReplica(bool synchronous_commit)
      : primary_(options(synchronous_commit)),
        dir_((std::filesystem::temp_directory_path() /
              ("gamebot-bench-replica-" + gamebot::Uuid::v4().to_string().substr(0, 13)))
                 .string()) {
    run("start");
  }
  ~PrimaryAndReplica() {
    try {
      run("stop");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
  }
  PrimaryAndReplica(const PrimaryAndReplica&) = delete;
  PrimaryAndReplica& operator=(const PrimaryAndReplica&) = delete;

  std::string primary_url() const { return primary_.url(); }
  std::string replica_url() const { return "postgresql://postgres@/postgres?host=" + dir_; }

 private:
  static gamebot::harness::EphemeralPostgresOptions options(bool synchronous_commit) {
    gamebot::harness::EphemeralPostgresOptions options;
    options.settings.emplace_back("synchronous_commit", synchronous_commit ? "on" : "off");
    return options;
  }
  void run(std::string_view action) {
    gamebot::bench::run_child(
        {GAMEBOT_PG_REPLICA_SCRIPT, std::string(action), primary_.socket_dir().string(), dir_});
  }

  gamebot::harness::EphemeralPostgres primary_;
  std::string dir_;
};

es::PostgresBackendOptions reading_from(const std::string& replica_url, bool read_your_writes) {
  es::PostgresBackendOptions options;
  options.read_url = es::parse_url(replica_url);
  options.replica_read_your_writes = read_your_writes;
  options.replica_wait = std::chrono::milliseconds(10'000);
  return options;
}

// Events per second of reading all of `$all` forward in pages of 1,000.
double read_all_rate(es::EventStore& store, std::size_t expected) {
  const auto start = Clock::now();
  std::size_t seen = 0;
  es::GlobalPosition next = 1;
  for (;;) {
    const es::ReadResult page = store.read_all_forward(next, 1'000);
    if (page.events.empty()) break;
    seen += page.events.size();
    next = page.events.back().global_position + 1;
  }
  if (seen != expected) fail(fmt::format("read {} of {} events", seen, expected));
  return static_cast<double>(seen) / (ms_since(start) / 1'000.0);
}

// Milliseconds from each append's return until a read of its stream shows it.
std::vector<double> visibility_ms(es::EventStore& writer, es::EventStore& reader,
                                  std::size_t appends) {
  std::vector<double> samples;
  const std::string data(200, 'x');
  for (std::size_t i = 0; i < appends; ++i) {
    const std::string stream = fmt::format("lag-{}", i % 10);
    es::EventData e;
    e.type = "Measured";
    e.data = data;
    const es::AppendResult appended = writer.append(stream, es::ExpectedVersion::any(), e);
    if (!appended.ok()) fail("append");
    const auto start = Clock::now();
    const es::ReadResult read = reader.read_stream_backward(stream, es::kLatest, 1);
    samples.push_back(ms_since(start));
    if (read.events.empty() || read.events.front().global_position != appended.last_position) {
      fail("a read-your-writes read missed the append before it");
    }
  }
  return samples;
}

}  // namespace

GAMEBOT_BENCHMARK("eventstore/postgres/replica", context) {
  const std::size_t events = context.size<std::size_t>(100'000, 5'000);
  const std::size_t appends = context.size<std::size_t>(300, 40);
  const int rounds = context.size(3, 1);

  for (const bool synchronous_commit : {false, true}) {
    const std::string setting = synchronous_commit ? "sync_commit_on" : "sync_commit_off";
    PrimaryAndReplica servers(synchronous_commit);
    es::EventStore primary(es::PostgresBackend::open(servers.primary_url()));
    es::EventStore replica(es::PostgresBackend::open(servers.primary_url(),
                                                     reading_from(servers.replica_url(), false)));
    es::EventStore read_your_writes(es::PostgresBackend::open(
        servers.primary_url(), reading_from(servers.replica_url(), true)));

    // Replica lag seen by a read-your-writes reader, against the primary.
    {
      const std::vector<double> lag = visibility_ms(primary, read_your_writes, appends);
      const std::vector<double> direct = visibility_ms(primary, primary, appends);
      context.report(gamebot::bench::at_most(
          "eventstore/postgres/replica/" + setting + "/read_your_writes/p99",
          quantile_of(lag, 0.99), "ms", synchronous_commit ? 20 : 250,
          Baseline{"the same read from the primary, p99", quantile_of(direct, 0.99)}));
      context.report(gamebot::bench::at_most(
          "eventstore/postgres/replica/" + setting + "/read_your_writes/p50",
          quantile_of(lag, 0.50), "ms", synchronous_commit ? 5 : 250,
          Baseline{"the same read from the primary, p50", quantile_of(direct, 0.50)}));
    }
    if (synchronous_commit) continue;  // the read rate does not depend on it

    // `$all` read throughput: fill, let the replica catch up, read from both.
    const std::string data(200, 'x');
    std::vector<es::EventData> batch(100);
    for (es::EventData& e : batch) {
      e.type = "Filled";
      e.data = data;
    }
    for (std::size_t i = 0; i < events / batch.size(); ++i) {
      if (!primary.append(fmt::format("fill-{}", i % 100), es::ExpectedVersion::any(), batch)
               .ok()) {
        fail("fill");
      }
    }
    const std::size_t total = events + 2 * appends;
    if (read_your_writes.read_all_backward(es::kLatest, 1).events.empty()) fail("catch up");
    std::vector<double> from_replica;
    std::vector<double> from_primary;
    for (int round = 0; round < rounds; ++round) {
      from_primary.push_back(read_all_rate(primary, total));
      from_replica.push_back(read_all_rate(replica, total));
    }
    context.report(gamebot::bench::rate_vs_baseline(
        "eventstore/postgres/replica/read_all", median_of(from_replica), "events/s",
        "the same read from the primary", median_of(from_primary), 0.8));
  }
}
