#include <catch2/catch.hpp>
#include <latch>
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

TEST_CASE("a thread without an allowance gets an ownership error naming the owner",
          "[repo][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  Sandbox sandbox(repo, SandboxOptions{.label = "owner test"});
  std::string message;
  FaultClass fault = FaultClass::internal;
  std::thread worker([&] {
    try {
      repo.acquire();
    } catch (const OwnershipError& e) {
      message = e.what();
      fault = e.fault();
    }
  });
  worker.join();
  CHECK(fault == FaultClass::configuration);
  CHECK_THAT(message, Catch::Contains("owner test") && Catch::Contains("allow"));
  CHECK(repo.pool().stats().in_use == 1);  // no silent second connection
}

TEST_CASE("an allowed thread shares the sandbox's connection and data", "[repo][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  Sandbox sandbox(repo, SandboxOptions{.label = "allowing test"});
  repo.run([](Connection& c) { c.execute("INSERT INTO t VALUES (5)"); });
  std::int64_t seen = -1;
  bool sandboxed = false;
  std::thread worker([&] {
    Sandbox::Allowance allowance(sandbox);
    ConnectionLease lease = repo.acquire();
    sandboxed = lease.sandboxed();
    seen = lease->query_value<std::int64_t>("SELECT sum(x) FROM t").value_or(-1);
    lease->execute("INSERT INTO t VALUES (6)");
  });
  worker.join();
  CHECK(sandboxed);
  CHECK(seen == 5);
  CHECK(repo.run([](Connection& c) {
    return c.query_value<std::int64_t>("SELECT sum(x) FROM t");
  }) == 11);
  sandbox.close();
  CHECK(sandbox.closed());
  CHECK(count_outside(repo) == 0);
}

TEST_CASE("a shared sandbox serves every thread", "[repo][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  Sandbox sandbox(repo, SandboxOptions{.label = "shared test", .shared = true});
  std::vector<std::thread> workers;
  for (int i = 1; i <= 3; ++i) {
    workers.emplace_back([&repo, i] {
      repo.run_in_transaction([i](Connection& c) { c.execute("INSERT INTO t VALUES ($1)", i); });
    });
  }
  for (auto& w : workers) w.join();
  CHECK(repo.run([](Connection& c) {
    return c.query_value<std::int64_t>("SELECT sum(x) FROM t");
  }) == 6);
  CHECK(repo.pool().stats().in_use == 1);
  sandbox.close();
  CHECK(count_outside(repo) == 0);
}

TEST_CASE("sandbox misuse is rejected", "[repo][sandbox]") {
  TestDatabase db;
  Repo repo = make_repo(db);
  {
    ConnectionLease held = repo.acquire();
    CHECK_THROWS_AS(Sandbox(repo), std::logic_error);
  }
  Sandbox first(repo, SandboxOptions{.label = "first", .shared = true});
  CHECK_THROWS_AS(Sandbox(repo), std::logic_error);  // the thread already owns one
  std::thread worker([&] {
    CHECK_THROWS_AS(Sandbox(repo, SandboxOptions{.label = "second", .shared = true}),
                    std::logic_error);
  });
  worker.join();
}

TEST_CASE("closing a sandbox another thread still uses defers the rollback to that thread",
          "[repo][sandbox]") {
  TestDatabase db;
  RepoOptions options;
  options.pool.max_size = 4;
  options.sandbox_wait_timeout = std::chrono::milliseconds(100);
  Repo repo = Repo::open(db.url(), options);
  repo.run([](Connection& c) { c.execute_batch("CREATE TABLE t (x integer)"); });
  std::latch holding(1);
  std::latch let_go(1);
  Sandbox sandbox(repo, SandboxOptions{.label = "closing test"});
  std::thread worker([&] {
    Sandbox::Allowance allowance(sandbox);
    ConnectionLease lease = repo.acquire();
    lease->execute("INSERT INTO t VALUES (1)");
    holding.count_down();
    let_go.wait();
  });
  holding.wait();
  try {
    sandbox.close();
    FAIL("close did not report the thread still using the sandbox");
  } catch (const gamebot::Error& e) {
    CHECK(e.fault() == FaultClass::timeout);
    CHECK_THAT(e.what(), Catch::Contains("closing test"));
  }
  CHECK(sandbox.closed());
  CHECK_FALSE(repo.sandbox_active());
  CHECK(sandbox.label() == "closing test");
  let_go.count_down();
  worker.join();
  CHECK(repo.pool().stats().in_use == 0);
  CHECK(count_outside(repo) == 0);
}
