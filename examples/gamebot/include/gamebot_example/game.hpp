#pragma once

// The Game aggregate: its state is rebuilt from its stream ("game-<id>"),
// starting from the latest snapshot when there is one; commands check the
// rules and append new events with the version they were decided on, so two
// racing commands cannot both win (the loser sees wrong_expected_version).

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cstdint>
#include <map>
#include <string>

#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/typed_event_store.hpp"

namespace gamebot_example {

struct GameState {
  std::string game_id;
  std::uint32_t word_length = 0;
  std::uint32_t rounds = 0;
  std::uint32_t current_round = 0;              // 1-based; 0 before the game exists
  std::map<std::string, std::uint32_t> scores;  // player -> rounds won
  bool completed = false;
  gamebot::eventstore::StreamVersion version = 0;  // stream version the state includes

  bool exists() const noexcept { return current_round > 0; }
  bool operator==(const GameState&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(game_id), CEREAL_NVP(word_length), CEREAL_NVP(rounds), CEREAL_NVP(current_round),
       CEREAL_NVP(scores), CEREAL_NVP(completed), CEREAL_NVP(version));
  }
};

// Applies one decoded event to the state (unknown types are ignored).
void apply(GameState& state, const gamebot::eventstore::TypedEvent& event);

// Outcome of a command: the append result, or a rule the command broke.
struct CommandResult {
  gamebot::eventstore::AppendResult append;  // status ok when the events were stored
  std::string rejected;                      // non-empty: why the rules refused the command

  bool ok() const noexcept { return rejected.empty() && append.ok(); }
};

// Loads and changes games. Borrows the stores (they must outlive it).
// Thread-safe as the stores are; concurrent commands on one game are resolved
// by optimistic concurrency.
class Games {
 public:
  // A snapshot is recorded each time a game's stream grows by `snapshot_every` events.
  Games(gamebot::eventstore::EventStore& store, gamebot::eventstore::TypedEventStore& typed,
        std::uint32_t snapshot_every = 10);

  static std::string stream_of(const std::string& game_id) { return "game-" + game_id; }

  // The state from the latest snapshot plus the events after it.
  GameState load(const std::string& game_id) const;

  CommandResult create(const std::string& game_id, std::uint32_t word_length, std::uint32_t rounds);
  CommandResult join(const std::string& game_id, const std::string& player);
  // Scores a guess against the round's secret word; a correct guess completes
  // the round, and the last round completes the game.
  CommandResult guess(const std::string& game_id, const std::string& player,
                      const std::string& guess, const std::string& secret_word);

 private:
  CommandResult append(const GameState& state,
                       std::vector<gamebot::eventstore::TypedEventData> events);

  gamebot::eventstore::EventStore* store_;
  gamebot::eventstore::TypedEventStore* typed_;
  std::uint32_t snapshot_every_;
};

}  // namespace gamebot_example
