// gamebot-store on the fixture's PostgreSQL server: a store moved SQLite ->
// PostgreSQL -> SQLite keeps every byte; verify on PostgreSQL; test-dbs on
// the server's databases.

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <sstream>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"
#include "rich_store.hpp"
#include "run_cli.hpp"

namespace gamebot::tools::testing {
namespace {

using eventstore::EventStore;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string unique_suffix() {
  std::random_device random;
  return std::to_string(random() % 1'000'000'000u);
}

// The fixture server's URL with the store in schema `schema`.
std::string store_url(const std::string& schema) {
  std::string url = gamebot::testing::postgres_url();
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema;
}

TEST_CASE("export/import moves a store SQLite -> PostgreSQL -> SQLite byte for byte",
          "[tools][cli][postgres]") {
  gamebot::testing::TempDir dir;
  const std::string source = "sqlite:" + dir.path() + "/source.db";
  const std::string middle = store_url("cli_move_" + unique_suffix());
  const std::string target = "sqlite:" + dir.path() + "/target.db";
  {
    eventstore::StoreOptions options;
    options.allow_hard_delete = true;
    EventStore store = eventstore::open(source, options);
    populate_rich(store);
  }
  const std::string first = dir.path() + "/first.jsonl";
  const std::string second = dir.path() + "/second.jsonl";
  REQUIRE(run_cli({"export", source, "--output", first}).exit_code == 0);
  CliResult to_pg = run_cli({"import", middle, "--input", first});
  INFO(to_pg.err);
  REQUIRE(to_pg.exit_code == 0);
  CliResult verify_pg = run_cli({"verify", middle});
  INFO(verify_pg.out << verify_pg.err);
  CHECK(verify_pg.exit_code == 0);
  REQUIRE(run_cli({"export", middle, "--output", second}).exit_code == 0);
  REQUIRE(run_cli({"import", target, "--input", second}).exit_code == 0);
  CliResult last = run_cli({"export", target});
  REQUIRE(last.exit_code == 0);

  const std::string expected = without_positions(read_file(first));
  CHECK(lines_of(expected).size() == 17);  // 11 events, 4 links, 1 deletion, 1 snapshot
  CHECK(without_positions(read_file(second)) == expected);
  CHECK(without_positions(last.out) == expected);

  EventStore a = eventstore::open(source);
  EventStore b = eventstore::open(middle);
  auto x = a.read_stream_forward("game-1").events;
  auto y = b.read_stream_forward("game-1").events;
  REQUIRE(x.size() == y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(x[i].event_id == y[i].event_id);
    CHECK(x[i].data == y[i].data);
    CHECK(x[i].metadata == y[i].metadata);
    CHECK(x[i].created_at == y[i].created_at);
    CHECK(x[i].causation_id == y[i].causation_id);
  }
}

TEST_CASE("init, migrate, append, read and verify work on a PostgreSQL schema",
          "[tools][cli][postgres]") {
  const std::string url = store_url("cli_init_" + unique_suffix());
  CliResult missing = run_cli({"verify", url});
  CHECK(missing.exit_code == 1);  // nothing there yet: the schema is not current
  CliResult init = run_cli({"init", url});
  INFO(init.out << init.err);
  REQUIRE(init.exit_code == 0);
  CHECK(init.out.find("applied migration 1") != std::string::npos);
  CHECK(run_cli({"init", url}).exit_code == 1);
  CHECK(run_cli({"migrate", url}).exit_code == 0);
  CliResult append = run_cli({"append", url, "--expected-version", "no_stream"},
                             R"({"stream":"p","type":"t","data":{"n":1}})"
                             "\n");
  INFO(append.err);
  REQUIRE(append.exit_code == 0);
  CliResult read = run_cli({"read", url, "p"});
  REQUIRE(read.exit_code == 0);
  CHECK(read.out.find(R"("type":"t","data":{"n":1})") != std::string::npos);
  CliResult verify = run_cli({"verify", url});
  CHECK(verify.exit_code == 0);
  CHECK(verify.out.find("integrity: 1 events, 1 streams (0 soft-deleted), 0 links") !=
        std::string::npos);
}

TEST_CASE("init's report line never shows the URL's sslpassword", "[tools][cli][postgres][url]") {
  const std::string secret = "Kx9SecretValue";
  // Unused without SSL (a unix socket), so the server accepts the connection.
  const std::string url = store_url("cli_secret_" + unique_suffix()) + "&sslpassword=" + secret;
  CliResult init = run_cli({"init", url});
  INFO(init.err);
  REQUIRE(init.exit_code == 0);
  CHECK(init.out.find("sslpassword=***") != std::string::npos);
  CHECK(init.out.find(secret) == std::string::npos);
  CliResult again = run_cli({"init", url});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find(secret) == std::string::npos);
}

TEST_CASE("test-dbs reaps an orphaned marked database and never touches an unmarked one",
          "[tools][cli][postgres]") {
  const std::string suffix = unique_suffix();
  const std::string orphan = "gamebot_test_cliorphan" + suffix;
  const std::string soak = "gamebot_test_clisoak" + suffix;
  const std::string unmarked = "gamebot_test_cliunmarked" + suffix;
  // A server of its own: on the shared test server, another test's harness run reaps the
  // orphan first (it is a real one) and the listing below would miss it.
  harness::EphemeralPostgresOptions server_options;
  server_options.spare_clusters = 0;
  harness::EphemeralPostgres server(server_options);
  const std::string url = server.url();
  auto admin = repo::connect(url);
  admin->execute("CREATE DATABASE " + orphan);
  admin->execute("CREATE DATABASE " + soak);
  admin->execute("CREATE DATABASE " + unmarked);
  auto mark = [&](const std::string& database, const harness::RunMarker& marker) {
    std::string literal = "'";
    for (char c : marker.serialize()) literal += c == '\'' ? std::string("''") : std::string(1, c);
    admin->execute("COMMENT ON DATABASE " + database + " IS " + literal + "'");
  };
  // Its owner has exited: an orphan, however young.
  harness::RunMarker dead = harness::RunMarker::for_this_process("cliorphan", "database");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  dead.pid = static_cast<long>(child);
  dead.pid_start = 0;
  mark(orphan, dead);
  // Its owner (this process) is running: alive, however old (a soak, a --keep session).
  harness::RunMarker live = harness::RunMarker::for_this_process("clisoak", "database");
  live.started_at -= std::chrono::hours(48);
  mark(soak, live);

  CliResult list = run_cli({"test-dbs", "list", url});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(list.out.find(orphan) != std::string::npos);
  CHECK(list.out.find(unmarked) != std::string::npos);
  CHECK(list.out.find(soak + " ") != std::string::npos);

  CliResult reap = run_cli({"test-dbs", "reap", url});
  INFO(reap.out << reap.err);
  CHECK(reap.exit_code == 0);
  CHECK(reap.out.find("reaped " + orphan) != std::string::npos);
  auto exists = [&](const std::string& name) {
    return admin
               ->query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1",
                                           name)
               .value_or(0) == 1;
  };
  CHECK_FALSE(exists(orphan));
  CHECK(exists(soak));
  CHECK(exists(unmarked));
  admin->execute("DROP DATABASE " + soak);
  admin->execute("DROP DATABASE " + unmarked);
}

}  // namespace
}  // namespace gamebot::tools::testing
