#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "gamebot/repo/repo.hpp"
#include "support/test_database.hpp"

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::repo::testing::TestDatabase;

namespace {

void create_items(const TestDatabase& db, Connection& c) {
  c.execute_batch(db.sql(
      "CREATE TABLE items (id bigint PRIMARY KEY, flag boolean, score double precision, name text "
      "UNIQUE, data bytea, uid uuid, at timestamptz)",
      "CREATE TABLE items (id INTEGER PRIMARY KEY, flag INTEGER, score REAL, name TEXT UNIQUE, "
      "data BLOB, uid BLOB, at INTEGER)"));
}

Timestamp micros(std::int64_t us) {
  return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(us)));
}

}  // namespace

TEST_CASE("every parameter type round-trips through insert and select", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  Uuid id = Uuid::v7();
  Bytes data{0x00, 0xff, 0x10, 0x00};
  Timestamp at = micros(1'700'000'000'123'456);
  REQUIRE(c->execute("INSERT INTO items (id, flag, score, name, data, uid, at) VALUES ($1, $2, $3, "
                     "$4, $5, $6, $7)",
                     std::int64_t{9'000'000'000}, true, 2.5, std::string("héllo"), data, id,
                     at) == 1);
  REQUIRE(c->execute("INSERT INTO items (id, flag, score, name, data, uid, at) VALUES ($1, $2, $3, "
                     "$4, $5, $6, $7)",
                     2, nullptr, std::nullopt, std::optional<std::string>(), Bytes{}, std::nullopt,
                     std::optional<Timestamp>()) == 1);

  Result result =
      c->query("SELECT id, flag, score, name, data, uid, at FROM items ORDER BY id DESC");
  REQUIRE(result.next());
  Row row = result.row();
  CHECK(row.get<std::int64_t>(0) == 9'000'000'000);
  CHECK(row.get<bool>(1));
  CHECK(row.get<double>(2) == 2.5);
  CHECK(row.get<std::string>(3) == "héllo");
  CHECK(row.get<std::string_view>(3) == "héllo");
  CHECK(row.get<Bytes>(4) == data);
  CHECK(row.get<Uuid>(5) == id);
  CHECK(row.get<Timestamp>(6) == at);
  REQUIRE(result.next());
  Row second = result.row();
  CHECK(second.get<int>(0) == 2);
  CHECK_FALSE(second.get<std::optional<bool>>(1).has_value());
  CHECK_FALSE(second.get<std::optional<double>>("score").has_value());
  CHECK_FALSE(second.get<std::optional<std::string>>("name").has_value());
  CHECK(second.get<Bytes>("data").empty());
  CHECK_FALSE(second.get<std::optional<Uuid>>("uid").has_value());
  CHECK_FALSE(second.get<std::optional<Timestamp>>("at").has_value());
  CHECK_FALSE(result.next());
}

TEST_CASE("rows are read by index and by name and iterate with range-for", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  for (int i = 1; i <= 5; ++i)
    c->execute("INSERT INTO items (id, name) VALUES ($1, $2)", i, "n" + std::to_string(i));
  std::int64_t sum = 0;
  std::string names;
  Result result = c->query("SELECT id, name FROM items WHERE id > $1 ORDER BY id", 2);
  CHECK(result.column_count() == 2);
  CHECK(result.column_name(1) == "name");
  for (Row row : result) {
    sum += row.get<std::int64_t>("id");
    names += row.get<std::string>(1);
  }
  CHECK(sum == 3 + 4 + 5);
  CHECK(names == "n3n4n5");
  CHECK(c->query_value<std::int64_t>("SELECT count(*) FROM items") == 5);
  CHECK_FALSE(c->query_value<std::int64_t>("SELECT id FROM items WHERE id = $1", 99).has_value());
}

TEST_CASE("reading a value as the wrong type is a typed ConversionError", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  c->execute("INSERT INTO items (id, name, score) VALUES ($1, $2, $3)", 300, "text", nullptr);
  Result result = c->query("SELECT id, name, score FROM items");
  REQUIRE(result.next());
  Row row = result.row();
  SECTION("text read as an integer is a schema fault") {
    try {
      (void)row.get<std::int64_t>("name");
      FAIL("no exception");
    } catch (const ConversionError& e) {
      CHECK(e.fault() == FaultClass::schema);
      CHECK(e.column() == "name");
    }
  }
  SECTION("NULL read as a non-optional is a schema fault") {
    CHECK_THROWS_MATCHES(row.get<double>(2), ConversionError,
                         Catch::Matchers::Predicate<ConversionError>([](const ConversionError& e) {
                           return e.fault() == FaultClass::schema;
                         }));
  }
  SECTION("a value out of the target range is an integrity fault") {
    CHECK_THROWS_MATCHES(row.get<std::int8_t>(0), ConversionError,
                         Catch::Matchers::Predicate<ConversionError>([](const ConversionError& e) {
                           return e.fault() == FaultClass::integrity;
                         }));
    CHECK(row.get<std::int16_t>(0) == 300);
  }
  SECTION("a missing column is a schema fault naming it") {
    CHECK_THROWS_WITH(row.get<int>("nope"), Catch::Contains("nope"));
    CHECK_THROWS_AS(row.get<int>(7), ConversionError);
  }
}

TEST_CASE("a unique violation is an integrity error naming the constraint", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  c->execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "dup");
  try {
    c->execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "dup");
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK(e.fault() == FaultClass::integrity);
    CHECK(e.unique_violation());
    CHECK_FALSE(e.transaction_retryable());
    if (db.postgres()) {
      CHECK(e.sqlstate() == "23505");
      CHECK(e.constraint() == "items_name_key");
    } else {
      CHECK(e.code() == "SQLITE_CONSTRAINT_UNIQUE");
      CHECK(e.constraint() == "items.name");
    }
  }
}

TEST_CASE("values are bound as parameters and never spliced into SQL", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  std::string hostile = "x'); DROP TABLE items; --";
  c->execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, hostile);
  CHECK(c->query_value<std::string>("SELECT name FROM items WHERE id = $1", 1) == hostile);
  CHECK(c->query_value<std::int64_t>("SELECT count(*) FROM items") == 1);
}

