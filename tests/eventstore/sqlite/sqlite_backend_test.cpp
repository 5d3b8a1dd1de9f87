// SQLite backend behaviour beyond the conformance suite: URLs, the schema
// through repo's migrator, durability across reopen, the outbox (appends in a
// caller's transaction), test sandboxes, busy handling, the change watcher and
// subscription ownership between backends on one file.

#include "gamebot/eventstore/sqlite_backend.hpp"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/repo/repo.hpp"
#include "gamebot/testing/lease_fencing.hpp"
#include "gamebot/testing/postgres.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

EventData event(std::string type, std::string data = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

std::vector<EventData> events(std::size_t count, const std::string& prefix = "E") {
  std::vector<EventData> out;
  for (std::size_t i = 1; i <= count; ++i) out.push_back(event(prefix, prefix + std::to_string(i)));
  return out;
}

std::vector<GlobalPosition> positions(const std::vector<RecordedEvent>& events) {
  std::vector<GlobalPosition> out;
  for (const auto& e : events) out.push_back(e.global_position);
  return out;
}

StoreOptions hard_deletes() {
  StoreOptions options;
  options.allow_hard_delete = true;
  return options;
}

// A raw sqlite3 connection to the same file, outside the store.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
  }
  ~RawConnection() { sqlite3_close(db_); }
  int exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

 private:
  sqlite3* db_ = nullptr;
};

TEST_CASE("sqlite: and sqlite::memory: URLs open SQLite stores", "[eventstore][sqlite][open]") {
  testing::TempDir dir;
  const std::string file = dir.path() + "/opened.db";
  {
    EventStore store = open("sqlite:" + file);
    CHECK(store.backend().scheme() == "sqlite");
    REQUIRE(store.append("s", 0, events(2)).ok());
  }
  CHECK(open("sqlite:" + file).head_position() == 2);  // the same file again
  CHECK(open("sqlite://" + file).head_position() == 2);

  EventStore a = open("sqlite::memory:");
  EventStore b = open("sqlite::memory:");
  REQUIRE(a.append("s", 0, events(3)).ok());
  CHECK(a.head_position() == 3);
  CHECK(b.head_position() == 0);  // each URL open is a database of its own
  const auto& backend = dynamic_cast<const SqliteBackend&>(a.backend());
  CHECK(backend.repo().pool().options().max_size == 1);  // one shared connection

  CHECK_THROWS_AS(open("sqlite:" + file + "?busy_timeout=soon"), InvalidArgument);
  try {
    open("sqlite:" + dir.path() + "/missing-dir/store.db");
    FAIL("a file in a missing directory was opened");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::configuration);
  }
}

TEST_CASE("the schema is created and checked through repo's migrator",
          "[eventstore][sqlite][schema]") {
  testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/schema.db";
  const repo::Migrator migrator = sqlite_event_store_migrator();
  CHECK_FALSE(migrator.set_hash().empty());
  CHECK(migrator.options().table == "eventstore_schema_migrations");
  repo::Repo repo = repo::Repo::open(url);

  SqliteBackendOptions verify_only;
  verify_only.migrate = false;
  try {
    SqliteBackend backend(repo, verify_only);
    FAIL("an empty database passed verification");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::schema);
  }

  { SqliteBackend migrated(repo); }
  {
    auto lease = repo.acquire();
    CHECK(migrator.verify(*lease).current());
    CHECK(migrator.migrate(*lease).applied.empty());  // applying twice is a no-op
    CHECK(lease->query_value<std::int64_t>("SELECT count(*) FROM eventstore_schema_migrations") ==
          std::int64_t{3});
  }
  SqliteBackend verified(repo, verify_only);  // now current: no throw
  CHECK(verified.head_position() == 0);
}

// A refused raw write: the typed fault repo gives a trigger's RAISE(ABORT).
void check_refused(repo::Connection& connection, const std::string& sql) {
  INFO(sql);
  try {
    connection.execute(sql);
    FAIL("the raw write was not refused");
  } catch (const repo::DatabaseError& error) {
    CHECK(error.fault() == FaultClass::integrity);
    CHECK(error.sqlite_code() == SQLITE_CONSTRAINT_TRIGGER);
    CHECK(error.message().find("append-only") != std::string::npos);
  }
}

