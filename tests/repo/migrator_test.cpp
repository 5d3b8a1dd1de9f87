#include <catch2/catch.hpp>

#include "gamebot/repo/repo.hpp"
#include "support/test_database.hpp"

using namespace gamebot;
using namespace gamebot::repo;
using gamebot::repo::testing::TestDatabase;

namespace {
std::vector<Migration> base_set() {
  return {
      {1, "create_players", "CREATE TABLE players (id integer PRIMARY KEY, name text NOT NULL)"},
      {2, "create_scores",
       "CREATE TABLE scores (player integer, points integer); CREATE INDEX scores_player ON scores "
       "(player)"},
  };
}

bool table_exists(Connection& c, const std::string& name) {
  if (c.driver() == Driver::sqlite) {
    return c.query_value<std::int64_t>(
               "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1", name) == 1;
  }
  return c.query_value<bool>("SELECT to_regclass($1) IS NOT NULL", name).value_or(false);
}
}  // namespace

TEST_CASE("migrate applies pending migrations in order and twice is a no-op", "[repo][migrator]") {
  TestDatabase db;
  auto c = db.connect();
  Migrator migrator(base_set());
  MigrationReport first = migrator.migrate(*c);
  REQUIRE(first.applied.size() == 2);
  CHECK(first.applied[0].name == "create_players");
  CHECK(first.already_applied == 0);
  c->execute("INSERT INTO scores VALUES ($1, $2)", 1, 10);
  MigrationReport second = migrator.migrate(*c);
  CHECK(second.applied.empty());
  CHECK(second.already_applied == 2);
  CHECK(migrator.verify(*c).current());
  CHECK_NOTHROW(migrator.require_current(*c));

  auto more = base_set();
  more.push_back({3, "add_bonus", "ALTER TABLE scores ADD COLUMN bonus integer"});
  Migrator grown(more);
  VerifyReport before = grown.verify(*c);
  CHECK(before.problems.empty());
  REQUIRE(before.pending.size() == 1);
  CHECK_THAT(before.pending[0], Catch::Contains("add_bonus"));
  CHECK(grown.migrate(*c).applied.size() == 1);
  CHECK(grown.applied(*c).size() == 3);
}

TEST_CASE("an edited applied migration is a schema error naming it", "[repo][migrator]") {
  TestDatabase db;
  auto c = db.connect();
  Migrator(base_set()).migrate(*c);
  auto edited = base_set();
  edited[1].sql += "; CREATE INDEX scores_points ON scores (points)";
  Migrator migrator(edited);
  VerifyReport report = migrator.verify(*c);
  CHECK_FALSE(report.current());
  REQUIRE(report.problems.size() == 1);
  CHECK_THAT(report.problems[0], Catch::Contains("2 'create_scores'") && Catch::Contains("edited"));
  try {
    migrator.migrate(*c);
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK(e.fault() == FaultClass::schema);
    CHECK_THAT(e.what(), Catch::Contains("create_scores"));
  }
  CHECK_THROWS_AS(migrator.require_current(*c), DatabaseError);
}

TEST_CASE("an earlier released text listed in earlier_checksums counts as applied",
          "[repo][migrator]") {
  TestDatabase db;
  auto c = db.connect();
  Migrator(base_set()).migrate(*c);
  auto edited = base_set();
  edited[1].sql += "; CREATE INDEX scores_points ON scores (points)";
  edited[1].earlier_checksums = {Migrator::checksum("an unrelated text"),
                                 Migrator::checksum(base_set()[1].sql)};
  edited.push_back({3, "catch_up", "CREATE INDEX IF NOT EXISTS scores_points ON scores (points)"});
  Migrator migrator(edited);
  VerifyReport report = migrator.verify(*c);
  CHECK(report.problems.empty());
  CHECK(report.pending == std::vector<std::string>{"3 'catch_up'"});
  MigrationReport applied = migrator.migrate(*c);
  REQUIRE(applied.applied.size() == 1);
  CHECK(applied.applied[0].name == "catch_up");
  CHECK(migrator.verify(*c).current());
  // The recorded checksum stays the earlier one: it says which text made the database.
  CHECK(migrator.applied(*c)[1].checksum == Migrator::checksum(base_set()[1].sql));
  // Only listed texts: another one is still an edit.
  auto other = edited;
  other[1].earlier_checksums = {Migrator::checksum("an unrelated text")};
  CHECK_FALSE(Migrator(other).verify(*c).problems.empty());
  // The set's identity is today's texts only.
  auto unlisted = edited;
  unlisted[1].earlier_checksums.clear();
  CHECK(Migrator(unlisted).set_hash() == migrator.set_hash());
}

TEST_CASE("a database newer than the code is reported", "[repo][migrator]") {
  TestDatabase db;
  auto c = db.connect();
  auto more = base_set();
  more.push_back({3, "future", "CREATE TABLE future (x integer)"});
  Migrator(more).migrate(*c);
  VerifyReport report = Migrator(base_set()).verify(*c);
  REQUIRE(report.problems.size() == 1);
  CHECK_THAT(report.problems[0], Catch::Contains("3 'future'") && Catch::Contains("does not know"));
}

TEST_CASE("verify changes nothing", "[repo][migrator]") {
  TestDatabase db;
  auto c = db.connect();
  Migrator migrator(base_set());
  VerifyReport report = migrator.verify(*c);
  CHECK(report.pending.size() == 2);
  CHECK_FALSE(table_exists(*c, "gamebot_schema_migrations"));
  CHECK_FALSE(table_exists(*c, "players"));
}

TEST_CASE("a failing migration names itself and keeps nothing", "[repo][migrator]") {
  TestDatabase db;
  auto c = db.connect();
  auto broken = base_set();
  broken.push_back(
      {3, "broken_step", "CREATE TABLE ok_table (x integer); CREATE TABLE players (id integer)"});
  try {
    Migrator(broken).migrate(*c);
    FAIL("no exception");
  } catch (const DatabaseError& e) {
    CHECK_THAT(e.what(), Catch::Contains("3 'broken_step'"));
  }
  CHECK_FALSE(c->in_transaction());
  CHECK_FALSE(table_exists(*c, "players"));
  CHECK_FALSE(table_exists(*c, "ok_table"));
  CHECK(Migrator(base_set()).migrate(*c).applied.size() == 2);
}

TEST_CASE("the migration-set hash identifies the expected schema", "[repo][migrator]") {
  Migrator a(base_set());
  Migrator b(base_set());
  CHECK(a.set_hash() == b.set_hash());
  CHECK(a.set_hash().size() == 64);
  auto edited = base_set();
  edited[0].sql += " ";
  CHECK(Migrator(edited).set_hash() != a.set_hash());
  CHECK_THROWS_AS(Migrator({{2, "b", "x"}, {1, "a", "y"}}), gamebot::Error);
  CHECK_THROWS_AS(Migrator({{1, "a", "x"}, {2, "a", "y"}}), gamebot::Error);
  CHECK_THROWS_AS(Migrator({{0, "a", "x"}}), gamebot::Error);
}

TEST_CASE("migrations run inside a sandbox roll back with it", "[repo][migrator][sandbox]") {
  TestDatabase db;
  Repo repo = Repo::open(db.url());
  Migrator migrator(base_set());
  {
    Sandbox sandbox(repo, SandboxOptions{.label = "migrating test"});
    repo.run([&](Connection& c) {
      CHECK(migrator.migrate(c).applied.size() == 2);
      CHECK(migrator.verify(c).current());
    });
  }
  CHECK(repo.run([&](Connection& c) { return migrator.verify(c).pending.size(); }) == 2);
}
