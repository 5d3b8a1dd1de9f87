// Databases shared between harness processes: pooled run databases (transaction isolation) and
// ready clones (database isolation). Harness processes, one after another or at once,
// on a private server of their own (so no other test's processes share the pool): a process
// claims a free run database of the template's pool, makes one only when none is free, and at
// exit gives it back clean, or drops it when it left it dirty.

#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot::harness;
using namespace gamebot::harness::testing;

namespace {

EphemeralPostgres private_server() {
  EphemeralPostgresOptions options;
  options.spare_clusters = 0;
  options.register_teardown = false;
  return EphemeralPostgres(options);
}

// The harness's databases other than templates, by name, with their oids: a database made anew
// has another oid.
std::map<std::string, std::int64_t> run_databases(gamebot::repo::Connection& admin) {
  auto rows = admin.query(
      "SELECT datname, oid::bigint FROM pg_database WHERE datname LIKE 'gamebot\\_test\\_%' AND "
      "datname NOT LIKE 'gamebot\\_test\\_tpl%' ORDER BY datname");
  std::map<std::string, std::int64_t> found;
  while (rows.next()) found[rows.row().get<std::string>(0)] = rows.row().get<std::int64_t>(1);
  return found;
}

// The same databases with their markers, names and markers read in one statement: a spent clone
// whose background drop ends between two statements would otherwise look unmarked.
std::vector<marked::MarkedResource> run_database_markers(gamebot::repo::Connection& admin) {
  std::vector<marked::MarkedResource> found = marked::list(admin);
  std::erase_if(found, [](const marked::MarkedResource& resource) {
    return resource.name.starts_with("gamebot_test_tpl");
  });
  return found;
}

// Rows in the store's tables of `database`: 0 when it is as its template made it.
std::int64_t store_rows(const std::string& url, const std::string& database) {
  auto c = gamebot::repo::connect(gamebot::repo::DatabaseUrl::parse(url).with_database(database));
  return c
      ->query_value<std::int64_t>(
          "SELECT (SELECT count(*) FROM gamebot_eventstore.streams) + (SELECT count(*) FROM "
          "gamebot_eventstore.events) + (SELECT count(*) FROM gamebot_eventstore.links) + "
          "(SELECT count(*) FROM gamebot_eventstore.snapshots)")
      .value_or(-1);
}

Outcome finish(ChildProcess& child) {
  Outcome outcome;
  while (auto line = child.read_line(std::chrono::seconds(60))) outcome.output += *line + "\n";
  outcome.status = child.wait();
  return outcome;
}

// Waits (bounded) until the server has let go of a dead process's claim: its session ends when
// the backend reads the closed socket.
bool claim_freed(gamebot::repo::Connection& admin, const std::string& database) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (marked::claimed(admin, database)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace

TEST_CASE("pooled run databases: the next process uses the last one's, without CREATE DATABASE",
          "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);
  gamebot::testing::TempDir dir;
  const std::string release = dir.path() + "/release";

  const Outcome first = run("", {"--database-url", url, "[five]"}, {}, std::chrono::seconds(60));
  INFO(first.output);
  REQUIRE(first.exit_code() == 0);
  const auto after_first = run_databases(*admin);
  REQUIRE(after_first.size() == 1);  // the pooled run database, kept; nothing else
  const std::string pooled = after_first.begin()->first;
  CHECK(pooled.starts_with("gamebot_test_pool_"));
  const auto marker = marked::marker_of(*admin, pooled);
  REQUIRE(marker);
  CHECK(marker->resource == marked::kPooledResource);
  CHECK(marker->origin.starts_with("gamebot_test_tpl_"));
  CHECK_FALSE(marked::claimed(*admin, pooled));
  CHECK(store_rows(url, pooled) == 0);

  // While the second process is inside a test: it holds the same database (same oid: not made
  // anew), claimed.
  ChildProcess second(
      command("", {"--database-url", url, "[held]"}, {"GAMEBOT_CHILD_RELEASE_FILE=" + release}));
  REQUIRE(wait_for_line(second, "ready step", std::chrono::seconds(60)));
  CHECK(run_databases(*admin) == after_first);
  CHECK(marked::claimed(*admin, pooled));
  std::fclose(std::fopen(release.c_str(), "w"));
  const Outcome second_outcome = finish(second);
  INFO(second_outcome.output);
  CHECK(second_outcome.exit_code() == 0);

  CHECK(run_databases(*admin) == after_first);
  CHECK_FALSE(marked::claimed(*admin, pooled));
  CHECK(store_rows(url, pooled) == 0);  // the held test's append was rolled back
  admin.reset();
  server.stop();
}

TEST_CASE("pooled run databases: two processes at once get different ones",
          "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);
  gamebot::testing::TempDir dir;
  const std::string release_env = "GAMEBOT_CHILD_RELEASE_FILE=" + dir.path() + "/release";

  ChildProcess first(command("", {"--database-url", url, "[held]"}, {release_env}));
  ChildProcess second(command("", {"--database-url", url, "[held]"}, {release_env}));
  REQUIRE(wait_for_line(first, "ready step", std::chrono::seconds(60)));
  REQUIRE(wait_for_line(second, "ready step", std::chrono::seconds(60)));
  const auto during = run_databases(*admin);
  REQUIRE(during.size() == 2);
  for (const auto& [name, oid] : during) {
    CAPTURE(name);
    CHECK(name.starts_with("gamebot_test_pool_"));
    CHECK(marked::claimed(*admin, name));
  }
  std::fclose(std::fopen((dir.path() + "/release").c_str(), "w"));
  CHECK(finish(first).exit_code() == 0);
  CHECK(finish(second).exit_code() == 0);
  CHECK(run_databases(*admin) == during);  // both kept for the next processes
  for (const auto& [name, oid] : during) CHECK_FALSE(marked::claimed(*admin, name));
  admin.reset();
  server.stop();
}

TEST_CASE("pooled run databases: a SIGKILLed process's claim is freed and its database reused",
          "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);

  // Held inside its test (the release file never appears) until killed.
  gamebot::testing::TempDir dir;
  ChildProcess killed(command("", {"--database-url", url, "[held]"},
                              {"GAMEBOT_CHILD_RELEASE_FILE=" + dir.path() + "/never"}));
  REQUIRE(wait_for_line(killed, "ready step", std::chrono::seconds(60)));
  const auto during = run_databases(*admin);
  REQUIRE(during.size() == 1);
  const std::string pooled = during.begin()->first;
  CHECK(marked::claimed(*admin, pooled));
  killed.signal(SIGKILL);
  CHECK(shell_status(killed.wait()) == 128 + SIGKILL);
  REQUIRE(claim_freed(*admin, pooled));
  CHECK(store_rows(url, pooled) == 0);  // its open transaction was rolled back by the server

  const Outcome next = run("", {"--database-url", url, "[five]"}, {}, std::chrono::seconds(60));
  INFO(next.output);
  CHECK(next.exit_code() == 0);
  CHECK(run_databases(*admin) == during);  // the same database, not a new one
  admin.reset();
  server.stop();
}

TEST_CASE("pooled run databases: a process that left its database dirty drops it",
          "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);

  const Outcome clean = run("", {"--database-url", url, "[five]"}, {}, std::chrono::seconds(60));
  REQUIRE(clean.exit_code() == 0);
  const auto pooled = run_databases(*admin);
  REQUIRE(pooled.size() == 1);

  // The second test leaks a connection: the harness takes it back, but the process no longer
  // vouches for its database.
  const Outcome dirty =
      run("leak-connection", {"--database-url", url, "[five]"}, {}, std::chrono::seconds(60));
  INFO(dirty.output);
  CHECK(dirty.exit_code() == 1);
  CHECK_THAT(dirty.output, Catch::Contains("test 'child: five 2' leaked"));
  CHECK_THAT(dirty.output, Catch::Contains("dropping the pooled run database"));
  CHECK(run_databases(*admin).empty());  // it used the pooled one and dropped it
  admin.reset();
  server.stop();
}

namespace {

// The oids of the ready clones (database isolation's unused clones left for the next process).
std::vector<std::int64_t> ready_clones(gamebot::repo::Connection& admin) {
  std::vector<std::int64_t> oids;
  for (const auto& [name, oid] : run_databases(admin))
    if (name.starts_with("gamebot_test_ready_")) oids.push_back(oid);
  return oids;
}

// The marker of the database with `oid`, whatever it is called now.
std::optional<RunMarker> marker_by_oid(gamebot::repo::Connection& admin, std::int64_t oid) {
  auto name =
      admin.query_value<std::string>("SELECT datname FROM pg_database WHERE oid::bigint = $1", oid);
  if (!name) return std::nullopt;
  return marked::marker_of(admin, *name);
}

}  // namespace

TEST_CASE(
    "ready clones: the next process takes the unused clones of the last one, renamed as its "
    "own, and a SIGKILLed process's are reaped, never handed out",
    "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);

  const Outcome first = run("", {"--database-url", url, "--isolation", "database", "[five]"}, {},
                            std::chrono::seconds(60));
  INFO(first.output);
  REQUIRE(first.exit_code() == 0);
  const std::vector<std::int64_t> ready = ready_clones(*admin);
  REQUIRE_FALSE(ready.empty());  // its prepared, unused clones: left, not dropped
  // Besides them only its pooled run database and its used clones, spent (or already dropped).
  for (const auto& resource : run_database_markers(*admin)) {
    CAPTURE(resource.name);
    if (resource.name.starts_with("gamebot_test_ready_")) continue;
    const auto& left = resource.marker;
    REQUIRE(left);
    CHECK((left->resource == marked::kPooledResource || left->resource == marked::kSpentResource));
  }
  for (std::int64_t oid : ready) {
    const auto marker = marker_by_oid(*admin, oid);
    REQUIRE(marker);
    CHECK(marker->resource == marked::kReadyResource);
    CHECK(marker->origin.starts_with("gamebot_test_tpl_"));
  }

  // The second process's preparers take them (the same oids: not made anew) as its own clones.
  // Held inside its test (the release file never appears) until killed.
  gamebot::testing::TempDir dir;
  ChildProcess second(command("", {"--database-url", url, "--isolation", "database", "[held]"},
                              {"GAMEBOT_CHILD_RELEASE_FILE=" + dir.path() + "/never"}));
  REQUIRE(wait_for_line(second, "ready step", std::chrono::seconds(60)));
  // Its second preparer may still be taking one as its test starts (bounded wait).
  const auto taken_by = [&](long pid) {
    for (std::int64_t oid : ready) {
      const auto marker = marker_by_oid(*admin, oid);
      if (!marker || marker->pid != pid) return false;
    }
    return true;
  };
  const auto take_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!taken_by(static_cast<long>(second.pid())) &&
         std::chrono::steady_clock::now() < take_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (std::int64_t oid : ready) {
    CAPTURE(oid);
    const auto marker = marker_by_oid(*admin, oid);
    REQUIRE(marker);
    CHECK(marker->resource == "clone");
    CHECK(marker->pid == static_cast<long>(second.pid()));
  }
  CHECK(ready_clones(*admin).empty());

  // Killed while holding them: they are a dead run's clones, which nobody takes and the reaper
  // drops once the server has ended its session (and its lease).
  second.signal(SIGKILL);
  CHECK(shell_status(second.wait()) == 128 + SIGKILL);
  CHECK(ready_clones(*admin).empty());
  const auto marker = marker_by_oid(*admin, ready.front());
  REQUIRE(marker);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (marked::lease_held(*admin, *marker) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::unique_ptr<gamebot::repo::Connection> reaper = gamebot::repo::connect(url);
  marked::reap_orphans(gamebot::repo::DatabaseUrl::parse(url), reaper, kDefaultOrphanGrace);
  for (std::int64_t oid : ready) CHECK_FALSE(marker_by_oid(*admin, oid));
  CHECK(ready_clones(*admin).empty());
  admin.reset();
  server.stop();
}

namespace {

// The harness's pooled run databases, by name, with their oids.
std::map<std::string, std::int64_t> pooled_databases(gamebot::repo::Connection& admin) {
  std::map<std::string, std::int64_t> found;
  for (const auto& [name, oid] : run_databases(admin))
    if (name.starts_with("gamebot_test_pool_")) found[name] = oid;
  return found;
}

// The clone a process's [held] test is using: of the databases marked as its clones (the
// prepared ones too), the one its test appended to.
std::optional<std::string> clone_of(gamebot::repo::Connection& admin, const std::string& url,
                                    long pid) {
  std::optional<std::string> found;
  for (const auto& [name, oid] : run_databases(admin)) {
    const auto marker = marked::marker_of(admin, name);
    if (marker && marker->resource == "clone" && marker->pid == pid && store_rows(url, name) > 0)
      found = name;
  }
  return found;
}

}  // namespace

TEST_CASE(
    "database isolation: processes in turn claim one pooled run database, made once, and name "
    "their clones after their own run",
    "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);

  const Outcome first = run("", {"--database-url", url, "--isolation", "database", "[five]"}, {},
                            std::chrono::seconds(60));
  INFO(first.output);
  REQUIRE(first.exit_code() == 0);
  const auto pooled = pooled_databases(*admin);
  REQUIRE(pooled.size() == 1);  // kept for the next process, not dropped
  const std::string run_db = pooled.begin()->first;
  const auto marker = marked::marker_of(*admin, run_db);
  REQUIRE(marker);
  CHECK(marker->resource == marked::kPooledResource);
  CHECK_FALSE(marked::claimed(*admin, run_db));

  // The next process claims the same one (same oid: no CREATE DATABASE) while it runs; its
  // clones are not named after the pooled name, which every run shares.
  gamebot::testing::TempDir dir;
  const std::string release = dir.path() + "/release";
  ChildProcess second(command("", {"--database-url", url, "--isolation", "database", "[held]"},
                              {"GAMEBOT_CHILD_RELEASE_FILE=" + release}));
  REQUIRE(wait_for_line(second, "ready step", std::chrono::seconds(60)));
  CHECK(pooled_databases(*admin) == pooled);
  CHECK(marked::claimed(*admin, run_db));
  const auto clone = clone_of(*admin, url, static_cast<long>(second.pid()));
  REQUIRE(clone);
  CHECK(clone->starts_with("gamebot_test_"));
  CHECK_FALSE(clone->starts_with(clone_database_prefix(run_db)));
  std::fclose(std::fopen(release.c_str(), "w"));
  const Outcome second_outcome = finish(second);
  INFO(second_outcome.output);
  CHECK(second_outcome.exit_code() == 0);
  CHECK(pooled_databases(*admin) == pooled);
  CHECK_FALSE(marked::claimed(*admin, run_db));
  admin.reset();
  server.stop();
}

namespace {

// Reads the child's output until it ends (true), or until `limit` passes (false).
bool output_ends_within(ChildProcess& child, std::chrono::seconds limit, std::string& output) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (auto line = child.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
             deadline - std::chrono::steady_clock::now())))
    output += *line + "\n";
  return std::chrono::steady_clock::now() < deadline;
}

}  // namespace

