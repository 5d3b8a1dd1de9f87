// --keep keeps: what a run kept survives the next run on every kind of server (SQLite run
// directories, a --database-url server, the run's private server), `gamebot-store test-dbs list`
// shows it as kept and `test-dbs reap --kept` removes it; the run prints a ready connection
// string per kept database.

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/testing/postgres.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness::testing;

namespace {

// `gamebot-store ARGS`, stderr folded in.
Outcome store_cli(std::vector<std::string> args) {
  return run_folded(GAMEBOT_STORE_CLI, std::move(args));
}

// What follows `marker` on its line; empty when no line has it.
std::string after(const std::string& output, const std::string& marker) {
  const std::size_t at = output.find(marker);
  if (at == std::string::npos) return {};
  const std::size_t start = at + marker.size();
  return output.substr(start, output.find('\n', start) - start);
}

// The URL of a printed `psql "URL"`.
std::string psql_url(const std::string& output) {
  const std::string quoted = after(output, "kept for inspection: psql \"");
  return quoted.substr(0, quoted.find('"'));
}

// The URL of the printed removal command.
std::string removal_url(const std::string& output) {
  const std::string quoted = after(output, "gamebot-store test-dbs reap --kept '");
  return quoted.substr(0, quoted.find('\''));
}

std::vector<std::string> run_env(const std::string& run_id, const std::string& worker) {
  return {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=" + worker};
}

}  // namespace

TEST_CASE("sqlite: --keep keeps the run directory past the next run until reap --kept",
          "[harness][sqlite][keep]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/x.db";
  auto kept = run("", {"--database-url", url, "--keep", "[child]"});
  INFO(kept.output);
  REQUIRE(kept.exit_code() == 0);
  const std::string file = after(kept.output, "kept for inspection: ");
  CHECK(fs::path(file).filename() == "run.db");
  CHECK(fs::exists(file));

  auto next = run("", {"--database-url", url, "[child]"});
  INFO(next.output);
  CHECK(next.exit_code() == 0);
  CHECK(fs::exists(file));
  CHECK(run_directories(dir.path()) == 1);

  auto listed = store_cli({"test-dbs", "list", "sqlite:" + dir.path()});
  INFO(listed.output);
  CHECK_THAT(after(listed.output, fs::path(file).parent_path().string()), Catch::Contains("kept"));
  CHECK(store_cli({"test-dbs", "reap", "sqlite:" + dir.path()}).exit_code() == 0);
  CHECK(fs::exists(file));  // not an orphan
  auto reaped = store_cli({"test-dbs", "reap", "--kept", "sqlite:" + dir.path()});
  INFO(reaped.output);
  CHECK(reaped.exit_code() == 0);
  CHECK_FALSE(fs::exists(file));
  CHECK(run_directories(dir.path()) == 0);
}

TEST_CASE("postgres --database-url: --keep keeps the databases past the next run",
          "[harness][postgres][keep]") {
  const std::string url = gamebot::testing::postgres_url();
  const std::string run_id = gamebot::harness::RunId::generate().str();
  auto kept = run("", {"--database-url", url, "--keep", "--isolation", "database", "[child]"},
                  run_env(run_id, "keep"), std::chrono::seconds(60));
  INFO(kept.output);
  REQUIRE(kept.exit_code() == 0);
  auto admin = gamebot::repo::connect(url);
  const auto count = databases_of_run(*admin, run_id, "keep");
  CHECK(count >= 2);  // the run database and its clones
  const std::string printed = psql_url(kept.output);
  REQUIRE_FALSE(printed.empty());
  CHECK(gamebot::repo::connect(gamebot::repo::DatabaseUrl::parse(printed))
            ->query_value<std::string>("SELECT current_database()")
            ->starts_with("gamebot_test_"));

  auto next = run("", {"--database-url", url, "[child]"},
                  run_env(gamebot::harness::RunId::generate().str(), "after"));
  INFO(next.output);
  CHECK(next.exit_code() == 0);
  CHECK(databases_of_run(*admin, run_id, "keep") == count);

  auto listed = store_cli({"test-dbs", "list", url});
  INFO(listed.output);
  CHECK_THAT(after(listed.output, gamebot::repo::DatabaseUrl::parse(printed).database()),
             Catch::Contains("kept"));
  CHECK(removal_url(kept.output) == gamebot::repo::DatabaseUrl::parse(url).redacted());
  auto reaped = store_cli({"test-dbs", "reap", "--kept", url});
  INFO(reaped.output);
  CHECK(reaped.exit_code() == 0);
  CHECK(databases_of_run(*admin, run_id, "keep") == 0);
}

TEST_CASE("postgres private server: --keep leaves the server up past the next run",
          "[harness][postgres][keep]") {
  gamebot::testing::TempDir dir;
  // The server runs as an unprivileged user when we are root: it must reach its directory.
  fs::permissions(dir.path(), fs::perms::others_exec | fs::perms::group_exec,
                  fs::perm_options::add);
  const std::string tmpdir = "TMPDIR=" + dir.path();
  auto kept =
      run("", {"--backend", "postgres", "--keep", "[child]"}, {tmpdir}, std::chrono::seconds(120));
  INFO(kept.output);
  REQUIRE(kept.exit_code() == 0);
  const std::string printed = psql_url(kept.output);
  const std::string server = removal_url(kept.output);
  REQUIRE_FALSE(printed.empty());
  REQUIRE_FALSE(server.empty());
  auto database = [&] {
    return gamebot::repo::connect(gamebot::repo::DatabaseUrl::parse(printed))
        ->query_value<std::string>("SELECT current_database()")
        .value_or("");
  };
  CHECK(database().starts_with("gamebot_test_"));  // the process is gone, the server is not

  auto next = run("", {"--backend", "postgres", "[child]"}, {tmpdir}, std::chrono::seconds(120));
  INFO(next.output);
  CHECK(next.exit_code() == 0);
  CHECK(database().starts_with("gamebot_test_"));

  auto listed = store_cli({"test-dbs", "list", server});
  INFO(listed.output);
  CHECK_THAT(listed.output, Catch::Contains(" kept "));
  auto reaped = store_cli({"test-dbs", "reap", "--kept", server});
  INFO(reaped.output);
  CHECK(reaped.exit_code() == 0);
  CHECK_THAT(reaped.output, Catch::Contains("stopped and removed the kept server"));
  const std::string directory = gamebot::repo::DatabaseUrl::parse(server).host();
  CHECK_FALSE(fs::exists(directory));
}
