// The GameBot domain tested with GoogleTest through the harness's GoogleTest adapter: the same
// harness phases, options and isolation as the Catch2 suite, with TEST_F fixtures.
#include <gtest/gtest.h>

#include <string>

#include "gamebot/harness/gtest.hpp"
#include "gamebot_example/events.hpp"
#include "gamebot_example/game.hpp"
#include "gamebot_example/scoreboard.hpp"

namespace es = gamebot::eventstore;
using gamebot_example::Games;

namespace {

const gamebot::serializers::TypeRegistry& registry() {
  static const gamebot::serializers::TypeRegistry instance = gamebot_example::make_registry();
  return instance;
}

class GameTest : public gamebot::harness::gtest::StoreTest {
 protected:
  es::TypedEventStore& typed() {
    if (!typed_) typed_.emplace(store(), registry());
    return *typed_;
  }

 private:
  std::optional<es::TypedEventStore> typed_;
};

TEST_F(GameTest, AGameIsRebuiltFromItsStream) {
  Games games(store(), typed(), 0);
  ASSERT_TRUE(games.create("g1", 5, 2).ok());
  ASSERT_TRUE(games.join("g1", "ana").ok());
  ASSERT_TRUE(games.guess("g1", "ana", "crane", "crane").ok());
  gamebot_example::GameState state = games.load("g1");
  EXPECT_EQ(state.scores.at("ana"), 1U);
  EXPECT_EQ(state.current_round, 2U);
  EXPECT_EQ(state.version, 4);  // created, joined, guess, round completed
}

TEST_F(GameTest, ARejectedCommandWritesNothing) {
  Games games(store(), typed(), 0);
  EXPECT_EQ(games.join("nope", "ana").rejected, "no such game");
  EXPECT_FALSE(store().stream_info(Games::stream_of("nope")).has_value());
  EXPECT_TRUE(store().read_all_forward().events.empty());
}

TEST_F(GameTest, AStaleCommandLosesWithWrongExpectedVersion) {
  Games games(store(), typed(), 0);
  ASSERT_TRUE(games.create("g2", 5, 2).ok());
  gamebot_example::GameState stale = games.load("g2");
  ASSERT_TRUE(games.join("g2", "ana").ok());
  const es::TypedEventData late{
      std::any(gamebot_example::PlayerJoined{"g2", "bo"}), {}, {}, {}, {}, {}};
  auto result = typed().append(Games::stream_of("g2"), es::ExpectedVersion::exact(stale.version),
                               std::span<const es::TypedEventData>(&late, 1));
  EXPECT_EQ(result.status, es::WriteStatus::wrong_expected_version);
}

}  // namespace

int main(int argc, char** argv) {
  return gamebot::harness::gtest::run_all_tests(
      argc, argv, [](gamebot::harness::HarnessSetup& setup) {
        setup.registry = gamebot_example::make_registry();
        setup.conformance.golden_dir = GAMEBOT_EXAMPLE_GOLDEN_DIR;
        setup.app_migrations = gamebot_example::scoreboard_migrations();
      });
}