TEST_CASE("raw UPDATE and DELETE on events and links are refused and the hard delete passes",
          "[eventstore][sqlite][append-only]") {
  testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/append-only.db";
  repo::Repo repo = repo::Repo::open(url);
  EventStore store(std::make_shared<SqliteBackend>(repo), hard_deletes());
  REQUIRE(store.append("a", 0, events(2, "A")).ok());
  REQUIRE(store.append("b", 0, events(1, "B")).ok());
  const Uuid linked = store.read_stream_forward("a").events.at(0).event_id;
  REQUIRE(store.link("b", 1, std::vector<Uuid>{linked}).ok());

  auto count = [&repo](const char* table) {
    return repo.run([table](repo::Connection& c) {
      return *c.query_value<std::int64_t>(std::string("SELECT count(*) FROM ") + table);
    });
  };
  repo.run([](repo::Connection& c) {
    check_refused(c, "UPDATE eventstore_events SET type = 'Rewritten' WHERE stream_id = 'a'");
    check_refused(c, "DELETE FROM eventstore_events WHERE stream_id = 'a'");
    check_refused(c, "DELETE FROM eventstore_events");
    check_refused(c, "UPDATE eventstore_links SET position = 3");
    check_refused(c, "DELETE FROM eventstore_links");
  });
  CHECK(count("eventstore_events") == 3);
  CHECK(count("eventstore_links") == 1);
  CHECK(store.read_stream_forward("a").events.at(0).type == "A");

  // The hard delete inside a caller's transaction passes its guard and closes
  // it again: the caller's own DELETE after it, in the same transaction, is
  // still refused.
  {
    repo::TransactionOptions immediate;
    immediate.sqlite_locking = repo::SqliteLocking::immediate;
    repo::Transaction tx = repo.transaction(immediate);
    REQUIRE(store.delete_stream("a", 2, DeleteMode::hard).ok());
    check_refused(tx.connection(), "DELETE FROM eventstore_events");
    tx.commit();
  }
  CHECK(count("eventstore_events") == 1);
  CHECK(store.read_stream_forward("a").status == ReadStatus::stream_not_found);
  // A hard delete outside any caller's transaction.
  REQUIRE(store.delete_stream("b", ExpectedVersion::any(), DeleteMode::hard).ok());
  CHECK(count("eventstore_events") == 0);
  CHECK(count("eventstore_links") == 0);
  CHECK(count("eventstore_delete_guard WHERE open = 0") == 1);
}

TEST_CASE("events, snapshots and positions survive closing and reopening the file",
          "[eventstore][sqlite][reopen]") {
  testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/durable.db";
  GlobalPosition head = 0;
  {
    EventStore store(SqliteBackend::open(url), hard_deletes());
    REQUIRE(store.append("kept", 0, events(3, "K")).ok());
    REQUIRE(store.append("doomed", 0, events(2, "D")).ok());
    store.record_snapshot(Snapshot{"kept", 3, "State", "s3", "m", {}});
    // Hard-deleting the newest events must not let their positions come back.
    REQUIRE(store.delete_stream("doomed", 2, DeleteMode::hard).ok());
    head = store.head_position();
    CHECK(head == 5);
  }
  EventStore store(SqliteBackend::open(url), hard_deletes());
  CHECK(store.head_position() == head);
  const auto kept = store.read_stream_forward("kept");
  REQUIRE(kept.events.size() == 3);
  CHECK(kept.events[2].data == "K3");
  CHECK(store.read_stream_forward("doomed").status == ReadStatus::stream_not_found);
  const auto snapshot = store.read_snapshot("kept");
  REQUIRE(snapshot.has_value());
  CHECK(snapshot->data == "s3");
  const AppendResult next = store.append("doomed", 0, events(1));
  REQUIRE(next.ok());
  CHECK(next.first_position == 6);
  CHECK(positions(store.read_all_forward().events) == std::vector<GlobalPosition>{1, 2, 3, 6});
}

