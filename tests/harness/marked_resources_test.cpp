// harness::marked on the CTest fixture's server: two reapers on one orphan, a run on another
// host (a child in its own UTS namespace with another host name) kept while its server lease is
// held and reaped as soon as it dies, and marked directories. Tests that assert their own reap
// of an orphan run on a server of their own.

#include "gamebot/harness/marked_resources.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot::harness;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

gamebot::repo::DatabaseUrl server_url() {
  return gamebot::repo::DatabaseUrl::parse(gamebot::testing::postgres_url());
}

// A server of its own, for a test that asserts its own reap of an orphan: on the shared test
// server any other test's harness run may reap that orphan first (it is a real one).
EphemeralPostgres private_server() {
  EphemeralPostgresOptions options;
  options.spare_clusters = 0;
  return EphemeralPostgres(options);
}

long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<long>(child);
}

bool database_exists(gamebot::repo::Connection& admin, const std::string& name) {
  return admin.query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1",
                                         name) == 1;
}

// A database of a fresh run id, marked as a run database whose owner (on this host) is dead.
std::string create_orphan(gamebot::repo::Connection& admin, std::uint64_t salt) {
  RunIdentity dead;
  dead.run_id = RunId::from_parts(std::chrono::system_clock::now(), dead_pid(), salt);
  std::string name = test_database_name(dead);
  RunMarker marker = RunMarker::for_this_process(dead.run_id.str(), "database");
  marker.pid = dead.run_id.pid();
  marker.pid_start = 0;
  admin.execute("CREATE DATABASE " + gamebot::repo::quote_identifier(name));
  marked::mark(admin, name, marker);
  return name;
}

marked::Owner orphaned() {
  return [](const RunMarker& marker) {
    return is_orphan(marker, std::chrono::system_clock::now(), kDefaultOrphanGrace,
                     this_host_name());
  };
}

}  // namespace

TEST_CASE("two reapers on one orphan both end well and keep a usable connection",
          "[harness][postgres][marked][concurrency]") {
  const auto url = server_url();
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  // A second admin database: reapers connected to different databases do not share advisory
  // locks (their scope), so only the recovery on a fresh connection keeps them apart.
  const std::string elsewhere = "gamebot_marked_admin_" + RunId::generate().str().substr(0, 12);
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(elsewhere));
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    const std::string orphan = create_orphan(*admin, 0xc0de + static_cast<std::uint64_t>(round));
    const gamebot::repo::DatabaseUrl second_url =
        round % 2 == 0 ? url : url.with_database(elsewhere);
    std::unique_ptr<gamebot::repo::Connection> first = gamebot::repo::connect(url);
    std::unique_ptr<gamebot::repo::Connection> second = gamebot::repo::connect(second_url);
    std::latch go(2);
    std::string errors[2];
    auto reaper = [&](const gamebot::repo::DatabaseUrl& server,
                      std::unique_ptr<gamebot::repo::Connection>& connection, std::string& error) {
      go.arrive_and_wait();
      try {
        marked::drop_if_owned(server, connection, orphan, orphaned());
      } catch (const std::exception& e) {
        error = e.what();
      }
    };
    std::thread a([&] { reaper(url, first, errors[0]); });
    std::thread b([&] { reaper(second_url, second, errors[1]); });
    a.join();
    b.join();
    CHECK(errors[0] == std::string());
    CHECK(errors[1] == std::string());
    CHECK_FALSE(database_exists(*admin, orphan));
    CHECK(first->query_value<std::int64_t>("SELECT 1") == 1);
    CHECK(second->query_value<std::int64_t>("SELECT 1") == 1);
  }
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(elsewhere) + " WITH (FORCE)");
}

