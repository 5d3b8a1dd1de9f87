// Harness processes against a full server: each waits for a free slot when the server refuses
// with too_many_connections (53300), in every phase that opens connections, and no test fails
// for it; and many processes started at once on a small server take turns instead of
// deadlocking (each takes its minimum set of connections all or nothing, holding none while it
// waits: repo/connection_budget.hpp).

#include "gamebot/repo/connection_budget.hpp"

#include <rapidjson/document.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot::harness;
using namespace gamebot::harness::testing;

namespace {

// Every slot of the server at `url` but one, held until release().
struct Squatter {
  std::vector<std::unique_ptr<gamebot::repo::Connection>> held;
  explicit Squatter(const std::string& url) {
    gamebot::repo::ConnectOptions options;
    options.postgres.connection_slot_wait = std::chrono::milliseconds(0);  // fill, do not wait
    for (;;) {
      try {
        held.push_back(gamebot::repo::connect(url, options));
      } catch (const gamebot::repo::DatabaseError& error) {
        REQUIRE(error.sqlstate() == "53300");
        break;
      }
    }
    REQUIRE(held.size() > 2);
    held.pop_back();  // one slot free: a harness process connects, then needs more
  }
  void release() { held.clear(); }
};

// The run report's connection figures.
struct ConnectionFigures {
  std::uint64_t peak_open = 0;
  std::uint64_t opened = 0;
};

EphemeralPostgres private_server() {
  EphemeralPostgresOptions options;
  options.spare_clusters = 0;
  return EphemeralPostgres(options);
}

// Harness processes (transaction isolation, a test that appends and reads back) on a server of
// their own, each leaving its run report in `dir`, which is also their $TMPDIR when `own_tmpdir`.
struct ReportedRuns {
  explicit ReportedRuns(bool own_tmpdir_) : own_tmpdir(own_tmpdir_) {}
  EphemeralPostgres server = private_server();
  gamebot::testing::TempDir dir;
  bool own_tmpdir;

  // Runs one process, named `which`: its report's connection figures.
  ConnectionFigures of(const std::string& which) const;
};

ConnectionFigures ReportedRuns::of(const std::string& which) const {
  const std::string report = dir.path() + "/" + which + ".json";
  std::vector<std::string> env;
  if (own_tmpdir) env.push_back("TMPDIR=" + dir.path());
  const Outcome outcome =
      run("",
          {"--backend", "postgres", "--database-url", server.url(), "--isolation", "transaction",
           "--report", report, "child: append and read back"},
          env, std::chrono::seconds(120));
  INFO(which << " process output:\n" << outcome.output);
  REQUIRE(shell_status(outcome.status) == 0);
  std::ifstream in(report);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  rapidjson::Document json;
  json.Parse(text.c_str(), text.size());
  REQUIRE_FALSE(json.HasParseError());
  REQUIRE(json.HasMember("connections"));
  return {json["connections"]["peak_open"].GetUint64(), json["connections"]["opened"].GetUint64()};
}

}  // namespace

TEST_CASE("harness processes on a full server wait for connection slots and pass",
          "[harness][postgres]") {
  EphemeralPostgresOptions options;
  options.settings = {{"max_connections", "20"}};
  options.spare_clusters = 0;
  EphemeralPostgres server(options);
  const std::string url = server.url();
  Squatter squatter(url);

  // Two processes at a time (ctest -j2), database isolation: each opens an admin connection,
  // its run database's pool, the clone preparers' connections and the store's listener.
  const std::vector<std::string> args{"--backend",   "postgres", "--database-url", url,
                                      "--isolation", "database", "[child]"};
  for (int round = 0; round < 2; ++round) {
    ChildProcess first(command("", args));
    ChildProcess second(command("", args));
    std::string first_output;
    if (round == 0) {
      // The server is full: the first process says it waits for a slot; then the slots free.
      bool waited = false;
      while (auto line = first.read_line(std::chrono::seconds(60))) {
        first_output += *line + "\n";
        if (line->find("no free connection slot") != std::string::npos) {
          waited = true;
          break;
        }
      }
      CHECK(waited);
      squatter.release();
    }
    for (ChildProcess* child : {&first, &second}) {
      std::string output = child == &first ? first_output : std::string();
      while (auto line = child->read_line(std::chrono::seconds(60))) output += *line + "\n";
      const int status = child->wait();
      INFO("round " << round << " output:\n" << output);
      CHECK(shell_status(status) == 0);
      CHECK_THAT(output, !Catch::Contains("too many clients already"));
    }
  }
}

TEST_CASE("ten database-isolation processes started at once on 20 slots all pass",
          "[harness][postgres]") {
  EphemeralPostgresOptions options;
  options.settings = {{"max_connections", "20"}};
  options.spare_clusters = 0;
  EphemeralPostgres server(options);
  const std::vector<std::string> args{"--backend",   "postgres", "--database-url", server.url(),
                                      "--isolation", "database", "[child]"};
  // Each needs more than two of the 20 slots: holding some while waiting for more, they used
  // to fill the server with waiters and all give up after the slot wait.
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (int i = 0; i < 10; ++i)
    children.push_back(std::make_unique<ChildProcess>(command("", args)));
  for (std::size_t i = 0; i < children.size(); ++i) {
    std::string output;
    while (auto line = children[i]->read_line(std::chrono::seconds(100))) output += *line + "\n";
    const int status = children[i]->wait();
    INFO("process " << i << " output:\n" << output);
    CHECK(shell_status(status) == 0);
    // An extra connection (a listener) may be refused and retried; none is given up on.
    CHECK_THAT(output, !Catch::Contains("no connection slot freed within"));
  }
}

