// PostgreSQL backend with reads on a streaming hot-standby replica
// (PostgresBackendOptions::read_url): `$all` on the replica never skips or
// repeats an event while several writers append on the primary (reads and a
// subscription), nor when the replica has replayed a later position's commit
// but not an earlier one's, read-your-writes, the timeout of a read-your-writes read on a
// replica whose replay is paused, and a subscription that continues on the
// primary when its replica is killed. The shared fixture replica ("pg-replica")
// serves the first cases; the cases that pause or kill a replica make one of
// their own, of a private primary.

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/repo.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
using testing::TestSchema;

constexpr auto kDeliver = 20s;    // bound of a wait for an event that must come
constexpr auto kNothing = 200ms;  // how long "nothing more comes" is watched

EventData event(std::string type) {
  EventData e;
  e.type = std::move(type);
  e.data = "{}";
  return e;
}

PostgresBackendOptions on_replica(const std::string& replica_url, bool read_your_writes) {
  PostgresBackendOptions options;
  options.read_url = parse_url(replica_url);
  options.replica_read_your_writes = read_your_writes;
  return options;
}

// A hot-standby replica of `primary` of its own (scripts/pg-replica-test-server),
// for the cases that pause or kill it. Stopped and removed by stop() or the destructor.
class PrivateReplica {
 public:
  explicit PrivateReplica(const harness::EphemeralPostgres& primary)
      : primary_dir_(primary.socket_dir().string()),
        dir_((std::filesystem::temp_directory_path() /
              ("gamebot-replica-" + Uuid::v4().to_string().substr(0, 13)))
                 .string()) {
    run("start");
  }
  ~PrivateReplica() {
    try {
      stop();
    } catch (...) {
      // The next run's /tmp cleanup takes what is left.
    }
  }
  PrivateReplica(const PrivateReplica&) = delete;
  PrivateReplica& operator=(const PrivateReplica&) = delete;

  std::string url() const { return "postgresql://postgres@/postgres?host=" + dir_; }
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    run("stop");
  }

 private:
  void run(std::string_view action) {
    // The script talks on stdout, which belongs to the test framework.
    const std::string command = fmt::format("'{}' {} '{}' '{}' 1>&2", GAMEBOT_PG_REPLICA_SCRIPT,
                                            action, primary_dir_, dir_);
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error(fmt::format("pg-replica-test-server {} failed", action));
    }
  }

  std::string primary_dir_;
  std::string dir_;
  bool stopped_ = false;
};

// Appends `per_writer` single events from each of `writers` threads, each to
// streams of its own; returns the ids appended.
std::vector<Uuid> append_concurrently(EventStore& store, int writers, int per_writer) {
  std::vector<std::vector<Uuid>> ids(static_cast<std::size_t>(writers));
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) {
        EventData e = event("Appended");
        e.id = Uuid::v4();
        const AppendResult result =
            store.append(fmt::format("writer-{}-{}", w, i % 3), ExpectedVersion::any(), e);
        if (result.ok()) ids[static_cast<std::size_t>(w)].push_back(*e.id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<Uuid> all;
  for (const auto& some : ids) all.insert(all.end(), some.begin(), some.end());
  return all;
}

// Takes `count` events from `sub`, failing the test on a gap in delivery.
std::vector<RecordedEvent> take(Subscription& sub, std::size_t count) {
  std::vector<RecordedEvent> out;
  while (out.size() < count) {
    auto e = sub.next(kDeliver);
    REQUIRE(e.has_value());
    out.push_back(*e);
  }
  return out;
}

// Every event exactly once, in `$all` order: the ids read are `expected`'s
// (as a set) and the positions strictly increase.
void check_exactly_once_in_order(const std::vector<RecordedEvent>& read,
                                 const std::vector<Uuid>& expected) {
  for (std::size_t i = 1; i < read.size(); ++i) {
    REQUIRE(read[i - 1].global_position < read[i].global_position);
  }
  std::set<Uuid> ids;
  for (const RecordedEvent& e : read) ids.insert(e.event_id);
  CHECK(ids.size() == read.size());
  CHECK(ids == std::set<Uuid>(expected.begin(), expected.end()));
}

TEST_CASE("$all read from the replica never skips or repeats an event while writers append",
          "[eventstore][postgres][replica][concurrency]") {
  TestSchema schema("es_replica");
  EventStore writer(schema.open());
  auto backend = schema.open(on_replica(gamebot::testing::replica_url(), false));
  EventStore reader(backend);
  Subscription live = reader.subscribe(std::string(kAllStream));

  constexpr int kWriters = 4;
  constexpr int kPerWriter = 60;
  // A reader paging `$all` on the replica while the writers append: each page
  // continues after the last event of the one before.
  std::vector<RecordedEvent> paged;
  std::thread paging([&] {
    const auto give_up = std::chrono::steady_clock::now() + 60s;  // a hang guard only
    GlobalPosition next = 1;
    while (paged.size() < static_cast<std::size_t>(kWriters * kPerWriter) &&
           std::chrono::steady_clock::now() < give_up) {
      ReadResult page = reader.read_all_forward(next, 7);
      for (const RecordedEvent& e : page.events) paged.push_back(e);
      if (!page.events.empty()) next = page.events.back().global_position + 1;
    }
  });
  const std::vector<Uuid> appended = append_concurrently(writer, kWriters, kPerWriter);
  paging.join();
  REQUIRE(appended.size() == static_cast<std::size_t>(kWriters * kPerWriter));

  check_exactly_once_in_order(paged, appended);
  const std::vector<RecordedEvent> delivered = take(live, appended.size());
  check_exactly_once_in_order(delivered, appended);
  CHECK_FALSE(live.next(kNothing).has_value());
  // The primary's `$all` in the same order.
  const ReadResult primary = writer.read_all_forward(0, appended.size() + 1);
  REQUIRE(primary.events.size() == delivered.size());
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    CHECK(primary.events[i].event_id == delivered[i].event_id);
  }
  CHECK(backend->replica_reads() > 0);
  CHECK(backend->replica_failovers() == 0);
}