TEST_CASE("an invalid orphan is dropped and a connection the server closed is replaced",
          "[harness][postgres][marked]") {
  const EphemeralPostgres server = private_server();
  const auto url = gamebot::repo::DatabaseUrl::parse(server.url());
  auto admin = gamebot::repo::connect(url);
  const std::string orphan = create_orphan(*admin, 0x1dead);
  admin->execute("UPDATE pg_database SET datconnlimit = -2 WHERE datname = $1", orphan);
  std::unique_ptr<gamebot::repo::Connection> reaper = gamebot::repo::connect(url);
  const auto reaped = marked::reap_orphans(url, reaper, kDefaultOrphanGrace);
  CHECK(std::find(reaped.begin(), reaped.end(), orphan) != reaped.end());
  CHECK_FALSE(database_exists(*admin, orphan));
  CHECK(reaper->query_value<std::int64_t>("SELECT 1") == 1);
}

TEST_CASE("an unmarked database is never dropped, whatever its name",
          "[harness][postgres][marked]") {
  const auto url = server_url();
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  const std::string name = "gamebot_test_unmarked_" + RunId::generate().str().substr(0, 12);
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(name));
  CHECK_FALSE(marked::drop_if_owned(url, admin, name, [](const RunMarker&) { return true; }));
  marked::reap_orphans(url, admin, 0s);
  CHECK(database_exists(*admin, name));
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(name));
}

// The child: another host name (its own UTS namespace), a database marked by it with a server
// lease it holds until killed. It writes the database's name on `report`, then waits.
[[noreturn]] void run_on_other_host(int report, const std::string& host) {
  try {
    // A user namespace as well when this user may not unshare the host name alone (not root).
    if (::unshare(CLONE_NEWUTS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWUTS) != 0) ::_exit(3);
    if (::sethostname(host.data(), host.size()) != 0) ::_exit(3);
    const auto url = server_url();
    auto admin = gamebot::repo::connect(url);
    RunMarker marker = RunMarker::for_this_process(RunId::generate().str(), "database");
    marker.server_lease = true;
    marker.started_at -= 48h;  // a soak past the grace period: age must not matter
    auto lease = marked::ServerLease::acquire(url, marker);
    RunIdentity identity;
    identity.run_id = *RunId::parse(marker.run_id);
    const std::string name = test_database_name(identity);
    admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(name));
    marked::mark(*admin, name, marker);
    const std::string line = name + "\n";
    if (::write(report, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
    for (;;) ::pause();
  } catch (...) {
    ::_exit(5);
  }
}

TEST_CASE("a run on another host is kept while its lease is held and reaped as soon as it dies",
          "[harness][postgres][marked]") {
  const std::string other_host = "gamebot-other-" + RunId::generate().str().substr(0, 8);
  REQUIRE(other_host != this_host_name());
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    run_on_other_host(pipe_fds[1], other_host);
  }
  ::close(pipe_fds[1]);
  std::string name;
  char c = 0;
  while (::read(pipe_fds[0], &c, 1) == 1 && c != '\n') name += c;
  ::close(pipe_fds[0]);
  auto kill_child = [&] {
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
  };
  if (name.empty()) {
    kill_child();
    FAIL("the child on another host did not create its database");
  }
  const auto url = server_url();
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  const auto marker = marked::marker_of(*admin, name);
  REQUIRE(marker);
  CHECK(marker->host == other_host);
  CHECK(marker->server_lease);

  // Alive on another host, 48 h old, its pid meaningless here: kept.
  CHECK_FALSE(marked::owner_gone(*admin, *marker, kDefaultOrphanGrace));
  marked::reap_orphans(url, admin, kDefaultOrphanGrace);
  CHECK(database_exists(*admin, name));

  kill_child();
  // The server ends the dead client's session (and its lock) when it sees the socket close.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (marked::lease_held(*admin, *marker) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  // Dead: reaped at once, with no grace period to wait.
  CHECK(marked::owner_gone(*admin, *marker, kDefaultOrphanGrace));
  marked::reap_orphans(url, admin, kDefaultOrphanGrace);
  CHECK_FALSE(database_exists(*admin, name));
}

