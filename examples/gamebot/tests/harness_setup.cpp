// Registers the GameBot event types and read-model tables with the harness:
// the preflight checks every type through every codec against the golden
// files before any test touches a database.
#include "gamebot/harness/catch2.hpp"
#include "gamebot_example/events.hpp"
#include "gamebot_example/scoreboard.hpp"

void gamebot::harness::configure(gamebot::harness::HarnessSetup& setup) {
  setup.registry = gamebot_example::make_registry();
  setup.conformance.golden_dir = GAMEBOT_EXAMPLE_GOLDEN_DIR;
  setup.app_migrations = gamebot_example::scoreboard_migrations();
  setup.expected_objects = {{gamebot::harness::ExpectedObject::Kind::table, "scoreboard_players"},
                            {gamebot::harness::ExpectedObject::Kind::table, "scoreboard_position"}};
}
