// The example at the top of gamebot/harness/gtest.hpp, verbatim but for the event type it
// registers: building this file is the test that the example compiles; running it (no tests)
// that it starts and ends the harness.

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <string>

#include "gamebot/harness/gtest.hpp"

struct PlayerJoined {
  std::string game_id;
  std::string player;
  bool operator==(const PlayerJoined&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player));
  }
};

int main(int argc, char** argv) {
  return gamebot::harness::gtest::run_all_tests(
      argc, argv, [](gamebot::harness::HarnessSetup& setup) {
        setup.registry.register_type<PlayerJoined>("player_joined", 1, {{"g1", "ana"}});
      });
}
