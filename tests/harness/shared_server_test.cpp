// The private PostgreSQL server shared by the processes of one ctest run (shared_postgres.hpp):
// harness-based Catch2 children without a URL, and the fixture's `gamebot-store test-server`
// commands. Each test gives its children a TMPDIR of its own, so the private servers they start
// (and only those) are the ones counted there.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/shared_postgres.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/testing/postgres.hpp"

namespace {

namespace fs = std::filesystem;
using gamebot::harness::EphemeralPostgres;
using gamebot::harness::testing::ChildProcess;
using gamebot::harness::testing::command;
using gamebot::harness::testing::run;
using gamebot::harness::testing::run_folded;
using gamebot::harness::testing::wait_for_line;

// The children's TMPDIR: their servers' base directory, so the server's user (nobody, when we are
// root) must be able to traverse it.
struct ChildTemp {
  gamebot::testing::TempDir dir;
  ChildTemp() { fs::permissions(dir.path(), fs::perms(0711), fs::perm_options::replace); }
  std::string path() const { return dir.path(); }
  std::string run_dir() const { return dir.path() + "/run"; }
  std::vector<std::string> env() const {
    return {"TMPDIR=" + dir.path(),
            std::string(gamebot::harness::kEnvSharedServerDir) + "=" + run_dir()};
  }
};

// The private server directories in `base` (a marker of an ephemeral server).
std::vector<fs::path> servers_in(const std::string& base) {
  std::vector<fs::path> found;
  for (const auto& r : gamebot::harness::marked::list(base, EphemeralPostgres::kDirectoryPrefix))
    if (r.marker && r.marker->resource == "ephemeral-postgres") found.emplace_back(r.name);
  return found;
}

bool server_runs(const fs::path& directory) {
  return fs::exists(directory / "data" / "postmaster.pid");
}

void touch(const std::string& path) {
  std::fclose(std::fopen(path.c_str(), "w"));
}

}  // namespace

TEST_CASE(
    "postgres: the processes of one run share one private server, a SIGKILLed holder "
    "does not strand it, and it stops after the last",
    "[harness][postgres]") {
  ChildTemp temp;
  const std::string release = temp.path() + "/release";
  std::vector<std::string> env = temp.env();
  env.push_back("GAMEBOT_CHILD_RELEASE_FILE=" + release);
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (int i = 0; i < 3; ++i)
    children.push_back(
        std::make_unique<ChildProcess>(command("", {"--backend", "postgres", "[held]"}, env)));
  for (auto& child : children)
    REQUIRE(wait_for_line(*child, "ready step", std::chrono::seconds(60)));

  // All three are inside their test, on one server.
  const std::vector<fs::path> servers = servers_in(temp.path());
  REQUIRE(servers.size() == 1);
  const fs::path server = servers.front();
  CHECK(server_runs(server));

  // One holder dies while holding it; the others still use it.
  children[0]->signal(SIGKILL);
  children[0]->wait();
  CHECK(server_runs(server));

  touch(release);
  for (std::size_t i = 1; i < children.size(); ++i) {
    std::string rest;
    while (auto line = children[i]->read_line(std::chrono::seconds(30))) rest += *line + "\n";
    INFO(rest);
    CHECK(WIFEXITED(children[i]->wait()));
  }
  // The last live holder stopped it, though the killed one never released its hold.
  CHECK_FALSE(fs::exists(server));
  CHECK(servers_in(temp.path()).empty());
}

TEST_CASE(
    "postgres: the fixture holds the shared server between one-case processes, and a "
    "stranded one is reaped by the next run",
    "[harness][postgres]") {
  ChildTemp temp;
  const std::vector<std::string> tool_env{"TMPDIR=" + temp.path()};

  // The fixture's setup holds the server for its parent (here: this test process, as ctest).
  auto start = run_folded(GAMEBOT_STORE_TOOL, {"test-server", "start", temp.run_dir()}, tool_env,
                          std::chrono::seconds(60));
  INFO(start.output);
  REQUIRE(start.exit_code() == 0);
  const std::vector<fs::path> servers = servers_in(temp.path());
  REQUIRE(servers.size() == 1);
  const fs::path server = servers.front();

  // One case after another, each its own process: all on that server, which outlives each.
  for (int i = 0; i < 2; ++i) {
    auto outcome =
        run("", {"--backend", "postgres", "[child]"}, temp.env(), std::chrono::seconds(60));
    INFO(outcome.output);
    CHECK(outcome.exit_code() == 0);
    CHECK(servers_in(temp.path()) == servers);
    CHECK(server_runs(server));
  }
  // They ran there: the schema template the first one built is on that server.
  auto admin = gamebot::repo::connect(
      gamebot::repo::DatabaseUrl::parse("postgresql://postgres@/postgres?host=" + server.string()));
  CHECK(admin
            ->query_value<std::int64_t>(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'gamebot\\_test\\_tpl%'")
            .value_or(0) >= 1);
  admin.reset();

  // The fixture's cleanup releases it: no holder is left, so it stops.
  auto stop = run_folded(GAMEBOT_STORE_TOOL, {"test-server", "stop", temp.run_dir()}, tool_env);
  INFO(stop.output);
  CHECK(stop.exit_code() == 0);
  CHECK_FALSE(fs::exists(server));

  // A run whose only holder is SIGKILLed strands its server ...
  const std::string release = temp.path() + "/release";
  std::vector<std::string> held_env = temp.env();
  held_env.push_back("GAMEBOT_CHILD_RELEASE_FILE=" + release);
  fs::path stranded;
  {
    ChildProcess child(command("", {"--backend", "postgres", "[held]"}, held_env));
    REQUIRE(wait_for_line(child, "ready step", std::chrono::seconds(60)));
    child.signal(SIGKILL);
    child.wait();
    const std::vector<fs::path> left = servers_in(temp.path());
    REQUIRE(left.size() == 1);
    stranded = left.front();
    CHECK(server_runs(stranded));
  }
  // ... and the next run in the same run directory stops it before starting its own.
  auto next = run("", {"--backend", "postgres", "[child]"}, temp.env(), std::chrono::seconds(60));
  INFO(next.output);
  CHECK(next.exit_code() == 0);
  CHECK_FALSE(fs::exists(stranded));
  CHECK(servers_in(temp.path()).empty());
}