TEST_CASE("a persistent subscription resumes after its last ack when the file is reopened",
          "[eventstore][sqlite][reopen][subscription]") {
  testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/resume.db";
  {
    EventStore store(SqliteBackend::open(url));
    REQUIRE(store.append("s", 0, events(5)).ok());
    Subscription sub = store.subscribe_persistent("projector", "s");
    for (int i = 0; i < 2; ++i) {
      auto e = sub.next(5s);
      REQUIRE(e.has_value());
      sub.ack(*e);
    }
    REQUIRE(sub.next(5s).has_value());  // 3: delivered, not acked
  }
  EventStore store(SqliteBackend::open(url));
  Subscription sub = store.subscribe_persistent("projector", "s");
  std::vector<StreamVersion> seen;
  while (auto e = sub.next(300ms)) {
    seen.push_back(e->event_number);
    sub.ack(*e);
  }
  CHECK(seen == std::vector<StreamVersion>{3, 4, 5});
  CHECK(sub.checkpoint() == 5);
}

// Released migrations are frozen and a store made by an older commit must
// upgrade: a file is taken back to the shape migration 1 alone made (what every
// store before lease fencing was), with its events and a checkpoint, and reopened.
TEST_CASE("a store with only migration 1 upgrades and keeps its events and checkpoints",
          "[eventstore][sqlite][schema][upgrade]") {
  testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/old.db";
  {
    EventStore store(SqliteBackend::open(url));
    REQUIRE(store.append("s", 0, events(4)).ok());
    Subscription sub = store.subscribe_persistent("projector", "s");
    for (int i = 0; i < 2; ++i) {
      auto e = sub.next(5s);
      REQUIRE(e.has_value());
      sub.ack(*e);
    }
  }
  {
    repo::Repo repo = repo::Repo::open(url);
    repo.run([](repo::Connection& c) {
      c.execute_batch(
          "DROP TRIGGER eventstore_events_no_update; DROP TRIGGER eventstore_events_no_delete;"
          "DROP TRIGGER eventstore_links_no_update; DROP TRIGGER eventstore_links_no_delete;"
          "DROP TABLE eventstore_delete_guard; DROP TABLE eventstore_lease_tokens;"
          "ALTER TABLE eventstore_checkpoints DROP COLUMN lease_token;"
          "DELETE FROM eventstore_schema_migrations WHERE version > 1");
    });
    auto lease = repo.acquire();
    REQUIRE_FALSE(sqlite_event_store_migrator().verify(*lease).current());
  }
  EventStore store(SqliteBackend::open(url));
  {
    repo::Repo repo = repo::Repo::open(url);
    auto lease = repo.acquire();
    CHECK(sqlite_event_store_migrator().verify(*lease).current());
  }
  CHECK(store.read_stream_forward("s").events.size() == 4);
  REQUIRE(store.append("s", 4, events(1)).ok());
  Subscription sub = store.subscribe_persistent("projector", "s");
  CHECK(sub.checkpoint() == 2);
  std::vector<StreamVersion> seen;
  while (auto e = sub.next(300ms)) {
    seen.push_back(e->event_number);
    sub.ack(*e);
  }
  CHECK(seen == std::vector<StreamVersion>{3, 4, 5});
}

// The outbox pattern: an application row and events in one transaction.
struct Outbox {
  testing::TempDir dir;
  std::string url = "sqlite:" + dir.path() + "/outbox.db";
  repo::Repo repo = repo::Repo::open(url);
  std::shared_ptr<SqliteBackend> backend = std::make_shared<SqliteBackend>(repo);
  EventStore store{backend};

  Outbox() {
    repo.run([](repo::Connection& c) {
      c.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)");
    });
  }
  std::int64_t orders() {
    return repo.run([](repo::Connection& c) {
      return *c.query_value<std::int64_t>("SELECT count(*) FROM orders");
    });
  }
  static repo::TransactionOptions immediate() {
    repo::TransactionOptions options;
    options.sqlite_locking = repo::SqliteLocking::immediate;
    return options;
  }
};

