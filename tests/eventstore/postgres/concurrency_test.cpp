// PostgreSQL backend, threaded and multi-process cases (label `concurrency`):
// the no-skip rule with a late-committing append (in threads and across
// processes), live delivery across a killed LISTEN connection, the background
// connection opened only at the first subscription or write, a duplicate id
// that only a racing writer's commit reveals, and subscription ownership
// when the owner's connection dies (taken over, and the old owner fenced).

#include <algorithm>
#include <catch2/catch.hpp>
#include <future>
#include <latch>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/repo.hpp"
#include "gamebot/testing/lease_fencing.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::TestSchema;

EventData event(std::string type, std::string data = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

// Stores that wake only on notifications (no safety-net polling), so a test
// sees whether LISTEN/NOTIFY alone delivers.
StoreOptions notified_only() {
  StoreOptions options;
  options.poll_interval = 1h;
  return options;
}

std::unique_ptr<repo::Connection> admin(const TestSchema& schema) {
  return repo::connect(schema.server_url());
}

TEST_CASE("$all readers do not pass an append whose transaction commits late",
          "[eventstore][postgres][concurrency][watermark]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  auto backend = std::make_shared<PostgresBackend>(repo, schema.options());
  EventStore writer(backend);
  EventStore reader(schema.open(), notified_only());
  REQUIRE(writer.append("before", 0, event("Before")).ok());  // position 1
  Subscription live = reader.subscribe(std::string(kAllStream));
  Subscription persistent = reader.subscribe_persistent("late-reader", std::string(kAllStream));
  const auto first = persistent.next(5s);
  REQUIRE(first.has_value());
  REQUIRE(first->global_position == 1);
  persistent.ack(*first);

  // The late writer takes position 2 in a transaction it keeps open on its thread.
  std::promise<GlobalPosition> appended;
  std::promise<void> commit;
  std::jthread late([&] {
    repo::Transaction tx = repo.transaction();
    const AppendResult result = writer.append("late", 0, event("Late"));
    appended.set_value(result.ok() ? result.first_position : -1);
    commit.get_future().wait();
    tx.commit();
  });
  REQUIRE(appended.get_future().get() == 2);
  // Another writer commits position 3 while 2 is in flight.
  const AppendResult early = writer.append("early", 0, event("Early"));
  REQUIRE(early.ok());
  REQUIRE(early.first_position == 3);

  // Readers must not see 3 before 2 commits: no event, head stays at 1.
  CHECK_FALSE(live.next(300ms).has_value());
  CHECK_FALSE(persistent.next(100ms).has_value());
  CHECK(reader.head_position() == 1);
  CHECK(reader.read_all_forward(0).events.size() == 1);
  CHECK(reader.read_all_backward().events.size() == 1);

  commit.set_value();
  late.join();
  std::vector<GlobalPosition> from_live;
  std::vector<GlobalPosition> from_persistent;
  for (int i = 0; i < 2; ++i) {
    auto l = live.next(5s);
    auto p = persistent.next(5s);
    REQUIRE(l.has_value());
    REQUIRE(p.has_value());
    from_live.push_back(l->global_position);
    from_persistent.push_back(p->global_position);
    persistent.ack(*p);
  }
  CHECK(from_live == std::vector<GlobalPosition>{2, 3});
  CHECK(from_persistent == std::vector<GlobalPosition>{2, 3});
  CHECK(reader.head_position() == 3);
  CHECK_FALSE(live.next(100ms).has_value());
}

TEST_CASE("a rolled-back append leaves a hole that readers step over",
          "[eventstore][postgres][concurrency][watermark]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  auto backend = std::make_shared<PostgresBackend>(repo, schema.options());
  EventStore store(backend);
  EventStore reader(schema.open(), notified_only());
  Subscription live = reader.subscribe(std::string(kAllStream));
  {
    repo::Transaction tx = repo.transaction();
    REQUIRE(store.append("doomed", 0, event("Doomed")).first_position == 1);
    tx.rollback();
  }
  REQUIRE(store.append("kept", 0, event("Kept")).first_position == 2);
  auto e = live.next(5s);
  REQUIRE(e.has_value());
  CHECK(e->global_position == 2);
  CHECK(reader.head_position() == 2);
  CHECK_FALSE(reader.stream_info("doomed").has_value());
}

TEST_CASE("the LISTEN connection names itself, so a stopping harness can leave it alone",
          "[eventstore][postgres][listen]") {
  TestSchema schema;
  auto backend = schema.open();
  EventStore store(backend, notified_only());
  Subscription all = store.subscribe(std::string(kAllStream));
  // The subscriber's first read starts the background connection.
  CHECK_FALSE(all.next(0ms).has_value());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (backend->listener_backend_pid() == 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(1ms);
  }
  auto c = admin(schema);
  CHECK(c->query_value<std::string>("SELECT application_name FROM pg_stat_activity WHERE pid = $1",
                                    backend->listener_backend_pid()) ==
        std::string(gamebot::eventstore::PostgresBackend::kListenerApplicationName));
}

TEST_CASE(
    "a killed LISTEN connection reconnects and its subscribers catch up, nothing lost or "
    "repeated",
    "[eventstore][postgres][concurrency][listen]") {
  TestSchema schema;
  auto subscriber_backend = schema.open();
  EventStore subscriber(subscriber_backend, notified_only());
  EventStore writer(schema.open());
  Subscription all = subscriber.subscribe(std::string(kAllStream));
  Subscription stream = subscriber.subscribe("game-1");
  // The subscribers' first reads start the background connection.
  CHECK_FALSE(all.next(0ms).has_value());
  CHECK_FALSE(stream.next(0ms).has_value());

  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (subscriber_backend->listener_backend_pid() == 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(1ms);
  }
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(writer.append("game-1", i - 1, event("Before", std::to_string(i))).ok());
  }
  for (int i = 1; i <= 5; ++i) {
    auto e = all.next(5s);
    REQUIRE(e.has_value());
    CHECK(e->global_position == i);
    REQUIRE(stream.next(5s).has_value());
  }

  const int killed = subscriber_backend->listener_backend_pid();
  auto terminate = admin(schema);
  CHECK(terminate->query_value<bool>("SELECT pg_terminate_backend($1)", killed) == true);
  // Appended while the listener is down or reconnecting: their NOTIFYs may be lost.
  for (int i = 6; i <= 10; ++i) {
    REQUIRE(writer.append("game-1", i - 1, event("After", std::to_string(i))).ok());
  }
  std::vector<GlobalPosition> positions;
  std::vector<StreamVersion> versions;
  for (int i = 6; i <= 10; ++i) {
    auto e = all.next(10s);
    REQUIRE(e.has_value());
    positions.push_back(e->global_position);
    auto s = stream.next(5s);
    REQUIRE(s.has_value());
    versions.push_back(s->event_number);
  }
  CHECK(positions == std::vector<GlobalPosition>{6, 7, 8, 9, 10});
  CHECK(versions == std::vector<StreamVersion>{6, 7, 8, 9, 10});
  CHECK_FALSE(all.next(200ms).has_value());
  CHECK(subscriber_backend->listener_connections() >= 2);
  CHECK(subscriber_backend->listener_backend_pid() != killed);

  // And it listens again: a later append arrives by notification alone.
  REQUIRE(writer.append("game-1", 10, event("Later")).ok());
  auto later = all.next(5s);
  REQUIRE(later.has_value());
  CHECK(later->global_position == 11);
}

