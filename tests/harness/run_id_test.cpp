#include "gamebot/harness/run_id.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <set>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/harness/version.hpp"
#include "gamebot/testing/postgres.hpp"

using namespace gamebot;
using namespace gamebot::harness;
using namespace std::chrono_literals;

namespace {

// The pid of a process that has exited and been reaped.
long dead_pid() {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return static_cast<long>(child);
}

// Lower-case letters, digits and '_' only: usable unquoted in SQL and in file names.
bool is_safe_identifier(const std::string& text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("run ids are safe identifiers and unique", "[harness][run_id]") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    RunId id = RunId::generate();
    CHECK(is_safe_identifier(id.str()));
    CHECK(id.str()[8] == 't');
    CHECK(id.str().size() <= 33);
    CHECK(id.pid() == static_cast<long>(::getpid()));
    seen.insert(id.str());
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("a run id round-trips through its text form", "[harness][run_id]") {
  const auto start = std::chrono::system_clock::from_time_t(1735787045);  // 2025-01-02T03:04:05Z
  RunId id = RunId::from_parts(start, 12345, 0x0a1b2c3d);
  CHECK(id.str() == "20250102t030405_p12345_0a1b2c3d");
  auto parsed = RunId::parse(id.str());
  REQUIRE(parsed);
  CHECK(*parsed == id);
  CHECK(parsed->start_time() == start);
  CHECK(parsed->pid() == 12345);
  for (const char* bad :
       {"", "20250102t030405_p12345_0a1b2c3", "20250102T030405_p12345_0a1b2c3d",
        "20250102t030405_p_0a1b2c3d", "20251302t030405_p1_0a1b2c3d", "20250102t030405_p1_0A1B2C3D",
        "20250102t030405_p1_0a1b2c3dx", "20250231t030405_p1_0a1b2c3d"}) {
    CAPTURE(bad);
    CHECK_FALSE(RunId::parse(bad));
  }
}

TEST_CASE("database names carry the run id and the worker", "[harness][run_id]") {
  RunId id =
      RunId::from_parts(std::chrono::system_clock::from_time_t(1735787045), 4194304, 0xffffffff);
  RunIdentity alone{id, "", false};
  CHECK(test_database_name(alone) == "gamebot_test_20250102t030405_p4194304_ffffffff");
  RunIdentity worker{id, "abcdefghij12", true};
  std::string name = test_database_name(worker);
  CHECK(name == "gamebot_test_20250102t030405_p4194304_ffffffff_wabcdefghij12");
  CHECK(name.size() <= 63);  // PostgreSQL's identifier limit

  auto parsed = parse_test_database_name(name);
  REQUIRE(parsed);
  CHECK(parsed->run_id == id);
  CHECK(parsed->worker == "abcdefghij12");
  auto parsed_alone = parse_test_database_name(test_database_name(alone));
  REQUIRE(parsed_alone);
  CHECK(parsed_alone->worker.empty());
  for (const char* other :
       {"gamebot", "postgres", "gamebot_test_", "gamebot_test_x",
        "gamebot_test_20250102t030405_p1_0a1b2c3d_x", "gamebot_test_20250102t030405_p1_0a1b2c3d_w",
        "gamebot_test_20250102t030405_p1_0a1b2c3d_wA"}) {
    CAPTURE(other);
    CHECK_FALSE(parse_test_database_name(other));
  }
}

TEST_CASE("the run identity comes from the environment when a suite is split",
          "[harness][run_id]") {
  RunIdentity own = detect_run_identity(fixed_environment({}));
  CHECK_FALSE(own.shared_run);
  CHECK(own.worker.empty());
  CHECK(own.run_id.pid() == static_cast<long>(::getpid()));

  const std::string shared = "20250102t030405_p777_00000001";
  RunIdentity pid_worker =
      detect_run_identity(fixed_environment({{"GAMEBOT_TEST_RUN_ID", shared}}));
  CHECK(pid_worker.shared_run);
  CHECK(pid_worker.run_id.str() == shared);
  CHECK(pid_worker.worker == "p" + std::to_string(::getpid()));

  RunIdentity named = detect_run_identity(
      fixed_environment({{"GAMEBOT_TEST_RUN_ID", shared}, {"GAMEBOT_TEST_WORKER", "Shard3"}}));
  CHECK(named.worker == "shard3");
  CHECK(test_database_name(named) == "gamebot_test_" + shared + "_wshard3");

  for (auto env :
       std::vector<std::pair<std::string, std::string>>{{"GAMEBOT_TEST_RUN_ID", "not-a-run-id"},
                                                        {"GAMEBOT_TEST_WORKER", "a-b"},
                                                        {"GAMEBOT_TEST_WORKER", "thirteenchars"},
                                                        {"GAMEBOT_TEST_WORKER", "x'; DROP"}}) {
    CAPTURE(env.first, env.second);
    try {
      detect_run_identity(fixed_environment({env}));
      FAIL("expected a configuration error");
    } catch (const Error& e) {
      CHECK(e.fault() == FaultClass::configuration);
      CHECK_THAT(e.message(), Catch::Contains(env.first));
    }
  }
}

TEST_CASE("a marker round-trips through its text and file forms", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process(RunId::generate().str(), "database");
  CHECK(marker.pid == static_cast<long>(::getpid()));
  CHECK(marker.host == this_host_name());
  CHECK(marker.harness_version == harness_version());
  CHECK(marker.pid_start != 0);
  CHECK_FALSE(marker.boot_id.empty());
  CHECK(RunMarker::parse(marker.serialize()) == marker);

  RunMarker odd = marker;
  odd.resource = "line one\nline two \\ with = signs";
  CHECK(RunMarker::parse(odd.serialize()) == odd);

  gamebot::testing::TempDir dir;
  const std::filesystem::path path = std::filesystem::path(dir.path()) / "marker";
  CHECK_FALSE(read_marker_file(path));
  write_marker_file(path, marker);
  auto read = read_marker_file(path);
  REQUIRE(read);
  CHECK(*read == marker);
}

TEST_CASE("a malformed marker is an integrity error", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process("r", "database");
  std::string text = marker.serialize();
  const std::vector<std::string> broken = {
      "",
      "not a marker\nrun_id=r\n",
      text.substr(0, text.find("pid=")),                         // truncated
      std::string(text).replace(text.find("pid=") + 4, 1, "x"),  // non-numeric pid
      "gamebot-harness-marker 1\nrun_id=r\nresource=x\nhost=h\npid=0\nstarted_at_ms=1\n",
      "gamebot-harness-marker 1\nrun_id=r\nresource=x\nhost=h\npid=1\nstarted_at_ms=1\nbad\n",
      "gamebot-harness-marker 1\nrun_id=r\\q\nresource=x\nhost=h\npid=1\nstarted_at_ms=1\n",
  };
  for (const std::string& text_case : broken) {
    CAPTURE(text_case);
    try {
      RunMarker::parse(text_case);
      FAIL("expected an integrity error");
    } catch (const Error& e) {
      CHECK(e.fault() == FaultClass::integrity);
    }
  }
}

TEST_CASE("a marker whose owner is alive on this host is not an orphan", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process("r", "database");
  const auto now = std::chrono::system_clock::now();
  CHECK_FALSE(is_orphan(marker, now, 1h, this_host_name()));
  RunMarker unknown_start = marker;
  unknown_start.pid_start = 0;
  unknown_start.boot_id.clear();
  CHECK_FALSE(is_orphan(unknown_start, now, 1h, this_host_name()));
}

TEST_CASE("a marker whose owner pid is gone on this host is an orphan", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process("r", "database");
  marker.pid = dead_pid();
  marker.pid_start = 0;
  CHECK(is_orphan(marker, std::chrono::system_clock::now(), 1h, this_host_name()));
}

TEST_CASE("a reused pid or a reboot makes a marker an orphan", "[harness][marker]") {
  const auto now = std::chrono::system_clock::now();
  RunMarker reused = RunMarker::for_this_process("r", "database");
  reused.pid_start += 1;  // "our" pid, but a process started at another time
  CHECK(is_orphan(reused, now, 1h, this_host_name()));
  RunMarker rebooted = RunMarker::for_this_process("r", "database");
  rebooted.boot_id = "00000000-0000-0000-0000-000000000000";
  CHECK(is_orphan(rebooted, now, 1h, this_host_name()));
}

TEST_CASE("another host's marker is an orphan only past the grace period", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process("r", "database");
  marker.host = "some-other-host";
  marker.pid = dead_pid();  // dead here, but it is not our host's pid
  const auto now = std::chrono::system_clock::now();
  CHECK_FALSE(is_orphan(marker, now, 1h, this_host_name()));
  CHECK_FALSE(is_orphan(marker, now + 59min, 1h, this_host_name()));
  CHECK(is_orphan(marker, now + 61min, 1h, this_host_name()));
}

TEST_CASE("liveness comes before age: a live owner on this host is never an orphan",
          "[harness][marker]") {
  // A soak or a --keep session older than the grace period is still running.
  RunMarker marker = RunMarker::for_this_process("r", "database");
  marker.started_at -= 25h;
  CHECK_FALSE(
      is_orphan(marker, std::chrono::system_clock::now(), kDefaultOrphanGrace, this_host_name()));
  CHECK_FALSE(is_orphan(marker, std::chrono::system_clock::now(), kDefaultOrphanGrace,
                        this_host_name(), false));
}

TEST_CASE("another host's server lease makes its liveness exact", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process("r", "database");
  marker.host = "some-other-host";
  marker.server_lease = true;
  const auto now = std::chrono::system_clock::now();
  // Alive past the grace period while its lease is held; gone at once when it is not.
  CHECK_FALSE(is_orphan(marker, now + 48h, 1h, this_host_name(), true));
  CHECK(is_orphan(marker, now, 1h, this_host_name(), false));
  // A marker that promises no lease falls back to the grace period.
  marker.server_lease = false;
  CHECK_FALSE(is_orphan(marker, now, 1h, this_host_name(), false));
  CHECK(is_orphan(marker, now + 61min, 1h, this_host_name(), false));
}

TEST_CASE("the lease promise survives a marker's round trip", "[harness][marker]") {
  RunMarker marker = RunMarker::for_this_process("r", "database");
  CHECK_FALSE(RunMarker::parse(marker.serialize()).server_lease);
  marker.server_lease = true;
  CHECK(RunMarker::parse(marker.serialize()) == marker);
}
