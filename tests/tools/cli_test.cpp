// gamebot-store run as a child process on SQLite files: each subcommand's
// happy path, usage errors (exit 2), a closed PostgreSQL port (exit 3),
// failures (exit 1), export/import byte for byte, verify on a tampered file.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/harness/report.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/testing/postgres.hpp"
#include "gamebot/testing/sqlite_tamper.hpp"
#include "rich_store.hpp"
#include "run_cli.hpp"

namespace gamebot::tools::testing {
namespace {

using eventstore::EventStore;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

eventstore::StoreOptions hard_deletes() {
  eventstore::StoreOptions options;
  options.allow_hard_delete = true;
  return options;
}

// A TCP port on loopback that nothing listens on.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);  // never listened: connections are refused
  return ntohs(address.sin_port);
}

void check_one_error_line(const CliResult& r, const std::string& fault_class) {
  INFO("stderr: " << r.err);
  const auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("gamebot-store: " + fault_class + ": ", 0) == 0);
}

const std::vector<std::vector<std::string>> kCommands = {{"init"},
                                                         {"migrate"},
                                                         {"verify"},
                                                         {"append"},
                                                         {"read"},
                                                         {"tail"},
                                                         {"streams"},
                                                         {"delete"},
                                                         {"export"},
                                                         {"import"},
                                                         {"test-dbs", "list"},
                                                         {"test-dbs", "reap"},
                                                         {"subscriptions", "list"},
                                                         {"subscriptions", "delete"},
                                                         {"subscriptions"},
                                                         {"report"},
                                                         {"test-dbs"},
                                                         {}};

TEST_CASE("every subcommand's --help exits 0 and documents the exit codes", "[tools][cli]") {
  for (auto command : kCommands) {
    command.push_back("--help");
    INFO(command.front());
    CliResult r = run_cli(command);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Exit codes: 0 ok; 1 failure") != std::string::npos);
    CHECK(r.out.find("3 infrastructure fault") != std::string::npos);
    CHECK(r.err.empty());
  }
}

TEST_CASE("usage errors exit 2 with one configuration line", "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"read", url},
      {"read", url, "s", "extra"},
      {"read", url, "s", "--bogus"},
      {"read", url, "s", "--count"},
      {"read", url, "s", "--count", "many"},
      {"append", url, "--expected-version", "soon"},
      {"delete", url, "s", "--hard=yes"},
      {"test-dbs", "drop", url},
      {"read", "ftp://host/x", "s"},
  };
  for (const auto& args : bad) {
    INFO((args.empty() ? std::string("(none)") : args.front()) << " " << args.size());
    CliResult r = run_cli(args);
    CHECK(r.exit_code == 2);
    if (!args.empty()) check_one_error_line(r, "configuration");
  }
}

TEST_CASE("a closed PostgreSQL port exits 3 with one connectivity line and no password",
          "[tools][cli]") {
  const std::string url =
      "postgresql://gamebot:s3cret-pw@127.0.0.1:" + std::to_string(closed_port()) + "/gamebot";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"verify", url},
                                               {"read", url, "$all"},
                                               {"init", url},
                                               {"test-dbs", "list", url}}) {
    INFO(args.front());
    CliResult r = run_cli(args);
    CHECK(r.exit_code == 3);
    check_one_error_line(r, "connectivity");
    CHECK(r.err.find("s3cret-pw") == std::string::npos);
    CHECK(r.out.empty());
  }
}

TEST_CASE("a bad URL's error line shows none of its secrets", "[tools][cli][url]") {
  const std::string secret = "Kx9SecretValue";
  const std::vector<std::vector<std::string>> commands = {
      {"read", "mysql://u:" + secret + "@h/db?sslpassword=" + secret, "$all"},
      {"init", "postgresql://alice:" + secret + "/db"},
      {"verify", "postgresql://u@h/db?sslpassword=" + secret + "&bogus=1"},
      {"test-dbs", "list", "postgresql://u@h/db?password=ab&" + secret},
  };
  for (const auto& args : commands) {
    INFO(args.front());
    CliResult r = run_cli(args);
    CHECK(r.exit_code == 2);
    check_one_error_line(r, "configuration");
    CHECK(r.err.find(secret) == std::string::npos);
    CHECK(r.err.find("ab&") == std::string::npos);
  }
}

