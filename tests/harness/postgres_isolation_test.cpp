// PostgreSQL `database` and `schema` isolation through DatabaseManager on the CTest fixture's
// server: the background threads that prepare clones/schemas ahead of the tests and drop them
// behind (hence the label `concurrency`: these run under ThreadSanitizer), their markers, the
// teardown that drains both queues, and the reaper's handling of a clone left unmarked.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot::harness;
using gamebot::eventstore::EventData;
using gamebot::eventstore::ExpectedVersion;

namespace {

HarnessOptions postgres_options(Isolation isolation) {
  HarnessOptions options;
  options.backend = Backend::postgres;
  options.isolation = isolation;
  options.database_url = gamebot::repo::DatabaseUrl::parse(gamebot::testing::postgres_url());
  options.log_level = LogLevel::warn;
  return options;
}

HarnessSetup setup_with_players(std::size_t prepared) {
  HarnessSetup setup;
  setup.app_migrations.push_back(
      {1, "create_players", "CREATE TABLE players (id bigint PRIMARY KEY, name text NOT NULL)"});
  setup.prepared_clones = prepared;
  return setup;
}

EventData event() {
  EventData data;
  data.type = "thing_happened";
  data.data = "{}";
  return data;
}

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::int64_t databases_named_like(gamebot::repo::Connection& admin, const std::string& prefix) {
  return admin
      .query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)",
                                 prefix)
      .value_or(-1);
}

// The prefix a clone's name carries (clone_database_prefix() of the run's own name): its
// number stripped.
std::string clone_prefix_of(const std::string& clone) {
  return clone.substr(0, clone.find_last_not_of("0123456789") + 1);
}

// Databases named `prefix`* that are not spent clones (whose drops may still be under way). Names
// and markers come from one statement: a spent clone whose drop ends between two statements
// (this run's releaser's, or any other process's) would otherwise be counted as unmarked.
std::int64_t unspent_named_like(gamebot::repo::Connection& admin, const std::string& prefix) {
  std::int64_t count = 0;
  for (const auto& resource : marked::list(admin)) {
    if (!resource.name.starts_with(prefix)) continue;
    if (!resource.marker || resource.marker->resource != marked::kSpentResource) ++count;
  }
  return count;
}

bool database_exists(gamebot::repo::Connection& admin, const std::string& name) {
  return admin.query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1",
                                         name) == 1;
}

// A pid no process has: a child that has already been waited for.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<long>(child);
}

}  // namespace

TEST_CASE("postgres schema isolation gives each test a fresh, marked, migrated schema",
          "[harness][postgres][isolation]") {
  DatabaseManager environment(postgres_options(Isolation::schema), setup_with_players(2));
  environment.start();
  std::vector<std::string> schemas;
  for (int i = 0; i < 4; ++i) {
    TestContext test = environment.begin_test("schema test " + std::to_string(i));
    REQUIRE_FALSE(test.setup_fault());
    CHECK(test.store().read_all_forward().events.empty());
    test.store().append("s-" + std::to_string(i), ExpectedVersion::no_stream(), event());
    test.repo().run([&](gamebot::repo::Connection& c) {
      const auto schema = c.query_value<std::string>("SELECT current_schema()").value_or("");
      schemas.push_back(schema);
      CHECK(schema.rfind("gamebot_test_s", 0) == 0);
      // The one-round-trip script leaves what the migrators would: both report current.
      CHECK(gamebot::eventstore::postgres_event_store_migrator(schema).verify(c).current());
      gamebot::repo::MigratorOptions app;
      app.table = "gamebot_app_migrations";
      app.schema = schema;
      CHECK(gamebot::repo::Migrator(setup_with_players(0).app_migrations, app).verify(c).current());
      c.execute("INSERT INTO players (id, name) VALUES (1, 'ana')");
      const auto marker = c.query_value<std::string>(
          "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
          schema);
      REQUIRE(marker);
      CHECK(RunMarker::parse(*marker).resource == "schema");
      CHECK(RunMarker::parse(*marker).pid == static_cast<long>(::getpid()));
    });
    CHECK(test.end().empty());
  }
  std::sort(schemas.begin(), schemas.end());
  CHECK(std::adjacent_find(schemas.begin(), schemas.end()) == schemas.end());
  const std::string run_db = environment.run_database();
  environment.finish();
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  CHECK(databases_named_like(*admin, run_db) == 0);
}

