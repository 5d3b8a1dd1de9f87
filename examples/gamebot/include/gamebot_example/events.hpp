#pragma once

// The GameBot word-guessing game's events. Each is a plain value with a cereal
// serialize function, registered under a stable name and schema version by
// make_registry().

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "gamebot/serializers/type_registry.hpp"

namespace gamebot_example {

struct GameCreated {
  std::string game_id;
  std::uint32_t word_length = 0;
  std::uint32_t rounds = 0;
  bool operator==(const GameCreated&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(word_length), CEREAL_NVP(rounds));
  }
};

struct PlayerJoined {
  std::string game_id;
  std::string player;
  bool operator==(const PlayerJoined&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player));
  }
};

// Version 1 of guess_processed had no round number; kept for the upcaster.
struct GuessProcessedV1 {
  std::string game_id;
  std::string player;
  std::string guess;
  bool correct = false;
  bool operator==(const GuessProcessedV1&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player), CEREAL_NVP(guess), CEREAL_NVP(correct));
  }
};

// Version 2: the round the guess belongs to.
struct GuessProcessed {
  std::string game_id;
  std::string player;
  std::string guess;
  bool correct = false;
  std::uint32_t round = 0;
  bool operator==(const GuessProcessed&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(player), CEREAL_NVP(guess), CEREAL_NVP(correct),
       CEREAL_NVP(round));
  }
};

struct RoundCompleted {
  std::string game_id;
  std::uint32_t round = 0;
  std::string winner;  // empty when nobody guessed the word
  bool operator==(const RoundCompleted&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(round), CEREAL_NVP(winner));
  }
};

struct GameCompleted {
  std::string game_id;
  std::vector<std::string> winners;  // players with the top score
  bool operator==(const GameCompleted&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(winners));
  }
};

// Every GameBot event type with sample values (edge values included) and the
// guess_processed v1 -> v2 upcaster (a v1 guess belongs to round 1).
gamebot::serializers::TypeRegistry make_registry();

}  // namespace gamebot_example
