#include <atomic>
#include <barrier>
#include <catch2/catch.hpp>
#include <latch>
#include <thread>

#include "gamebot/repo/repo.hpp"
#include "support/test_database.hpp"

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::repo::testing::TestDatabase;
using namespace std::chrono_literals;

TEST_CASE("a pool of 2 with 3 holders: the third times out naming the two holders",
          "[repo][pool][concurrency]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 2, .checkout_timeout = 150ms});
  std::latch held(2);
  std::latch done(1);
  auto hold = [&](std::string label) {
    PooledConnection c = pool->checkout(label);
    held.count_down();
    done.wait();
  };
  std::thread a(hold, "holder-a");
  std::thread b(hold, "holder-b");
  held.wait();
  std::string message;
  std::size_t holders = 0;
  std::thread third([&] {
    try {
      pool->checkout("holder-c");
    } catch (const PoolExhaustedError& e) {
      message = e.what();
      holders = e.holders().size();
    }
  });
  third.join();
  done.count_down();
  a.join();
  b.join();
  CHECK(holders == 2);
  CHECK_THAT(message, Catch::Contains("holder-a") && Catch::Contains("holder-b") &&
                          Catch::Contains("thread") && Catch::Contains("since"));
  CHECK(pool->stats().in_use == 0);
}

TEST_CASE("waiting checkouts are served as connections come back", "[repo][pool][concurrency]") {
  TestDatabase db;
  auto pool = Pool::create(db.url(), PoolOptions{.max_size = 2, .checkout_timeout = 5000ms});
  std::atomic<int> failures{0};
  std::atomic<int> done{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) {
        try {
          PooledConnection c = pool->checkout("worker " + std::to_string(w));
          c->ping();
          std::this_thread::sleep_for(1ms);
          ++done;
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  PoolStats stats = pool->stats();
  CHECK(failures == 0);
  CHECK(done == 60);
  CHECK(stats.peak_in_use <= 2);
  CHECK(stats.size <= 2);
  CHECK(stats.waits > 0);
  CHECK(stats.in_use == 0);
}

TEST_CASE("concurrent migrators serialize and apply each migration once",
          "[repo][migrator][concurrency]") {
  TestDatabase db;
  std::vector<Migration> set = {
      {1, "one", "CREATE TABLE one (x integer)"},
      {2, "two", "CREATE TABLE two (x integer)"},
      {3, "three", "CREATE TABLE three (x integer)"},
  };
  Migrator migrator(set);
  std::atomic<std::size_t> applied{0};
  std::atomic<int> errors{0};
  std::barrier start(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      std::unique_ptr<Connection> c;
      try {
        c = db.connect();
      } catch (const std::exception& e) {
        UNSCOPED_INFO(e.what());
        ++errors;
        start.arrive_and_drop();  // never leave the others waiting at the barrier
        return;
      }
      start.arrive_and_wait();
      try {
        applied += migrator.migrate(*c).applied.size();
      } catch (const std::exception& e) {
        UNSCOPED_INFO(e.what());
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors == 0);
  CHECK(applied == 3);
  auto c = db.connect();
  CHECK(migrator.applied(*c).size() == 3);
}

TEST_CASE("with_retry resolves a real write conflict between two transactions",
          "[repo][transaction][concurrency]") {
  TestDatabase db;
  RepoOptions options;
  options.pool.max_size = 4;
  Repo repo = Repo::open(db.url(), options);
  repo.run([](Connection& c) {
    c.execute_batch("CREATE TABLE counter (id integer PRIMARY KEY, n integer)");
    c.execute("INSERT INTO counter VALUES (1, 0)");
  });
  TransactionOptions serializable;
  serializable.isolation = IsolationLevel::serializable;
  RetryBudget budget;
  budget.max_attempts = 50;
  budget.initial_backoff = 1ms;
  budget.max_backoff = 20ms;
  std::atomic<int> attempts{0};
  std::barrier both_read(2);
  std::atomic<bool> first_round{true};
  auto increment = [&] {
    with_retry(
        repo, budget,
        [&](Transaction& tx) {
          ++attempts;
          int n = tx->query_value<int>("SELECT n FROM counter WHERE id = 1").value();
          // Both threads read before either writes, so one of them must conflict.
          if (first_round.load()) both_read.arrive_and_wait();
          first_round = false;
          tx->execute("UPDATE counter SET n = $1 WHERE id = 1", n + 1);
        },
        serializable);
  };
  std::thread a(increment);
  std::thread b(increment);
  a.join();
  b.join();
  CHECK(repo.run([](Connection& c) { return c.query_value<int>("SELECT n FROM counter"); }) == 2);
  CHECK(attempts >= 3);  // the loser ran again
}
