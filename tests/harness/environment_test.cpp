// DatabaseManager without a framework: phases, isolation and guardrails on memory and SQLite.

#include <atomic>
#include <catch2/catch.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/wait.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness;
using gamebot::eventstore::EventData;
using gamebot::eventstore::ExpectedVersion;

namespace {

struct Lossy {
  int kept = 0;
  int lost = 0;
  bool operator==(const Lossy&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(kept));
  }
};

EventData event(const std::string& type = "thing_happened") {
  EventData data;
  data.type = type;
  data.data = "{}";
  return data;
}

HarnessOptions sqlite_options(const gamebot::testing::TempDir& dir, Isolation isolation) {
  HarnessOptions options;
  options.backend = Backend::sqlite;
  options.isolation = isolation;
  options.database_url = gamebot::repo::DatabaseUrl::sqlite_file(dir.path() + "/app.db");
  options.log_level = LogLevel::warn;
  return options;
}

std::size_t entries_with_prefix(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().rfind("gamebot_test_", 0) == 0) ++n;
  return n;
}

}  // namespace

TEST_CASE("memory backend: each test starts from an empty store", "[harness][memory]") {
  HarnessOptions options;
  options.backend = Backend::memory;
  options.log_level = LogLevel::warn;
  DatabaseManager environment(options, {});
  environment.start();
  {
    TestContext first = environment.begin_test("first");
    first.store().append("s", ExpectedVersion::any(), event());
    CHECK(first.end().empty());
  }
  TestContext second = environment.begin_test("second");
  CHECK(second.store().head_position() == 0);
  CHECK_THROWS_AS(second.repo(), gamebot::Error);
}

TEST_CASE("a broken serializer type stops the run in preflight", "[harness][memory]") {
  HarnessOptions options;
  options.backend = Backend::postgres;
  options.database_url =
      gamebot::repo::DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/never");  // never contacted
  options.log_level = LogLevel::off;
  HarnessSetup setup;
  setup.registry.register_type<Lossy>("lossy", 1, {{1, 2}});
  DatabaseManager environment(options, std::move(setup));
  try {
    environment.start();
    FAIL("start() succeeded");
  } catch (const PhaseFailure& failure) {
    CHECK(failure.phase() == Phase::preflight);
    CHECK(failure.fault() == gamebot::FaultClass::serialization);
    CHECK_THAT(failure.what(), Catch::Contains("lossy"));
  }
  for (const PhaseRecord& phase : environment.report().phases())
    CHECK((phase.phase == Phase::preflight || phase.phase == Phase::teardown));
}

TEST_CASE("sqlite: transaction isolation rolls back and a non-test database is untouched",
          "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  {
    std::ofstream(dir.path() + "/app.db") << "";  // the user's own file beside ours
  }
  HarnessSetup setup;
  setup.app_migrations.push_back({1, "players", "CREATE TABLE players (name TEXT)"});
  DatabaseManager environment(sqlite_options(dir, Isolation::transaction), std::move(setup));
  environment.start();
  CHECK(entries_with_prefix(dir.path()) == 1);
  CHECK(fs::exists(fs::path(environment.run_database()) / "gamebot-run-marker"));
  {
    TestContext test = environment.begin_test("writes");
    test.store().append("s", ExpectedVersion::any(), event());
    test.repo().run([](gamebot::repo::Connection& c) {
      c.execute("INSERT INTO players (name) VALUES (?1)", std::string("ana"));
    });
    CHECK(wait_for_event(test.store(), [](const auto& e) { return e.type == "thing_happened"; }));
    CHECK(test.end().empty());
  }
  {
    TestContext test = environment.begin_test("reads");
    CHECK(test.store().head_position() == 0);
    auto count = test.repo().run([](gamebot::repo::Connection& c) {
      return c.query_value<std::int64_t>("SELECT count(*) FROM players");
    });
    CHECK(count == 0);
  }
  environment.finish();
  CHECK(entries_with_prefix(dir.path()) == 0);
  CHECK(fs::exists(dir.path() + "/app.db"));
  CHECK(fs::file_size(dir.path() + "/app.db") == 0);
}

TEST_CASE("sqlite: a mixed-case URL from the flags routes the run to SQLite beside it",
          "[harness][sqlite][url]") {
  gamebot::testing::TempDir dir;
  const std::string url = "SQLite:" + dir.path() + "/app.db";
  const char* argv[] = {"my_tests", "--database-url", url.c_str(), "--log-level", "warn"};
  ParsedOptions parsed = parse_options(5, argv, fixed_environment({}));
  REQUIRE(parsed.options.backend == Backend::sqlite);
  DatabaseManager environment(parsed.options, {});
  environment.start();
  CHECK(entries_with_prefix(dir.path()) == 1);  // the run directory sits beside the URL's file
  TestContext test = environment.begin_test("routed");
  CHECK(test.store().backend().scheme() == "sqlite");
  test.store().append("s", ExpectedVersion::any(), event());
  CHECK(test.store().head_position() == 1);
  CHECK(test.end().empty());
}

