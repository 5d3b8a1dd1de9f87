// The harness side of the per-process cost bench: a user's harness-based Catch2 binary with the
// example's registry and one test case running the test body on the test's isolated repo, as a
// CTest registration of one case per process runs it.

#include "gamebot/harness/catch2.hpp"
#include "gamebot_example/events.hpp"
#include "test_body.hpp"

void gamebot::harness::configure(gamebot::harness::HarnessSetup& setup) {
  setup.registry = gamebot_example::make_registry();
  setup.conformance.golden_dir = GAMEBOT_EXAMPLE_GOLDEN_DIR;
}

TEST_CASE_METHOD(gamebot::harness::StoreFixture, "per-process bench case", "[bench]") {
  auto lease = repo().acquire("bench");
  for (const char* sql : gamebot::bench::per_process::kTestBody) lease->execute(sql);
}
