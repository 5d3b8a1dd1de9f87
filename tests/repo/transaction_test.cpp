#include <catch2/catch.hpp>

#include "gamebot/repo/repo.hpp"
#include "support/test_database.hpp"

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::repo::testing::TestDatabase;

namespace {
std::int64_t count(Connection& c) {
  return c.query_value<std::int64_t>("SELECT count(*) FROM t").value();
}

DatabaseError retryable_error() {
  DatabaseErrorDetails details;
  details.sqlstate = "40001";
  details.driver = Driver::postgres;
  details.transaction_retryable = true;
  return DatabaseError(FaultClass::concurrency, "could not serialize access", details);
}
}  // namespace

TEST_CASE("a committed transaction persists and an uncommitted one rolls back",
          "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  c->execute_batch("CREATE TABLE t (x integer)");
  {
    Transaction tx(*c);
    c->execute("INSERT INTO t VALUES ($1)", 1);
    CHECK(tx.active());
    CHECK_FALSE(tx.is_savepoint());
    tx.commit();
    CHECK_FALSE(tx.active());
  }
  {
    Transaction tx(*c);
    c->execute("INSERT INTO t VALUES ($1)", 2);
    CHECK(c->in_transaction());
  }
  CHECK_FALSE(c->in_transaction());
  CHECK(c->transaction_depth() == 0);
  CHECK(count(*c) == 1);
}

TEST_CASE("the destructor rolls back when an exception unwinds", "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  c->execute_batch("CREATE TABLE t (x integer)");
  try {
    Transaction tx(*c);
    c->execute("INSERT INTO t VALUES ($1)", 1);
    throw std::runtime_error("test failure");
  } catch (const std::runtime_error&) {
  }
  CHECK(count(*c) == 0);
  CHECK_FALSE(c->in_transaction());
}

TEST_CASE("nested transactions are savepoints", "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  c->execute_batch("CREATE TABLE t (x integer)");
  Transaction outer(*c);
  c->execute("INSERT INTO t VALUES ($1)", 1);
  {
    Transaction inner(*c);
    CHECK(inner.is_savepoint());
    CHECK(inner.level() == 2);
    c->execute("INSERT INTO t VALUES ($1)", 2);
    inner.rollback();
  }
  {
    Transaction inner(*c);
    c->execute("INSERT INTO t VALUES ($1)", 3);
    {
      Transaction innermost(*c);
      CHECK(innermost.level() == 3);
      c->execute("INSERT INTO t VALUES ($1)", 4);
    }  // rolled back
    inner.commit();
  }
  outer.commit();
  CHECK(c->query_value<std::int64_t>("SELECT sum(x) FROM t") == 4);
}

TEST_CASE("a failed statement inside a savepoint leaves the outer transaction usable",
          "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  c->execute_batch("CREATE TABLE t (x integer PRIMARY KEY)");
  Transaction outer(*c);
  c->execute("INSERT INTO t VALUES ($1)", 1);
  try {
    Transaction inner(*c);
    c->execute("INSERT INTO t VALUES ($1)", 1);
    inner.commit();
  } catch (const DatabaseError& e) {
    CHECK(e.unique_violation());
  }
  c->execute("INSERT INTO t VALUES ($1)", 2);
  outer.commit();
  CHECK(count(*c) == 2);
}

TEST_CASE("transaction misuse throws logic_error", "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  Transaction outer(*c);
  {
    Transaction inner(*c);
    CHECK_THROWS_AS(outer.commit(), std::logic_error);
    inner.commit();
    CHECK_THROWS_AS(inner.commit(), std::logic_error);
    CHECK_THROWS_AS(inner.rollback(), std::logic_error);
  }
  outer.rollback();
  CHECK_THROWS_AS(outer.rollback(), std::logic_error);
  CHECK(c->transaction_depth() == 0);
}

TEST_CASE("isolation level and locking options reach the database", "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  TransactionOptions options;
  options.isolation = IsolationLevel::serializable;
  options.sqlite_locking = SqliteLocking::immediate;
  std::unique_ptr<Connection> other;
  if (!db.postgres()) other = connect(db.url().with_parameter("busy_timeout", "0"));
  Transaction tx(*c, options);
  if (db.postgres()) {
    CHECK(c->query_value<std::string>("SHOW transaction_isolation") == "serializable");
  } else {
    // BEGIN IMMEDIATE holds the write lock: a second writer cannot start.
    TransactionOptions immediate;
    immediate.sqlite_locking = SqliteLocking::immediate;
    try {
      Transaction blocked(*other, immediate);
      FAIL("second BEGIN IMMEDIATE succeeded");
    } catch (const DatabaseError& e) {
      CHECK(e.transaction_retryable());
      CHECK(e.fault() == FaultClass::concurrency);
    }
  }
  tx.commit();
}

TEST_CASE("with_retry reruns the whole transaction on retryable errors only",
          "[repo][transaction]") {
  TestDatabase db;
  auto c = db.connect();
  c->execute_batch("CREATE TABLE t (x integer)");
  RetryBudget budget;
  budget.max_attempts = 4;
  budget.initial_backoff = std::chrono::milliseconds(1);
  SECTION("succeeds after transient failures, keeping only the last attempt's writes") {
    int attempts = 0;
    int value = with_retry(*c, budget, [&](Transaction& tx) {
      tx->execute("INSERT INTO t VALUES ($1)", ++attempts);
      if (attempts < 3) throw retryable_error();
      return attempts;
    });
    CHECK(value == 3);
    CHECK(count(*c) == 1);
    CHECK(c->query_value<int>("SELECT x FROM t") == 3);
  }
  SECTION("gives up after the budget") {
    int attempts = 0;
    CHECK_THROWS_AS(with_retry(*c, budget,
                               [&](Transaction&) {
                                 ++attempts;
                                 throw retryable_error();
                               }),
                    DatabaseError);
    CHECK(attempts == 4);
  }
  SECTION("other errors propagate at once") {
    int attempts = 0;
    CHECK_THROWS_AS(with_retry(*c, budget,
                               [&](Transaction& tx) {
                                 ++attempts;
                                 tx->execute("SELECT * FROM missing_table");
                               }),
                    DatabaseError);
    CHECK(attempts == 1);
  }
  SECTION("inside an enclosing transaction it runs once") {
    Transaction outer(*c);
    int attempts = 0;
    CHECK_THROWS_AS(with_retry(*c, budget,
                               [&](Transaction& tx) {
                                 CHECK(tx.is_savepoint());
                                 ++attempts;
                                 throw retryable_error();
                               }),
                    DatabaseError);
    CHECK(attempts == 1);
  }
  CHECK(c->transaction_depth() == 0);
  CHECK_FALSE(c->in_transaction());
}
