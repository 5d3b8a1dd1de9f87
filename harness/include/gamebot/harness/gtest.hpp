#pragma once

// GoogleTest integration, the counterpart of catch2.hpp. Link `gamebot::harness_gtest` (not
// gtest_main) and write main() as:
//
//   int main(int argc, char** argv) {
//     return gamebot::harness::gtest::run_all_tests(
//         argc, argv, [](gamebot::harness::HarnessSetup& setup) {
//           setup.registry.register_type<PlayerJoined>("player_joined", 1, {{"g1", "ana"}});
//         });
//   }
//
// (the parameter's type spelled out: with `auto&`, `register_type<...>` would need the
// `template` keyword; tests/harness/gtest_header_example.cpp compiles this example) and derive
// fixtures from StoreTest (`TEST_F(MyStoreTest, ...)`). run_all_tests() hands the
// command line to the harness Run (run.hpp), which takes its flags (options.hpp,
// harness_flags(); environment GAMEBOT_TEST_*; flags win) and owns the lifecycle: GoogleTest gets
// the rest (an argument it does not know is a usage error, exit 2, as under Catch2), the
// DatabaseManager starts before the first test, every test (TEST or TEST_F) begins and ends in
// the Run, which tears down, writes --report and chooses the exit status (run.hpp, README).

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string_view>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/gtest_printers.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::harness::gtest {

// Runs every registered test as described above. `configure` fills the setup (event types, app
// migrations, expected objects) before the environment starts. Call once, from main().
int run_all_tests(int argc, char** argv, const std::function<void(HarnessSetup&)>& configure);

// The running environment (valid between start-up and teardown of run_all_tests). Throws
// gamebot::Error(internal) outside.
DatabaseManager& current_database_manager();

// Fixture base: each test gets an isolated store and repo on the chosen backend. A test that
// leaks (connections still checked out, an open transaction, a persistent subscription still
// subscribed) fails at TearDown with what it leaked. One test at a time.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  eventstore::EventStore& store();
  const repo::Repo& repo();
  TestContext& context();
};

// The fault class of a gamebot::Error that GoogleTest reported as thrown by a test body, read
// from GoogleTest's failure text ("C++ exception with description \"connectivity: ...\" thrown
// in the test body."); nullopt when the text reports no such exception. Pure; thread-safe.
std::optional<FaultClass> fault_of_failure_message(std::string_view message);
// The what() of the exception GoogleTest reported in a failure text (as above); nullopt when
// the text reports none. Pure; thread-safe.
std::optional<std::string> exception_of_failure_message(std::string_view message);

}  // namespace gamebot::harness::gtest
