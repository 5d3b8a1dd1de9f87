// A user's harness-based Catch2 test binary, run as a child process by
// fault_scenarios_test.cpp. GAMEBOT_CHILD_SCENARIO selects what configure() registers.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "gamebot/harness/catch2.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/harness/wait.hpp"
#include "gamebot/repo/logging.hpp"

namespace {

struct PlayerJoined {
  std::string game_id;
  std::string player;
  bool operator==(const PlayerJoined&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player));
  }
};

// Loses its second field on the way: the round trip cannot succeed.
struct BrokenScore {
  std::string game_id;
  int points = 0;
  bool operator==(const BrokenScore&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id));
  }
};

std::string scenario() {
  const char* value = std::getenv("GAMEBOT_CHILD_SCENARIO");
  return value ? value : "";
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

gamebot::eventstore::EventData joined(const std::string& player) {
  gamebot::eventstore::EventData event;
  event.type = "player_joined";
  event.data = "{\"player\":\"" + player + "\"}";
  return event;
}

}  // namespace

void gamebot::harness::configure(HarnessSetup& setup) {
  setup.registry.register_type<PlayerJoined>("player_joined", 1, {{"g1", "ana"}, {"", "Zoë"}});
  setup.conformance.max_truncations = 64;
  setup.conformance.max_corruption_positions = 16;
  setup.app_migrations.push_back(
      {1, "create_players", "CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"});
  if (scenario() == "broken-type")
    setup.registry.register_type<BrokenScore>("broken_score", 1, {{"g1", 7}});
  if (scenario() == "drift")
    setup.expected_objects.push_back({ExpectedObject::Kind::index, "players_name_idx"});
}

using gamebot::eventstore::ExpectedVersion;
using gamebot::harness::StoreFixture;

TEST_CASE_METHOD(StoreFixture, "child: append and read back", "[child]") {
  store().append("game-1", ExpectedVersion::any(), joined("ana"));
  auto event = gamebot::harness::assert_receive_event(store(), "player_joined");
  CHECK(event.stream_id == "game-1");
  CHECK(store().read_stream_forward("game-1").events.size() == 1);
}

TEST_CASE_METHOD(StoreFixture, "child: each test starts from an empty store", "[child]") {
  // (Not head_position(): PostgreSQL sequences leave a hole where a rolled-back test wrote.)
  CHECK(store().read_all_forward().events.empty());
  store().append("game-2", ExpectedVersion::no_stream(), joined("bo"));
}

TEST_CASE_METHOD(StoreFixture, "child: leaves a persistent subscription open", "[leak]") {
  static auto subscription = store().subscribe_persistent("leaky_projection", "$all");
  store().append("game-3", ExpectedVersion::any(), joined("cy"));
  SUCCEED();
}