TEST_CASE("poll mode delivers another backend's appends without LISTEN",
          "[eventstore][postgres][concurrency][poll]") {
  TestSchema schema;
  PostgresBackendOptions polling = schema.options();
  polling.notifications = PostgresNotifications::poll;
  polling.poll_interval = 20ms;
  auto polled_backend = schema.open(polling);
  EventStore polled(polled_backend, notified_only());
  EventStore writer(schema.open());
  CHECK(polled_backend->listener_backend_pid() == 0);
  Subscription all = polled.subscribe(std::string(kAllStream));
  REQUIRE(writer.append("s", 0, {event("A"), event("B")}).ok());
  auto a = all.next(5s);
  auto b = all.next(5s);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->type == "A");
  CHECK(b->type == "B");
}

// Server sessions of background connections of stores on `schema`: they name
// themselves, and their last statement (the watermark bound logged after
// LISTEN) names the schema.
std::int64_t background_sessions(const TestSchema& schema) {
  return admin(schema)
      ->query_value<std::int64_t>(
          "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
          "AND position($2 in query) > 0",
          std::string(PostgresBackend::kListenerApplicationName), schema.name())
      .value_or(-1);
}

TEST_CASE("a store used only to read opens no background connection until a subscriber comes",
          "[eventstore][postgres][concurrency][listen][lazy]") {
  TestSchema schema;
  auto backend = schema.open();
  EventStore reader(backend, notified_only());
  CHECK(reader.read_all_forward(0).events.empty());
  CHECK(reader.read_stream_forward("s").status == ReadStatus::stream_not_found);
  CHECK(reader.head_position() == 0);
  CHECK(backend->listener_connections() == 0);
  CHECK(backend->listener_backend_pid() == 0);
  CHECK(background_sessions(schema) == 0);

  Subscription all = reader.subscribe(std::string(kAllStream));
  CHECK_FALSE(all.next(0ms).has_value());
  CHECK(backend->listener_connections() == 1);
  REQUIRE(backend->listener_backend_pid() != 0);
  CHECK(background_sessions(schema) == 1);
  CHECK(admin(schema)->query_value<std::string>(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            backend->listener_backend_pid()) ==
        std::string(PostgresBackend::kListenerApplicationName));
}

