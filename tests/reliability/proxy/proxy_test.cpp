// Faults on the wire, injected by a loopback TCP proxy in front of the fixture's PostgreSQL
// server: dropped connections, a stalled network, refused connections. Nothing hangs, each
// fault comes out as its class, the pool replaces what died, and a live subscription whose
// listening connection died catches up with nothing lost or repeated.
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fault_proxy.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "gamebot/testing/postgres.hpp"
#include "test_schema.hpp"

namespace es = gamebot::eventstore;
namespace repo = gamebot::repo;
using gamebot::FaultClass;
using gamebot::reliability::FaultProxy;
using namespace std::chrono_literals;

namespace {

std::string fixture_socket() {
  return gamebot::testing::postgres_socket_dir() + "/.s.PGSQL.5432";
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Connection options under which a call gives up after 300 ms without an answer.
repo::ConnectOptions with_operation_deadline() {
  repo::ConnectOptions options;
  options.postgres.operation_timeout = 300ms;
  return options;
}

// Runs `call`, which must fail as a timeout, reported as a lost connection, within 2 s.
template <typename Call>
void check_times_out(Call&& call) {
  const auto start = std::chrono::steady_clock::now();
  try {
    call();
    FAIL("no exception");
  } catch (const repo::DatabaseError& e) {
    CHECK(e.fault() == FaultClass::timeout);
    CHECK(e.connection_lost());
  }
  CHECK(seconds_since(start) < 2.0);
}

}  // namespace

TEST_CASE("a stalled network fails an in-flight query as timeout within the operation deadline",
          "[reliability][proxy][postgres][concurrency]") {
  FaultProxy proxy(fixture_socket());
  const repo::ConnectOptions options = with_operation_deadline();
  auto connection = repo::connect(proxy.url(), options);
  REQUIRE(connection->query_value<int>("SELECT 1") == 1);
  proxy.set_stalled(true);
  check_times_out([&] { connection->query_value<int>("SELECT 2"); });
  CHECK(connection->broken());
  proxy.set_stalled(false);
  CHECK(repo::connect(proxy.url(), options)->query_value<int>("SELECT 3") == 3);
}

TEST_CASE("a binary libpq call of a backend on a stalled network fails as timeout too",
          "[reliability][proxy][postgres][concurrency]") {
  // The event store's bulk $all reader decodes libpq's binary rows itself; it
  // goes through exec_params_binary, which keeps the operation deadline.
  FaultProxy proxy(fixture_socket());
  auto connection = repo::connect(proxy.url(), with_operation_deadline());
  auto& pg = repo::as_postgres(*connection);
  const char* values[1] = {"7"};
  const std::unique_ptr<pg_result, decltype(&PQclear)> first(
      pg.exec_params_binary("SELECT $1::int + 1", 1, nullptr, values, nullptr, nullptr), &PQclear);
  REQUIRE(PQntuples(first.get()) == 1);
  proxy.set_stalled(true);
  check_times_out([&] {
    PQclear(pg.exec_params_binary("SELECT $1::int + 2", 1, nullptr, values, nullptr, nullptr));
  });
  CHECK(connection->broken());
  try {
    PQclear(pg.exec_params_binary("SELECT 1", 0, nullptr, nullptr, nullptr, nullptr));
    FAIL("a broken connection was used again");
  } catch (const repo::DatabaseError& e) {
    CHECK(e.fault() == FaultClass::connectivity);
  }
  proxy.set_stalled(false);
}

TEST_CASE("dropped connections fail in-flight calls as connectivity and the pool replaces them",
          "[reliability][proxy][postgres][concurrency]") {
  FaultProxy proxy(fixture_socket());
  auto pool =
      repo::Pool::create(repo::DatabaseUrl::parse(proxy.url()), repo::PoolOptions{.max_size = 2});
  {
    repo::PooledConnection busy = pool->checkout("busy");
    {
      repo::PooledConnection idle = pool->checkout("idle");
      REQUIRE(idle->query_value<int>("SELECT 1") == 1);
    }
    proxy.drop_all();
    try {
      busy->query_value<int>("SELECT 1");
      FAIL("no exception");
    } catch (const repo::DatabaseError& e) {
      CHECK(e.fault() == FaultClass::connectivity);
    }
  }
  // Both the one in use and the idle one died; neither is handed out again.
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 3; ++i) {
    repo::PooledConnection fresh = pool->checkout("after the drop");
    CHECK(fresh->query_value<int>("SELECT 1") == 1);
  }
  CHECK(pool->stats().replaced == 2);
}

TEST_CASE("refused connections are a connectivity error, and connecting works once they stop",
          "[reliability][proxy][postgres][concurrency]") {
  FaultProxy proxy(fixture_socket());
  proxy.set_refusing(true);
  repo::ConnectOptions options;
  options.postgres.connect_timeout = 2s;
  const auto start = std::chrono::steady_clock::now();
  try {
    repo::connect(proxy.url(), options);
    FAIL("no exception");
  } catch (const repo::DatabaseError& e) {
    CHECK(e.fault() == FaultClass::connectivity);
  }
  CHECK(seconds_since(start) < 3.0);
  proxy.set_refusing(false);
  CHECK(repo::connect(proxy.url(), options)->query_value<int>("SELECT 1") == 1);
}

TEST_CASE(
    "a live subscription whose listening connection died catches up with nothing lost "
    "or repeated",
    "[reliability][proxy][postgres][subscriptions][concurrency]") {
  es::testing::TestSchema schema("proxy");
  FaultProxy proxy(fixture_socket());
  es::EventStore writer = es::open(schema.store_url());
  es::EventStore reader = es::open(proxy.url("?schema=" + schema.name()));
  es::Subscription subscription = reader.subscribe(es::kAllStream);
  auto append = [&](int first, int count) {
    for (int i = first; i < first + count; ++i) {
      es::EventData event;
      event.type = "probe";
      event.data = std::to_string(i);
      REQUIRE(writer.append("probe", es::ExpectedVersion::any(), event).ok());
    }
  };
  std::vector<es::GlobalPosition> seen;
  auto receive_until = [&](std::size_t total) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (seen.size() < total && std::chrono::steady_clock::now() < deadline) {
      try {
        if (auto event = subscription.next(100ms)) seen.push_back(event->global_position);
      } catch (const gamebot::Error& e) {
        FAIL("the subscription failed instead of recovering: " << e.what());
      }
    }
  };
  append(0, 30);
  receive_until(30);
  REQUIRE(seen.size() == 30);
  const auto& backend = dynamic_cast<es::PostgresBackend&>(reader.backend());
  const std::uint64_t listens = backend.listener_connections();
  proxy.drop_all();
  append(30, 30);
  receive_until(60);
  std::set<es::GlobalPosition> unique(seen.begin(), seen.end());
  CHECK(seen.size() == 60);
  CHECK(unique.size() == seen.size());
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] == seen[i - 1] + 1);
  // And it listens again (reconnects are paced by poll_interval).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (backend.listener_connections() <= listens && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(backend.listener_connections() > listens);
}