TEST_CASE_METHOD(StoreFixture, "child: slow step", "[slow]") {
  for (int i = 0; i < 3; ++i) {
    store().append("game-slow", ExpectedVersion::any(), joined("p" + std::to_string(i)));
    say("ready step");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Holds its database until the file named by GAMEBOT_CHILD_RELEASE_FILE exists
// (30 s at most), so a parent can look at two processes' databases while both
// are inside a test.
TEST_CASE_METHOD(StoreFixture, "child: held step", "[held]") {
  store().append("held", ExpectedVersion::any(), joined("h"));
  say("ready step");
  const char* release = std::getenv("GAMEBOT_CHILD_RELEASE_FILE");
  if (release == nullptr) return;  // nobody to wait for
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!std::filesystem::exists(release)) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

#define GAMEBOT_CHILD_STEP(n)                                        \
  TEST_CASE_METHOD(StoreFixture, "child: step " #n, "[steps]") {     \
    store().append("steps", ExpectedVersion::any(), joined("s" #n)); \
    say("ready step " #n);                                           \
    std::this_thread::sleep_for(std::chrono::milliseconds(60));      \
  }
GAMEBOT_CHILD_STEP(1)
GAMEBOT_CHILD_STEP(2)
GAMEBOT_CHILD_STEP(3)
GAMEBOT_CHILD_STEP(4)
GAMEBOT_CHILD_STEP(5)
GAMEBOT_CHILD_STEP(6)
GAMEBOT_CHILD_STEP(7)
GAMEBOT_CHILD_STEP(8)
GAMEBOT_CHILD_STEP(9)
GAMEBOT_CHILD_STEP(10)

// Hidden (run by name from run_exit_test.cpp): the ways a run ends with exit status 1.
TEST_CASE_METHOD(StoreFixture, "child: waits for an event that never comes", "[.][wait-missing]") {
  store().append("game-1", ExpectedVersion::any(), joined("ana"));
  gamebot::harness::assert_receive_event(store(), "player_left", {}, std::chrono::milliseconds(50));
}

// Hidden (run by name from failure_record_test.cpp): failures whose run-report record is checked.
// 60 store log lines, more than a record keeps, then a failed check with an expansion.
TEST_CASE_METHOD(StoreFixture, "child: logs, then fails a check", "[.][logs-then-fails]") {
  store().append("logged", ExpectedVersion::any(), joined("ana"));
  for (int i = 0; i < 60; ++i) gamebot::repo::logger()->warn("child log line {}", i);
  const int answer = 1;
  REQUIRE(answer == 2);
}

TEST_CASE_METHOD(StoreFixture, "child: throws", "[.][throws]") {
  store().append("thrown", ExpectedVersion::any(), joined("ana"));
  throw std::runtime_error("the child threw");
}

TEST_CASE("child: 201 failed assertions", "[.][many-failures]") {
  for (int i = 0; i < 201; ++i) CHECK(i < 0);
}

// Hidden (run by name from fault_scenarios_test.cpp): re-marks the run's database as another
// run's, as a second process sharing the name would; the teardown must leave it and say so.
TEST_CASE_METHOD(StoreFixture, "child: marks the run database as another run's",
                 "[.][foreign-marker]") {
  auto& manager = gamebot::harness::current_database_manager();
  auto foreign = gamebot::harness::RunMarker::for_this_process("foreign-run", "database");
  // Owned by a live process (the test that looks at it afterwards), so no other run's reaper
  // takes it as an orphan once this process has exited.
  if (const char* owner = std::getenv("GAMEBOT_CHILD_FOREIGN_OWNER_PID")) {
    foreign.pid = static_cast<pid_t>(std::stol(owner));
    foreign.pid_start = 0;
  }
  const auto& url = manager.options().database_url;
  REQUIRE(url);
  if (url->driver() == gamebot::repo::Driver::sqlite) {
    gamebot::harness::marked::mark(std::filesystem::path(manager.run_database()), foreign);
  } else {
    auto admin = gamebot::repo::connect(*url);
    gamebot::harness::marked::mark(*admin, manager.run_database(), foreign);
  }
  say("re-marked " + manager.run_database());
}

// Short tests, for signals that land between two of them. Each prints a line as it starts: the
// signal tests count lines to place a signal at a point of the run, whatever the run's speed.
#define GAMEBOT_CHILD_SHORT(n)                                       \
  TEST_CASE_METHOD(StoreFixture, "child: short " #n, "[short]") {    \
    std::cerr << "short " #n " starts" << std::endl;                 \
    store().append("short", ExpectedVersion::any(), joined("q" #n)); \
    CHECK(store().read_stream_forward("short").events.size() == 1);  \
  }
GAMEBOT_CHILD_SHORT(1)
GAMEBOT_CHILD_SHORT(2)
GAMEBOT_CHILD_SHORT(3)
GAMEBOT_CHILD_SHORT(4)
GAMEBOT_CHILD_SHORT(5)
GAMEBOT_CHILD_SHORT(6)
GAMEBOT_CHILD_SHORT(7)
GAMEBOT_CHILD_SHORT(8)
GAMEBOT_CHILD_SHORT(9)
GAMEBOT_CHILD_SHORT(10)
GAMEBOT_CHILD_SHORT(11)
GAMEBOT_CHILD_SHORT(12)

// Blocks in the database for a minute (PostgreSQL), unless the harness cancels it.
TEST_CASE_METHOD(StoreFixture, "child: long database wait", "[dbwait]") {
  store().append("waiting", ExpectedVersion::any(), joined("w"));
  say("ready wait");
  repo().run([](gamebot::repo::Connection& c) { c.query("SELECT pg_sleep(60)"); });
}

// Five tests; with GAMEBOT_CHILD_SCENARIO leak-connection or leak-transaction the second one
// leaves a connection checked out (and, in the second case, a transaction open on it that
// inserted the row the later tests insert too: they would wait for it forever). With leak-lease
// it keeps a Repo::acquire() lease (under transaction isolation: the sandbox's connection), so the
// repo would route this thread to it in every later test.
namespace {
void insert_player(const gamebot::repo::Repo& repo) {
  repo.run([](gamebot::repo::Connection& c) {
    c.execute("INSERT INTO players (id, name) VALUES (1, 'ana')");
  });
}
}  // namespace

#define GAMEBOT_CHILD_FIVE(n)                                                 \
  TEST_CASE_METHOD(StoreFixture, "child: five " #n, "[five]") {               \
    if (n == 2 && scenario() == "leak-connection") {                          \
      static auto leaked = repo().pool().checkout();                          \
    }                                                                         \
    if (n == 2 && scenario() == "leak-lease") {                               \
      static auto lease = repo().acquire();                                   \
    }                                                                         \
    if (n == 2 && scenario() == "leak-transaction") {                         \
      static auto leaked = repo().pool().checkout();                          \
      static gamebot::repo::Transaction forgotten(*leaked);                   \
      leaked->execute("INSERT INTO players (id, name) VALUES (1, 'leaked')"); \
      return; /* its own insert would wait for the leaked one */              \
    }                                                                         \
    insert_player(repo());                                                    \
    store().append("five", ExpectedVersion::any(), joined("f" #n));           \
    CHECK(store().read_stream_forward("five").events.size() == 1);            \
  }
GAMEBOT_CHILD_FIVE(1)
GAMEBOT_CHILD_FIVE(2)
GAMEBOT_CHILD_FIVE(3)
GAMEBOT_CHILD_FIVE(4)
GAMEBOT_CHILD_FIVE(5)
