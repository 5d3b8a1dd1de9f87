// PostgreSQL backend specifics beyond the conformance suite: durability across
// reopen, the outbox (a caller's transaction), test sandboxes, schema
// isolation, URL options, the jsonb column, large batches, schema checks, the
// append-only events and links tables.

#include <catch2/catch.hpp>
#include <optional>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/eventstore/verify.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/repo.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
using testing::TestSchema;

EventData event(std::string type, std::string data = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

std::vector<EventData> events(std::size_t count, const std::string& prefix = "E") {
  std::vector<EventData> out;
  for (std::size_t i = 1; i <= count; ++i) {
    out.push_back(event(prefix, prefix + "-" + std::to_string(i)));
  }
  return out;
}

// A refused raw write: the typed fault of the append-only trigger.
void check_refused(repo::Connection& connection, const std::string& sql) {
  INFO(sql);
  try {
    connection.execute(sql);
    FAIL("the raw write was not refused");
  } catch (const repo::DatabaseError& error) {
    CHECK(error.fault() == FaultClass::integrity);
    CHECK(error.sqlstate() == kPostgresAppendOnlySqlstate);
    CHECK(error.message().find("append-only") != std::string::npos);
  }
}

StoreOptions hard_deletes() {
  StoreOptions options;
  options.allow_hard_delete = true;
  return options;
}

TEST_CASE(
    "raw UPDATE, DELETE and TRUNCATE on events and links are refused and the hard delete passes",
    "[eventstore][postgres][append-only]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore store(std::make_shared<PostgresBackend>(repo, schema.options()), hard_deletes());
  REQUIRE(store.append("a", 0, events(2, "A")).ok());
  REQUIRE(store.append("b", 0, events(1, "B")).ok());
  const Uuid linked = store.read_stream_forward("a").events.at(0).event_id;
  REQUIRE(store.link("b", 1, std::vector<Uuid>{linked}).ok());
  const std::string s = repo::quote_identifier(schema.name());
  auto count = [&](const std::string& table) {
    return repo.run([&](repo::Connection& c) {
      return c.query_value<std::int64_t>("SELECT count(*) FROM " + s + "." + table).value_or(-1);
    });
  };

  auto admin = repo::connect(schema.server_url());
  check_refused(*admin, "UPDATE " + s + ".events SET type = 'Rewritten' WHERE stream_id = 'a'");
  check_refused(*admin, "DELETE FROM " + s + ".events WHERE stream_id = 'a'");
  check_refused(*admin, "TRUNCATE " + s + ".events CASCADE");
  check_refused(*admin, "UPDATE " + s + ".links SET version = 7");
  check_refused(*admin, "DELETE FROM " + s + ".links");
  check_refused(*admin, "TRUNCATE " + s + ".links");
  // The store's guard is not a session setting a caller inherits.
  CHECK(admin
            ->query_value<std::string>(
                "SELECT coalesce(current_setting('gamebot.allow_delete', true), 'unset')")
            .value_or("") != "on");
  CHECK(count("events") == 3);
  CHECK(count("links") == 1);
  CHECK(store.read_stream_forward("a").events.at(0).type == "A");

  // The hard delete inside a caller's transaction passes its guard, and the
  // guard ends with the call: the caller's own DELETE after it is refused.
  {
    repo::Transaction tx = repo.transaction();
    REQUIRE(store.delete_stream("a", 2, DeleteMode::hard).ok());
    tx->execute("SAVEPOINT raw_delete");
    check_refused(tx.connection(), "DELETE FROM " + s + ".events");
    tx->execute("ROLLBACK TO SAVEPOINT raw_delete");
    tx.commit();
  }
  CHECK(count("events") == 1);
  CHECK(count("links") == 0);  // b's link to a's event went with it (the cascade passed too)
  CHECK(store.read_stream_forward("a").status == ReadStatus::stream_not_found);
  REQUIRE(store.delete_stream("b", ExpectedVersion::any(), DeleteMode::hard).ok());
  CHECK(count("events") == 0);
}

// A database owned by the test server's ordinary role gamebot_pw, dropped by
// the destructor.
class OrdinaryRoleDatabase {
 public:
  explicit OrdinaryRoleDatabase(std::string name)
      : name_(std::move(name)), admin_(repo::connect(gamebot::testing::postgres_url())) {
    admin_->execute_batch("CREATE DATABASE " + repo::quote_identifier(name_) + " OWNER gamebot_pw");
  }
  ~OrdinaryRoleDatabase() {
    try {
      admin_->execute_batch("DROP DATABASE " + repo::quote_identifier(name_) + " WITH (FORCE)");
    } catch (...) {
      // A leftover only costs space on a throwaway server.
    }
  }
  OrdinaryRoleDatabase(const OrdinaryRoleDatabase&) = delete;
  OrdinaryRoleDatabase& operator=(const OrdinaryRoleDatabase&) = delete;
  std::string url() const { return gamebot::testing::postgres_password_url({}, name_); }

 private:
  std::string name_;
  std::unique_ptr<repo::Connection> admin_;
};

TEST_CASE("a store created by an ordinary role is append-only and its hard delete works",
          "[eventstore][postgres][append-only]") {
  TestSchema unique("es_role");
  OrdinaryRoleDatabase database(unique.name());
  // gamebot_pw is no superuser: the migrations run with an owner's rights only.
  EventStore store = open(database.url(), hard_deletes());
  REQUIRE(store.append("a", 0, events(2)).ok());
  REQUIRE(store.append("b", 0, events(1)).ok());
  auto owner = repo::connect(database.url());
  const std::string events_table = std::string(kDefaultPostgresSchema) + ".events";
  check_refused(*owner, "DELETE FROM " + events_table);
  REQUIRE(store.delete_stream("a", 2, DeleteMode::hard).ok());
  CHECK(store.read_all_forward().events.size() == 1);
  check_refused(*owner, "DELETE FROM " + events_table);
}

TEST_CASE("verify reports events damaged with the append-only triggers disabled",
          "[eventstore][postgres][append-only][verify]") {
  TestSchema schema;
  EventStore store = open(schema.store_url());
  REQUIRE(store.append("a", 0, events(3, "A")).ok());
  REQUIRE(store.append("b", 0, events(2, "B")).ok());
  REQUIRE(verify(store).ok());
  const std::string s = repo::quote_identifier(schema.name());
  auto admin = repo::connect(schema.server_url());
  // The table owner's switch, then a superuser's (replication role skips
  // every ordinary trigger).
  admin->execute_batch("BEGIN; ALTER TABLE " + s + ".events DISABLE TRIGGER events_append_only; " +
                       "UPDATE " + s +
                       ".events SET stream_version = 7 WHERE stream_id = 'a' AND "
                       "stream_version = 2; ALTER TABLE " +
                       s + ".events ENABLE TRIGGER events_append_only; COMMIT;");
  admin->execute_batch("SET session_replication_role = replica; DELETE FROM " + s +
                       ".events WHERE stream_id = 'b' AND stream_version = 1; "
                       "SET session_replication_role = origin;");
  check_refused(*admin, "DELETE FROM " + s + ".events");  // the triggers are back on

  IntegrityReport report = verify(store);
  std::string found;
  for (const auto& v : report.violations) found += describe(v) + "\n";
  INFO(found);
  CHECK(report.events == 4);
  CHECK(report.count(Invariant::versions_gap_free) >= 2);
  bool a_found = false;
  bool b_found = false;
  for (const auto& v : report.violations) {
    a_found = a_found || v.stream_id == "a";
    b_found = b_found || v.stream_id == "b";
  }
  CHECK(a_found);
  CHECK(b_found);
}

TEST_CASE("a listed subscription names its holder's server pid while its lease is held",
          "[eventstore][postgres][subscription][admin]") {
  TestSchema schema;
  EventStore owner = open(schema.store_url());
  EventStore admin = open(schema.store_url());
  REQUIRE(owner.append("s", 0, events(2)).ok());
  std::optional<Subscription> sub = owner.subscribe_persistent("projector", "s");
  auto first = sub->next(5s);
  REQUIRE(first.has_value());
  sub->ack(*first);
  // The pid of the lease connection, found the documented way.
  auto connection = repo::connect(schema.server_url());
  const std::int64_t key = postgres_subscription_lock_key(schema.name(), "projector", "s");
  const auto pid = connection->query_value<std::int64_t>(
      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
      "AND (classid::bigint << 32 | objid::bigint) = $1",
      key);
  REQUIRE(pid.has_value());
  std::vector<SubscriptionInfo> listed = admin.list_subscriptions();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].stored.held);
  CHECK(listed[0].stored.holder.rfind("server pid " + std::to_string(*pid), 0) == 0);
  CHECK(listed[0].lag == 1);
  sub.reset();
  listed = admin.list_subscriptions();
  REQUIRE(listed.size() == 1);
  CHECK_FALSE(listed[0].stored.held);
  CHECK(listed[0].stored.holder.empty());
}