// The commit order that makes a replica show a later position without an
// earlier one: A takes position p in a transaction left open, B takes p + 1
// and commits, the replica replays B, its replay is paused, then A commits.
// The primary's watermark is now past both; the replica shows B only, so a
// reader must not read it there up to that watermark.
TEST_CASE("$all on a replica that has replayed a later commit but not an earlier one skips nothing",
          "[eventstore][postgres][replica]") {
  harness::EphemeralPostgres primary;
  PrivateReplica replica(primary);
  repo::Repo repo = repo::Repo::open(primary.url());
  EventStore outbox(std::make_shared<PostgresBackend>(repo));
  EventStore writer(PostgresBackend::open(primary.url()));
  EventStore waiter(PostgresBackend::open(primary.url(), on_replica(replica.url(), true)));
  auto backend = PostgresBackend::open(primary.url(), on_replica(replica.url(), false));
  EventStore reader(backend);
  REQUIRE(writer.append("before", ExpectedVersion::any(), event("Before")).ok());
  SubscriptionOptions from_origin;
  from_origin.start_from = StartFrom::origin();
  Subscription live = reader.subscribe(std::string(kAllStream), from_origin);

  auto standby = repo::connect(replica.url());
  {
    repo::Transaction tx = repo.transaction();
    REQUIRE(outbox.append("a", ExpectedVersion::any(), event("A")).ok());  // p, open
    REQUIRE(writer.append("b", ExpectedVersion::any(), event("B")).ok());  // p + 1, committed
    // The replica has replayed B's commit (read-your-writes waits for it).
    REQUIRE(waiter.read_stream_forward("b", 1, 10).events.size() == 1);
    standby->execute_batch("SELECT pg_wal_replay_pause()");
    tx.commit();
  }
  // The primary shows both; the replica only B, until its replay resumes.
  const ReadResult final_all = writer.read_all_forward(0, 10);
  REQUIRE(final_all.events.size() == 3);
  auto is_prefix = [&](const std::vector<RecordedEvent>& read) {
    if (read.size() > final_all.events.size()) return false;
    for (std::size_t i = 0; i < read.size(); ++i) {
      if (read[i].event_id != final_all.events[i].event_id) return false;
    }
    return true;
  };
  CHECK(is_prefix(reader.read_all_forward(0, 10).events));
  std::vector<RecordedEvent> backward = reader.read_all_backward(kLatest, 10).events;
  std::reverse(backward.begin(), backward.end());
  CHECK(is_prefix(backward));
  CHECK(reader.head_position() < final_all.events[1].global_position);

  standby->execute_batch("SELECT pg_wal_replay_resume()");
  const std::vector<RecordedEvent> delivered = take(live, 3);
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    CHECK(delivered[i].event_id == final_all.events[i].event_id);
  }
  CHECK_FALSE(live.next(kNothing).has_value());
  CHECK(backend->replica_reads() > 0);
  CHECK(backend->replica_failovers() == 0);
}

