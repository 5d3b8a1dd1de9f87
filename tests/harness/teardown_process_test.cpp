#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "child_process.hpp"
#include "gamebot/testing/postgres.hpp"

using gamebot::harness::testing::ChildProcess;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

ChildProcess start_child(const std::string& scenario, const std::string& dir) {
  return ChildProcess({GAMEBOT_HARNESS_TEST_CHILD, scenario, dir});
}

void await_ready(ChildProcess& child) {
  auto line = child.read_line(10s);
  REQUIRE(line);
  REQUIRE(line->starts_with("ready"));
}

bool wait_for_file(const fs::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("SIGTERM runs the cleanup once, then the process dies by SIGTERM",
          "[harness][teardown][signals]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-signal", dir.path());
  await_ready(child);
  CHECK(fs::exists(fs::path(dir.path()) / "resource"));
  child.signal(SIGTERM);
  int status = child.wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK_FALSE(fs::exists(fs::path(dir.path()) / "resource"));
  CHECK(read_file(fs::path(dir.path()) / "log") == "cleanup\n");
}

TEST_CASE("SIGINT runs the cleanup once, then the process dies by SIGINT",
          "[harness][teardown][signals]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-signal", dir.path());
  await_ready(child);
  child.signal(SIGINT);
  int status = child.wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK_FALSE(fs::exists(fs::path(dir.path()) / "resource"));
  CHECK(read_file(fs::path(dir.path()) / "log") == "cleanup\n");
}

TEST_CASE("a second SIGINT during the cleanup lets the cleanup finish",
          "[harness][teardown][signals]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-slow", dir.path());
  await_ready(child);
  child.signal(SIGINT);
  REQUIRE(wait_for_file(fs::path(dir.path()) / "started", 5s));
  child.signal(SIGINT);
  int status = child.wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK(read_file(fs::path(dir.path()) / "log") == "done\n");
}

TEST_CASE("a third signal during the cleanup abandons it at once", "[harness][teardown][signals]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-slow", dir.path());
  await_ready(child);
  const auto start = std::chrono::steady_clock::now();
  child.signal(SIGINT);
  REQUIRE(wait_for_file(fs::path(dir.path()) / "started", 5s));
  child.signal(SIGINT);
  std::this_thread::sleep_for(50ms);
  child.signal(SIGINT);
  int status = child.wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK_FALSE(fs::exists(fs::path(dir.path()) / "log"));  // the 800 ms cleanup did not finish
  CHECK(std::chrono::steady_clock::now() - start < 800ms);
}

TEST_CASE("std::exit runs the cleanup and keeps the exit code", "[harness][teardown]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-exit", dir.path());
  await_ready(child);
  int status = child.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
  CHECK(read_file(fs::path(dir.path()) / "log") == "cleanup\n");
}

TEST_CASE("an uncaught exception runs the cleanup before the abort", "[harness][teardown]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-terminate", dir.path());
  await_ready(child);
  int status = child.wait();
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(read_file(fs::path(dir.path()) / "log") == "cleanup\n");
}

TEST_CASE("a forked child never runs its parent's cleanup", "[harness][teardown]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-fork", dir.path());
  auto line = child.read_line(10s);
  REQUIRE(line);
  const std::string parent_pid = line->substr(std::string("ready ").size());
  int status = child.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_file(fs::path(dir.path()) / "log") == "cleanup " + parent_pid + "\n");
}

TEST_CASE("a TeardownScope in main runs the cleanup once on return", "[harness][teardown]") {
  gamebot::testing::TempDir dir;
  ChildProcess child = start_child("teardown-scope", dir.path());
  await_ready(child);
  int status = child.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_file(fs::path(dir.path()) / "log") == "cleanup\n");  // not again at exit
}
