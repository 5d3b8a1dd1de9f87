// Signals stopping a harness-based Catch2 binary (catch2_child.cpp) on PostgreSQL: the run stops
// at a safe point, cleans up, and ends by the signal (a shell sees 128 + the signal's number).

#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "catch2_child_runner.hpp"
#include "child_process.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/testing/postgres.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness::testing;
using namespace std::chrono_literals;

namespace {

// The default build runs all 200; each child is several times slower under a sanitizer, which
// checks the same points for memory errors and races on fewer runs (within CTest's timeout).
#if defined(__SANITIZE_THREAD__)
constexpr int kRandomRuns = 20;
#elif defined(__SANITIZE_ADDRESS__)
constexpr int kRandomRuns = 50;
#else
constexpr int kRandomRuns = 200;
#endif

// The run summary: one line in the kit's log format ("[gamebot I] run passed: N tests, ...").
constexpr std::string_view kSummary = "] run ";

std::vector<std::string> run_env(const std::string& run_id, const std::string& worker) {
  return {"GAMEBOT_TEST_RUN_ID=" + run_id, "GAMEBOT_TEST_WORKER=" + worker};
}

// Whether `line` is the run's summary (printed once, after the last test).
bool is_summary(const std::string& line) {
  return line.find(kSummary) != std::string::npos && line.find(" tests, ") != std::string::npos;
}

// Reads the child's output (kept in `output`) until `until`, EOF, or `lines` lines were read;
// true if the run's summary line was among them.
bool read_until(ChildProcess& child, std::chrono::steady_clock::time_point until,
                std::string& output, std::size_t lines = SIZE_MAX) {
  bool summary = false;
  for (std::size_t read = 0; read < lines; ++read) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return summary;
    auto line = child.read_line(left);
    if (!line) return summary;
    summary = summary || is_summary(*line);
    output += *line + "\n";
  }
  return summary;
}

// Processes whose command line mentions `text` (a server started under a directory).
std::vector<std::string> processes_mentioning(const std::string& text) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(text) != std::string::npos) found.push_back(pid + ": " + cmdline);
  }
  return found;
}

// Server directories (they hold a marker) left under `base`.
std::vector<std::string> server_directories(const fs::path& base) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(base)) {
    if (fs::exists(entry.path() / std::string(gamebot::harness::EphemeralPostgres::kMarkerFile)))
      found.push_back(entry.path().string());
  }
  return found;
}

}  // namespace

TEST_CASE(
    "postgres: SIGINT or SIGTERM at random points of many runs: no crash, the signal's "
    "status, no database left",
    "[harness][postgres][signals]") {
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  const std::string url = gamebot::testing::postgres_url();
  // One undisturbed run first. Its lines (phases, "short N starts" per test) are the points a
  // signal is placed at: after the k-th line, plus a random part of the time calibration saw
  // to the next line. Placing by lines rather than by clock keeps the points spread over the
  // run however fast or slow (sanitizers, load) each child is.
  // gaps[k]: from line k (line 0: the start) to line k + 1 (the last: to the end of the output).
  std::vector<std::chrono::microseconds> gaps;
  {
    const std::string run_id = gamebot::harness::RunId::generate().str();
    ChildProcess child(command("", {"--database-url", url, "[short]"}, run_env(run_id, "calib")));
    auto last = std::chrono::steady_clock::now();
    std::string output;
    for (;;) {
      auto line = child.read_line(60s);
      const auto now = std::chrono::steady_clock::now();
      gaps.push_back(std::chrono::duration_cast<std::chrono::microseconds>(now - last));
      last = now;
      if (!line) break;  // the last gap ends with the output: teardown is inside it
      output += *line + "\n";
    }
    INFO(output);
    REQUIRE(shell_status(child.wait()) == 0);
    REQUIRE(gaps.size() > 12);  // the phases and a line per test
    REQUIRE(databases_of_run(*admin, run_id, "calib") == 0);
  }
  const auto seed = std::random_device{}();
  std::mt19937 random(seed);
  std::uniform_int_distribution<std::size_t> anchor(0, gaps.size() - 1);
  for (int i = 0; i < kRandomRuns; ++i) {
    const std::string run_id = gamebot::harness::RunId::generate().str();
    const std::string worker = "sig" + std::to_string(i);
    const int sig = random() % 2 == 0 ? SIGINT : SIGTERM;
    // Every eighth run isolates by database: the preparer and dropper threads are stopped too
    // (such a run takes several times longer: a clone per test).
    const std::string isolation = i % 8 == 7 ? "database" : "transaction";
    const std::size_t after_lines = anchor(random);
    const std::chrono::microseconds delay(
        std::uniform_int_distribution<std::int64_t>(0, gaps[after_lines].count())(random));
    ChildProcess child(command("", {"--database-url", url, "--isolation", isolation, "[short]"},
                               run_env(run_id, worker)));
    std::string output;
    read_until(child, std::chrono::steady_clock::now() + 60s, output, after_lines);
    read_until(child, std::chrono::steady_clock::now() + delay, output);
    child.signal(sig);
    read_until(child, std::chrono::steady_clock::now() + 60s, output);
    const int status = shell_status(child.wait());
    INFO("seed " << seed << ", run " << i << ", signal " << sig << " after line " << after_lines
                 << " + " << delay.count() << " us, isolation " << isolation << "\n"
                 << output);
    if (status == 0) {
      // A signal can miss the run only when the process had already ended: then the run was
      // complete, and said so.
      REQUIRE(output.find(std::string(kSummary) + "passed: 12 tests, 12 passed") !=
              std::string::npos);
    } else {
      REQUIRE(status == 128 + sig);
    }
    REQUIRE(databases_of_run(*admin, run_id, worker) == 0);
  }
}