TEST_CASE(
    "a subscription on a store that has only read gets another store's appends, the first made "
    "right after subscribe, each once",
    "[eventstore][postgres][concurrency][listen][lazy]") {
  TestSchema schema;
  auto backend = schema.open();
  EventStore reader(backend, notified_only());
  EventStore writer(schema.open());
  CHECK(reader.read_all_forward(0).events.empty());
  REQUIRE(backend->listener_connections() == 0);

  Subscription all = reader.subscribe(std::string(kAllStream));
  // Before the subscription's first read, so before its LISTEN exists.
  REQUIRE(writer.append("s", 0, event("Right after subscribe")).ok());
  auto first = all.next(5s);
  REQUIRE(first.has_value());
  CHECK(first->global_position == 1);
  // Only a notification can wake the subscriber now (its poll interval is an hour).
  REQUIRE(writer.append("s", 1, event("Later")).ok());
  auto second = all.next(5s);
  REQUIRE(second.has_value());
  CHECK(second->global_position == 2);
  CHECK_FALSE(all.next(200ms).has_value());
}

TEST_CASE("the first write of a store that has only read notifies another store's subscriber",
          "[eventstore][postgres][concurrency][listen][lazy]") {
  TestSchema schema;
  EventStore subscriber(schema.open(), notified_only());
  Subscription all = subscriber.subscribe(std::string(kAllStream));
  CHECK_FALSE(all.next(0ms).has_value());

  auto kept_backend = schema.open();
  EventStore kept(kept_backend);
  CHECK(kept.read_all_forward(0).events.empty());
  REQUIRE(kept_backend->listener_connections() == 0);
  REQUIRE(kept.append("kept", 0, event("Kept open")).ok());
  auto first = all.next(5s);
  REQUIRE(first.has_value());
  CHECK(first->global_position == 1);

  // A store closed right after its first write still sends its NOTIFY.
  {
    auto closed_backend = schema.open();
    EventStore closed(closed_backend);
    CHECK(closed.read_all_forward(0).events.size() == 1);
    REQUIRE(closed_backend->listener_connections() == 0);
    REQUIRE(closed.append("closed", 0, event("Closed at once")).ok());
  }
  auto second = all.next(5s);
  REQUIRE(second.has_value());
  CHECK(second->global_position == 2);
  CHECK_FALSE(all.next(200ms).has_value());
}

