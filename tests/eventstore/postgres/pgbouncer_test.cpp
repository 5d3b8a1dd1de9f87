// The PostgreSQL backend behind PgBouncer in transaction pooling mode (the
// CTest fixture "pgbouncer"), beyond the conformance suite: what a pooler that
// hands each transaction any server session breaks, and that the store's
// pooling=transaction mode keeps working: lease exclusion, the position
// reservation after a failed append, the URL parameter, delivery by polling
// and by LISTEN on a direct listen_url, a lease whose server session dies.

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/repo.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
using testing::TestSchema;

EventData event(std::string type) {
  EventData e;
  e.type = std::move(type);
  return e;
}

std::vector<EventData> events(std::size_t count) {
  return std::vector<EventData>(count, event("E"));
}

// A schema reached through the pooler.
TestSchema pooled_schema() {
  return TestSchema(gamebot::testing::pgbouncer_url(), "es_pgbouncer");
}

// A connection through the pooler for the test's own statements.
std::unique_ptr<repo::Connection> unprepared_connection(const std::string& url) {
  repo::ConnectOptions options;
  options.postgres.prepared_statements = false;
  return repo::connect(url, options);
}

PostgresBackendOptions pooled() {
  PostgresBackendOptions options;
  options.pooling = PostgresPooling::transaction;
  return options;
}

TEST_CASE("through PgBouncer a held lease excludes every other try, whatever session each gets",
          "[eventstore][postgres][pgbouncer][subscription]") {
  TestSchema schema = pooled_schema();
  std::shared_ptr<PostgresBackend> first = schema.open(pooled());
  std::shared_ptr<PostgresBackend> second = schema.open(pooled());
  std::unique_ptr<SubscriptionLease> lease = first->try_acquire_subscription("owned", "s");
  REQUIRE(lease != nullptr);
  // A session lock would stay with the server session that took it, which the
  // pooler hands to the next transaction of any client: that try would win.
  for (int round = 0; round < 10; ++round) {
    CHECK(second->try_acquire_subscription("owned", "s") == nullptr);
    CHECK(first->try_acquire_subscription("owned", "s") == nullptr);
    CHECK(first->head_position() == 0);
    CHECK(second->head_position() == 0);
  }
  const LeaseToken held = lease->token();
  CHECK_FALSE(lease->lost());
  lease.reset();
  std::unique_ptr<SubscriptionLease> next = second->try_acquire_subscription("owned", "s");
  REQUIRE(next != nullptr);
  CHECK(next->token() > held);
  CHECK(first->try_acquire_subscription("owned", "s") == nullptr);
}

TEST_CASE("through PgBouncer a lease's token fences the old holder at once",
          "[eventstore][postgres][pgbouncer][subscription]") {
  TestSchema schema = pooled_schema();
  std::shared_ptr<PostgresBackend> backend = schema.open(pooled());
  std::unique_ptr<SubscriptionLease> old_lease = backend->try_acquire_subscription("fence", "s");
  REQUIRE(old_lease != nullptr);
  const LeaseToken old_token = old_lease->token();
  REQUIRE(backend->store_checkpoint("fence", "s", 4, old_token));
  old_lease.reset();
  std::unique_ptr<SubscriptionLease> new_lease = backend->try_acquire_subscription("fence", "s");
  REQUIRE(new_lease != nullptr);
  // The new token was committed although the new lease's transaction is open.
  std::shared_ptr<PostgresBackend> other = schema.open(pooled());
  CHECK_FALSE(other->store_checkpoint("fence", "s", 9, old_token));
  CHECK(other->store_checkpoint("fence", "s", 6, new_lease->token()));
  CHECK(backend->load_checkpoint("fence", "s") == 6);
  std::vector<StoredSubscription> listed = other->list_subscriptions();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].held);
}