TEST_CASE("the CLI opens a mixed-case URL through the same path as eventstore::open",
          "[tools][cli][url]") {
  gamebot::testing::TempDir dir;
  const std::string file = dir.path() + "/s.db";
  CliResult init = run_cli({"init", "SQLite:" + file});
  INFO(init.err);
  REQUIRE(init.exit_code == 0);
  CliResult append = run_cli({"append", "SQLITE:" + file, "--expected-version", "no_stream"},
                             R"({"stream":"p","type":"t","data":{"n":1}})"
                             "\n");
  INFO(append.err);
  REQUIRE(append.exit_code == 0);
  EventStore store = eventstore::open(eventstore::parse_url("sqlite:" + file));
  CHECK(store.head_position() == 1);
  CliResult read = run_cli({"read", "Sqlite:" + file, "p"});
  REQUIRE(read.exit_code == 0);
  CHECK(read.out.find(R"("type":"t","data":{"n":1})") != std::string::npos);
  CHECK(run_cli({"read", "MEMORY:", "$all"}).exit_code == 0);
}

TEST_CASE("init creates a store once and migrate leaves a current store as it is", "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  CliResult missing = run_cli({"read", url, "$all"});
  CHECK(missing.exit_code == 1);
  check_one_error_line(missing, "schema");
  CHECK_FALSE(fs::exists(dir.path() + "/s.db"));  // reading never creates a store

  CliResult init = run_cli({"init", url});
  CHECK(init.exit_code == 0);
  CHECK(init.out.find("applied migration 1 'create_event_store'") != std::string::npos);
  CliResult again = run_cli({"init", url});
  CHECK(again.exit_code == 1);
  check_one_error_line(again, "schema");
  CliResult migrate = run_cli({"migrate", url});
  CHECK(migrate.exit_code == 0);
  CHECK(migrate.out.find("(0 migrations applied now)") != std::string::npos);
  CHECK(run_cli({"verify", url}).exit_code == 0);
}

TEST_CASE("append takes JSON lines and read prints a stream and $all as JSON lines",
          "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  REQUIRE(run_cli({"init", url}).exit_code == 0);
  const std::string input =
      R"({"stream":"game-1","type":"created","data":{"words":["a","b"]},"metadata":{"by":"cli"}})"
      "\n\n"
      R"({"stream":"game-2","type":"created","data_base64":"AP8=","id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"})"
      "\n"
      R"({"stream":"game-1","type":"guess","data":"apple","created_at":"2001-02-03T04:05:06.000007Z"})"
      "\n";
  CliResult append = run_cli({"append", url, "--expected-version", "no_stream"}, input);
  REQUIRE(append.exit_code == 0);
  const auto results = lines_of(append.out);
  REQUIRE(results.size() == 2);
  CHECK(
      results[0] ==
      R"({"stream":"game-1","status":"ok","events":2,"version":2,"first_position":1,"last_position":2})");
  CHECK(
      results[1] ==
      R"({"stream":"game-2","status":"ok","events":1,"version":1,"first_position":3,"last_position":3})");

  CliResult stream = run_cli({"read", url, "game-1"});
  REQUIRE(stream.exit_code == 0);
  auto lines = lines_of(stream.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find(R"("stream":"game-1","version":1,"position":1,"event_number":1,)") !=
        std::string::npos);
  CHECK(lines[0].find(R"("type":"created","data":{"words":["a","b"]},"metadata":{"by":"cli"})") !=
        std::string::npos);
  CHECK(lines[1].find(
            R"("data":"apple","metadata_base64":"","created_at":"2001-02-03T04:05:06.000007Z")") !=
        std::string::npos);

  CliResult all = run_cli({"read", url, "$all", "--backward", "--count", "1"});
  REQUIRE(all.exit_code == 0);
  lines = lines_of(all.out);
  REQUIRE(lines.size() == 1);
  CHECK(
      lines[0].find(
          R"("id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","type":"created","data_base64":"AP8=")") !=
      std::string::npos);

  // The bytes really are what the lines said.
  EventStore store = eventstore::open(url);
  auto events = store.read_all_forward().events;
  REQUIRE(events.size() == 3);
  CHECK(events[0].data == R"({"words":["a","b"]})");
  CHECK(events[1].data == R"("apple")");
  CHECK(events[2].data == std::string("\x00\xff", 2));
}