TEST_CASE(
    "a store constructed inside a caller's transaction starts its background at once, as the "
    "bound it must log before its first append would stay invisible in that transaction",
    "[eventstore][postgres][concurrency][listen][lazy][outbox]") {
  TestSchema schema;
  EventStore{schema.open()};  // creates the schema outside the transaction
  repo::Repo repo = repo::Repo::open(schema.server_url());
  repo::Transaction tx = repo.transaction();
  auto backend = std::make_shared<PostgresBackend>(repo, schema.options());
  CHECK(backend->listener_connections() == 1);
  CHECK(backend->listener_backend_pid() != 0);
  CHECK(background_sessions(schema) == 1);
  tx.rollback();
}

TEST_CASE("threads that write and subscribe first at once share one background connection",
          "[eventstore][postgres][concurrency][listen][lazy]") {
  TestSchema schema;
  auto backend = schema.open();
  EventStore store(backend, notified_only());
  EventStore other(schema.open());
  REQUIRE(backend->listener_connections() == 0);
  constexpr int kWriters = 3;
  constexpr int kReaders = 3;
  std::vector<Subscription> subscriptions;
  for (int r = 0; r < kReaders; ++r) {
    subscriptions.push_back(store.subscribe(std::string(kAllStream)));
  }
  std::vector<char> appended(kWriters, 0);  // not vector<bool>: its bits share words
  std::vector<std::vector<GlobalPosition>> seen(kReaders);
  std::latch go(1);
  {
    std::vector<std::jthread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        go.wait();
        appended[w] = store.append("w" + std::to_string(w), 0, event("W")).ok();
      });
    }
    for (int r = 0; r < kReaders; ++r) {
      threads.emplace_back([&, r] {
        go.wait();
        while (seen[r].size() < kWriters) {
          auto e = subscriptions[r].next(5s);
          if (!e) break;
          seen[r].push_back(e->global_position);
        }
      });
    }
    go.count_down();
  }
  const std::vector<GlobalPosition> all_three{1, 2, 3};
  for (int w = 0; w < kWriters; ++w) CHECK(appended[w] == 1);
  for (int r = 0; r < kReaders; ++r) CHECK(seen[r] == all_three);
  CHECK(backend->listener_connections() == 1);
  // Listening: another store's append arrives by notification alone.
  REQUIRE(other.append("other", 0, event("Other")).ok());
  for (Subscription& subscription : subscriptions) {
    auto e = subscription.next(5s);
    REQUIRE(e.has_value());
    CHECK(e->global_position == 4);
  }
}

TEST_CASE("a duplicate id revealed only by a racing writer's commit is a result, not an error",
          "[eventstore][postgres][concurrency][duplicate]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore first(std::make_shared<PostgresBackend>(repo, schema.options()));
  EventStore second(schema.open());
  EventData shared = event("Shared");
  shared.id = Uuid::v7();

  std::promise<void> appended;
  std::promise<void> commit;
  std::jthread holder([&] {
    repo::Transaction tx = repo.transaction();
    const bool ok = first.append("one", 0, shared).ok();
    appended.set_value();
    commit.get_future().wait();
    if (ok) tx.commit();
  });
  appended.get_future().wait();
  // The second append passes the duplicate check (the first is uncommitted),
  // then waits on the unique index until the first commits.
  auto racing = std::async(std::launch::async, [&] { return second.append("two", 0, shared); });
  CHECK(racing.wait_for(200ms) == std::future_status::timeout);
  commit.set_value();
  holder.join();
  const AppendResult result = racing.get();
  CHECK(result.status == WriteStatus::duplicate_event_id);
  CHECK(result.event_id == shared.id);
  CHECK(result.version == 0);
  CHECK_FALSE(second.stream_info("two").has_value());
  CHECK(second.read_stream_forward("one").events.size() == 1);
  // The rolled-back attempt's position is a hole; the next append goes on.
  const AppendResult next = second.append("two", 0, event("Next"));
  REQUIRE(next.ok());
  CHECK(second.read_all_forward(0).events.size() == 2);
}

