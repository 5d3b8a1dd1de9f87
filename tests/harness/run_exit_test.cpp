// The exit status of harness test binaries under both frameworks, run as child processes: the
// same command line ends the same way under Catch2 (catch2_child.cpp) and GoogleTest
// (gtest_child.cpp).

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "child_process.hpp"

using gamebot::harness::testing::ChildOutcome;
using gamebot::harness::testing::run_to_end;

namespace {

const std::vector<std::string> kEnv{"GAMEBOT_TEST_LOG_LEVEL=warn", "GAMEBOT_CHILD_SCENARIO="};
// The run's summary is an info line of the kit's log.
const std::vector<std::string> kEnvInfo{"GAMEBOT_TEST_LOG_LEVEL=info", "GAMEBOT_CHILD_SCENARIO="};

ChildOutcome catch2(std::vector<std::string> args, const std::vector<std::string>& env = kEnv) {
  args.insert(args.begin(), GAMEBOT_HARNESS_CATCH2_CHILD);
  return run_to_end(args, env);
}

ChildOutcome gtest(std::vector<std::string> args, const std::vector<std::string>& env = kEnv) {
  args.insert(args.begin(), GAMEBOT_HARNESS_GTEST_CHILD);
  return run_to_end(args, env);
}

// The arguments that select one of gtest_child.cpp's DISABLED_ tests.
std::vector<std::string> disabled_gtest(const std::string& name) {
  return {"--backend", "memory", "--gtest_also_run_disabled_tests", "--gtest_filter=*" + name};
}

}  // namespace

TEST_CASE("a wait for an event that never arrives is an assertion failure: exit 1",
          "[harness][run][exit]") {
  for (const ChildOutcome& outcome :
       {catch2({"--backend", "memory", "[wait-missing]"}, kEnvInfo),
        gtest(disabled_gtest("DISABLED_WaitsForAnEventThatNeverComes"), kEnvInfo)}) {
    INFO(outcome.output);
    CHECK(outcome.exit_code() == 1);
    CHECK_THAT(outcome.output, Catch::Contains("no event of type 'player_left' arrived within"));
    CHECK_THAT(outcome.output, Catch::Contains("1 event(s) seen up to position 1: player_joined"));
    CHECK_THAT(outcome.output,
               Catch::Contains("1 assertion failure(s), 0 infrastructure failure(s)"));
  }
}

TEST_CASE("a run with 201 failed assertions exits 1, not with their count",
          "[harness][run][exit]") {
  for (const ChildOutcome& outcome : {catch2({"--backend", "memory", "[many-failures]"}),
                                      gtest(disabled_gtest("DISABLED_ManyFailures"))}) {
    INFO(outcome.output);
    CHECK(outcome.exit_code() == 1);
  }
}

TEST_CASE("an unknown flag is a usage error, exit 2 with a 'did you mean', under both",
          "[harness][run][exit]") {
  for (const ChildOutcome& outcome :
       {catch2({"--bakend", "memory"}), gtest({"--bakend", "memory"})}) {
    INFO(outcome.output);
    CHECK(outcome.exit_code() == 2);
    CHECK_THAT(outcome.output,
               Catch::Contains("unknown option '--bakend' (did you mean '--backend'?)"));
  }
}

TEST_CASE("a bad --backend is a usage error, exit 2, under both", "[harness][run][exit]") {
  for (const ChildOutcome& outcome :
       {catch2({"--backend", "nosuch"}), gtest({"--backend", "nosuch"})}) {
    INFO(outcome.output);
    CHECK(outcome.exit_code() == 2);
    CHECK_THAT(outcome.output, Catch::Contains("--backend: invalid backend 'nosuch'"));
  }
}

TEST_CASE("a passing run exits 0 under both", "[harness][run][exit]") {
  for (const ChildOutcome& outcome :
       {catch2({"--backend", "memory", "[child]"}), gtest({"--backend", "memory"})}) {
    INFO(outcome.output);
    CHECK(outcome.exit_code() == 0);
  }
}