TEST_CASE("postgres database isolation prepares marked clones ahead and teardown drains them",
          "[harness][postgres][isolation]") {
  DatabaseManager environment(postgres_options(Isolation::database), setup_with_players(3));
  environment.start();
  const std::string run_db = environment.run_database();
  // A pooled run database (only checked, never used by a test): the clones' names are not
  // derived from it, which other runs use too, but from this run's own identity.
  CHECK(run_db.starts_with("gamebot_test_pool_"));
  std::string prefix;
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    TestContext test = environment.begin_test("database test " + std::to_string(i));
    REQUIRE_FALSE(test.setup_fault());
    CHECK(test.store().read_all_forward().events.empty());
    test.store().append("d", ExpectedVersion::no_stream(), event());
    test.repo().run([&](gamebot::repo::Connection& c) {
      const auto db = c.query_value<std::string>("SELECT current_database()").value_or("");
      if (prefix.empty()) prefix = clone_prefix_of(db);
      CHECK(db.rfind(prefix, 0) == 0);
      CHECK(db.rfind(clone_database_prefix(run_db), 0) != 0);
      seen.push_back(db);
      CHECK(c.query_value<std::int64_t>("SELECT count(*) FROM players") == 0);
      c.execute("INSERT INTO players (id, name) VALUES (1, 'bo')");
    });
    // Every clone that exists (the test's, the ones prepared ahead, the ones not yet dropped
    // behind) carries this process's marker, except one a preparer is creating right now (its
    // marker follows CREATE DATABASE; the reaper covers that window by name).
    auto rows = admin->query(
        "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
        "WHERE starts_with(datname, $1)",
        prefix);
    std::size_t clones = 0;
    while (rows.next()) {
      const auto comment = rows.row().get<std::string>(1);
      if (comment.empty()) {
        CHECK(rows.row().get<std::string>(0) != seen.back());
        continue;
      }
      const auto marker = RunMarker::parse(comment);
      CHECK(marker.pid == static_cast<long>(::getpid()));
      // Or spent behind an ended test, its drop sent.
      if (marker.resource == marked::kSpentResource) continue;
      ++clones;
      CHECK(marker.resource == "clone");
    }
    CHECK(clones >= 1);
    CHECK(test.end().empty());
  }
  std::sort(seen.begin(), seen.end());
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  environment.finish();
  // The used clones are spent (dropped in the background), the unused ones left ready (renamed).
  CHECK(unspent_named_like(*admin, prefix) == 0);
  // Kept for the next process, unclaimed.
  CHECK(database_exists(*admin, run_db));
  const auto run_marker = marked::marker_of(*admin, run_db);
  REQUIRE(run_marker);
  CHECK(run_marker->resource == marked::kPooledResource);
}

// Under database isolation the tests use prepared clones, each with a store of its own: the run
// database is only checked, so no store (its pool, its listener) is opened on it. The listener is
// what shows: a store's listening session stays for the whole run under its application_name
// (the schema check's short session could still be ending when counted).
TEST_CASE("postgres database isolation opens no store on the run database",
          "[harness][postgres][isolation]") {
  DatabaseManager environment(postgres_options(Isolation::database), setup_with_players(1));
  environment.start();
  const std::string run_db = environment.run_database();
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  {
    TestContext test = environment.begin_test("database test");
    REQUIRE_FALSE(test.setup_fault());
    test.store().append("d", ExpectedVersion::no_stream(), event());
    CHECK(admin->query_value<std::int64_t>(
              "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
              run_db,
              std::string(gamebot::eventstore::PostgresBackend::kListenerApplicationName)) == 0);
    CHECK(test.end().empty());
  }
  environment.finish();
}

TEST_CASE("postgres: tests taking clones from several threads each get their own",
          "[harness][postgres][isolation]") {
  DatabaseManager environment(postgres_options(Isolation::database), setup_with_players(2));
  environment.start();
  std::mutex mutex;
  std::vector<std::string> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        TestContext test =
            environment.begin_test("thread " + std::to_string(t) + " test " + std::to_string(i));
        if (test.setup_fault()) continue;
        test.repo().run([&](gamebot::repo::Connection& c) {
          std::lock_guard lock(mutex);
          seen.push_back(c.query_value<std::string>("SELECT current_database()").value_or(""));
        });
        test.end();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(seen.size() == 9);
  std::sort(seen.begin(), seen.end());
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  environment.finish();
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  REQUIRE_FALSE(seen.empty());
  CHECK(unspent_named_like(*admin, clone_prefix_of(seen.front())) == 0);
}