TEST_CASE(
    "a racing duplicate id on an existing stream (the one-statement append) is a result, not "
    "an error",
    "[eventstore][postgres][concurrency][duplicate]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore first(std::make_shared<PostgresBackend>(repo, schema.options()));
  EventStore second(schema.open());
  REQUIRE(second.append("two", 0, event("Created")).ok());
  EventData shared = event("Shared");
  shared.id = Uuid::v7();

  std::promise<void> appended;
  std::promise<void> commit;
  std::jthread holder([&] {
    repo::Transaction tx = repo.transaction();
    const bool ok = first.append("one", 0, shared).ok();
    appended.set_value();
    commit.get_future().wait();
    if (ok) tx.commit();
  });
  appended.get_future().wait();
  auto racing = std::async(std::launch::async, [&] { return second.append("two", 1, shared); });
  CHECK(racing.wait_for(200ms) == std::future_status::timeout);
  commit.set_value();
  holder.join();
  const AppendResult result = racing.get();
  CHECK(result.status == WriteStatus::duplicate_event_id);
  CHECK(result.event_id == shared.id);
  CHECK(result.version == 1);
  CHECK(second.stream_info("two")->version == 1);
  // The same connection goes on: the reservation was released.
  const AppendResult next = second.append("two", 1, event("Next"));
  REQUIRE(next.ok());
  CHECK(next.version == 2);
  const auto all = second.read_all_forward(0).events;
  REQUIRE(all.size() == 3);
  CHECK(all.back().global_position == next.last_position);
}

TEST_CASE(
    "inside a caller's transaction a racing duplicate id is a result and the transaction "
    "goes on",
    "[eventstore][postgres][concurrency][duplicate][outbox]") {
  TestSchema schema;
  repo::Repo holder_repo = repo::Repo::open(schema.server_url());
  repo::Repo caller_repo = repo::Repo::open(schema.server_url());
  EventStore holder_store(std::make_shared<PostgresBackend>(holder_repo, schema.options()));
  EventStore caller_store(std::make_shared<PostgresBackend>(caller_repo, schema.options()));
  EventData shared = event("Shared");
  shared.id = Uuid::v7();

  std::promise<void> appended;
  std::promise<void> commit;
  std::jthread holder([&] {
    repo::Transaction tx = holder_repo.transaction();
    const bool ok = holder_store.append("one", 0, shared).ok();
    appended.set_value();
    commit.get_future().wait();
    if (ok) tx.commit();
  });
  appended.get_future().wait();
  auto caller = std::async(std::launch::async, [&] {
    repo::Transaction tx = caller_repo.transaction();
    const AppendResult duplicate = caller_store.append("two", 0, shared);
    // The caller's transaction is still usable: the next append joins it.
    const AppendResult next = caller_store.append("two", 0, event("Instead"));
    tx.commit();
    return std::pair{duplicate, next};
  });
  CHECK(caller.wait_for(200ms) == std::future_status::timeout);  // waiting on the unique index
  commit.set_value();
  holder.join();
  const auto [duplicate, next] = caller.get();
  CHECK(duplicate.status == WriteStatus::duplicate_event_id);
  CHECK(duplicate.event_id == shared.id);
  CHECK(duplicate.version == 0);
  CHECK(next.ok());
  const auto two = caller_store.read_stream_forward("two").events;
  REQUIRE(two.size() == 1);
  CHECK(two[0].type == "Instead");
}