TEST_CASE("append with a stale --expected-version exits 1 with a concurrency line",
          "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  REQUIRE(run_cli({"init", url}).exit_code == 0);
  const std::string event = R"({"stream":"s","type":"t"})"
                            "\n";
  REQUIRE(run_cli({"append", url}, event + event).exit_code == 0);
  CliResult stale = run_cli({"append", url, "--expected-version", "1"}, event);
  CHECK(stale.exit_code == 1);
  check_one_error_line(stale, "concurrency");
  CHECK(stale.err.find("wrong_expected_version (stream version 2)") != std::string::npos);
  CHECK(run_cli({"append", url, "--expected-version=2"}, event).exit_code == 0);

  CliResult bad = run_cli({"append", url}, event + "{\"stream\":\"s\"}\n");
  CHECK(bad.exit_code == 1);
  check_one_error_line(bad, "serialization");
  CHECK(bad.err.find("line 2: \"type\" is missing") != std::string::npos);
}

TEST_CASE("streams lists a page with a cursor or every page, and delete hides a stream",
          "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  REQUIRE(run_cli({"init", url}).exit_code == 0);
  std::string input;
  for (int i = 1; i <= 5; ++i)
    input += R"({"stream":"s)" + std::to_string(i) + R"(","type":"t"})" + "\n";
  REQUIRE(run_cli({"append", url}, input).exit_code == 0);

  CliResult page = run_cli({"streams", url, "--limit", "2"});
  REQUIRE(page.exit_code == 0);
  auto lines = lines_of(page.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].rfind(R"({"stream":"s1","version":1,"sequence":1,)", 0) == 0);
  CHECK(page.err == "more streams: continue with --after 2\n");
  CliResult next = run_cli({"streams", url, "--limit", "2", "--after", "2"});
  CHECK(lines_of(next.out).size() == 2);
  CHECK(lines_of(next.out)[0].rfind(R"({"stream":"s3",)", 0) == 0);
  CliResult all = run_cli({"streams", url, "--limit", "2", "--all"});
  CHECK(lines_of(all.out).size() == 5);
  CHECK(all.err.empty());

  CliResult del = run_cli({"delete", url, "s2"});
  CHECK(del.exit_code == 0);
  CliResult gone = run_cli({"read", url, "s2"});
  CHECK(gone.exit_code == 1);
  check_one_error_line(gone, "configuration");
  CliResult listed = run_cli({"streams", url, "--prefix", "s2"});
  REQUIRE(lines_of(listed.out).size() == 1);
  CHECK(listed.out.find(R"("deleted":true)") != std::string::npos);
  CliResult hard = run_cli({"delete", url, "s3", "--hard", "--expected-version", "1"});
  CHECK(hard.exit_code == 0);
  CHECK(run_cli({"read", url, "s3"}).exit_code == 1);
  CHECK(lines_of(run_cli({"read", url, "$all"}).out).size() == 4);
  CHECK(run_cli({"delete", url, "nope"}).exit_code == 1);
}