TEST_CASE("a marked directory is removed by its owner only, the marker last, an unmarked one never",
          "[harness][marked]") {
  gamebot::testing::TempDir base;
  const fs::path mine = fs::path(base.path()) / "gamebot_test_mine";
  const fs::path unmarked = fs::path(base.path()) / "gamebot_test_unmarked";
  fs::create_directory(mine);
  fs::create_directory(unmarked);
  const RunMarker marker = RunMarker::for_this_process("run-a", "sqlite-run");
  marked::mark(mine, marker);
  std::ofstream(mine / "run.db") << "x";
  CHECK(fs::exists(mine / marked::kMarkerFileName));
  CHECK_FALSE(marked::drop_if_owned(mine, marked::owned_by_run("run-b")));
  CHECK(fs::exists(mine / "run.db"));
  CHECK_FALSE(marked::drop_if_owned(unmarked, [](const RunMarker&) { return true; }));
  CHECK(fs::exists(unmarked));
  const auto listed = marked::list(fs::path(base.path()), kTestDatabasePrefix);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].marker == marker);
  CHECK_FALSE(listed[1].marker);
  CHECK(marked::drop_if_owned(mine, marked::owned_by_run("run-a")));
  CHECK_FALSE(fs::exists(mine));
}

TEST_CASE("a dead owner's directory is reaped, a live one's kept whatever its age",
          "[harness][marked]") {
  gamebot::testing::TempDir base;
  const fs::path dead = fs::path(base.path()) / "gamebot_test_dead";
  const fs::path live = fs::path(base.path()) / "gamebot_test_live";
  fs::create_directory(dead);
  fs::create_directory(live);
  RunMarker dead_marker = RunMarker::for_this_process("run-dead", "sqlite-run");
  dead_marker.pid = dead_pid();
  dead_marker.pid_start = 0;
  marked::mark(dead, dead_marker);
  RunMarker live_marker = RunMarker::for_this_process("run-live", "sqlite-run");
  live_marker.started_at -= 48h;
  marked::mark(live, live_marker);
  CHECK(marked::reap_orphans(fs::path(base.path()), kTestDatabasePrefix, "sqlite-run",
                             kDefaultOrphanGrace) == std::vector<fs::path>{dead});
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(live / marked::kMarkerFileName));
}

TEST_CASE(
    "a shared database is used under its claim, kept while its template is, reaped once stale",
    "[harness][postgres][marked]") {
  const EphemeralPostgres server = private_server();
  const auto url = gamebot::repo::DatabaseUrl::parse(server.url());
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  const std::string tag = RunId::generate().str().substr(16);
  const std::string origin = "gamebot_test_tpl_claims" + tag;
  const std::string name = "gamebot_test_pool_claims" + tag + "_1";
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(origin));
  marked::mark(*admin, origin, RunMarker::for_this_process("claims-" + tag, "template"));
  const auto origin_oid = marked::database_oid(*admin, origin);
  REQUIRE(origin_oid);
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(name));
  // Made by a process that is gone: as a run database it would be an orphan.
  RunMarker marker =
      RunMarker::for_this_process("claims-" + tag, std::string(marked::kPooledResource));
  marker.pid = dead_pid();
  marker.pid_start = 0;
  marker.origin = origin;
  marker.origin_oid = *origin_oid;
  marked::mark(*admin, name, marker);

  auto a = gamebot::repo::connect(url);
  auto b = gamebot::repo::connect(url);
  std::unique_ptr<gamebot::repo::Connection> reaper = gamebot::repo::connect(url);
  auto claim = [&](gamebot::repo::Connection& session) {
    return marked::claim_free(session, marked::kPooledResource, origin, *origin_oid);
  };
  auto reaped = [&] {
    const auto names = marked::reap_orphans(url, reaper, kDefaultOrphanGrace);
    return std::find(names.begin(), names.end(), name) != names.end();
  };

  // Claimed: handed to nobody else, never reaped.
  CHECK(claim(*a) == name);
  CHECK(marked::claimed(*admin, name));
  CHECK(claim(*b) == std::nullopt);
  CHECK_FALSE(reaped());
  CHECK(database_exists(*admin, name));

  // Released and its template unchanged: kept for the next claimer, not an orphan.
  marked::release_claim(*a, name);
  CHECK_FALSE(marked::claimed(*admin, name));
  CHECK_FALSE(marked::stale(*admin, marker));
  CHECK_FALSE(reaped());
  CHECK(claim(*b) == name);
  marked::release_claim(*b, name);

  // Its template gone: stale, but still not dropped while claimed; dropped once released.
  CHECK(claim(*a) == name);
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(origin));
  CHECK(marked::stale(*admin, marker));
  CHECK_FALSE(reaped());
  CHECK(database_exists(*admin, name));
  marked::release_claim(*a, name);
  CHECK(reaped());
  CHECK_FALSE(database_exists(*admin, name));
}