TEST_CASE("appends inside a caller's committed transaction commit with its rows",
          "[eventstore][sqlite][outbox]") {
  Outbox o;
  // A second store on its own pool watches from outside the transaction.
  EventStore outside(SqliteBackend::open(o.url));
  Subscription live = outside.subscribe(std::string(kAllStream));
  {
    repo::Transaction tx = o.repo.transaction(Outbox::immediate());
    tx->execute("INSERT INTO orders (item) VALUES ($1)", "dice");
    const AppendResult appended = o.store.append("order-1", 0, events(2, "OrderPlaced"));
    REQUIRE(appended.ok());
    CHECK(appended.first_position == 1);
    // The transaction sees its own events; nobody else does yet.
    CHECK(o.store.read_stream_forward("order-1").events.size() == 2);
    CHECK(o.store.head_position() == 2);
    CHECK(outside.head_position() == 0);
    CHECK_FALSE(live.next(100ms).has_value());
    tx.commit();
  }
  CHECK(o.orders() == 1);
  CHECK(outside.read_stream_forward("order-1").events.size() == 2);
  // The later commit (not an append of that store) wakes the other store's
  // subscriber through its data_version watcher.
  const auto first = live.next(5s);
  REQUIRE(first.has_value());
  CHECK(first->stream_id == "order-1");
}

TEST_CASE("appends inside a caller's rolled-back transaction leave no trace",
          "[eventstore][sqlite][outbox]") {
  Outbox o;
  REQUIRE(o.store.append("before", 0, events(1)).ok());
  {
    repo::Transaction tx = o.repo.transaction(Outbox::immediate());
    tx->execute("INSERT INTO orders (item) VALUES ($1)", "dice");
    REQUIRE(o.store.append("order-1", 0, events(3)).ok());
    o.store.record_snapshot(Snapshot{"order-1", 3, "Order", "x", "", {}});
    CHECK(o.store.head_position() == 4);
    tx.rollback();
  }
  CHECK(o.orders() == 0);
  CHECK(o.store.head_position() == 1);
  CHECK(o.store.read_stream_forward("order-1").status == ReadStatus::stream_not_found);
  CHECK_FALSE(o.store.read_snapshot("order-1").has_value());
  // A refused append inside the transaction rolls back only its own savepoint.
  {
    repo::Transaction tx = o.repo.transaction(Outbox::immediate());
    tx->execute("INSERT INTO orders (item) VALUES ($1)", "cards");
    CHECK(o.store.append("before", 0, events(1)).status == WriteStatus::wrong_expected_version);
    REQUIRE(o.store.append("order-2", 0, events(1)).ok());
    tx.commit();
  }
  CHECK(o.orders() == 1);
  CHECK(o.store.head_position() == 2);
}

TEST_CASE("a deferred caller transaction with a stale snapshot gets a concurrency fault",
          "[eventstore][sqlite][outbox][busy]") {
  Outbox o;
  EventStore other(SqliteBackend::open(o.url));
  repo::Transaction tx = o.repo.transaction();  // deferred
  CHECK(tx->query_value<std::int64_t>("SELECT count(*) FROM orders") == std::int64_t{0});
  REQUIRE(other.append("elsewhere", 0, events(1)).ok());  // commits after our snapshot
  try {
    o.store.append("mine", 0, events(1));
    FAIL("an append on a stale snapshot succeeded");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::concurrency);
    CHECK_THAT(error.what(), Catch::Contains("immediate"));
  }
}

TEST_CASE("inside a repo sandbox the store's writes roll back with the sandbox",
          "[eventstore][sqlite][sandbox]") {
  testing::TempDir dir;
  repo::Repo repo = repo::Repo::open("sqlite:" + dir.path() + "/sandbox.db");
  EventStore store(std::make_shared<SqliteBackend>(repo));
  REQUIRE(store.append("base", 0, events(1)).ok());
  {
    repo::Sandbox sandbox(repo);
    REQUIRE(store.append("test-only", 0, events(2)).ok());
    store.record_snapshot(Snapshot{"test-only", 2, "State", "x", "", {}});
    CHECK(store.head_position() == 3);
    CHECK(store.read_snapshot("test-only").has_value());
  }
  CHECK(store.head_position() == 1);
  CHECK(store.read_stream_forward("test-only").status == ReadStatus::stream_not_found);
  CHECK_FALSE(store.read_snapshot("test-only").has_value());
}