TEST_CASE("subscriptions list shows checkpoint, lease and lag, and delete refuses a held one",
          "[tools][cli][subscriptions]") {
  gamebot::testing::TempDir dir;
  const std::string file = dir.path() + "/s.db";
  const std::string url = "sqlite:" + file;
  EventStore store = eventstore::open(url);
  std::vector<eventstore::EventData> three(3);
  for (auto& e : three) e.type = "Moved";
  REQUIRE(store.append("game-1", 0, three).ok());
  // "alpha" stays held by this process (the CLI is another one); "beta" is idle.
  eventstore::Subscription alpha = store.subscribe_persistent("alpha", "game-1");
  {
    auto first = alpha.next(std::chrono::seconds(5));
    REQUIRE(first.has_value());
    alpha.ack(*first);
  }
  std::string beta_token;
  {
    eventstore::Subscription beta = store.subscribe_persistent("beta", "$all");
    beta_token = std::to_string(beta.lease_token().value_or(-1));
    for (int i = 0; i < 3; ++i) {
      auto e = beta.next(std::chrono::seconds(5));
      REQUIRE(e.has_value());
      beta.ack(*e);
    }
  }
  const std::string alpha_token = std::to_string(alpha.lease_token().value_or(-1));

  CliResult listed = run_cli({"subscriptions", "list", url});
  INFO(listed.out << listed.err);
  CHECK(listed.exit_code == 0);
  CHECK(lines_of(listed.out) ==
        std::vector<std::string>{
            "{\"name\":\"alpha\",\"stream\":\"game-1\",\"checkpoint\":1,\"head\":3,\"lag\":2,"
            "\"lease_token\":" +
                alpha_token + ",\"held\":true}",
            "{\"name\":\"beta\",\"stream\":\"$all\",\"checkpoint\":3,\"head\":3,\"lag\":0,"
            "\"lease_token\":" +
                beta_token + ",\"held\":false}"});

  CliResult refused = run_cli({"subscriptions", "delete", url, "alpha"});
  INFO(refused.out << refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(refused.out.empty());
  check_one_error_line(refused, "concurrency");
  CHECK(refused.err.find("'alpha' on 'game-1' is held") != std::string::npos);
  CHECK(store.backend().load_checkpoint("alpha", "game-1") == 1);

  CliResult deleted = run_cli({"subscriptions", "delete", url, "beta", "--stream", "$all"});
  CHECK(deleted.exit_code == 0);
  CHECK(deleted.out == "deleted subscription 'beta' on '$all'\n");
  CHECK_FALSE(store.backend().load_checkpoint("beta", "$all").has_value());

  CliResult missing = run_cli({"subscriptions", "delete", url, "beta"});
  CHECK(missing.exit_code == 1);
  check_one_error_line(missing, "configuration");

  alpha = eventstore::Subscription();
  CHECK(run_cli({"subscriptions", "delete", url, "alpha"}).exit_code == 0);
  CHECK(run_cli({"subscriptions", "list", url}).out.empty());
}

TEST_CASE("verify passes a clean store and reports a deleted event row with exit 1",
          "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string file = dir.path() + "/s.db";
  {
    EventStore store = eventstore::open("sqlite:" + file, hard_deletes());
    populate_rich(store);
  }
  CliResult clean = run_cli({"verify", "sqlite:" + file, "--page-size", "2"});
  INFO(clean.out << clean.err);
  CHECK(clean.exit_code == 0);
  CHECK(clean.out.find("schema: current") != std::string::npos);
  CHECK(clean.out.find(
            "integrity: 11 events, 5 streams (1 soft-deleted), 4 links, head position 12: ok") !=
        std::string::npos);
  // Past the store's append-only triggers, which refuse the delete.
  CHECK(gamebot::testing::tamper_sqlite_store(file,
                                              "DELETE FROM eventstore_events WHERE stream_id = "
                                              "'game-1' AND stream_version = 4") == 1);
  CliResult tampered = run_cli({"verify", "sqlite:" + file});
  INFO(tampered.out << tampered.err);
  CHECK(tampered.exit_code == 1);
  CHECK(tampered.out.find("versions_gap_free stream 'game-1'") != std::string::npos);
  check_one_error_line(tampered, "integrity");
}

TEST_CASE("verify reports a schema that is not current with exit 1", "[tools][cli]") {
  gamebot::testing::TempDir dir;
  const std::string file = dir.path() + "/s.db";
  REQUIRE(run_cli({"init", "sqlite:" + file}).exit_code == 0);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE eventstore_schema_migrations SET checksum = 'edited'", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  CliResult r = run_cli({"verify", "sqlite:" + file});
  CHECK(r.exit_code == 1);
  check_one_error_line(r, "schema");
}

TEST_CASE("export then import into a new SQLite file keeps every byte, id, version and time",
          "[tools][cli][export]") {
  gamebot::testing::TempDir dir;
  const std::string source = "sqlite:" + dir.path() + "/source.db";
  const std::string target = "sqlite:" + dir.path() + "/target.db";
  {
    EventStore store = eventstore::open(source, hard_deletes());
    populate_rich(store);
  }
  const std::string dump = dir.path() + "/dump.jsonl";
  CliResult exported = run_cli({"export", source, "--output", dump});
  REQUIRE(exported.exit_code == 0);
  CHECK(exported.err == "exported 11 events, 4 links, 1 deleted streams, 1 snapshots\n");  // piped
  CliResult imported = run_cli({"import", target, "--input", dump});
  INFO(imported.err);
  REQUIRE(imported.exit_code == 0);
  CHECK(imported.err == "imported 11 events, 4 links, 1 deleted streams, 1 snapshots\n");
  CliResult again = run_cli({"export", target});
  REQUIRE(again.exit_code == 0);
  CHECK(without_positions(again.out) == without_positions(read_file(dump)));
  CHECK(run_cli({"verify", target}).exit_code == 0);

  // Through the library: every stream entry equal but for positions.
  EventStore a = eventstore::open(source);
  EventStore b = eventstore::open(target);
  for (const std::string stream : {"game-1", "game-2", "scores", "highlights"}) {
    auto x = a.read_stream_forward(stream).events;
    auto y = b.read_stream_forward(stream).events;
    REQUIRE(x.size() == y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      CHECK(x[i].event_number == y[i].event_number);
      CHECK(x[i].event_id == y[i].event_id);
      CHECK(x[i].stream_id == y[i].stream_id);
      CHECK(x[i].stream_version == y[i].stream_version);
      CHECK(x[i].type == y[i].type);
      CHECK(x[i].data == y[i].data);
      CHECK(x[i].metadata == y[i].metadata);
      CHECK(x[i].causation_id == y[i].causation_id);
      CHECK(x[i].correlation_id == y[i].correlation_id);
      CHECK(x[i].created_at == y[i].created_at);
    }
  }
  CHECK(b.stream_info("abandoned")->deleted());
  CHECK(b.read_snapshot("game-1") == a.read_snapshot("game-1"));

  // Importing the same dump again collides with what is there: exit 1.
  CliResult twice = run_cli({"import", target, "--input", dump});
  CHECK(twice.exit_code == 1);
  check_one_error_line(twice, "concurrency");
}

TEST_CASE("export shows progress on stderr when stderr is a terminal", "[tools][cli][export]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  {
    EventStore store = eventstore::open(url);
    REQUIRE(store.append("s", 0, {rich_event("t", "1", ""), rich_event("t", "2", "")}).ok());
  }
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(::grantpt(master) == 0);
  REQUIRE(::unlockpt(master) == 0);
  const std::string slave_path = ::ptsname(master);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, slave_path.c_str(), O_RDWR, 0);
  posix_spawn_file_actions_addclose(&actions, master);
  std::vector<std::string> argv{GAMEBOT_STORE_CLI, "export", url};
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  REQUIRE(::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  std::string terminal;
  char chunk[256];
  for (ssize_t n; (n = ::read(master, chunk, sizeof chunk)) > 0;)  // EIO once the child is gone
    terminal.append(chunk, static_cast<std::size_t>(n));
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  INFO(terminal);
  CHECK(terminal.find("exported events: 2 done") != std::string::npos);
  CHECK(terminal.find("exported 2 events, 0 links") != std::string::npos);
}

