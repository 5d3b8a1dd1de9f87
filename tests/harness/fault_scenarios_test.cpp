// Fault scenarios: a harness-based Catch2 binary (catch2_child.cpp) run as a child process;
// each checks the exit status and the one-screen diagnosis.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/core/uuid.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/testing/postgres.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness::testing;

TEST_CASE("a broken serializer type fails preflight and touches no database",
          "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("broken-type", {"--database-url", "sqlite:" + dir.path() + "/x.db"});
  CHECK(outcome.exit_code() == 200);
  CHECK_THAT(outcome.output, Catch::Contains("no test was run: the preflight phase failed "
                                             "(serialization); exit status 200"));
  // The diagnosis once: the phase's line has it, the closing line only points at it.
  const std::string diagnosis_line = "FAIL  broken_score@v1   json";
  const auto first = outcome.output.find(diagnosis_line);
  REQUIRE(first != std::string::npos);
  CHECK(outcome.output.find(diagnosis_line, first + 1) == std::string::npos);
  CHECK(run_directories(dir.path()) == 0);
}

TEST_CASE("schema drift fails the schema phase naming the object", "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("drift", {"--database-url", "sqlite:" + dir.path() + "/x.db"});
  CHECK(outcome.exit_code() == 203);
  CHECK_THAT(outcome.output, Catch::Contains("index players_name_idx is missing"));
  CHECK(run_directories(dir.path()) == 0);
}

TEST_CASE("a leaking test is named and fails the run", "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("", {"--database-url", "sqlite:" + dir.path() + "/x.db", "[leak],[child]"});
  CHECK(outcome.exit_code() == 1);
  CHECK_THAT(outcome.output,
             Catch::Contains("test 'child: leaves a persistent subscription open' leaked"));
  CHECK_THAT(outcome.output, Catch::Contains("leaky_projection"));
  CHECK(run_directories(dir.path()) == 0);
}

TEST_CASE("SIGINT mid-run removes everything, and after SIGKILL the next run reaps the orphan",
          "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/x.db";
  {
    ChildProcess child(command("", {"--database-url", url, "[steps]"}));
    REQUIRE(wait_for_line(child, "ready step", std::chrono::seconds(10)));
    CHECK(run_directories(dir.path()) == 1);
    child.signal(SIGINT);
    const int status = child.wait();
    CHECK(WIFSIGNALED(status));
    CHECK(run_directories(dir.path()) == 0);
  }
  {
    ChildProcess child(command("", {"--database-url", url, "[steps]"}));
    REQUIRE(wait_for_line(child, "ready step", std::chrono::seconds(10)));
    child.signal(SIGKILL);
    child.wait();
    CHECK(run_directories(dir.path()) == 1);
  }
  auto outcome = run("", {"--database-url", url, "[child]"});
  CHECK(outcome.exit_code() == 0);
  CHECK_THAT(outcome.output, Catch::Contains("reaped orphaned SQLite run directory"));
  CHECK(run_directories(dir.path()) == 0);
  CHECK(fs::exists(dir.path() + "/x.db") == false);  // the named file was never created by us
}

TEST_CASE("postgres: a server that is not running fails connectivity within the deadline",
          "[harness][postgres][faults]") {
  gamebot::testing::TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  auto outcome = run("", {"--backend", "postgres", "--connect-deadline", "2", "--database-url",
                          "postgres://postgres@/postgres?host=" + dir.path() + "&port=5999"});
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(8));
  CHECK(outcome.exit_code() == 201);
  CHECK_THAT(outcome.output, Catch::Contains("the connectivity phase failed (connectivity)"));
  CHECK_THAT(outcome.output, Catch::Contains("attempts"));
}

TEST_CASE("postgres: a wrong password fails authentication at once, never printed",
          "[harness][postgres][faults]") {
  const std::string url = gamebot::testing::postgres_password_url("not-the-password-xyz");
  auto outcome = run("", {"--database-url", url});
  CHECK(outcome.exit_code() == 201);
  CHECK_THAT(outcome.output, Catch::Contains("(authentication)"));
  CHECK_THAT(outcome.output, Catch::Contains("1 attempt, not retried"));
  CHECK_THAT(outcome.output, !Catch::Contains("not-the-password-xyz"));
}

