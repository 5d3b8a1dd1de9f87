#include "gamebot_example/events.hpp"

#include <limits>

namespace gamebot_example {

gamebot::serializers::TypeRegistry make_registry() {
  constexpr auto max_u32 = std::numeric_limits<std::uint32_t>::max();
  gamebot::serializers::TypeRegistry registry;
  registry.register_type<GameCreated>("game_created", 1,
                                      {{"game-1", 5, 3}, {"", 0, 0}, {"jeu-é", max_u32, max_u32}});
  registry.register_type<PlayerJoined>("player_joined", 1,
                                       {{"game-1", "ana"}, {"game-1", "Zoë 🎲"}, {"", ""}});
  registry.register_type<GuessProcessed>(
      "guess_processed", 2,
      {{"game-1", "ana", "crane", true, 1}, {"game-1", "bo", "", false, max_u32}});
  registry.add_upcaster<GuessProcessedV1>("guess_processed", 1,
                                          [](GuessProcessedV1 old) {
                                            return GuessProcessed{
                                                std::move(old.game_id), std::move(old.player),
                                                std::move(old.guess), old.correct, 1};
                                          },
                                          {{"game-1", "ana", "slate", false}});
  registry.register_type<RoundCompleted>("round_completed", 1,
                                         {{"game-1", 1, "ana"}, {"game-1", 2, ""}});
  registry.register_type<GameCompleted>("game_completed", 1,
                                        {{"game-1", {"ana"}}, {"game-2", {}}, {"g", {"a", "b"}}});
  return registry;
}

}  // namespace gamebot_example