// The exit path of a database-isolation process issues no DROP DATABASE: its used clone is
// re-marked spent and dropped in the background, by itself or a later process. Shown by holding
// a row lock on the clone's pg_database row, which a DROP DATABASE waits for: the process still
// ends, and its clone is left spent until the lock goes, then dropped by the drop sent meanwhile.
TEST_CASE(
    "database isolation: a process exits without dropping its used clone, which is left spent, "
    "never taken as ready, and dropped in the background",
    "[harness][postgres][pooled]") {
  EphemeralPostgres server = private_server();
  const std::string url = server.url("postgres");
  auto admin = gamebot::repo::connect(url);
  gamebot::testing::TempDir dir;
  const std::string release = dir.path() + "/release";

  ChildProcess first(command("", {"--database-url", url, "--isolation", "database", "[held]"},
                             {"GAMEBOT_CHILD_RELEASE_FILE=" + release}));
  REQUIRE(wait_for_line(first, "ready step", std::chrono::seconds(60)));
  const auto used = clone_of(*admin, url, static_cast<long>(first.pid()));
  REQUIRE(used);
  const std::int64_t used_oid = run_databases(*admin).at(*used);
  auto locker = gamebot::repo::connect(url);
  locker->execute("BEGIN");
  locker->query("SELECT oid FROM pg_database WHERE datname = $1 FOR UPDATE", *used);
  std::fclose(std::fopen(release.c_str(), "w"));
  std::string output;
  const bool ended = output_ends_within(first, std::chrono::seconds(20), output);
  INFO(output);
  CHECK(ended);  // a DROP DATABASE on its exit path would wait for the lock
  if (!ended) locker->execute("ROLLBACK");
  CHECK(finish(first).exit_code() == 0);
  REQUIRE(ended);
  const auto spent = marker_by_oid(*admin, used_oid);
  REQUIRE(spent);
  CHECK(spent->resource == marked::kSpentResource);
  CHECK(spent->origin.starts_with("gamebot_test_tpl_"));

  // The next process takes ready clones, never the spent one.
  const std::string release_second = dir.path() + "/release-second";
  ChildProcess second(command("", {"--database-url", url, "--isolation", "database", "[held]"},
                              {"GAMEBOT_CHILD_RELEASE_FILE=" + release_second}));
  REQUIRE(wait_for_line(second, "ready step", std::chrono::seconds(60)));
  const auto second_clone = clone_of(*admin, url, static_cast<long>(second.pid()));
  REQUIRE(second_clone);
  CHECK(run_databases(*admin).at(*second_clone) != used_oid);
  const auto still = marker_by_oid(*admin, used_oid);
  REQUIRE(still);
  CHECK(still->resource == marked::kSpentResource);
  std::fclose(std::fopen(release_second.c_str(), "w"));
  CHECK(finish(second).exit_code() == 0);

  // A drop of it was sent meanwhile (by the first process's releaser or the second's, as it
  // started) and waits for the lock: once the lock goes, the clone goes (bounded wait).
  locker->execute("ROLLBACK");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (marker_by_oid(*admin, used_oid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(marker_by_oid(*admin, used_oid));
  for (const auto& resource : run_database_markers(*admin)) {
    CAPTURE(resource.name);
    const auto& left = resource.marker;
    REQUIRE(left);
    CHECK(left->resource != "clone");  // nothing of a finished process's is in use
  }
  admin.reset();
  locker.reset();
  server.stop();
}
