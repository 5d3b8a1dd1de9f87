#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "gamebot/repo/repo.hpp"
#include "gamebot/repo/sqlite_connection.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot;
using namespace gamebot::repo;

TEST_CASE("sqlite files open with WAL, foreign keys, synchronous=NORMAL and busy_timeout",
          "[repo][sqlite]") {
  gamebot::testing::TempDir dir;
  auto c = connect(DatabaseUrl::sqlite_file(dir.path() + "/db.sqlite"));
  CHECK(c->query_value<std::string>("PRAGMA journal_mode") == "wal");
  CHECK(c->query_value<int>("PRAGMA foreign_keys") == 1);
  CHECK(c->query_value<int>("PRAGMA synchronous") == 1);
  CHECK(c->query_value<int>("PRAGMA busy_timeout") == 5000);
  SqliteOptions options;
  options.synchronous = SqliteSynchronous::full;
  options.busy_timeout = std::chrono::milliseconds(250);
  auto tuned = SqliteConnection::open(DatabaseUrl::sqlite_file(dir.path() + "/db.sqlite"), options);
  CHECK(tuned->query_value<int>("PRAGMA synchronous") == 2);
  CHECK(tuned->query_value<int>("PRAGMA busy_timeout") == 250);
  auto by_url = connect(
      DatabaseUrl::parse("sqlite:" + dir.path() + "/db.sqlite?synchronous=off&foreign_keys=off"));
  CHECK(by_url->query_value<int>("PRAGMA synchronous") == 0);
  CHECK(by_url->query_value<int>("PRAGMA foreign_keys") == 0);
}

TEST_CASE("the native sqlite handle is reachable for driver-specific features", "[repo][sqlite]") {
  auto c = connect(DatabaseUrl::parse("sqlite::memory:"));
  sqlite3* db = as_sqlite(*c).native_handle();
  REQUIRE(db != nullptr);
  c->execute_batch("CREATE TABLE t (x integer)");
  c->execute("INSERT INTO t VALUES ($1)", 5);
  CHECK(sqlite3_changes(db) == 1);
  CHECK(as_sqlite(*c).last_insert_rowid() == 1);
  CHECK_THROWS_AS(as_postgres(*c), std::logic_error);
}

TEST_CASE("a foreign key violation is an integrity error", "[repo][sqlite]") {
  auto c = connect(DatabaseUrl::parse("sqlite::memory:"));
  c->execute_batch(
      "CREATE TABLE p (id integer PRIMARY KEY); CREATE TABLE ch (p integer REFERENCES p(id))");
  try {
    c->execute("INSERT INTO ch VALUES ($1)", 9);
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK(e.fault() == FaultClass::integrity);
    CHECK(e.foreign_key_violation());
  }
}

TEST_CASE("an unopenable sqlite file is a configuration error naming it", "[repo][sqlite]") {
  try {
    connect(DatabaseUrl::parse("sqlite:/nonexistent-dir-gamebot/x.db"));
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK(e.fault() == FaultClass::configuration);
    CHECK_THAT(e.what(), Catch::Contains("/nonexistent-dir-gamebot/x.db"));
  }
}

TEST_CASE("sqlite::memory: pools share one private in-memory database", "[repo][sqlite][pool]") {
  auto pool = Pool::create(DatabaseUrl::parse("sqlite::memory:"), PoolOptions{.max_size = 2});
  CHECK_FALSE(pool->url().sqlite_shared_name().empty());
  PooledConnection a = pool->checkout();
  a->execute_batch("CREATE TABLE m (x integer); INSERT INTO m VALUES (1)");
  PooledConnection b = pool->checkout();
  CHECK(b->query_value<int>("SELECT x FROM m") == 1);
  auto other = Pool::create(DatabaseUrl::parse("sqlite::memory:"));
  CHECK_THROWS_AS(other->checkout()->query("SELECT x FROM m"), DatabaseError);
}

TEST_CASE("text timestamps written by SQLite itself are readable", "[repo][sqlite]") {
  auto c = connect(DatabaseUrl::parse("sqlite::memory:"));
  auto at = c->query_value<Timestamp>("SELECT '2024-02-29T12:34:56.789Z'");
  REQUIRE(at);
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(at->time_since_epoch()).count() ==
        1709210096789);
  auto offset = c->query_value<Timestamp>("SELECT '2024-02-29 14:34:56+02:00'");
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(offset->time_since_epoch()).count() ==
        1709210096);
  CHECK_THROWS_AS(c->query_value<Timestamp>("SELECT 'not a time'"), ConversionError);
  auto text_uuid = c->query_value<Uuid>("SELECT '0190f5c2-7b1a-7cde-8f00-0123456789ab'");
  CHECK(text_uuid->to_string() == "0190f5c2-7b1a-7cde-8f00-0123456789ab");
}

TEST_CASE("named sqlite parameters are rejected with a hint", "[repo][sqlite]") {
  auto c = connect(DatabaseUrl::parse("sqlite::memory:"));
  CHECK_THROWS_WITH(c->query("SELECT :name", 1), Catch::Contains("$1..$n"));
  CHECK_THROWS_WITH(c->execute("SELECT 1; SELECT 2"), Catch::Contains("execute_batch"));
}

TEST_CASE("a database file with a damaged header or no database in it is an integrity fault",
          "[repo][sqlite][errors]") {
  gamebot::testing::TempDir dir;
  const std::string path = dir.path() + "/db.sqlite";
  {
    auto c = connect(DatabaseUrl::sqlite_file(path));
    c->execute_batch("PRAGMA journal_mode=delete; CREATE TABLE t (x integer)");
  }
  auto expect_integrity = [&](const char* what) {
    INFO(what);
    try {
      auto c = connect(DatabaseUrl::sqlite_file(path));
      c->query_value<std::int64_t>("SELECT count(*) FROM t");
      FAIL("a damaged file was read");
    } catch (const DatabaseError& error) {
      INFO(error.what());
      CHECK(error.fault() == FaultClass::integrity);
    }
  };
  {
    // Schema format number (header offset 44, big-endian; valid values 1..4).
    std::FILE* file = std::fopen(path.c_str(), "r+b");
    REQUIRE(file != nullptr);
    const unsigned char format[4] = {0, 0, 0, 9};
    std::fseek(file, 44, SEEK_SET);
    std::fwrite(format, 1, sizeof format, file);
    std::fclose(file);
  }
  expect_integrity("unsupported schema format number");
  {
    std::FILE* file = std::fopen(path.c_str(), "r+b");
    REQUIRE(file != nullptr);
    std::fwrite("not an sqlite file", 1, 18, file);
    std::fclose(file);
  }
  expect_integrity("no SQLite header");
}
