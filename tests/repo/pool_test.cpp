#include <catch2/catch.hpp>
#include <thread>

#include "gamebot/repo/repo.hpp"
#include "support/test_database.hpp"

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::repo::testing::TestDatabase;
using namespace std::chrono_literals;

TEST_CASE("a checkout is returned at scope exit, also during unwinding", "[repo][pool]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.min_size = 1, .max_size = 2});
  CHECK(pool->stats().size == 1);
  std::uint64_t first_id = 0;
  {
    PooledConnection c = pool->checkout("first");
    first_id = c->id();
    CHECK(pool->stats().in_use == 1);
  }
  CHECK(pool->stats().in_use == 0);
  try {
    PooledConnection c = pool->checkout("throws");
    CHECK(c->id() == first_id);  // the idle connection is reused
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  PoolStats stats = pool->stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == 1);
  CHECK(stats.checkouts == 2);
  CHECK(stats.opened == 1);
  CHECK(pool->leak_report().empty());
}

TEST_CASE("the pool's connections share one database", "[repo][pool]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 2});
  PooledConnection a = pool->checkout();
  PooledConnection b = pool->checkout();
  CHECK(a->id() != b->id());
  a->execute_batch("CREATE TABLE shared_t (x integer); INSERT INTO shared_t VALUES (7)");
  CHECK(b->query_value<int>("SELECT x FROM shared_t") == 7);
}

TEST_CASE("checkout timeout names every holder and since when", "[repo][pool]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 2, .checkout_timeout = 100ms});
  PooledConnection a = pool->checkout("holder-a");
  PooledConnection b;
  {
    ScopedCheckoutLabel label("holder-b");
    b = pool->checkout();
  }
  auto start = std::chrono::steady_clock::now();
  try {
    pool->checkout("third");
    FAIL("checkout did not time out");
  } catch (const PoolExhaustedError& e) {
    auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= 100ms);
    CHECK(waited < 2s);
    CHECK(e.fault() == FaultClass::pool_exhausted);
    CHECK(e.retryable());
    REQUIRE(e.holders().size() == 2);
    CHECK_THAT(e.what(), Catch::Contains("'holder-a'") && Catch::Contains("'holder-b'") &&
                             Catch::Contains("since") && Catch::Contains("'third'"));
  }
  PoolStats stats = pool->stats();
  CHECK(stats.timeouts == 1);
  CHECK(stats.waits == 1);
  CHECK(stats.wait_time >= 100ms);
  CHECK(stats.peak_in_use == 2);
  std::string report = pool->leak_report();
  CHECK_THAT(report, Catch::Contains("2 connection(s)") && Catch::Contains("holder-a") &&
                         Catch::Contains("holder-b"));
  a.release();
  CHECK(pool->checkout("after", 10ms));
}

TEST_CASE("resize grows and shrinks the pool at run time", "[repo][pool]") {
  TestDatabase db;
  auto pool =
      Pool::create(db.url(), PoolOptions{.min_size = 0, .max_size = 1, .checkout_timeout = 20ms});
  PooledConnection a = pool->checkout("a");
  CHECK_THROWS_AS(pool->checkout("b"), PoolExhaustedError);
  pool->resize(2, 3);
  CHECK(pool->stats().size == 2);
  PooledConnection b = pool->checkout("b");
  PooledConnection c = pool->checkout("c");
  CHECK(pool->stats().in_use == 3);
  pool->resize(0, 1);
  b.release();
  c.release();
  PoolStats stats = pool->stats();
  CHECK(stats.size == 1);
  CHECK(stats.max_size == 1);
  CHECK_THROWS_AS(pool->resize(2, 1), gamebot::Error);
  CHECK_THROWS_AS(Pool::create(db.url(), PoolOptions{.max_size = 0}), gamebot::Error);
}

TEST_CASE("connections past their max lifetime are retired", "[repo][pool]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 1, .max_lifetime = 30ms});
  std::uint64_t first = pool->checkout()->id();
  std::this_thread::sleep_for(50ms);
  std::uint64_t second = pool->checkout()->id();
  CHECK(first != second);
  CHECK(pool->stats().expired >= 1);
}

TEST_CASE("a connection returned inside a transaction is rolled back", "[repo][pool]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 1});
  {
    PooledConnection c = pool->checkout("leaky");
    c->execute_batch("CREATE TABLE t (x integer)");
    c->execute_batch("BEGIN; INSERT INTO t VALUES (1)");
  }
  PooledConnection c = pool->checkout();
  CHECK_FALSE(c->in_transaction());
  CHECK(c->query_value<std::int64_t>("SELECT count(*) FROM t") == 0);
  CHECK(pool->stats().dirty_returns == 1);
}

TEST_CASE("reclaim_held_by takes back a thread's forgotten connections, rolling them back",
          "[repo][pool]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 1, .checkout_timeout = 100ms});
  {
    PooledConnection setup = pool->checkout();
    setup->execute_batch("CREATE TABLE t (x integer)");
  }
  PooledConnection forgotten = pool->checkout("leaky test");
  forgotten->execute_batch("BEGIN; INSERT INTO t VALUES (1)");
  const std::uint64_t forgotten_id = forgotten->id();
  std::vector<ReclaimedConnection> other_thread;
  std::thread([&] { other_thread = pool->reclaim_held_by(std::this_thread::get_id()); }).join();
  CHECK(other_thread.empty());  // only the holder's own thread takes back

  auto taken = pool->reclaim_held_by(std::this_thread::get_id());
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].holder.label == "leaky test");
  CHECK(taken[0].open_transaction);
  CHECK(taken[0].transaction_begun_at.empty());  // a BEGIN of its own: no Transaction to name
  CHECK(taken[0].rolled_back);
  CHECK(pool->checked_out().empty());
  // Its place is free again (max_size 1), and what it left uncommitted is gone.
  {
    PooledConnection next = pool->checkout();
    CHECK(next->id() != forgotten_id);
    CHECK_FALSE(next->in_transaction());
    CHECK(next->query_value<std::int64_t>("SELECT count(*) FROM t") == 0);
  }
  // Returning the forgotten handle later closes it instead of pooling a second connection.
  forgotten.release();
  const PoolStats stats = pool->stats();
  CHECK(stats.size == 1);
  CHECK(stats.idle == 1);
  CHECK(stats.dirty_returns == 0);
}

TEST_CASE("a handle outliving its pool closes the connection", "[repo][pool]") {
  TestDatabase db;
  PooledConnection survivor;
  {
    auto pool = Pool::create(db.url());
    survivor = pool->checkout();
  }
  survivor->ping();
  survivor.release();
  CHECK_FALSE(survivor);
}