TEST_CASE("a subscription whose owner's connection dies can be taken over",
          "[eventstore][postgres][concurrency][ownership]") {
  TestSchema schema;
  auto owner_backend = schema.open();
  auto standby_backend = schema.open();
  auto lease = owner_backend->try_acquire_subscription("orders", "$all");
  REQUIRE(lease != nullptr);
  CHECK(standby_backend->try_acquire_subscription("orders", "$all") == nullptr);
  CHECK(standby_backend->try_acquire_subscription("other", "$all") != nullptr);

  // The owner "crashes": the server ends its lease connection.
  auto terminate = admin(schema);
  const auto killed = terminate->execute(
      "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND "
      "objsubid = 1 AND granted AND (classid::bigint << 32 | objid::bigint) = $1",
      postgres_subscription_lock_key(schema.name(), "orders", "$all"));
  CHECK(killed == 1);
  std::unique_ptr<SubscriptionLease> taken;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!taken && std::chrono::steady_clock::now() < deadline) {
    taken = standby_backend->try_acquire_subscription("orders", "$all");
    if (!taken) std::this_thread::sleep_for(10ms);
  }
  CHECK(taken != nullptr);
  lease.reset();  // releasing on a dead connection is harmless
}

std::int64_t terminate_lease_holder(const TestSchema& schema, std::string_view subscription,
                                    std::string_view stream_id) {
  auto terminate = admin(schema);
  return terminate->execute(
      "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND "
      "objsubid = 1 AND granted AND (classid::bigint << 32 | objid::bigint) = $1",
      postgres_subscription_lock_key(schema.name(), subscription, stream_id));
}

TEST_CASE("an owner whose lease connection is terminated mid-batch is fenced",
          "[eventstore][postgres][concurrency][ownership][fencing]") {
  TestSchema schema;
  StoreOptions options;
  options.poll_interval = 20ms;
  EventStore writer(schema.open(), options);
  EventStore owner_store(schema.open(), options);
  EventStore standby(schema.open(), options);
  gamebot::testing::ThreadFencingOwner owner(owner_store);
  gamebot::testing::check_lease_fencing(writer, owner.owner(), standby, [&] {
    CHECK(terminate_lease_holder(schema, gamebot::testing::kFencingSubscription,
                                 gamebot::testing::kFencingStream) == 1);
  });
}

// ---- several processes -----------------------------------------------------------

std::vector<std::string> child_args(const TestSchema& schema, std::vector<std::string> args) {
  std::vector<std::string> argv{GAMEBOT_EVENTSTORE_POSTGRES_CHILD, args.at(0), schema.server_url(),
                                schema.name()};
  argv.insert(argv.end(), args.begin() + 1, args.end());
  return argv;
}

// The fencing scenario's owner in a child process (role fenced-owner): its
// DELIVERED lines carry the steady clock, which is one clock for every process.
gamebot::testing::FencingOwner process_owner(ChildProcess& child,
                                             gamebot::testing::FencingOwnerReport& report) {
  auto read_until = [&child, &report](const std::string& last) {
    while (auto line = child.read_line(10s)) {
      std::istringstream words(*line);
      std::string word;
      words >> word;
      if (word == last) return true;
      if (word == "DELIVERED") {
        std::int64_t number = 0;
        std::int64_t token = 0;
        std::int64_t at = 0;
        words >> number >> token >> at;
        report.deliveries.push_back(
            {std::chrono::steady_clock::time_point(std::chrono::nanoseconds(at)), 'o', token,
             number});
      } else if (word == "FENCED" || word == "ERROR") {
        std::string fault;
        words >> fault;
        report.fenced = word == "FENCED";
        if (fault == "concurrency") report.fault = FaultClass::concurrency;
        if (!report.fault) report.failure = "the owner failed with fault " + fault;
      } else if (word == "FAIL") {
        report.failure = *line;
        return false;
      }
    }
    if (report.failure.empty()) report.failure = "the owner process said nothing for 10 s";
    return false;
  };
  return {[read_until] { return read_until("MIDBATCH"); },
          [&child, &report, read_until] {
            child.write_line("resume");
            read_until("END");
            return report;
          }};
}

