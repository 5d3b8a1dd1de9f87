#include <algorithm>
#include <string>
#include <vector>

#include "gamebot/serializers/catch2_conformance.hpp"
#include "test_events.hpp"

using namespace gamebot::serializers;

// One Catch2 test case per registered type and codec, run against the committed golden files.
GAMEBOT_SERIALIZER_CONFORMANCE_TESTS(&gamebot::test_events::make_game_registry, [] {
  ConformanceOptions options;
  options.golden_dir = GAMEBOT_SERIALIZERS_GOLDEN_DIR;
  return options;
});

TEST_CASE("the Catch2 adapter registers one test case per type and codec plus the registry",
          "[serializers][catch2]") {
  std::vector<std::string> names;
  for (const Catch::TestCase& test : Catch::getRegistryHub().getTestCaseRegistry().getAllTests()) {
    if (test.name.rfind("serializer conformance: ", 0) == 0) names.push_back(test.name);
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{
                     "serializer conformance: game_created@v1 binary",
                     "serializer conformance: game_created@v1 json",
                     "serializer conformance: guess_processed@v2 binary",
                     "serializer conformance: guess_processed@v2 json",
                     "serializer conformance: player_joined@v1 binary",
                     "serializer conformance: player_joined@v1 json",
                     "serializer conformance: registry",
                 });
}
