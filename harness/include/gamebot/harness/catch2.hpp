#pragma once

// Catch2 v2 integration. Link `gamebot::harness_catch2_main` (it provides main()) and define,
// in ONE source file of the test binary, the hook that registers your event types:
//
//   void gamebot::harness::configure(gamebot::harness::HarnessSetup& setup) {
//     setup.registry.register_type<PlayerJoined>("player_joined", 1, {{"g1", "ana"}});
//     setup.app_migrations.push_back({1, "create_players", "CREATE TABLE players (...)"});
//   }
//
// A plain function (not a static-registration object) because the linker drops unreferenced
// objects of static libraries; main() references configure(), so it is always linked. A binary
// without event types may omit it (a weak default registers nothing).
//
// main() hands the command line to the harness Run (run.hpp), which takes its flags (options.hpp,
// harness_flags(); environment GAMEBOT_TEST_*; flags win; --help lists them after Catch's) and
// owns the lifecycle: Catch2 parses the rest (an argument it rejects is a usage error, exit 2),
// the DatabaseManager starts before the first test, each test case begins and ends in the Run,
// which tears down, prints the summary, writes --report and chooses the exit status (run.hpp,
// README): never Catch's failure count.

#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/harness/catch2_printers.hpp"
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::harness {

// Defined by the user's test binary (see above).
void configure(HarnessSetup& setup);

// The running environment and the current test's context (valid inside a test case run by
// harness_catch2_main). Throw gamebot::Error(internal) outside one.
DatabaseManager& current_database_manager();
TestContext& current_test();

// Fixture for TEST_CASE_METHOD: the current test's isolated store and repo.
class StoreFixture {
 public:
  eventstore::EventStore& store() { return current_test().store(); }
  const repo::Repo& repo() { return current_test().repo(); }
};

}  // namespace gamebot::harness
