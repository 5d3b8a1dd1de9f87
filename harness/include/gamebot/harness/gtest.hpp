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
// fixtures from StoreTest (`TEST_F(MyStoreTest, ...)`). run_all_tests() takes the
// harness options (--backend, --database-url, --isolation, --keep, --report, --connect-deadline,
// --log-level; environment GAMEBOT_TEST_*; flags win) off the command line, hands the rest to
// GoogleTest, starts the TestEnvironment before the first test (a phase failure ends the run
// before any test), runs the tests, tears down and writes --report. Exit status as with the
// Catch2 main: 0 all passed; 200 + phase number when start-up failed; 199 when tests failed for
// infrastructure faults (connectivity, timeout, pool_exhausted), counted apart from assertion
// failures; otherwise 1.

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string_view>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/harness/gtest_printers.hpp"
#include "gamebot/harness/test_environment.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::harness::gtest {

// Runs every registered test as described above. `configure` fills the setup (event types, app
// migrations, expected objects) before the environment starts. Call once, from main().
int run_all_tests(int argc, char** argv, const std::function<void(HarnessSetup&)>& configure);

// The running environment (valid between start-up and teardown of run_all_tests). Throws
// gamebot::Error(internal) outside.
TestEnvironment& current_environment();

// Fixture base: each test gets an isolated store and repo on the chosen backend. A test that
// leaks (connections still checked out, an open transaction, a persistent subscription still
// subscribed) fails at TearDown with what it leaked. One test per thread at a time.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  eventstore::EventStore& store();
  const repo::Repo& repo();
  TestContext& context();

 private:
  std::optional<TestContext> context_;
};

// The fault class of a gamebot::Error that GoogleTest reported as thrown by a test body, read
// from GoogleTest's failure text ("C++ exception with description \"connectivity: ...\" thrown
// in the test body."); nullopt when the text reports no such exception. Pure; thread-safe.
std::optional<FaultClass> fault_of_failure_message(std::string_view message);

}  // namespace gamebot::harness::gtest