TEST_CASE("events, checkpoints and snapshots survive closing and reopening the store",
          "[eventstore][postgres][durability]") {
  TestSchema schema;
  Uuid id = Uuid::v7();
  {
    EventStore store = open(schema.store_url());
    EventData first = event("Created", "{\"n\":1}");
    first.id = id;
    REQUIRE(store.append("game-1", 0, {first, event("Moved")}).ok());
    REQUIRE(store.link("links", 0, std::vector<Uuid>{id}).ok());
    store.record_snapshot(Snapshot{"game-1", 2, "GameState", "state", "", {}});
    Subscription sub = store.subscribe_persistent("durable", "game-1");
    auto e = sub.next(5s);
    REQUIRE(e.has_value());
    sub.ack(*e);
  }
  EventStore store = open(schema.store_url());
  const auto read = store.read_stream_forward("game-1");
  REQUIRE(read.events.size() == 2);
  CHECK(read.events[0].event_id == id);
  CHECK(read.events[0].data == "{\"n\":1}");
  CHECK(read.events[1].type == "Moved");
  CHECK(store.read_stream_forward("links").events.at(0).event_id == id);
  CHECK(store.head_position() == 2);
  CHECK(store.read_snapshot("game-1")->data == "state");
  Subscription sub = store.subscribe_persistent("durable", "game-1");
  CHECK(sub.checkpoint() == 1);
  auto next = sub.next(5s);
  REQUIRE(next.has_value());
  CHECK(next->event_number == 2);
}

