#pragma once

// A small, realistic set of GameBot events for the serializer tests.

#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gamebot/serializers/serializers.hpp"

namespace gamebot::test_events {

enum class GameMode : std::uint8_t { two_player = 1, knockout = 2, race = 3 };

struct GameCreated {
  std::string game_id;
  std::string title;
  GameMode mode = GameMode::two_player;
  std::uint32_t max_players = 0;
  std::uint64_t seed = 0;
  std::int64_t created_at_ms = 0;
  std::vector<std::string> teams;
  std::map<std::string, std::string> settings;
  std::optional<std::string> description;

  bool operator==(const GameCreated&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(title), CEREAL_NVP(mode), CEREAL_NVP(max_players),
       CEREAL_NVP(seed), CEREAL_NVP(created_at_ms), CEREAL_NVP(teams), CEREAL_NVP(settings),
       CEREAL_NVP(description));
  }
};

struct PlayerJoined {
  std::string game_id;
  std::uint64_t player_id = 0;
  std::string display_name;
  std::int64_t joined_at_ms = 0;

  bool operator==(const PlayerJoined&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player_id), CEREAL_NVP(display_name),
       CEREAL_NVP(joined_at_ms));
  }
};

// guess_processed v1: the original shape.
struct GuessProcessedV1 {
  std::string game_id;
  std::uint32_t round = 0;
  std::string player;
  std::string guess;
  bool correct = false;

  bool operator==(const GuessProcessedV1&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(round), CEREAL_NVP(player), CEREAL_NVP(guess),
       CEREAL_NVP(correct));
  }
};

// guess_processed v2: a score and an accuracy instead of a flag.
struct GuessProcessed {
  std::string game_id;
  std::uint32_t round = 0;
  std::string player;
  std::string guess;
  std::int32_t score = 0;
  double accuracy = 0.0;
  std::vector<std::string> hints;

  bool operator==(const GuessProcessed&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(round), CEREAL_NVP(player), CEREAL_NVP(guess),
       CEREAL_NVP(score), CEREAL_NVP(accuracy), CEREAL_NVP(hints));
  }
};

inline GuessProcessed upcast_guess_v1(GuessProcessedV1 old) {
  GuessProcessed next;
  next.game_id = std::move(old.game_id);
  next.round = old.round;
  next.player = std::move(old.player);
  next.guess = std::move(old.guess);
  next.score = old.correct ? 10 : 0;
  next.accuracy = old.correct ? 1.0 : 0.0;
  return next;
}

inline std::vector<GameCreated> game_created_samples() {
  GameCreated typical{"g-7f3a",
                      "Friday quiz",
                      GameMode::knockout,
                      8,
                      42,
                      1'700'000'000'000,
                      {"red", "blue"},
                      {{"rounds", "5"}, {"time_limit_s", "30"}},
                      std::string("weekly")};
  GameCreated edges{"",
                    "Spiel für Zoë — 日本語 🎲 \"quoted\" \\ \n tab\t",
                    GameMode::race,
                    std::numeric_limits<std::uint32_t>::max(),
                    std::numeric_limits<std::uint64_t>::max(),
                    std::numeric_limits<std::int64_t>::min(),
                    {},
                    {{"", ""}, {"ключ", "значение"}},
                    std::nullopt};
  GameCreated zero{};
  return {typical, edges, zero};
}

inline std::vector<PlayerJoined> player_joined_samples() {
  return {PlayerJoined{"g-7f3a", 1001, "ana", 1'700'000'000'123},
          PlayerJoined{"", std::numeric_limits<std::uint64_t>::max(), "",
                       std::numeric_limits<std::int64_t>::max()},
          PlayerJoined{"g-ü", 0, "Ωmega 🙂", -1}};
}

inline std::vector<GuessProcessed> guess_processed_samples() {
  return {GuessProcessed{"g-7f3a", 3, "ana", "paris", 10, 0.75, {"capital", "europe"}},
          GuessProcessed{"", 0, "", "", std::numeric_limits<std::int32_t>::min(), -0.0, {""}},
          GuessProcessed{"g",
                         std::numeric_limits<std::uint32_t>::max(),
                         "Zoë",
                         "東京",
                         std::numeric_limits<std::int32_t>::max(),
                         1e300,
                         {}},
          GuessProcessed{"g", 1, "p", "g", 0, 5e-324, {}}};
}

inline std::vector<GuessProcessedV1> guess_processed_v1_samples() {
  return {GuessProcessedV1{"g-7f3a", 3, "ana", "paris", true},
          GuessProcessedV1{"", 0, "", "", false}};
}

// The registry every serializer test starts from.
inline serializers::TypeRegistry make_game_registry() {
  serializers::TypeRegistry registry;
  registry.register_type<GameCreated>("game_created", 1, game_created_samples());
  registry.register_type<PlayerJoined>("player_joined", 1, player_joined_samples());
  registry.register_type<GuessProcessed>("guess_processed", 2, guess_processed_samples());
  registry.add_upcaster<GuessProcessedV1>("guess_processed", 1, &upcast_guess_v1,
                                          guess_processed_v1_samples());
  return registry;
}

}  // namespace gamebot::test_events