// The transient connections (template migrations, schema check) are reserved only by a process
// that finds the template cold or its check unrecorded: a later process of the run holds its
// admin connection, the run database's pool and the store's listener, and nothing it
// opened for nothing. The figure is the run report's connection peak.
TEST_CASE("a process on a warm template reserves no connections for building or checking it",
          "[harness][postgres]") {
  const ReportedRuns runs(false);
  const std::uint64_t cold = runs.of("cold").peak_open;  // builds the template, records its check
  const std::uint64_t warm = runs.of("warm").peak_open;
  // A pooled run database needs no server lease (PostgresProvider::holds_lease()).
  CHECK(cold >= 4);  // admin, two transients, the run pool (the listener may fit)
  CHECK(warm == 3);  // admin, the run pool, the listener
}

// A process that guesses the pooled run database it will claim opens that database's connection
// with its admin connection (provision/pool_hint.hpp): after a run's first processes, one that
// claims the database the last one released opens nothing for nothing. Before, the run pool's
// connection was opened only after the claim, and the reserve's placeholder for it was closed.
TEST_CASE("a warm process opens its run database's connection with its admin connection",
          "[harness][postgres]") {
  const ReportedRuns runs(true);
  runs.of("cold");  // builds the template, releases the first pooled database
  const ConnectionFigures warm = runs.of("warm");
  CHECK(warm.peak_open == 3);  // admin, the run pool, the listener (the test appends)
  CHECK(warm.opened == 3);     // each of them once

  // A hint that names no pooled database of the template (torn, or another's) is no guess: the
  // process opens the run pool's connection after its claim, and leaves a hint for the next.
  const std::filesystem::path hints = std::filesystem::path(runs.dir.path()) /
                                      ("gamebot-pool-hints-" + std::to_string(::geteuid()));
  int files = 0;
  for (const auto& hint : std::filesystem::directory_iterator(hints)) {
    std::ofstream(hint.path(), std::ios::trunc) << "gamebot_test_pool_elsewhere_1\n";
    ++files;
  }
  REQUIRE(files == 1);
  CHECK(runs.of("unguessed").opened == 4);  // one placeholder closed, the pool reopened
  CHECK(runs.of("guessed again").opened == 3);
}

// A placeholder may be opened to another database of the server, the holder's guess at a
// connection it will open: that open takes it. A guess naming a database that is not there
// costs one more attempt, and the placeholders go to the first URL.
TEST_CASE("a reserve's guessed placeholder is taken by its open, a wrong guess falls back",
          "[harness][postgres]") {
  EphemeralPostgresOptions options;
  options.spare_clusters = 0;
  EphemeralPostgres server(options);
  const auto url = gamebot::repo::DatabaseUrl::parse(server.url());
  auto admin = gamebot::repo::connect(url);
  admin->execute("CREATE DATABASE guessed");
  const auto guessed = url.with_database("guessed");
  auto sessions_on = [&](const std::string& db) {
    return admin
        ->query_value<std::int64_t>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            db)
        .value_or(-1);
  };
  {
    auto budget = std::make_shared<gamebot::repo::ConnectionBudget>(4);
    const std::vector<gamebot::repo::DatabaseUrl> urls{url, guessed};
    budget->reserve(urls, {});
    CHECK(budget->placeholders() == 2);
    CHECK(sessions_on("guessed") == 1);
    gamebot::repo::ConnectOptions connect;
    connect.postgres.budget = budget;
    auto taken = gamebot::repo::connect(guessed, connect);
    CHECK(budget->placeholders() == 1);
    CHECK(budget->opened() == 2);  // the placeholders, nothing more
    CHECK(sessions_on("guessed") == 1);
    CHECK(taken->query_value<std::string>("SELECT current_database()") == "guessed");
  }
  {
    auto budget = std::make_shared<gamebot::repo::ConnectionBudget>(4);
    const std::vector<gamebot::repo::DatabaseUrl> urls{url, url.with_database("not_there")};
    budget->reserve(urls, {});
    CHECK(budget->placeholders() == 2);
    gamebot::repo::ConnectOptions connect;
    connect.postgres.budget = budget;
    auto first = gamebot::repo::connect(url, connect);
    auto second = gamebot::repo::connect(url, connect);
    CHECK(budget->opened() == 2);  // both were placeholders to the first URL
    CHECK(budget->placeholders() == 0);
  }
}

// The reserve opens its placeholders together (their set-ups overlap on the server), still all
// or nothing: with fewer free slots than asked for, none is kept and the refusal is thrown.
TEST_CASE("connections opened together are all or nothing", "[harness][postgres]") {
  EphemeralPostgresOptions options;
  options.settings = {{"max_connections", "8"}};
  options.spare_clusters = 0;
  EphemeralPostgres server(options);
  const auto url = gamebot::repo::DatabaseUrl::parse(server.url());

  auto three = gamebot::repo::PostgresConnection::open_together(url, 3);
  REQUIRE(three.size() == 3);
  std::set<int> pids;
  for (auto& connection : three) {
    CHECK(connection->is_alive());
    pids.insert(connection->backend_pid());
    CHECK(connection->query_value<std::int64_t>("SELECT 1").value_or(0) == 1);
  }
  CHECK(pids.size() == 3);
  three.clear();

  Squatter squatter(server.url());  // one slot left
  try {
    gamebot::repo::PostgresConnection::open_together(url, 3);
    FAIL("three connections opened on a server with one free slot");
  } catch (const gamebot::repo::DatabaseError& error) {
    CHECK(error.sqlstate() == "53300");
  }
  // The connections that did get in were closed: the one free slot is free again.
  gamebot::repo::ConnectOptions wait_briefly;
  wait_briefly.postgres.connection_slot_wait = std::chrono::seconds(10);
  CHECK(gamebot::repo::connect(server.url(), wait_briefly)->is_alive());
}