TEST_CASE("an append inside a caller's transaction rolls back with it and commits with it",
          "[eventstore][postgres][outbox]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore store(std::make_shared<PostgresBackend>(repo, schema.options()));
  const std::string orders = repo::quote_identifier(schema.name()) + ".orders";
  repo.run([&](repo::Connection& c) { c.execute_batch("CREATE TABLE " + orders + " (id int)"); });
  auto order_count = [&] {
    return repo.run([&](repo::Connection& c) {
      return c.query_value<std::int64_t>("SELECT count(*) FROM " + orders).value_or(-1);
    });
  };

  {
    repo::Transaction tx = repo.transaction();
    tx->execute("INSERT INTO " + orders + " VALUES (1)");
    const AppendResult result = store.append("order-1", 0, events(2, "Placed"));
    REQUIRE(result.ok());
    // Inside the transaction the store reads its own writes.
    CHECK(store.read_stream_forward("order-1").events.size() == 2);
    CHECK(store.read_all_forward(0).events.size() == 2);
    CHECK(store.head_position() == 2);
    tx.rollback();
  }
  CHECK(order_count() == 0);
  CHECK_FALSE(store.stream_info("order-1").has_value());
  CHECK(store.read_all_forward(0).events.empty());

  {
    repo::Transaction tx = repo.transaction();
    tx->execute("INSERT INTO " + orders + " VALUES (2)");
    REQUIRE(store.append("order-2", 0, events(1, "Placed")).ok());
    // A failed expectation inside the transaction is a result and leaves it usable.
    CHECK(store.append("order-2", 5, event("Late")).status == WriteStatus::wrong_expected_version);
    tx->execute("INSERT INTO " + orders + " VALUES (3)");
    tx.commit();
  }
  CHECK(order_count() == 2);
  const auto all = store.read_all_forward(0).events;
  REQUIRE(all.size() == 1);
  CHECK(all[0].stream_id == "order-2");
  CHECK(all[0].global_position == 3);  // 1 and 2 went with the rollback: a hole
}