TEST_CASE("tail prints events committed after it started and exits 0 on SIGINT",
          "[tools][cli][tail]") {
  gamebot::testing::TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/s.db";
  REQUIRE(run_cli({"init", url}).exit_code == 0);
  EventStore store = eventstore::open(url);
  REQUIRE(store.append("before", 0, rich_event("old", "1", "")).ok());
  harness::testing::ChildProcess tail({GAMEBOT_STORE_CLI, "tail", url, "$all"});
  // Append until tail shows one (it may still be subscribing when the first lands).
  std::optional<std::string> line;
  for (int attempt = 0; attempt < 50 && !line; ++attempt) {
    REQUIRE(
        store.append("live", eventstore::ExpectedVersion::any(), rich_event("new", "2", "")).ok());
    line = tail.read_line(200ms);
  }
  REQUIRE(line);
  CHECK(line->find(R"("stream":"live")") != std::string::npos);
  CHECK(line->find(R"("type":"new","data":2)") != std::string::npos);
  tail.signal(SIGINT);
  const int status = tail.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("test-dbs lists SQLite run directories with owner and age and reaps only orphans",
          "[tools][cli][test-dbs]") {
  gamebot::testing::TempDir dir;
  auto make_run_dir = [&](const std::string& name, std::optional<harness::RunMarker> marker) {
    fs::create_directory(dir.path() + "/" + name);
    std::ofstream(dir.path() + "/" + name + "/run.db") << "x";
    if (marker)
      harness::write_marker_file(dir.path() + "/" + name + "/gamebot-run-marker", *marker);
  };
  harness::RunMarker alive = harness::RunMarker::for_this_process("alive1", "sqlite-run");
  // Liveness before age: this process is running, so its 2-day-old run (a soak, a --keep
  // session) is alive.
  harness::RunMarker old = harness::RunMarker::for_this_process("old1", "sqlite-run");
  old.started_at -= std::chrono::hours(48);
  // A fresh marker whose owner has exited: an orphan at once.
  harness::RunMarker dead = harness::RunMarker::for_this_process("dead1", "sqlite-run");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  dead.pid = static_cast<long>(child);
  dead.pid_start = 0;
  make_run_dir("gamebot_test_alive1", alive);
  make_run_dir("gamebot_test_dead1", dead);
  make_run_dir("gamebot_test_old1", old);
  make_run_dir("gamebot_test_unmarked", std::nullopt);
  make_run_dir("someone_else", std::nullopt);

  const std::string url = "sqlite:" + dir.path();
  CliResult list = run_cli({"test-dbs", "list", url});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  const auto lines = lines_of(list.out);
  REQUIRE(lines.size() == 6);  // header, four, total
  CHECK(lines[1].find("gamebot_test_alive1") != std::string::npos);
  CHECK(lines[1].find(" alive ") != std::string::npos);
  CHECK(lines[1].find(harness::this_host_name() + ":" + std::to_string(::getpid())) !=
        std::string::npos);
  CHECK(lines[2].find("gamebot_test_dead1") != std::string::npos);
  CHECK(lines[2].find(" orphan ") != std::string::npos);
  CHECK(lines[3].find("gamebot_test_old1") != std::string::npos);
  CHECK(lines[3].find(" alive ") != std::string::npos);
  CHECK(lines[3].find(" 2d ") != std::string::npos);
  CHECK(lines[4].find(" unmarked") != std::string::npos);
  CHECK(lines[5] == "4 found");

  CliResult dry = run_cli({"test-dbs", "reap", url, "--dry-run"});
  CHECK(dry.out.find("would reap " + dir.path() + "/gamebot_test_dead1") != std::string::npos);
  CHECK(dry.out.find("gamebot_test_old1") == std::string::npos);
  CHECK(fs::exists(dir.path() + "/gamebot_test_dead1"));

  CliResult reap = run_cli({"test-dbs", "reap", url});
  INFO(reap.out << reap.err);
  CHECK(reap.exit_code == 0);
  CHECK(reap.out.find("1 reaped, 3 kept") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() + "/gamebot_test_dead1"));
  CHECK(fs::exists(dir.path() + "/gamebot_test_old1/run.db"));
  CHECK(fs::exists(dir.path() + "/gamebot_test_alive1/run.db"));
  CHECK(fs::exists(dir.path() + "/gamebot_test_unmarked/run.db"));
  CHECK(fs::exists(dir.path() + "/someone_else"));
}