TEST_CASE("a write lock held past busy_timeout is a timeout fault, never SQLITE_BUSY",
          "[eventstore][sqlite][busy]") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/busy.db";
  SqliteBackendOptions options;
  options.busy_timeout = 200ms;
  EventStore store(SqliteBackend::open("sqlite:" + path, options));
  REQUIRE(store.append("s", 0, events(1)).ok());

  RawConnection holder(path);
  REQUIRE(holder.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  const auto start = Clock::now();
  try {
    store.append("s", 1, events(1));
    FAIL("the append went through a held write lock");
  } catch (const Error& error) {
    CHECK(error.fault() == FaultClass::timeout);
    CHECK(error.code() == "SQLITE_BUSY");
  }
  CHECK(Clock::now() - start >= 150ms);
  // WAL: readers are not blocked by the writer.
  CHECK(store.read_stream_forward("s").events.size() == 1);
  REQUIRE(holder.exec("COMMIT") == SQLITE_OK);
  CHECK(store.append("s", 1, events(1)).ok());
}

TEST_CASE("the watcher wakes subscribers for rows committed by another connection",
          "[eventstore][sqlite][watcher]") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/watched.db";
  StoreOptions slow_poll;
  slow_poll.poll_interval = 60s;  // only a notification can deliver in time
  EventStore store(SqliteBackend::open("sqlite:" + path), slow_poll);
  REQUIRE(store.append("s", 0, events(1)).ok());
  Subscription sub = store.subscribe(std::string(kAllStream));

  RawConnection raw(path);
  REQUIRE(raw.exec("INSERT INTO eventstore_events (position, event_id, stream_id, stream_version, "
                   "type, data, metadata, created_at) VALUES (2, randomblob(16), 's', 2, 'Raw', "
                   "x'', x'', 0)") == SQLITE_OK);
  const auto start = Clock::now();
  const auto e = sub.next(5s);
  REQUIRE(e.has_value());
  CHECK(e->type == "Raw");
  CHECK(Clock::now() - start < 1s);
}

TEST_CASE("backends on one file share wake-ups and subscription ownership",
          "[eventstore][sqlite][ownership]") {
  testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/shared.db";
  SqliteBackendOptions no_watcher;
  no_watcher.watch_interval = 0ms;  // wake-ups here come from the in-process fan-out
  StoreOptions slow_poll;
  slow_poll.poll_interval = 60s;
  auto first = SqliteBackend::open(url, no_watcher);
  auto second = SqliteBackend::open(url, no_watcher);
  EventStore reader(first, slow_poll);
  EventStore writer(second, slow_poll);
  Subscription sub = reader.subscribe("s");
  REQUIRE(writer.append("s", 0, events(1)).ok());
  const auto start = Clock::now();
  REQUIRE(sub.next(5s).has_value());
  CHECK(Clock::now() - start < 1s);

  auto lease = first->try_acquire_subscription("projector", "s");
  REQUIRE(lease);
  CHECK_FALSE(second->try_acquire_subscription("projector", "s"));
  CHECK_FALSE(first->try_acquire_subscription("projector", "s"));
  auto other = second->try_acquire_subscription("projector", "t");  // another key
  CHECK(other);
  lease.reset();
  CHECK(second->try_acquire_subscription("projector", "s"));
}

// The one way a SQLite lease is lost while its holder lives: the lock file is
// removed (a cleanup script, a test tearing down a directory), so the next
// backend creates and locks a new one. The OFD lock itself cannot be taken
// away from an open descriptor.
TEST_CASE("an owner whose lock file is removed mid-batch is fenced",
          "[eventstore][sqlite][subscription][fencing]") {
  testing::TempDir dir;
  const std::string file = dir.path() + "/fenced.db";
  StoreOptions options;
  options.poll_interval = 20ms;
  EventStore writer(SqliteBackend::open("sqlite:" + file), options);
  EventStore owner_store(SqliteBackend::open("sqlite:" + file), options);
  EventStore standby(SqliteBackend::open("sqlite:" + file), options);
  gamebot::testing::ThreadFencingOwner owner(owner_store);
  gamebot::testing::check_lease_fencing(
      writer, owner.owner(), standby, [&] { REQUIRE(std::filesystem::remove(file + "-leases")); });
}

}  // namespace
}  // namespace gamebot::eventstore