TEST_CASE("inside a test sandbox the store sees only the test's data, and it is rolled back",
          "[eventstore][postgres][outbox][sandbox]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore store(std::make_shared<PostgresBackend>(repo, schema.options()));
  {
    repo::Sandbox sandbox(repo, repo::SandboxOptions{"sandboxed test"});
    REQUIRE(store.append("s", 0, events(3)).ok());
    Subscription sub = store.subscribe("s");
    REQUIRE(store.append("s", 3, event("Live")).ok());
    auto live = sub.next(5s);
    REQUIRE(live.has_value());
    CHECK(live->event_number == 4);
    CHECK(store.stream_info("s")->version == 4);
  }
  CHECK_FALSE(store.stream_info("s").has_value());
  CHECK(store.read_all_forward(0).events.empty());
}

TEST_CASE("two stores in two schemas of one database do not see each other",
          "[eventstore][postgres][schema]") {
  TestSchema schema_a("es_iso_a");
  TestSchema schema_b("es_iso_b");
  EventStore a = open(schema_a.store_url());
  EventStore b = open(schema_b.store_url());
  Subscription b_live = b.subscribe(std::string(kAllStream));
  REQUIRE(a.append("game", 0, events(3, "A")).ok());
  REQUIRE(b.append("game", 0, events(1, "B")).ok());
  CHECK(a.stream_info("game")->version == 3);
  CHECK(b.stream_info("game")->version == 1);
  CHECK(a.head_position() == 3);
  CHECK(b.head_position() == 1);
  const auto b_all = b.read_all_forward(0).events;
  REQUIRE(b_all.size() == 1);
  CHECK(b_all[0].type == "B");
  auto e = b_live.next(5s);
  REQUIRE(e.has_value());
  CHECK(e->type == "B");
  CHECK_FALSE(b_live.next(200ms).has_value());
}

TEST_CASE("open() takes postgres:// and postgresql:// URLs with the store's parameters",
          "[eventstore][postgres][url]") {
  TestSchema schema;
  std::string url = schema.store_url() + "&notify=poll&json_data=true";
  EventStore store = open(url);
  auto& backend = dynamic_cast<PostgresBackend&>(store.backend());
  CHECK(backend.scheme() == "postgres");
  CHECK(backend.options().schema == schema.name());
  CHECK(backend.options().notifications == PostgresNotifications::poll);
  CHECK(backend.options().json_data);
  REQUIRE(store.append("s", 0, event("J", "{\"a\":1}")).ok());

  const std::string alias = "postgresql" + schema.store_url().substr(schema.store_url().find(':'));
  EventStore again = open(alias);
  CHECK(again.read_stream_forward("s").events.size() == 1);
  CHECK_THROWS_AS(open(schema.store_url() + "&notify=sometimes"), InvalidArgument);
  CHECK_THROWS_AS(open(schema.store_url() + "&no_such_libpq_keyword=1"), InvalidArgument);
}