TEST_CASE("a shared database of a rebuilt template (same name, another oid) is stale",
          "[harness][postgres][marked]") {
  const auto url = server_url();
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  const std::string tag = RunId::generate().str().substr(16);
  const std::string origin = "gamebot_test_tpl_rebuilt" + tag;
  auto make_template = [&] {
    admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(origin));
    marked::mark(*admin, origin, RunMarker::for_this_process("rebuilt-" + tag, "template"));
    return *marked::database_oid(*admin, origin);
  };
  RunMarker marker =
      RunMarker::for_this_process("rebuilt-" + tag, std::string(marked::kPooledResource));
  marker.origin = origin;
  marker.origin_oid = make_template();
  CHECK_FALSE(marked::stale(*admin, marker));
  CHECK_FALSE(marked::stale(marked::list(*admin), marker));
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(origin));
  CHECK(marked::stale(marked::list(*admin), marker));  // absent from the listing
  make_template();
  CHECK(marked::stale(*admin, marker));
  CHECK(marked::stale(marked::list(*admin), marker));  // listed, with another oid
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(origin));
}

// A process opens a connection to the pooled database it guesses it will claim before it claims
// (provision/pool_hint.hpp): the claim tries that one first, and falls back to the others.
TEST_CASE("a claim takes the preferred free shared database first", "[harness][postgres][marked]") {
  const auto url = server_url();
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  const std::string tag = RunId::generate().str().substr(16);
  const std::string origin = "gamebot_test_tpl_preferred" + tag;
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(origin));
  marked::mark(*admin, origin, RunMarker::for_this_process("preferred-" + tag, "template"));
  const std::uint32_t origin_oid = *marked::database_oid(*admin, origin);
  std::vector<std::string> pooled;
  for (int slot = 1; slot <= 2; ++slot) {
    const std::string name = "gamebot_test_pool_preferred" + tag + "_" + std::to_string(slot);
    admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(name));
    RunMarker marker =
        RunMarker::for_this_process("preferred-" + tag, std::string(marked::kPooledResource));
    marker.origin = origin;
    marker.origin_oid = origin_oid;
    marked::mark(*admin, name, marker);
    pooled.push_back(name);
  }
  auto session = gamebot::repo::connect(url);
  auto other = gamebot::repo::connect(url);
  auto claim = [&](gamebot::repo::Connection& by, const std::string& preferred) {
    return marked::claim_free(by, marked::kPooledResource, origin, origin_oid, preferred,
                              marked::list(*admin));
  };
  CHECK(claim(*session, pooled[1]) == pooled[1]);  // listed second, taken first
  CHECK(claim(*other, pooled[1]) == pooled[0]);    // claimed by another session: the next one
  marked::release_claim(*session, pooled[1]);
  marked::release_claim(*other, pooled[0]);
  CHECK(claim(*session, "gamebot_test_pool_elsewhere") == pooled[0]);  // not one: the usual order
  marked::release_claim(*session, pooled[0]);
  for (const std::string& name : pooled)
    admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(name));
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(origin));
}