// A database is created and then marked (COMMENT ON DATABASE needs it; CREATE DATABASE cannot
// share a transaction, and TEMPLATE does not copy the comment), so a run killed in between
// leaves an unmarked clone. Its name is no proof of ownership: anyone can name a database so.
TEST_CASE(
    "the reaper drops an orphaned run database and never an unmarked one, its clone's name "
    "or not",
    "[harness][postgres][isolation]") {
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  // A run that died between creating a clone and writing its marker.
  RunIdentity dead;
  dead.run_id = RunId::from_parts(std::chrono::system_clock::now(), dead_pid(), 0x5eed);
  dead.worker = "w7";
  const std::string run_db = test_database_name(dead);
  const std::string clone = clone_database_prefix(run_db) + "3";
  RunMarker marker = RunMarker::for_this_process(dead.run_id.str(), "database");
  marker.pid = dead.run_id.pid();
  marker.pid_start = 0;
  const std::string bystander = "gamebot_test_unmarked_" + dead.run_id.str();
  // Names made from a fresh run id: nothing else has them, so this test created all three.
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(clone));
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(run_db));
  admin->execute("COMMENT ON DATABASE " + gamebot::repo::quote_identifier(run_db) + " IS " +
                 quote_literal(marker.serialize()));
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(bystander));

  {
    DatabaseManager environment(postgres_options(Isolation::transaction), {});
    environment.start();
  }
  CHECK_FALSE(database_exists(*admin, run_db));
  CHECK(database_exists(*admin, clone));
  CHECK(database_exists(*admin, bystander));
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(clone));
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(bystander));
}

// PostgreSQL 15.4+ leaves a database whose DROP DATABASE died half-way (another reaper killed,
// or terminated by a concurrent reaper) "invalid": any ALTER DATABASE on it is FATAL, closing
// the connection. Reaping it must not cost the run its admin connection.
TEST_CASE("an orphan left invalid by an interrupted drop is reaped and the run provisions",
          "[harness][postgres][isolation]") {
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  RunIdentity dead;
  dead.run_id = RunId::from_parts(std::chrono::system_clock::now(), dead_pid(), 0x1a1d);
  const std::string orphan = test_database_name(dead);
  RunMarker marker = RunMarker::for_this_process(dead.run_id.str(), "database");
  marker.pid = dead.run_id.pid();
  marker.pid_start = 0;
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(orphan));
  admin->execute("COMMENT ON DATABASE " + gamebot::repo::quote_identifier(orphan) + " IS " +
                 quote_literal(marker.serialize()));
  // What DROP DATABASE commits before it removes the files.
  admin->execute("UPDATE pg_database SET datconnlimit = -2 WHERE datname = $1", orphan);

  {
    DatabaseManager environment(postgres_options(Isolation::transaction), {});
    CHECK_NOTHROW(environment.start());
    CHECK(environment.started());
  }
  CHECK_FALSE(database_exists(*admin, orphan));
}

TEST_CASE("a template whose migration fails half-way is dropped by its builder at once",
          "[harness][postgres][isolation]") {
  // Migrations no other test has: their template is built by this run alone.
  const std::string unique = RunId::generate().str();
  HarnessSetup setup;
  setup.app_migrations.push_back({1, "create_things",
                                  "CREATE TABLE things (id bigint PRIMARY KEY, note text DEFAULT " +
                                      quote_literal(unique) + ")"});
  setup.app_migrations.push_back({2, "broken", "ALTER TABLE no_such_table ADD COLUMN x int"});
  DatabaseManager environment(postgres_options(Isolation::transaction), std::move(setup));
  // The migration's own failure (not, say, a server problem before the build).
  try {
    environment.start();
    FAIL("the broken migration was applied");
  } catch (const PhaseFailure& failure) {
    CHECK(failure.fault() == gamebot::FaultClass::schema);
  }
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  auto rows = admin->query(
      "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
      "WHERE starts_with(datname, 'gamebot_test_tpl')");
  while (rows.next()) {
    const auto comment = rows.row().get<std::string>(1);
    if (comment.empty()) continue;
    const RunMarker marker = RunMarker::parse(comment);
    INFO(rows.row().get<std::string>(0));
    CHECK_FALSE(
        (marker.pid == static_cast<long>(::getpid()) && marker.resource == "template-building"));
  }
}

TEST_CASE("a template whose clone passed the schema check is not checked again but drift still is",
          "[harness][postgres]") {
  auto schema_phase = [](HarnessSetup setup) {
    DatabaseManager environment(postgres_options(Isolation::transaction), std::move(setup));
    environment.start();
    for (const PhaseRecord& phase : environment.report().phases())
      if (phase.phase == Phase::schema) return phase.message;
    return std::string();
  };
  schema_phase(setup_with_players(1));  // builds or finds the template; records its check
  CHECK_THAT(schema_phase(setup_with_players(1)),
             Catch::Contains("the template's check is recorded"));
  // Another required object is another check: the recorded one does not cover it.
  HarnessSetup drifted = setup_with_players(1);
  drifted.expected_objects.push_back({ExpectedObject::Kind::index, "players_name_idx"});
  DatabaseManager environment(postgres_options(Isolation::transaction), std::move(drifted));
  try {
    environment.start();
    FAIL("the schema check passed without players_name_idx");
  } catch (const PhaseFailure& failure) {
    CHECK(failure.phase() == Phase::schema);
    CHECK_THAT(failure.what(), Catch::Contains("players_name_idx"));
  }
}