TEST_CASE("json_data stores the data as jsonb too, and data that is not JSON is refused",
          "[eventstore][postgres][json]") {
  TestSchema schema;
  PostgresBackendOptions options = schema.options();
  options.json_data = true;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore store(std::make_shared<PostgresBackend>(repo, options));
  REQUIRE(store.append("player-7", 0, event("Guessed", R"({"guess":"apple","score":3})")).ok());
  const auto score = repo.run([&](repo::Connection& c) {
    return c.query_value<std::int64_t>("SELECT (data_json->>'score')::bigint FROM " +
                                           repo::quote_identifier(schema.name()) +
                                           ".events WHERE stream_id = $1",
                                       "player-7");
  });
  CHECK(score == 3);
  try {
    store.append("player-7", 1, event("Broken", "not json"));
    FAIL("non-JSON data was accepted");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::serialization);
  }
  CHECK(store.stream_info("player-7")->version == 1);
  // The column stays empty when the option is off.
  EventStore plain(std::make_shared<PostgresBackend>(repo, schema.options()));
  REQUIRE(plain.append("player-8", 0, event("Raw", "not json")).ok());
}

TEST_CASE("a batch of 20,000 events is one append (no parameter limit)",
          "[eventstore][postgres][append]") {
  TestSchema schema;
  EventStore store = open(schema.store_url());
  const AppendResult result = store.append("big", 0, events(20'000, "Bulk"));
  REQUIRE(result.ok());
  CHECK(result.version == 20'000);
  CHECK(result.first_position == 1);
  CHECK(result.last_position == 20'000);
  const auto tail = store.read_stream_backward("big", kLatest, 1).events;
  REQUIRE(tail.size() == 1);
  CHECK(tail[0].data == "Bulk-20000");
}

TEST_CASE("a single append that fails while it holds the position reservation releases it",
          "[eventstore][postgres][append]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore store(std::make_shared<PostgresBackend>(repo, schema.options()));
  REQUIRE(store.append("s", 0, events(2)).ok());
  const std::string positions = repo::quote_identifier(schema.name()) + ".positions";
  auto admin = repo::connect(schema.server_url());
  // nextval fails after the reservation lock is taken and before it is released.
  admin->execute_batch("ALTER SEQUENCE " + positions + " MAXVALUE 2");
  CHECK_THROWS_AS(store.append("s", 2, event("Third")), repo::DatabaseError);
  const std::int64_t reservation = std::int64_t{postgres_lock_namespace(schema.name())} << 32;
  CHECK(admin->query_value<bool>("SELECT pg_try_advisory_lock($1::bigint)", reservation) == true);
  CHECK(admin->query_value<bool>("SELECT pg_advisory_unlock($1::bigint)", reservation) == true);
  admin->execute_batch("ALTER SEQUENCE " + positions + " NO MAXVALUE");
  CHECK(store.stream_info("s")->version == 2);
  // Released by the client's unlock, not by closing the session.
  CHECK(repo.pool().stats().replaced == 0);
  // The store's connections go on, and another store's batch (which takes the
  // reservation in append_events) is not held up.
  const AppendResult single = store.append("s", 2, event("Third"));
  REQUIRE(single.ok());
  CHECK(single.version == 3);
  EventStore other(schema.open());
  const AppendResult batch = other.append("s", 3, events(2, "More"));
  REQUIRE(batch.ok());
  CHECK(batch.last_position == single.last_position + 2);
}

TEST_CASE("$all reads need READ COMMITTED while stream reads work in any transaction",
          "[eventstore][postgres][isolation]") {
  TestSchema schema;
  repo::Repo repo = repo::Repo::open(schema.server_url());
  EventStore store(std::make_shared<PostgresBackend>(repo, schema.options()));
  REQUIRE(store.append("s", 0, events(2)).ok());
  repo::TransactionOptions repeatable;
  repeatable.isolation = repo::IsolationLevel::repeatable_read;
  repo::Transaction tx = repo.transaction(repeatable);
  CHECK(store.read_stream_forward("s").events.size() == 2);
  try {
    store.head_position();
    FAIL("head_position worked in REPEATABLE READ");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::configuration);
  }
}

TEST_CASE("without migrate, a missing schema is a schema fault", "[eventstore][postgres][schema]") {
  TestSchema schema;
  PostgresBackendOptions options = schema.options();
  options.migrate = false;
  try {
    schema.open(options);
    FAIL("opened a store on a schema that was never created");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::schema);
  }
  schema.open();  // creates it
  CHECK_NOTHROW(schema.open(options));
}

// The harness opens its stores on databases it has checked already (a clone of a template whose
// check it recorded) and, under transaction isolation, writes only inside sandboxes: it skips
// both start-up round trips that serve neither.
TEST_CASE("a store can start without checking its schema or logging a watermark",
          "[eventstore][postgres][schema]") {
  TestSchema schema;
  PostgresBackendOptions trusted = schema.options();
  trusted.migrate = false;
  trusted.verify_schema = false;
  CHECK_NOTHROW(schema.open(trusted));  // never created, and not looked at

  schema.open();  // creates it (and logs a watermark, as every start outside a transaction)
  auto admin = repo::connect(schema.server_url());
  const std::string entries =
      "SELECT count(*) FROM " + repo::quote_identifier(schema.name()) + ".watermark_log";
  admin->execute("DELETE FROM " + repo::quote_identifier(schema.name()) + ".watermark_log");
  trusted.log_watermark_at_start = false;
  schema.open(trusted);
  CHECK(admin->query_value<std::int64_t>(entries) == 0);
  schema.open(schema.options());
  CHECK(admin->query_value<std::int64_t>(entries) == 1);
}

TEST_CASE("a store made by the first migration is upgraded to run its functions without JIT",
          "[eventstore][postgres][schema]") {
  // With enable_seqscan off, a sequential scan costs 1e10 to the planner: far
  // above jit_above_cost, so without `jit = off` the server compiled the
  // watermark functions on every call (~10 ms each, a stall in live delivery).
  TestSchema schema;
  auto admin = repo::connect(schema.server_url());
  const auto all = postgres_event_store_migrations(schema.name());
  REQUIRE(all.size() >= 2);
  repo::MigratorOptions first_options = postgres_event_store_migrator(schema.name()).options();
  repo::Migrator({all.front()}, first_options).migrate(*admin);
  const std::string quoted = repo::quote_identifier(schema.name());
  admin->execute_batch("CREATE FUNCTION " + quoted +
                       ".users_own() RETURNS int LANGUAGE sql AS 'SELECT 1'");
  const std::string without_jit_off =
      "SELECT count(*) FROM pg_proc p WHERE p.pronamespace = $1::regnamespace "
      "AND NOT coalesce('jit=off' = ANY (p.proconfig), false)";
  CHECK(admin->query_value<std::int64_t>(without_jit_off, quoted).value_or(0) >= 7);

  EventStore store = open(schema.store_url());  // migrates
  REQUIRE(store.append("s", ExpectedVersion::no_stream(), {event("E")}).ok());
  // Every store function, and only those: a user's function in the schema is left alone.
  CHECK(admin->query_value<std::int64_t>(without_jit_off, quoted).value_or(-1) == 1);
  CHECK(admin
            ->query_value<std::int64_t>(
                "SELECT count(*) FROM pg_proc p WHERE p.pronamespace = $1::regnamespace "
                "AND p.proname = 'users_own' AND p.proconfig IS NULL",
                quoted)
            .value_or(0) == 1);
  CHECK(postgres_event_store_migrator(schema.name()).verify(*admin).current());
  // The background thread's watermark log keeps working after the upgrade.
  CHECK_NOTHROW(admin->execute("SELECT " + quoted + ".record_watermark()"));
}

}  // namespace
}  // namespace gamebot::eventstore