TEST_CASE("postgres: a run beside a non-test database passes and leaves it untouched",
          "[harness][postgres][faults]") {
  // The user's database: one this test provably created (a unique name; CREATE DATABASE fails
  // if it exists), so the drop at the end removes nothing but its own.
  const std::string user_db = "gamebot_user_app_" + gamebot::Uuid::v4().to_string().substr(0, 8);
  const std::string user_url = gamebot::testing::postgres_url(user_db);
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(user_db));
  {
    auto app = gamebot::repo::connect(user_url);
    app->execute("CREATE TABLE precious (x int)");
    app->execute("INSERT INTO precious VALUES (42)");
  }
  const std::string run_id = gamebot::harness::RunId::generate().str();
  auto outcome = run("", {"--database-url", user_url, "[child]"},
                     {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=beside"});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 0);
  auto app = gamebot::repo::connect(user_url);
  CHECK(app->query_value<std::string>("SELECT current_database()") == user_db);
  CHECK(app->query_value<std::int64_t>("SELECT x FROM precious") == 42);
  CHECK(app->query_value<std::int64_t>(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'gamebot_eventstore'") == 0);
  app.reset();
  CHECK(databases_of_run(*admin, run_id, "beside") == 0);
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(user_db));
}

TEST_CASE("postgres: database isolation clones per test and drops every clone",
          "[harness][postgres][faults]") {
  const std::string run_id = gamebot::harness::RunId::generate().str();
  auto outcome = run(
      "",
      {"--database-url", gamebot::testing::postgres_url(), "--isolation", "database", "[child]"},
      {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=clones"});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 0);
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  CHECK(databases_of_run(*admin, run_id, "clones") == 0);
}

TEST_CASE("postgres: a server killed mid-run gives infrastructure failures, no hang",
          "[harness][postgres][faults]") {
  gamebot::harness::EphemeralPostgresOptions options;
  options.register_teardown = false;
  gamebot::harness::EphemeralPostgres server(options);
  ChildProcess child(
      command("", {"--database-url", server.url(), "--connect-deadline", "2", "[steps]"}));
  std::string output;
  auto line = child.read_line(std::chrono::seconds(15));
  REQUIRE(line);
  output += *line + "\n";
  while (output.find("ready step") == std::string::npos) {
    line = child.read_line(std::chrono::seconds(15));
    REQUIRE(line);
    output += *line + "\n";
  }
  server.stop();
  const auto stopped = std::chrono::steady_clock::now();
  while (auto more = child.read_line(std::chrono::seconds(30))) output += *more + "\n";
  const int status = child.wait();
  CHECK(std::chrono::steady_clock::now() - stopped < std::chrono::seconds(25));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 199);
  CHECK_THAT(output, Catch::Contains("infrastructure failure(s)"));
}

TEST_CASE("postgres: a second SIGINT during the cleanup leaves nothing the next run cannot reap",
          "[harness][postgres][faults]") {
  const std::string run_id = gamebot::harness::RunId::generate().str();
  const std::string worker = "sigint2";
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  {
    ChildProcess child(command(
        "",
        {"--database-url", gamebot::testing::postgres_url(), "--isolation", "database", "[steps]"},
        {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=" + worker}));
    REQUIRE(wait_for_line(child, "ready step", std::chrono::seconds(15)));
    // The clone in use at least (the run database is a pooled one, not the run's).
    CHECK(databases_of_run(*admin, run_id, worker) >= 1);
    child.signal(SIGINT);
    REQUIRE(wait_for_line(child, "cleaning up before exiting", std::chrono::seconds(10)));
    child.signal(SIGINT);
    std::string rest;
    while (auto line = child.read_line(std::chrono::seconds(20))) rest += *line + "\n";
    const int status = child.wait();
    CHECK(WIFSIGNALED(status));
    CHECK_THAT(rest, Catch::Contains("cleanup in progress, letting it finish"));
  }
  // What the interrupted run left, if anything, the next run's reaper removes.
  auto outcome = run("", {"--database-url", gamebot::testing::postgres_url(), "[child]"});
  CHECK(outcome.exit_code() == 0);
  CHECK(databases_of_run(*admin, run_id, worker) == 0);
}

TEST_CASE("postgres: workers of a split run get unique database names that carry the worker",
          "[harness][postgres][faults]") {
  // Two processes of one run (ctest -j: one process per worker) at the same time: one named by
  // GAMEBOT_TEST_WORKER, one left to the default (p<pid> when the run id is shared). Each holds
  // its test's database until the release file exists, so both are inside a test when looked at
  // (with short steps, the one that did not wait for the template build could be done already).
  const std::string run_id = gamebot::harness::RunId::generate().str();
  gamebot::testing::TempDir dir;
  const std::string release = dir.path() + "/release";
  const std::string release_env = "GAMEBOT_CHILD_RELEASE_FILE=" + release;
  const std::vector<std::string> args{"--database-url", gamebot::testing::postgres_url(),
                                      "--isolation", "database", "[held]"};
  ChildProcess first(
      command("", args, {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=a1", release_env}));
  ChildProcess second(command("", args, {"GAMEBOT_TEST_RUN_ID=" + run_id, release_env}));
  REQUIRE(wait_for_line(first, "ready step", std::chrono::seconds(20)));
  REQUIRE(wait_for_line(second, "ready step", std::chrono::seconds(20)));
  const std::string second_worker = "p" + std::to_string(second.pid());

  // While both run: every database of the run is one worker's, and says which (the run
  // databases are pooled ones, shared between runs: their names are no run's).
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  auto rows = admin->query(
      "SELECT datname FROM pg_database WHERE datname NOT LIKE 'gamebot\\_test\\_tpl%' AND "
      "datname NOT LIKE 'gamebot\\_test\\_pool%' AND "
      "strpos(coalesce(shobj_description(oid, 'pg_database'), ''), $1) > 0",
      run_id);
  std::vector<std::string> of_first, of_second;
  while (rows.next()) {
    const auto name = rows.row().get<std::string>(0);
    if (name.find("_wa1") != std::string::npos) {
      of_first.push_back(name);
    } else if (name.find("_w" + second_worker) != std::string::npos) {
      of_second.push_back(name);
    } else {
      FAIL("database " << name << " of the run names neither worker");
    }
  }
  const auto run_id_parsed = *gamebot::harness::RunId::parse(run_id);
  const std::string first_db = gamebot::harness::test_database_name({run_id_parsed, "a1", true});
  const std::string second_db =
      gamebot::harness::test_database_name({run_id_parsed, second_worker, true});
  CHECK(first_db != second_db);
  auto listed = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += name + " ";
    return out;
  };
  INFO("first worker's databases: " << listed(of_first));
  INFO("second worker's databases: " << listed(of_second));
  CHECK(of_first.size() >= 1);  // at least the clone in use
  CHECK(of_second.size() >= 1);
  for (const auto& name : of_first) {
    if (name != first_db)
      CHECK(name.rfind(gamebot::harness::clone_database_prefix(first_db), 0) == 0);
  }
  for (const auto& name : of_second) {
    if (name != second_db)
      CHECK(name.rfind(gamebot::harness::clone_database_prefix(second_db), 0) == 0);
  }

  std::fclose(std::fopen(release.c_str(), "w"));
  auto finish = [](ChildProcess& child) {
    while (child.read_line(std::chrono::seconds(30))) {
    }
    return child.wait();
  };
  CHECK(finish(first) == 0);
  CHECK(finish(second) == 0);
  CHECK(databases_of_run(*admin, run_id, "a1") == 0);
  CHECK(databases_of_run(*admin, run_id, second_worker) == 0);
}

TEST_CASE("postgres: a test that leaks a connection fails alone, the tests after it start clean",
          "[harness][postgres][faults]") {
  const std::string scenario = GENERATE(as<std::string>{}, "leak-connection", "leak-transaction");
  const std::string run_id = gamebot::harness::RunId::generate().str();
  auto outcome =
      run(scenario, {"--database-url", gamebot::testing::postgres_url(), "[five]"},
          {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=leak"}, std::chrono::seconds(60));
  INFO(scenario << "\n" << outcome.output);
  CHECK(outcome.exit_code() == 1);
  CHECK_THAT(outcome.output, Catch::Contains("test 'child: five 2' leaked"));
  CHECK_THAT(outcome.output, Catch::Contains("was never returned (the harness took it back)"));
  for (const char* other : {"1", "3", "4", "5"})
    CHECK_THAT(outcome.output,
               !Catch::Contains("test 'child: five " + std::string(other) + "' leaked"));
  CHECK_THAT(outcome.output, Catch::Contains("] run failed: 5 tests, 4 passed, 1 assertion "
                                             "failure(s), 0 infrastructure failure(s)"));
  if (scenario == "leak-transaction") {
    // The Transaction the test forgot, by its line in catch2_child.cpp.
    const std::string opening = "a Transaction begun at ";
    const std::string closing = " was never committed or rolled back (rolled back)";
    const auto at = outcome.output.find(opening);
    REQUIRE(at != std::string::npos);
    const auto place_end = outcome.output.find(closing, at);
    REQUIRE(place_end != std::string::npos);
    const std::string place =
        outcome.output.substr(at + opening.size(), place_end - at - opening.size());
    const auto colon = place.rfind(':');
    REQUIRE(colon != std::string::npos);
    CHECK_THAT(place.substr(0, colon), Catch::EndsWith("catch2_child.cpp"));
    CHECK(place.find_first_not_of("0123456789", colon + 1) == std::string::npos);
    CHECK(place.size() > colon + 1);
  }
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  CHECK(databases_of_run(*admin, run_id, "leak") == 0);
}

TEST_CASE("a test that keeps a Repo::acquire() lease under transaction isolation fails alone",
          "[harness][postgres][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  const std::string url = GENERATE(as<std::string>{}, "sqlite", "postgres");
  const std::string database_url =
      url == "sqlite" ? "sqlite:" + dir.path() + "/x.db" : gamebot::testing::postgres_url();
  const std::string run_id = gamebot::harness::RunId::generate().str();
  auto outcome =
      run("leak-lease", {"--database-url", database_url, "--isolation", "transaction", "[five]"},
          {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=lease"}, std::chrono::seconds(60));
  INFO(url << "\n" << outcome.output);
  CHECK(outcome.exit_code() == 1);
  CHECK_THAT(outcome.output, Catch::Contains("test 'child: five 2' leaked"));
  CHECK_THAT(outcome.output,
             Catch::Contains("a ConnectionLease from Repo::acquire() was never released"));
  // Taken back before the sandbox closes: the close neither waits for it nor fails.
  CHECK_THAT(outcome.output, !Catch::Contains("closing the test's sandbox failed"));
  for (const char* other : {"1", "3", "4", "5"})
    CHECK_THAT(outcome.output,
               !Catch::Contains("test 'child: five " + std::string(other) + "' leaked"));
  CHECK_THAT(outcome.output, Catch::Contains("] run failed: 5 tests, 4 passed, 1 assertion "
                                             "failure(s), 0 infrastructure failure(s)"));
}

namespace {

std::vector<std::string> lines_containing(const std::string& output, const std::string& text) {
  std::vector<std::string> found;
  std::size_t start = 0;
  while (start < output.size()) {
    const std::size_t end = std::min(output.find('\n', start), output.size());
    const std::string line = output.substr(start, end - start);
    if (line.find(text) != std::string::npos) found.push_back(line);
    start = end + 1;
  }
  return found;
}

}  // namespace

TEST_CASE("the run's summary is one line in the kit's log format", "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("", {"--database-url", "sqlite:" + dir.path() + "/x.db", "[leak],[child]"});
  INFO(outcome.output);
  const auto summaries = lines_containing(outcome.output, " tests, ");
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0].rfind("[gamebot I] run failed: 3 tests, 2 passed, 1 assertion failure(s)",
                           0) == 0);
}

TEST_CASE("a --backend overriding GAMEBOT_TEST_DATABASE_URL says so in one redacted log line",
          "[harness][sqlite][faults]") {
  auto outcome = run("", {"--backend", "sqlite", "[child]"},
                     {"GAMEBOT_TEST_DATABASE_URL=postgresql://ci:hunter2-secret@db.invalid/ci"});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 0);
  CHECK_THAT(outcome.output, !Catch::Contains("hunter2-secret"));
  const auto notes = lines_containing(outcome.output, "GAMEBOT_TEST_DATABASE_URL");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].rfind("[gamebot W] GAMEBOT_TEST_DATABASE_URL 'postgresql://ci:", 0) == 0);
  CHECK_THAT(notes[0], Catch::Contains("ignored: --backend sqlite chooses another backend"));
}

TEST_CASE("postgres: a connectivity phase that keeps failing says so every few seconds",
          "[harness][postgres][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("", {"--backend", "postgres", "--connect-deadline", "7", "--database-url",
                          "postgres://postgres@/postgres?host=" + dir.path() + "&port=5999"});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 201);
  // The first failure at once, then one line every 3 s of the 7 s budget.
  const auto progress = lines_containing(outcome.output, "connecting to PostgreSQL at");
  REQUIRE(progress.size() >= 2);
  CHECK(progress.size() <= 3);
  for (const std::string& line : progress) {
    CHECK_THAT(line, Catch::Contains("[gamebot W]"));
    CHECK_THAT(line, Catch::Contains("attempt "));
    CHECK_THAT(line, Catch::Contains("s left"));
    CHECK_THAT(line, Catch::Contains(".s.PGSQL.5999"));  // the last error: libpq's, one line
  }
  CHECK_THAT(progress[0], Catch::Contains("attempt 1 failed"));
}

TEST_CASE("Catch2 counts a leaking test as failed, as the harness does",
          "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("", {"--database-url", "sqlite:" + dir.path() + "/x.db", "[leak],[child]"});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 1);
  CHECK_THAT(outcome.output, Catch::Contains("test cases: 3 | 2 passed | 1 failed"));
  CHECK_THAT(outcome.output,
             Catch::Contains("run failed: 3 tests, 2 passed, 1 assertion failure(s)"));
  // The leak is the failure Catch2 reports for that test.
  CHECK_THAT(outcome.output, Catch::Contains("child: leaves a persistent subscription open"));
  CHECK_THAT(outcome.output, Catch::Contains("leaky_projection"));
}

TEST_CASE("a run directory re-marked as another run's is left for its owner: exit 204 (teardown)",
          "[harness][sqlite][faults]") {
  gamebot::testing::TempDir dir;
  auto outcome = run("", {"--database-url", "sqlite:" + dir.path() + "/x.db", "[foreign-marker]"});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 204);
  CHECK_THAT(outcome.output, Catch::Contains("teardown: FAILED"));
  CHECK_THAT(outcome.output, Catch::Contains("its marker is no longer this run's, so it was kept"));
  CHECK(run_directories(dir.path()) == 1);  // never removed: it is not this run's any more
}

TEST_CASE("postgres: a run database re-marked as another run's is never dropped: exit 204",
          "[harness][postgres][faults]") {
  const std::string run_id = gamebot::harness::RunId::generate().str();
  auto outcome = run("", {"--database-url", gamebot::testing::postgres_url(), "[foreign-marker]"},
                     {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=foreign",
                      "GAMEBOT_CHILD_FOREIGN_OWNER_PID=" + std::to_string(::getpid())});
  INFO(outcome.output);
  CHECK(outcome.exit_code() == 204);
  CHECK_THAT(outcome.output, Catch::Contains("teardown: FAILED"));
  CHECK_THAT(outcome.output, Catch::Contains("its marker is no longer this run's, so it was kept"));
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  // Found by the foreign marker: under transaction isolation the run database is a pooled one,
  // whose name does not carry the worker.
  const auto left = admin->query_value<std::string>(
      "SELECT datname FROM pg_database WHERE strpos(coalesce(shobj_description(oid, "
      "'pg_database'), ''), $1) > 0",
      "\nrun_id=foreign-run\n");
  REQUIRE(left);  // the harness left it alone; the test removes it
  admin->execute_batch("DROP DATABASE " + gamebot::repo::quote_identifier(*left));
}