TEST_CASE("report renders a harness run report as text", "[tools][cli][report]") {
  gamebot::testing::TempDir dir;
  harness::RunReport report;
  report.set_run_id("r123");
  report.set_backend(harness::Backend::sqlite);
  report.set_isolation(harness::Isolation::transaction);
  report.record_phase({harness::Phase::preflight, true, 12ms, std::nullopt, "3 types"});
  report.record_phase({harness::Phase::connectivity, true, 3ms, std::nullopt, ""});
  report.record_test({"adds a player", harness::TestOutcome::passed, 5ms, std::nullopt, ""});
  report.record_test({"scores a guess", harness::TestOutcome::assertion_failure, 7ms, std::nullopt,
                      "expected 3 == 4"});
  report.record_test({"reads back", harness::TestOutcome::infrastructure_failure, 1500ms,
                      FaultClass::connectivity, "server went away"});
  const std::string path = dir.path() + "/report.json";
  report.write_json(path);

  CliResult r = run_cli({"report", path});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Run r123 on sqlite (isolation transaction)") != std::string::npos);
  CHECK(r.out.find("Verdict: infrastructure_failure") != std::string::npos);
  CHECK(r.out.find("  preflight     ok") != std::string::npos);
  CHECK(r.out.find("Tests: 3 total, 1 passed, 1 assertion failures, 1 infrastructure failures") !=
        std::string::npos);
  CHECK(r.out.find("[assertion_failure] scores a guess (7.0 ms): expected 3 == 4") !=
        std::string::npos);
  CHECK(r.out.find("[infrastructure_failure] reads back (1.50 s) fault connectivity: server went "
                   "away") != std::string::npos);
  CHECK(r.out.find("Faults: connectivity 1") != std::string::npos);

  std::ofstream(dir.path() + "/junk.json") << "{not json";
  CliResult junk = run_cli({"report", dir.path() + "/junk.json"});
  CHECK(junk.exit_code == 1);
  check_one_error_line(junk, "serialization");

  // --html writes the page (the page itself is checked in Chromium by the harness tests).
  const std::string html = dir.path() + "/report.html";
  CliResult page = run_cli({"report", path, "--html", html});
  INFO(page.out << page.err);
  REQUIRE(page.exit_code == 0);
  CHECK(page.out.find("wrote " + html) != std::string::npos);
  std::ifstream in(html);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(text.find("\"run_id\": \"r123\"") != std::string::npos);
  CHECK(text.find("scores a guess") != std::string::npos);
}