TEST_CASE("postgres: a test blocked in a long database wait ends promptly on SIGINT",
          "[harness][postgres][signals]") {
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  const std::string run_id = gamebot::harness::RunId::generate().str();
  ChildProcess child(command("", {"--database-url", gamebot::testing::postgres_url(), "[dbwait]"},
                             run_env(run_id, "dbwait")));
  REQUIRE(wait_for_line(child, "ready wait", 20s));
  const auto sent = std::chrono::steady_clock::now();
  child.signal(SIGINT);
  std::string output;
  read_until(child, sent + 60s, output);
  const int status = shell_status(child.wait());
  INFO(output);
  CHECK(std::chrono::steady_clock::now() - sent < 8s);  // not the 60 s of pg_sleep
  CHECK(status == 128 + SIGINT);
  CHECK(databases_of_run(*admin, run_id, "dbwait") == 0);
}

TEST_CASE("postgres: SIGHUP stops the run with cleanup, status 129",
          "[harness][postgres][signals]") {
  auto admin = gamebot::repo::connect(gamebot::testing::postgres_url());
  const std::string run_id = gamebot::harness::RunId::generate().str();
  ChildProcess child(command("", {"--database-url", gamebot::testing::postgres_url(), "[steps]"},
                             run_env(run_id, "hup")));
  REQUIRE(wait_for_line(child, "ready step", 20s));
  child.signal(SIGHUP);
  std::string output;
  read_until(child, std::chrono::steady_clock::now() + 30s, output);
  INFO(output);
  CHECK(shell_status(child.wait()) == 128 + SIGHUP);
  CHECK(databases_of_run(*admin, run_id, "hup") == 0);
}

TEST_CASE("postgres: `| head -1` on a run with a private server leaves no server behind",
          "[harness][postgres][signals]") {
  // The private server goes under $TMPDIR; the child's stdout is the pipe head would read
  // (stderr apart, as in `tests | head`). The pipe is closed once a test runs (earlier, during
  // the phases, the run stops at the next phase instead; fault scenarios cover that path too).
  gamebot::testing::TempDir dir;
  // The server runs as an unprivileged user when we are root: it must reach its directory.
  fs::permissions(dir.path(), fs::perms::others_exec | fs::perms::group_exec,
                  fs::perm_options::add);
  ChildProcess child({"/usr/bin/env", "TMPDIR=" + dir.path(), "GAMEBOT_TEST_LOG_LEVEL=warn",
                      GAMEBOT_HARNESS_CATCH2_CHILD, "--backend", "postgres", "[steps]"});
  REQUIRE(wait_for_line(child, "ready step", 120s));    // inside the tests: like `| head -N`
  CHECK_FALSE(server_directories(dir.path()).empty());  // the server runs now
  child.close_output();
  const int status = shell_status(child.wait());
  CHECK(status == 128 + SIGPIPE);
  CHECK(server_directories(dir.path()).empty());
  CHECK(processes_mentioning(dir.path()).empty());
}
