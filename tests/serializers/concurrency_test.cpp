#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/serializers/serializers.hpp"
#include "test_events.hpp"

using namespace gamebot::serializers;
using namespace gamebot::test_events;

TEST_CASE("many threads encode, decode and look up through one registry",
          "[serializers][concurrency]") {
  const TypeRegistry registry = make_game_registry();
  TypeRegistry v1_registry;
  v1_registry.register_type<GuessProcessedV1>("guess_processed", 1, guess_processed_v1_samples());
  const Encoded v1 = v1_registry.encode(guess_processed_v1_samples()[0], Codec::binary);

  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string buffer;
      for (int i = 0; i < 200; ++i) {
        const Codec codec = (i + t) % 2 == 0 ? Codec::json : Codec::binary;
        const GuessProcessed guess = guess_processed_samples()[static_cast<std::size_t>(i) % 4];
        registry.encode_to(guess, codec, buffer);
        if (registry.decode<GuessProcessed>("guess_processed", 2, codec, buffer) != guess)
          ++mismatches;
        const GameCreated game = game_created_samples()[static_cast<std::size_t>(i) % 3];
        const DecodedValue erased = registry.decode(registry.encode(game, codec));
        if (erased.get<GameCreated>() != game) ++mismatches;
        if (registry.decode<GuessProcessed>(v1) !=
            upcast_guess_v1(guess_processed_v1_samples()[0])) {
          ++mismatches;
        }
        if (registry.find("player_joined") == nullptr || registry.find<PlayerJoined>() == nullptr) {
          ++mismatches;
        }
        try {
          (void)registry.decode("player_joined", 1, codec, "garbage");
          ++mismatches;
        } catch (const SerializationError&) {
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(mismatches.load() == 0);
}
