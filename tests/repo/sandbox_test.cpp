#include <catch2/catch.hpp>
#include <optional>
#include <thread>

#include "gamebot/repo/repo.hpp"
#include "support/test_database.hpp"

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::repo::testing::TestDatabase;

namespace {
Repo make_repo(const TestDatabase& db) {
  RepoOptions options;
  options.pool.max_size = 4;
  options.sandbox_wait_timeout = std::chrono::milliseconds(2000);
  Repo repo = Repo::open(db.url(), options);
  repo.run([](Connection& c) { c.execute_batch("CREATE TABLE t (x integer)"); });
  return repo;
}

std::int64_t count_outside(const Repo& repo) {
  // A fresh pool connection, bypassing any sandbox.
  return repo.pool()
      .checkout("observer")
      ->query_value<std::int64_t>("SELECT count(*) FROM t")
      .value();
}
}  // namespace

TEST_CASE("acquire nests on the same thread and transaction() becomes a savepoint",
          "[repo][facade]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  ConnectionLease outer = repo.acquire("outer");
  CHECK_FALSE(outer.nested());
  ConnectionLease inner = repo.acquire("inner");
  CHECK(inner.nested());
  CHECK(&*inner == &*outer);
  {
    Transaction tx = repo.transaction();
    CHECK_FALSE(tx.is_savepoint());
    Transaction nested = repo.transaction();
    CHECK(nested.is_savepoint());
    CHECK(&nested.connection() == &*outer);
    nested->execute("INSERT INTO t VALUES (1)");
    nested.commit();
    tx.commit();
  }
  CHECK(repo.pool().stats().in_use == 1);
  inner.release();
  outer.release();
  CHECK(repo.pool().stats().in_use == 0);
  CHECK(count_outside(repo) == 1);
}

TEST_CASE("run_in_transaction commits on return and rolls back on throw", "[repo][facade]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  int value = repo.run_in_transaction([](Connection& c) {
    c.execute("INSERT INTO t VALUES (1)");
    return 42;
  });
  CHECK(value == 42);
  CHECK_THROWS_AS(repo.run_in_transaction([](Connection& c) {
    c.execute("INSERT INTO t VALUES (2)");
    throw std::runtime_error("no");
  }),
                  std::runtime_error);
  CHECK(count_outside(repo) == 1);
}

TEST_CASE("a sandbox pins one connection and rolls everything back at the end", "[repo][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  {
    Sandbox sandbox(repo, SandboxOptions{.label = "test one"});
    CHECK(repo.sandbox_active());
    CHECK(repo.current_thread_sandboxed());
    repo.run([](Connection& c) { c.execute("INSERT INTO t VALUES (1)"); });
    std::uint64_t first = repo.acquire()->id();
    CHECK(repo.acquire()->id() == first);
    CHECK(repo.run([](Connection& c) {
      return c.query_value<std::int64_t>("SELECT count(*) FROM t");
    }) == 1);
    if (gamebot::repo::testing::backend_name() != "sqlite-memory") CHECK(count_outside(repo) == 0);
    // Code under test commits its own transaction: a savepoint inside the sandbox.
    repo.run_in_transaction([](Connection& c) { c.execute("INSERT INTO t VALUES (2)"); });
    {
      Transaction tx = repo.transaction();
      CHECK(tx.is_savepoint());
      tx->execute("INSERT INTO t VALUES (3)");
    }  // rolled back to its savepoint only
    CHECK(repo.run([](Connection& c) {
      return c.query_value<std::int64_t>("SELECT sum(x) FROM t");
    }) == 3);
  }
  CHECK_FALSE(repo.sandbox_active());
  CHECK(count_outside(repo) == 0);
  CHECK(repo.pool().stats().in_use == 0);
}

TEST_CASE("a sandbox rolls back even when the test throws", "[repo][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  try {
    Sandbox sandbox(repo, SandboxOptions{.label = "failing test"});
    repo.run([](Connection& c) { c.execute("INSERT INTO t VALUES (1)"); });
    throw std::runtime_error("assertion failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(count_outside(repo) == 0);
  CHECK(repo.pool().leak_report().empty());
}

TEST_CASE("reclaim_held_by frees a thread from a leaked lease and its open transaction",
          "[repo][facade][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  // What a test that ends while a `static` still holds its lease leaves behind.
  std::optional<ConnectionLease> leaked;
  std::optional<Transaction> forgotten;
  {
    Sandbox sandbox(repo, {.label = "leaky test"});
    leaked.emplace(repo.acquire());
    const int forgotten_line = __LINE__ + 1;
    forgotten.emplace(repo.transaction());
    forgotten->connection().execute("INSERT INTO t VALUES (1)");

    const std::optional<ReclaimedLease> taken = repo.reclaim_held_by(std::this_thread::get_id());
    REQUIRE(taken.has_value());
    CHECK(taken->sandboxed);
    CHECK(taken->open_transaction);
    CHECK_THAT(taken->transaction_begun_at,
               Catch::EndsWith("sandbox_test.cpp:" + std::to_string(forgotten_line)));
    CHECK(leaked->reclaimed());
    CHECK_FALSE(forgotten->active());
    CHECK_THROWS_AS(forgotten->commit(), std::logic_error);
    CHECK_FALSE(repo.reclaim_held_by(std::this_thread::get_id()).has_value());
    // Closing no longer waits for the leaked lease, and its rollback undoes the insert.
    CHECK_NOTHROW(sandbox.close());
  }
  CHECK(count_outside(repo) == 0);

  // The next test's sandbox opens on this thread and the leaked handles never touch it.
  Sandbox next(repo, {.label = "next test"});
  repo.run([](Connection& c) { c.execute("INSERT INTO t VALUES (2)"); });
  {
    Transaction own = repo.transaction();  // a savepoint at the level the forgotten one had
    own.connection().execute("INSERT INTO t VALUES (3)");
    forgotten.reset();
    leaked.reset();
    CHECK(own.active());
    own.commit();
  }
  ConnectionLease lease = repo.acquire();
  CHECK_FALSE(lease.nested());
  CHECK(lease.sandboxed());
  CHECK(lease->query_value<std::int64_t>("SELECT count(*) FROM t").value() == 2);
}