TEST_CASE("sqlite: the run report samples the pool as each test begins and ends",
          "[harness][sqlite][report]") {
  gamebot::testing::TempDir dir;
  DatabaseManager environment(sqlite_options(dir, Isolation::transaction), {});
  environment.start();
  const std::size_t before = environment.report().pool_timeline().size();
  for (const char* name : {"first", "second"}) {
    TestContext test = environment.begin_test(name);
    test.store().append("s", ExpectedVersion::any(), event());
    CHECK(test.end().empty());
  }
  const std::vector<PoolSample> samples = environment.report().pool_timeline();
  REQUIRE(samples.size() == before + 4);
  // The sandbox pins a connection for the length of each test.
  CHECK(samples[before].in_use >= 1);
  CHECK(samples[before].size >= samples[before].in_use);
  for (std::size_t i = before + 1; i < samples.size(); ++i)
    CHECK(samples[i].at >= samples[i - 1].at);
  CHECK(environment.report().to_json().find("\"pool_timeline\": [{\"at_ms\"") != std::string::npos);
}

TEST_CASE("sqlite: database isolation restores a fresh in-memory image per test",
          "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  DatabaseManager environment(sqlite_options(dir, Isolation::database), {});
  environment.start();
  for (int i = 0; i < 3; ++i) {
    TestContext test = environment.begin_test("t" + std::to_string(i));
    CHECK(test.store().head_position() == 0);
    test.store().append("s", ExpectedVersion::no_stream(), event());
    CHECK(test.end().empty());
  }
}

TEST_CASE("sqlite: the second run clones the cached template", "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  HarnessSetup first_setup;
  first_setup.app_migrations.push_back({1, "t1", "CREATE TABLE cached_t1 (x INTEGER)"});
  {
    DatabaseManager first(sqlite_options(dir, Isolation::transaction), std::move(first_setup));
    first.start();
    CHECK_FALSE(first.template_was_cached());
  }
  HarnessSetup second_setup;
  second_setup.app_migrations.push_back({1, "t1", "CREATE TABLE cached_t1 (x INTEGER)"});
  DatabaseManager second(sqlite_options(dir, Isolation::transaction), std::move(second_setup));
  second.start();
  CHECK(second.template_was_cached());
}

TEST_CASE("sqlite: a missing expected object is a schema failure naming it", "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  HarnessSetup setup;
  setup.app_migrations.push_back({1, "players", "CREATE TABLE players (name TEXT)"});
  setup.expected_objects.push_back({ExpectedObject::Kind::index, "players_name_idx"});
  DatabaseManager environment(sqlite_options(dir, Isolation::transaction), std::move(setup));
  try {
    environment.start();
    FAIL("start() succeeded");
  } catch (const PhaseFailure& failure) {
    CHECK(failure.phase() == Phase::schema);
    CHECK_THAT(failure.what(), Catch::Contains("index players_name_idx is missing"));
  }
  CHECK(entries_with_prefix(dir.path()) == 0);  // torn down before reporting
}

TEST_CASE("sqlite: a run directory whose owner died is reaped, one without a marker is not",
          "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  const fs::path orphan = fs::path(dir.path()) / "gamebot_test_orphan";
  const fs::path unmarked = fs::path(dir.path()) / "gamebot_test_unmarked";
  fs::create_directory(orphan);
  fs::create_directory(unmarked);
  RunMarker marker = RunMarker::for_this_process("dead", "sqlite-run");
  marker.pid = 999999999;  // no such process
  write_marker_file(orphan / "gamebot-run-marker", marker);
  DatabaseManager environment(sqlite_options(dir, Isolation::none), {});
  environment.start();
  CHECK_FALSE(fs::exists(orphan));
  CHECK(fs::exists(unmarked));
}

TEST_CASE("sqlite: a test that keeps a persistent subscription is reported by name",
          "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  DatabaseManager environment(sqlite_options(dir, Isolation::transaction), {});
  environment.start();
  TestContext test = environment.begin_test("leaky");
  auto subscription = test.store().subscribe_persistent("projection_a", "$all");
  auto leaks = test.end();
  REQUIRE(leaks.size() == 1);
  CHECK_THAT(leaks[0].what, Catch::Contains("projection_a"));
}

TEST_CASE("request_stop waits for the test in progress to end, and no test begins after it",
          "[harness][sqlite]") {
  gamebot::testing::TempDir dir;
  DatabaseManager environment(sqlite_options(dir, Isolation::transaction), {});
  environment.start();
  TestContext first = environment.begin_test("in progress");
  first.store().append("s", ExpectedVersion::any(), event());
  std::atomic<bool> returned{false};
  std::thread stopper([&] {
    environment.request_stop();
    returned = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!environment.stop_requested() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  REQUIRE(environment.stop_requested());
  // The stop is requested and waits for this test: the test still has its store.
  CHECK(first.store().read_stream_forward("s").events.size() == 1);
  CHECK_FALSE(returned);
  CHECK(first.end().empty());
  stopper.join();
  CHECK(returned);
  TestContext second = environment.begin_test("after the stop");
  CHECK(second.setup_fault() == gamebot::FaultClass::internal);
  CHECK_THROWS_WITH(second.store(), Catch::Contains("test not run"));
  environment.finish();
  CHECK(entries_with_prefix(dir.path()) == 0);
}