// Polls `condition` (a cheap local check or one round trip) until it holds or
// `limit` passes; whether it held.
template <typename Condition>
bool within(std::chrono::milliseconds limit, Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST_CASE("through PgBouncer a lease whose server session dies is lost, taken over and fenced",
          "[eventstore][postgres][pgbouncer][subscription][fencing]") {
  TestSchema schema = pooled_schema();
  std::shared_ptr<PostgresBackend> holder = schema.open(pooled());
  std::shared_ptr<PostgresBackend> standby = schema.open(pooled());
  std::unique_ptr<SubscriptionLease> lease = holder->try_acquire_subscription("dies", "s");
  REQUIRE(lease != nullptr);
  const LeaseToken old_token = lease->token();
  REQUIRE(holder->store_checkpoint("dies", "s", 3, old_token));
  CHECK(standby->try_acquire_subscription("dies", "s") == nullptr);

  // The server session that the pooler gave the lease's transaction, found on
  // the server itself (not through the pooler) by the lease's lock.
  auto direct = unprepared_connection(gamebot::testing::postgres_url());
  const std::int64_t key = postgres_subscription_lock_key(schema.name(), "dies", "s");
  const std::optional<std::int64_t> session = direct->query_value<std::int64_t>(
      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND "
      "(classid::bigint << 32 | objid::bigint) = $1",
      key);
  REQUIRE(session.has_value());
  CHECK(direct->query_value<bool>("SELECT pg_terminate_backend($1::int)", *session) == true);

  // PgBouncer closes the client of a server session that dies in its
  // transaction; the lease sees its connection gone without a round trip.
  CHECK(within(10s, [&] { return lease->lost(); }));
  std::unique_ptr<SubscriptionLease> taken;
  REQUIRE(within(10s, [&] {
    taken = standby->try_acquire_subscription("dies", "s");
    return taken != nullptr;
  }));
  CHECK(taken->token() > old_token);
  // The old holder's checkpoint with its stale token is refused; the new one's lands.
  CHECK_FALSE(holder->store_checkpoint("dies", "s", 7, old_token));
  CHECK(standby->store_checkpoint("dies", "s", 5, taken->token()));
  CHECK(holder->load_checkpoint("dies", "s") == 5);
  // Releasing the lost lease is harmless and does not release the new one.
  lease.reset();
  CHECK(holder->try_acquire_subscription("dies", "s") == nullptr);
}

TEST_CASE("through PgBouncer an append that fails while reserving positions leaves no lock",
          "[eventstore][postgres][pgbouncer][append]") {
  TestSchema schema = pooled_schema();
  std::shared_ptr<PostgresBackend> backend = schema.open(pooled());
  EventStore store(backend);
  REQUIRE(store.append("s", 0, events(2)).ok());
  const std::string positions = repo::quote_identifier(schema.name()) + ".positions";
  auto admin = unprepared_connection(schema.server_url());
  // The sequence refuses the next position after the reservation lock is taken.
  admin->execute_batch("ALTER SEQUENCE " + positions + " MAXVALUE 2");
  CHECK_THROWS_AS(store.append("s", 2, event("Third")), repo::DatabaseError);
  CHECK_THROWS_AS(store.append("s", 2, events(2)), repo::DatabaseError);
  admin->execute_batch("ALTER SEQUENCE " + positions + " NO MAXVALUE");
  const std::int64_t reservation = std::int64_t{postgres_lock_namespace(schema.name())} << 32;
  CHECK(
      admin->query_value<std::int64_t>("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND (classid::bigint << 32 | objid::bigint) = $1",
                                       reservation) == 0);
  // Every store goes on appending, whichever server sessions they get.
  std::vector<std::unique_ptr<EventStore>> stores;
  for (int i = 0; i < 3; ++i) stores.push_back(std::make_unique<EventStore>(schema.open(pooled())));
  StreamVersion version = 2;
  for (int round = 0; round < 3; ++round) {
    for (auto& each : stores) {
      const AppendResult single = each->append("s", version, event("Single"));
      REQUIRE(single.ok());
      const AppendResult batch = each->append("s", version + 1, events(2));
      REQUIRE(batch.ok());
      CHECK(batch.first_position == single.last_position + 1);
      version += 3;
    }
  }
  CHECK(store.read_all_forward(0, 100).events.size() == static_cast<std::size_t>(version));
}

TEST_CASE("pooling=transaction in the URL turns the mode on and prepared statements off",
          "[eventstore][postgres][pgbouncer][url]") {
  TestSchema schema = pooled_schema();
  EventStore store = open(schema.store_url() + "&pooling=transaction");
  auto& backend = dynamic_cast<PostgresBackend&>(store.backend());
  CHECK(backend.options().pooling == PostgresPooling::transaction);
  CHECK_FALSE(backend.repo().pool().options().connect.postgres.prepared_statements);
  // No listen_url: the background connection polls instead of LISTENing.
  CHECK(backend.listener_backend_pid() == 0);
  REQUIRE(store.append("s", 0, events(3)).ok());
  CHECK(store.read_stream_forward("s").events.size() == 3);
  CHECK_THROWS_AS(open(schema.store_url() + "&pooling=sometimes"), InvalidArgument);
  // A caller's repo that prepares named statements cannot serve the mode.
  repo::Repo preparing = repo::Repo::open(schema.server_url());
  PostgresBackendOptions options = pooled();
  options.schema = schema.name();
  CHECK_THROWS_AS(PostgresBackend(preparing, options), InvalidArgument);
}

TEST_CASE("through PgBouncer a store without pooling=transaction fails with an error naming it",
          "[eventstore][postgres][pgbouncer][url]") {
  TestSchema schema = pooled_schema();
  // Each connection names its prepared statements gb_1, gb_2, ...; PgBouncer
  // hands the next transaction the server session released last, so the
  // second connection's first statement meets the first one's gb_1 (42P05),
  // or a connection's statement is missing from the session it gets (26000).
  std::optional<gamebot::Error> failure;
  try {
    std::vector<std::unique_ptr<EventStore>> stores;
    for (int i = 0; i < 3; ++i) {
      stores.push_back(std::make_unique<EventStore>(schema.open(PostgresBackendOptions{})));
    }
    for (int round = 0; round < 3; ++round) {
      for (auto& each : stores) {
        CHECK(each->append("s" + std::to_string(round), ExpectedVersion::any(), event("E")).ok());
        CHECK_FALSE(each->read_all_forward(0, 10).events.empty());
      }
    }
  } catch (const gamebot::Error& e) {
    failure = e;
  }
  REQUIRE(failure.has_value());
  INFO(failure->what());
  CHECK(failure->fault() == FaultClass::configuration);
  CHECK_THAT(failure->message(), Catch::Contains("pooling=transaction"));
  CHECK_THAT(failure->message(), Catch::Contains("pool_mode = transaction"));
}

TEST_CASE("through PgBouncer another store's commit reaches a subscriber by polling",
          "[eventstore][postgres][pgbouncer][subscription]") {
  TestSchema schema = pooled_schema();
  PostgresBackendOptions options = pooled();
  options.poll_interval = 50ms;
  EventStore reader(schema.open(options));
  EventStore writer(schema.open(options));
  Subscription sub = reader.subscribe(std::string(kAllStream));
  CHECK_FALSE(sub.next(0ms).has_value());
  REQUIRE(writer.append("s", 0, events(1)).ok());
  // Within the poll interval plus a probe; the wait is only an upper bound.
  std::optional<RecordedEvent> got = sub.next(5s);
  REQUIRE(got.has_value());
  CHECK(got->global_position == 1);
}

TEST_CASE("through PgBouncer with a direct listen_url, commits reach subscribers by LISTEN",
          "[eventstore][postgres][pgbouncer][subscription]") {
  TestSchema schema = pooled_schema();
  PostgresBackendOptions options = pooled();
  options.listen_url = repo::DatabaseUrl::parse(gamebot::testing::postgres_url());
  // Polling would take an hour: only a notification can deliver in time.
  options.poll_interval = std::chrono::hours(1);
  std::shared_ptr<PostgresBackend> reader_backend = schema.open(options);
  EventStore reader(reader_backend);
  EventStore writer(schema.open(pooled()));
  Subscription sub = reader.subscribe(std::string(kAllStream));
  CHECK_FALSE(sub.next(0ms).has_value());
  // The subscriber's first read started the background, which listens.
  CHECK(reader_backend->listener_backend_pid() != 0);
  REQUIRE(writer.append("s", 0, events(2)).ok());
  std::optional<RecordedEvent> got = sub.next(10s);
  REQUIRE(got.has_value());
  CHECK(got->global_position == 1);
  // Without listen_url the mode has no listening connection: it polls.
  PostgresBackendOptions polling = pooled();
  polling.poll_interval = std::chrono::hours(1);
  std::shared_ptr<PostgresBackend> poller = schema.open(polling);
  EventStore polled(poller);
  Subscription polled_sub = polled.subscribe(std::string(kAllStream));
  // Its first read starts the background: connected, but not listening.
  polled_sub.next(0ms);
  CHECK(poller->listener_connections() == 1);
  CHECK(poller->listener_backend_pid() == 0);
}

}  // namespace
}  // namespace gamebot::eventstore