TEST_CASE("report shows a failed test's kind, place, values, database, log and rerun command",
          "[tools][cli][report]") {
  gamebot::testing::TempDir dir;
  harness::RunReport report;
  report.set_run_id("r124");
  report.set_command_line({"./game_tests", "--backend", "sqlite", "[scores]"});
  report.set_options_text("backend=sqlite isolation=transaction");
  harness::TestRecord failed{"scores a guess", harness::TestOutcome::assertion_failure, 7ms,
                             std::nullopt, "REQUIRE( a == b ) with expansion 3 == 4"};
  failed.kind = "assertion";
  failed.failure = {"tests/score_test.cpp", 42, "REQUIRE( a == b )", "3 == 4", "", ""};
  failed.database = "sqlite:/tmp/run/run.db";
  failed.log = {"12:00:00.000 [gamebot warning] slow", "12:00:00.001 [gamebot info] done"};
  failed.log_dropped = 3;
  failed.rerun = "./game_tests --backend sqlite 'scores a guess'";
  report.record_test(failed);
  harness::TestRecord thrown{"reads back", harness::TestOutcome::assertion_failure, 1ms,
                             std::nullopt, "boom"};
  thrown.kind = "exception";
  thrown.failure.exception_type = "std::runtime_error";
  thrown.failure.exception_text = "boom";
  report.record_test(thrown);
  const std::string path = dir.path() + "/report.json";
  report.write_json(path);

  CliResult r = run_cli({"report", path});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Command: ./game_tests --backend sqlite '[scores]'") != std::string::npos);
  CHECK(r.out.find("Options: backend=sqlite isolation=transaction") != std::string::npos);
  CHECK(r.out.find("kind: assertion at tests/score_test.cpp:42") != std::string::npos);
  CHECK(r.out.find("expression: REQUIRE( a == b )") != std::string::npos);
  CHECK(r.out.find("expansion: 3 == 4") != std::string::npos);
  CHECK(r.out.find("database: sqlite:/tmp/run/run.db") != std::string::npos);
  CHECK(r.out.find("log (last 2 lines, 3 earlier left out):") != std::string::npos);
  CHECK(r.out.find("| 12:00:00.001 [gamebot info] done") != std::string::npos);
  CHECK(r.out.find("rerun: ./game_tests --backend sqlite 'scores a guess'") != std::string::npos);
  CHECK(r.out.find("exception: std::runtime_error: boom") != std::string::npos);
}

}  // namespace
}  // namespace gamebot::tools::testing