TEST_CASE("placeholders may repeat and appear out of order", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  c->execute("INSERT INTO items (id, score, name) VALUES ($2, CAST($1 AS bigint) + $2, $3)", 10, 5,
             "a");
  Result r = c->query("SELECT id, score FROM items");
  REQUIRE(r.next());
  CHECK(r.row().get<int>(0) == 5);
  CHECK(r.row().get<double>(1) == 15.0);
}

TEST_CASE("a wrong parameter count is reported before execution", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  CHECK_THROWS_WITH(c->execute("INSERT INTO items (id) VALUES ($1)", 1, 2),
                    Catch::Contains("takes 1 parameters, 2 given"));
  CHECK(c->query_value<std::int64_t>("SELECT count(*) FROM items") == 0);
}

TEST_CASE("a missing table is a schema fault and a syntax error is internal",
          "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  try {
    c->query("SELECT * FROM no_such_table");
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK(e.fault() == FaultClass::schema);
    CHECK_THAT(e.what(), Catch::Contains("no_such_table"));
  }
  try {
    c->execute("SELEKT 1");
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK(e.fault() == FaultClass::internal);
  }
  c->ping();
  CHECK(c->is_alive());
}

TEST_CASE("prepared statements are cached per connection", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  create_items(db, *c);
  std::size_t before = c->cached_statements();
  for (int i = 0; i < 20; ++i) c->execute("INSERT INTO items (id) VALUES ($1)", i);
  CHECK(c->cached_statements() == before + 1);
  // The same SQL while an earlier result is still open gets its own statement.
  Result outer = c->query("SELECT id FROM items WHERE id < $1 ORDER BY id", 3);
  Result inner = c->query("SELECT id FROM items WHERE id < $1 ORDER BY id", 2);
  int outer_rows = 0;
  int inner_rows = 0;
  while (outer.next()) ++outer_rows;
  while (inner.next()) ++inner_rows;
  CHECK(outer_rows == 3);
  CHECK(inner_rows == 2);
  outer.reset();
  inner.reset();
  c->clear_statement_cache();
  CHECK(c->cached_statements() == 0);
  CHECK(c->query_value<std::int64_t>("SELECT count(*) FROM items") == 20);
}

TEST_CASE("execute_batch runs several statements", "[repo][connection]") {
  TestDatabase db;
  auto c = db.connect();
  c->execute_batch(
      "CREATE TABLE a (x integer); CREATE TABLE b (y integer); INSERT INTO a VALUES (1); INSERT "
      "INTO b VALUES (2);");
  CHECK(c->query_value<std::int64_t>("SELECT x + (SELECT y FROM b) FROM a") == 3);
}