TEST_CASE(
    "a spent clone is never claimed as ready, is stale, is left by a reap that leaves spent "
    "clones and dropped in the background by start_dropping_spent(), never while claimed",
    "[harness][postgres][marked]") {
  const EphemeralPostgres server = private_server();
  const auto url = gamebot::repo::DatabaseUrl::parse(server.url());
  std::unique_ptr<gamebot::repo::Connection> admin = gamebot::repo::connect(url);
  const std::string tag = RunId::generate().str().substr(16);
  const std::string run_id = "spent-" + tag;
  const std::string origin = "gamebot_test_tpl_spent" + tag;
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(origin));
  marked::mark(*admin, origin, RunMarker::for_this_process(run_id, "template"));
  const auto origin_oid = marked::database_oid(*admin, origin);
  REQUIRE(origin_oid);
  auto make_clone = [&](const std::string& name) {
    admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(name));
    marked::mark(*admin, name, RunMarker::for_this_process(run_id, "clone"));
  };
  const marked::Owner own_clone = [&](const RunMarker& marker) {
    return marker.run_id == run_id && marker.resource == "clone";
  };
  RunMarker spent = RunMarker::for_this_process(run_id, std::string(marked::kSpentResource));
  spent.origin = origin;
  spent.origin_oid = *origin_oid;
  const std::string first = "gamebot_test_spent" + tag + "_c1";
  const std::string second = "gamebot_test_spent" + tag + "_c2";
  make_clone(first);
  make_clone(second);

  // Claimed by someone (in use): not re-marked.
  auto other = gamebot::repo::connect(url);
  REQUIRE(marked::try_claim(*other, first));
  CHECK_FALSE(marked::mark_spent(*admin, first, own_clone, spent));
  marked::release_claim(*other, first);
  CHECK(marked::mark_spent(*admin, first, own_clone, spent));
  CHECK_FALSE(marked::mark_spent(*admin, first, own_clone, spent));  // no longer a clone
  const auto marker = marked::marker_of(*admin, first);
  REQUIRE(marker);
  CHECK(marker->resource == marked::kSpentResource);
  CHECK(marked::stale(*admin, *marker));
  CHECK(marked::claim_free(*other, marked::kReadyResource, origin, *origin_oid) == std::nullopt);

  // A process's own reap leaves it (its drop belongs off the critical path).
  std::unique_ptr<gamebot::repo::Connection> reaper = gamebot::repo::connect(url);
  marked::reap_orphans(url, reaper, kDefaultOrphanGrace, marked::SpentClones::leave);
  CHECK(database_exists(*admin, first));

  // Claimed: not dropped, and the connection is kept.
  REQUIRE(marked::try_claim(*other, first));
  std::unique_ptr<gamebot::repo::Connection> dropper = gamebot::repo::connect(url);
  CHECK(marked::start_dropping_spent(dropper) == std::nullopt);
  CHECK(dropper);
  marked::release_claim(*other, first);
  // Unclaimed: its drop is sent, the connection closed, and the server finishes it.
  CHECK(marked::start_dropping_spent(dropper) == first);
  CHECK_FALSE(dropper);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (database_exists(*admin, first) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK_FALSE(database_exists(*admin, first));
  CHECK(database_exists(*admin, second));  // a clone still in use: never dropped

  // The reaper (or `gamebot-store test-dbs reap`) drops any spent clone left.
  CHECK(marked::mark_spent(*admin, second, own_clone, spent));
  const auto reaped = marked::reap_orphans(url, reaper, kDefaultOrphanGrace);
  CHECK(std::find(reaped.begin(), reaped.end(), second) != reaped.end());
  CHECK_FALSE(database_exists(*admin, second));
}

// Runs whose URLs name different databases take claims on admin connections to different
// databases, where an advisory lock does not exclude the other: a claim must still be one.
TEST_CASE("a claim excludes sessions connected to another database", "[harness][postgres]") {
  const std::string tag = gamebot::harness::RunId::generate().str().substr(0, 8);
  const std::string other_db = "gamebot_claim_other_" + tag;
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  admin->execute("CREATE DATABASE " + gamebot::repo::quote_identifier(other_db));
  {
    auto elsewhere = gamebot::repo::connect(gamebot::testing::postgres_url(other_db));
    const std::string name = "gamebot_test_claimed_" + tag;
    REQUIRE(marked::try_claim(*admin, name));
    CHECK_FALSE(marked::try_claim(*elsewhere, name));
    CHECK(marked::try_claim(*admin, name));  // claims nest for their holder
    marked::release_claim(*admin, name);
    marked::release_claim(*admin, name);
    CHECK(marked::try_claim(*elsewhere, name));
    CHECK_FALSE(marked::try_claim(*admin, name));
    marked::release_claim(*elsewhere, name);
  }
  admin->execute("DROP DATABASE " + gamebot::repo::quote_identifier(other_db));
}