TEST_CASE("an owner process whose lease connection is terminated mid-batch is fenced",
          "[eventstore][postgres][concurrency][ownership][fencing][processes]") {
  TestSchema schema;
  StoreOptions options;
  options.poll_interval = 20ms;
  EventStore writer(schema.open(), options);
  EventStore standby(schema.open(), options);
  ChildProcess child(child_args(schema, {"fenced-owner", gamebot::testing::kFencingSubscription,
                                         gamebot::testing::kFencingStream}));
  gamebot::testing::FencingOwnerReport report;
  gamebot::testing::check_lease_fencing(writer, process_owner(child, report), standby, [&] {
    CHECK(terminate_lease_holder(schema, gamebot::testing::kFencingSubscription,
                                 gamebot::testing::kFencingStream) == 1);
  });
  CHECK(child.wait(10s) == 0);
}

TEST_CASE(
    "processes appending and one reading $all: every event once, in position order, "
    "including one that commits late",
    "[eventstore][postgres][concurrency][multiprocess]") {
  TestSchema schema;
  constexpr int kWriters = 3;
  constexpr int kPerWriter = 60;
  constexpr int kLate = 5;
  constexpr long kTotal = 2L * kWriters * kPerWriter + kLate;
  postgres_event_store_migrator(schema.name()).migrate(*admin(schema));

  ChildProcess reader(
      child_args(schema, {"reader", std::to_string(kTotal), std::to_string(30'000)}));
  REQUIRE(reader.read_line(20s) == "READY");

  auto run_writers = [&](const std::string& phase) {
    std::vector<std::unique_ptr<ChildProcess>> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.push_back(std::make_unique<ChildProcess>(
          child_args(schema, {"writer", phase + "-" + std::to_string(w), std::to_string(kPerWriter),
                              std::to_string(1 + w * 2)})));
    }
    for (auto& writer : writers) {
      CHECK(writer->read_line(30s) == "DONE");
      CHECK(writer->wait(10s) == 0);
    }
  };
  run_writers("first");

  ChildProcess late(child_args(schema, {"late", "late", std::to_string(kLate)}));
  const auto appended = late.read_line(20s);
  REQUIRE(appended.has_value());
  REQUIRE(appended->starts_with("APPENDED "));
  const GlobalPosition late_first = std::stol(appended->substr(9));
  CHECK(late_first == kWriters * kPerWriter + 1);

  run_writers("second");
  // Everything after the open transaction's positions is committed, yet
  // invisible to readers until it commits.
  {
    EventStore observer(schema.open());
    CHECK(observer.head_position() == late_first - 1);
    CHECK(observer.read_all_forward(0, 10'000).events.size() ==
          static_cast<std::size_t>(late_first - 1));
  }
  late.write_line("commit");
  CHECK(late.read_line(10s) == "COMMITTED");
  CHECK(late.wait(10s) == 0);

  const auto verdict = reader.read_line(30s);
  CHECK(verdict == "OK " + std::to_string(kTotal));
  CHECK(reader.wait(10s) == 0);

  EventStore observer(schema.open());
  CHECK(observer.head_position() == kTotal);
}

TEST_CASE(
    "appends arriving while a commit is in flight commit together and a failed expectation "
    "fails only its caller",
    "[eventstore][postgres][concurrency][group-commit]") {
  TestSchema schema;
  PostgresBackendOptions options = schema.options();
  options.group_commit_patience = 1h;  // the queue waits for the held commits however long
  auto backend = schema.open(options);
  EventStore store(backend);
  // As many held appends as commits may be in flight before callers queue.
  std::vector<std::string> held;
  for (std::size_t i = 0; i < options.group_commit_in_flight; ++i) {
    held.push_back("held-" + std::to_string(i));
  }
  for (const std::string& stream : held) REQUIRE(store.append(stream, 0, event("Created")).ok());
  for (const char* stream : {"b", "c", "d"}) {
    REQUIRE(store.append(stream, 0, event("Created")).ok());
  }
  const auto before = static_cast<GlobalPosition>(held.size() + 3);

  // Another transaction holds the "held-*" rows, so the next append to each
  // stays in flight until that transaction ends.
  auto blocker = admin(schema);
  blocker->execute_batch("BEGIN; SELECT version FROM " + repo::quote_identifier(schema.name()) +
                         ".streams WHERE stream_id LIKE 'held-%' FOR UPDATE");
  std::vector<std::future<AppendResult>> in_flight;
  for (const std::string& stream : held) {
    in_flight.push_back(std::async(std::launch::async,
                                   [&, stream] { return store.append(stream, 1, event("Late")); }));
  }
  auto watcher = admin(schema);
  while (watcher
             ->query_value<std::int64_t>(
                 "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                 "AND position($1 in query) > 0",
                 repo::quote_identifier(schema.name()))
             .value_or(0) < static_cast<std::int64_t>(held.size())) {
    std::this_thread::yield();
  }

  // Three callers arrive while it is in flight; "c" expects a wrong version.
  auto b = std::async(std::launch::async, [&] { return store.append("b", 1, event("B")); });
  auto c = std::async(std::launch::async, [&] { return store.append("c", 5, event("C")); });
  auto d = std::async(std::launch::async, [&] { return store.append("d", 1, event("D")); });
  auto finished = [](auto& f) { return f.wait_for(0s) == std::future_status::ready; };
  while (backend->appends_waiting() < 3 && !(finished(b) && finished(c) && finished(d))) {
    std::this_thread::yield();
  }
  blocker->execute_batch("COMMIT");

  // The group waits for a free in-flight slot, so for the first held commit to end; the other
  // held commits may end before or after the group's, as the server schedules them.
  GlobalPosition first_held = 0;
  for (auto& late : in_flight) {
    const AppendResult result = late.get();
    REQUIRE(result.ok());
    if (first_held == 0 || result.first_position < first_held) first_held = result.first_position;
  }
  const AppendResult rb = b.get();
  const AppendResult rc = c.get();
  const AppendResult rd = d.get();
  REQUIRE(rb.ok());
  REQUIRE(rd.ok());
  CHECK(rc.status == WriteStatus::wrong_expected_version);
  CHECK(rc.version == 1);
  CHECK(store.read_stream_forward("c").events.size() == 1);
  CHECK(store.read_stream_forward("b").events.size() == 2);
  CHECK(store.read_stream_forward("d").events.size() == 2);

  // "b" and "d" committed as one combined transaction, after a held one.
  CHECK(backend->appends_grouped() == 2);
  // The group's one statement carried "b", "c" and "d"; every other commit one
  // append: the creations, the held ones, and "c" run alone after the group.
  const std::vector<std::uint64_t> sizes = backend->commits_by_group_size();
  REQUIRE(sizes.size() > 3);
  CHECK(sizes[1] == 2 * held.size() + 3 + 1);
  CHECK(sizes[2] == 0);
  CHECK(sizes[3] == 1);
  CHECK(std::accumulate(sizes.begin() + 4, sizes.end(), std::uint64_t{0}) == 0);
  CHECK(first_held < std::min(rb.first_position, rd.first_position));
  CHECK(std::max(rb.first_position, rd.first_position) -
            std::min(rb.first_position, rd.first_position) ==
        1);

  // `$all` is gap-free.
  const GlobalPosition total = before + static_cast<GlobalPosition>(held.size()) + 2;
  const auto all = store.read_all_forward(0).events;
  REQUIRE(all.size() == static_cast<std::size_t>(total));
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].global_position == static_cast<GlobalPosition>(i + 1));
  }
  CHECK(store.head_position() == total);
}

}  // namespace
}  // namespace gamebot::eventstore