TEST_CASE("with read-your-writes, a read from the replica right after an append sees it",
          "[eventstore][postgres][replica]") {
  TestSchema schema("es_replica");
  auto backend = schema.open(on_replica(gamebot::testing::replica_url(), true));
  EventStore store(backend);
  for (StreamVersion version = 1; version <= 20; ++version) {
    const AppendResult appended = store.append("s", ExpectedVersion::any(), event("Appended"));
    REQUIRE(appended.ok());
    const ReadResult stream = store.read_stream_forward("s", 1, 100);
    REQUIRE(stream.events.size() == static_cast<std::size_t>(version));
    CHECK(stream.events.back().stream_version == version);
    const ReadResult all = store.read_all_forward(0, 100);
    REQUIRE(all.events.size() == static_cast<std::size_t>(version));
    CHECK(all.events.back().global_position == appended.last_position);
    CHECK(store.head_position() == appended.last_position);
    const auto info = store.stream_info("s");
    REQUIRE(info.has_value());
    CHECK(info->version == version);
  }
  CHECK(backend->replica_reads() >= 80);
  CHECK(backend->replica_failovers() == 0);
}

TEST_CASE("a read-your-writes read times out while the replica's replay is paused",
          "[eventstore][postgres][replica]") {
  harness::EphemeralPostgres primary;
  PrivateReplica replica(primary);
  PostgresBackendOptions options = on_replica(replica.url(), true);
  options.replica_wait = 300ms;
  auto backend = PostgresBackend::open(primary.url(), options);
  EventStore store(backend);
  // The reads that must succeed go through a store that waits as long as a loaded machine may
  // make the replica lag (it gets WAL only once the primary has flushed it): 300 ms is for the
  // reads that must time out.
  PostgresBackendOptions patient_options = on_replica(replica.url(), true);
  patient_options.replica_wait = 60s;
  EventStore patient(PostgresBackend::open(primary.url(), patient_options));
  REQUIRE(store.append("s", ExpectedVersion::any(), event("Before")).ok());
  REQUIRE(patient.read_stream_forward("s", 1, 10).events.size() == 1);

  auto standby = repo::connect(replica.url());
  standby->execute_batch("SELECT pg_wal_replay_pause()");
  REQUIRE(store.append("s", ExpectedVersion::any(), event("Paused")).ok());
  auto fault_of = [](auto&& read) -> std::optional<FaultClass> {
    try {
      read();
    } catch (const Error& error) {
      CHECK_THAT(error.message(), Catch::Contains("replica_wait"));
      return error.fault();
    }
    return std::nullopt;
  };
  CHECK(fault_of([&] { store.read_stream_forward("s", 1, 10); }) == FaultClass::timeout);
  CHECK(fault_of([&] { store.read_all_forward(0, 10); }) == FaultClass::timeout);
  CHECK(fault_of([&] { store.head_position(); }) == FaultClass::timeout);
  CHECK(backend->replica_failovers() == 0);  // lag is no fault: it never went to the primary

  standby->execute_batch("SELECT pg_wal_replay_resume()");
  CHECK(patient.read_stream_forward("s", 1, 10).events.size() == 2);
  CHECK(patient.read_all_forward(0, 10).events.size() == 2);
}

TEST_CASE("a subscription reading from a replica that is killed continues on the primary",
          "[eventstore][postgres][replica][concurrency]") {
  harness::EphemeralPostgres primary;
  PrivateReplica replica(primary);
  EventStore writer(PostgresBackend::open(primary.url()));
  auto backend = PostgresBackend::open(primary.url(), on_replica(replica.url(), false));
  EventStore reader(backend);
  Subscription live = reader.subscribe(std::string(kAllStream));

  // Appends before the kill, during it and after it (those only the primary
  // can deliver now).
  constexpr int kWriters = 3;
  constexpr int kPerWriter = 40;
  std::vector<Uuid> appended = append_concurrently(writer, kWriters, kPerWriter);
  std::vector<RecordedEvent> delivered = take(live, appended.size() / 2);
  const std::uint64_t reads_before_kill = backend->replica_reads();
  std::vector<Uuid> during;
  std::thread writing([&] { during = append_concurrently(writer, kWriters, kPerWriter); });
  replica.stop();
  writing.join();
  const std::vector<Uuid> after = append_concurrently(writer, kWriters, kPerWriter);
  appended.insert(appended.end(), during.begin(), during.end());
  appended.insert(appended.end(), after.begin(), after.end());
  REQUIRE(appended.size() == static_cast<std::size_t>(3 * kWriters * kPerWriter));
  const std::vector<RecordedEvent> rest = take(live, appended.size() - delivered.size());
  delivered.insert(delivered.end(), rest.begin(), rest.end());

  check_exactly_once_in_order(delivered, appended);
  CHECK_FALSE(live.next(kNothing).has_value());
  CHECK(reads_before_kill > 0);
  CHECK(backend->replica_failovers() >= 1);
}

}  // namespace
}  // namespace gamebot::eventstore
